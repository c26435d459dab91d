import { vi, type Mock } from 'vitest';
import { ResponseError } from '@backstage/errors';
import type { Entity } from '@backstage/catalog-model';
import {
  failedMachine,
  HOST_BUSY_ERROR_NAME,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  BootPlan,
  Readiness,
  ReadinessSummary,
  RecoveryApi,
  RecoveryRun,
  RunSummary,
} from '@backstage-recovery/plugin-recovery-common';

export const DB = 'resource:default/db';
export const WEB = 'resource:default/web-1';

export const webEntity: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'web', namespace: 'default' },
  spec: { type: 'service', lifecycle: 'production', owner: 'team-a' },
};

export const plan: BootPlan = {
  entityRef: 'component:default/web',
  waves: [[DB], [WEB]],
  machines: [
    {
      machineRef: DB,
      wave: 0,
      services: ['component:default/db'],
      waitsFor: [],
      probes: [{ kind: 'tcp', port: 5432 }],
    },
    {
      machineRef: WEB,
      wave: 1,
      services: ['component:default/web'],
      waitsFor: [DB],
      probes: [{ kind: 'http', port: 80, path: '/healthz' }],
    },
  ],
};

const minutesAgo = (m: number) =>
  new Date(Date.now() - m * 60_000).toISOString();

export function makeReadiness(overrides: Partial<Readiness> = {}): Readiness {
  return {
    entityRef: 'component:default/web',
    status: 'ready',
    reasons: ['Captures are within the RPO', 'Last test recovery met the RTO'],
    problems: [],
    objectives: { rpoSeconds: 24 * 3600, rtoSeconds: 15 * 60 },
    plan,
    position: { wave: 1, machines: [WEB], waitsFor: [DB] },
    captures: [
      {
        machineRef: DB,
        ageSeconds: 2 * 3600,
        latest: {
          id: 'cap-db',
          machineRef: DB,
          engine: 'primary',
          container: 'db',
          imageId: 'sha256:aaa',
          sizeBytes: 1000,
          checksum: 'sha256:bbb',
          createdAt: minutesAgo(120),
          durationMs: 1200,
          pausedMs: 420,
          adaptations: [],
        },
      },
      {
        machineRef: WEB,
        ageSeconds: 30 * 3600,
        latest: {
          id: 'cap-web',
          machineRef: WEB,
          engine: 'primary',
          container: 'web-1',
          imageId: 'sha256:ccc',
          sizeBytes: 1000,
          checksum: 'sha256:ddd',
          createdAt: minutesAgo(30 * 60),
          durationMs: 800,
          adaptations: ['dropped host port 8080'],
        },
      },
    ],
    ...overrides,
  };
}

/** An entity's readiness as the overview lists it (GET /readiness). */
export function makeReadinessSummary(
  overrides: Partial<ReadinessSummary> = {},
): ReadinessSummary {
  const { lastRun, plan: itsPlan, captures, ...readiness } = makeReadiness();
  return {
    ...readiness,
    machineCount: itsPlan?.machines.length,
    captures: captures.map(({ latest, ...status }) => ({
      ...status,
      latest: latest && { id: latest.id, createdAt: latest.createdAt },
    })),
    ...overrides,
  };
}

/** A run as the overview lists it (GET /readiness), of a run the caller sees. */
export function makeRunSummary(run: RecoveryRun): RunSummary {
  const {
    id,
    entityRef,
    mode,
    status,
    createdAt,
    startedAt,
    finishedAt,
    rtoSeconds,
  } = run;
  return {
    id,
    entityRef,
    mode,
    status,
    createdAt,
    startedAt,
    finishedAt,
    rtoSeconds,
    failedAt: failedMachine(run),
  };
}

const T0 = Date.parse('2024-05-01T10:00:00Z');
const at = (s: number) => new Date(T0 + s * 1000).toISOString();

export function makeRun(
  stage: 'pending' | 'running' | 'succeeded' | 'failed',
  overrides: Partial<RecoveryRun> = {},
): RecoveryRun {
  const base: RecoveryRun = {
    id: 'run-1',
    entityRef: 'component:default/web',
    mode: 'test',
    status: 'pending',
    trigger: 'user',
    createdBy: 'user:default/guest',
    hypervisorHost: 'recovery-1',
    createdAt: at(0),
    plan,
    machines: [
      { machineRef: DB, wave: 0, phase: 'waiting' },
      { machineRef: WEB, wave: 1, phase: 'waiting' },
    ],
    steps: [{ at: at(0), level: 'info', message: 'Run admitted' }],
  };
  const dbReady = {
    machineRef: DB,
    wave: 0,
    phase: 'ready' as const,
    captureId: 'cap-db',
    restoreStartedAt: at(1),
    restoredAt: at(13),
    startedAt: at(14),
    readyAt: at(20),
    finishedAt: at(20),
  };
  if (stage === 'pending') return { ...base, ...overrides };
  if (stage === 'running') {
    return {
      ...base,
      status: 'running',
      startedAt: at(1),
      machines: [
        dbReady,
        {
          machineRef: WEB,
          wave: 1,
          phase: 'restoring',
          captureId: 'cap-web',
          restoreStartedAt: at(21),
        },
      ],
      steps: [
        ...base.steps,
        {
          at: at(1),
          machineRef: DB,
          level: 'info',
          message: 'Restoring capture cap-db',
        },
        {
          at: at(20),
          machineRef: DB,
          level: 'info',
          message: 'Probe tcp:5432 passed',
        },
        {
          at: at(21),
          machineRef: WEB,
          level: 'info',
          message: 'Restoring capture cap-web',
        },
      ],
      ...overrides,
    };
  }
  if (stage === 'succeeded') {
    return {
      ...base,
      status: 'succeeded',
      startedAt: at(1),
      finishedAt: at(46),
      rtoSeconds: 252,
      machines: [
        dbReady,
        {
          machineRef: WEB,
          wave: 1,
          phase: 'ready',
          captureId: 'cap-web',
          restoreStartedAt: at(21),
          restoredAt: at(30),
          startedAt: at(31),
          readyAt: at(45),
          finishedAt: at(45),
        },
      ],
      steps: [
        ...base.steps,
        {
          at: at(45),
          machineRef: WEB,
          level: 'info',
          message: 'Probe http:80/healthz passed',
        },
        { at: at(46), level: 'info', message: 'Test lab torn down' },
      ],
      ...overrides,
    };
  }
  return {
    ...base,
    status: 'failed',
    startedAt: at(1),
    finishedAt: at(90),
    // As the backend words it: the machine's own message says why, the run's names it too.
    error: {
      machineRef: WEB,
      probe: 'http:80/healthz',
      message: `${WEB} failed: no answer within 60s`,
    },
    machines: [
      dbReady,
      {
        machineRef: WEB,
        wave: 1,
        phase: 'failed',
        captureId: 'cap-web',
        restoreStartedAt: at(21),
        restoredAt: at(28),
        startedAt: at(29),
        finishedAt: at(89),
        probe: 'http:80/healthz',
        message: 'no answer within 60s',
        logTail: 'nginx: [emerg] host not found in upstream "db:5432"',
      },
    ],
    steps: [
      ...base.steps,
      {
        at: at(89),
        machineRef: WEB,
        level: 'error',
        message: `${WEB} failed: no answer within 60s`,
      },
      // The run fails in the same words.
      {
        at: at(89),
        level: 'error',
        message: `${WEB} failed: no answer within 60s`,
      },
    ],
    ...overrides,
  };
}

/** A RecoveryApi whose every method is a spy; tests override what they need. */
export function fakeRecoveryApi(overrides: Partial<RecoveryApi> = {}): {
  [K in keyof RecoveryApi]: RecoveryApi[K] & Mock<RecoveryApi[K]>;
} {
  const api: RecoveryApi = {
    getReadiness: async () => makeReadiness(),
    listReadiness: async () => [makeReadiness()],
    getBootPlan: async () => ({ ...plan, problems: [] }),
    // As the backend answers: one capture of the machine asked for, one of each in the plan without.
    captureNow: async (_entityRef, machineRef) => {
      const latest = makeReadiness().captures.map(c => c.latest!);
      return machineRef
        ? [{ ...latest[0], id: `cap-${machineRef}`, machineRef }]
        : latest;
    },
    // As the backend answers: the kept captures of the machine asked for, newest first.
    listCaptures: async machineRef =>
      makeReadiness().captures.flatMap(c =>
        c.machineRef === machineRef && c.latest ? [c.latest] : [],
      ),
    startRun: async () => makeRun('pending'),
    getRun: async () => makeRun('succeeded'),
    listRuns: async () => [],
    // The runs listRuns answers, as one page and the last: tests that page override it.
    listRunsPage: async query => ({
      items: await spied.listRuns(query),
      pageInfo: {},
    }),
    releaseFailover: async () => makeRun('succeeded', { mode: 'failover' }),
    cancelRun: async () => makeRun('running'),
    ...overrides,
  };
  const spied: any = {};
  for (const [k, fn] of Object.entries(api)) spied[k] = vi.fn(fn as any);
  return spied;
}

/**
 * The error RecoveryClient throws for a 409 Conflict carrying the backend's `message`: by
 * default a busy hypervisor host, with the run it is busy with where `fields` name one.
 */
export function conflictError(
  message: string,
  fields: {
    name?: string;
    runId?: string;
    entityRef?: string;
    missing?: string[];
  } = {},
): Promise<ResponseError> {
  return ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: { name: HOST_BUSY_ERROR_NAME, ...fields, message },
        response: { statusCode: 409 },
      }),
      {
        status: 409,
        statusText: 'Conflict',
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );
}
