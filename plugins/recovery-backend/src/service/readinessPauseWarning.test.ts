import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type {
  Capture,
  ReadinessSummary,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { NotificationSendOptions } from '@backstage/plugin-notifications-node';
import { ReadinessNoticeStore } from '../database/ReadinessNoticeStore';
import { migrate } from '../database/migrations';
import { assessReadiness, type ReadinessInput } from './readiness';
import { ReadinessNotifier } from './ReadinessNotifier';

const WEB = 'component:default/web';
const DATA = 'resource:default/data-01';
const WEB_01 = 'resource:default/web-01';

/** As the docker module words it (capturePauseWarning): the pause, the limit, why, what follows. */
const warning = (pause: string) =>
  `pause ${pause} of the 5m limit (recovery.docker.maxCapturePause): the volumes (9.1 GiB) are copied while it is paused, growing it ~1 s per 48 MiB; past ~14 GiB of volumes no capture of it fits, and the next capture may be refused`;

const capture = (
  machineRef: string,
  more: Partial<Capture> = {},
): ReadinessInput['captures'][number] => ({
  machineRef,
  ageSeconds: 60,
  latest: {
    id: `cap-${machineRef.split('/')[1]}`,
    machineRef,
    engine: 'primary',
    container: machineRef.split('/')[1],
    imageId: 'sha256:1',
    sizeBytes: 1,
    checksum: 'sha256:2',
    createdAt: '2026-12-06T00:00:00.000Z',
    durationMs: 200_000,
    pausedMs: 190_000,
    adaptations: [],
    ...more,
  },
});

const run = (
  status: RecoveryRun['status'],
  id = 'run-1',
  message?: string,
): RecoveryRun =>
  ({
    id,
    entityRef: WEB,
    mode: 'test',
    status,
    createdAt: '2026-12-05T23:00:00.000Z',
    finishedAt: '2026-12-05T23:05:00.000Z',
    rtoSeconds: 120,
    ...(message && { error: { machineRef: WEB_01, message } }),
  }) as RecoveryRun;

const base: ReadinessInput = {
  entityRef: WEB,
  ownMachines: [WEB_01],
  problems: [],
  objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
  plan: {
    entityRef: WEB,
    waves: [[DATA], [WEB_01]],
    machines: [
      { machineRef: DATA, wave: 0, services: [], waitsFor: [], probes: [] },
      {
        machineRef: WEB_01,
        wave: 1,
        services: [],
        waitsFor: [DATA],
        probes: [],
      },
    ],
  },
  captures: [capture(DATA), capture(WEB_01)],
  locators: new Map([
    [DATA, { engine: 'primary', container: 'data-01' }],
    [WEB_01, { engine: 'primary', container: 'web-01' }],
  ]),
  lastRun: run('succeeded'),
  lastRunAgeSeconds: 3600,
  maxTestAgeSeconds: 7 * 86_400,
};

const nearLimit = (pause: string) =>
  capture(WEB_01, { pauseWarning: warning(pause) });

describe('readiness of a machine whose latest capture paused production near the pause limit', () => {
  it('is at risk, naming the machine, its capture, the pause and the limit', () => {
    const r = assessReadiness({
      ...base,
      captures: [capture(DATA), nearLimit('3m 10s')],
    });
    expect(r.status).toBe('at-risk');
    expect(r.reasons).toEqual([
      `Latest capture of ${WEB_01} (capture cap-web-01 of 2026-12-06T00:00:00.000Z) paused production near the pause limit: ${warning('3m 10s')}`,
    ]);
    expect(r.reasons[0]).toMatch(/pause 3m 10s of the 5m limit/);
  });

  it('is ready again once the latest capture paused under half the limit: an older warning is no risk', () => {
    // The capture that warned is older; the latest (no warning) is what the next one will resemble.
    expect(
      assessReadiness({
        ...base,
        captures: [capture(DATA), capture(WEB_01, { pausedMs: 40_000 })],
      }),
    ).toMatchObject({ status: 'ready', reasons: [] });
  });

  it('is a risk, never a failure: a blocking reason comes first, and the pause after the capture age of its machine', () => {
    const r = assessReadiness({
      ...base,
      captures: [capture(DATA), { ...nearLimit('4m'), ageSeconds: 7200 }],
      lastRun: run('failed', 'run-2', 'probe tcp:80 on web-01 timed out'),
    });
    expect(r.status).toBe('not-recoverable');
    expect(r.reasons).toEqual([
      'Last test recovery failed: probe tcp:80 on web-01 timed out',
      `Last capture of ${WEB_01} is 2 h old, over the RPO of 60 min`,
      `Latest capture of ${WEB_01} (capture cap-web-01 of 2026-12-06T00:00:00.000Z) paused production near the pause limit: ${warning('4m')}`,
    ]);
    // The reason about the run keeps its index; the pause is about no run.
    expect(r.reasonRuns).toEqual([
      { reason: 0, run: { id: 'run-2', entityRef: WEB } },
    ]);
  });

  it('says nothing of the pause of a machine replaced since, or one no capture source serves: no next capture of it is coming', () => {
    const replaced = assessReadiness({
      ...base,
      captures: [capture(DATA), nearLimit('3m 10s')],
      locators: new Map([
        [DATA, { engine: 'primary', container: 'data-01' }],
        [WEB_01, { engine: 'primary', container: 'web-02' }],
      ]),
    });
    expect(replaced.reasons).toEqual([
      `Last capture of ${WEB_01} is of container web-01 on engine primary, but the catalog now names web-02 on primary: it has not been captured since, so a recovery would restore that earlier container`,
    ]);
    const uncapturable = {
      entityRef: WEB_01,
      annotation: 'recovery.backstage-recovery.io/engine',
      message: `${WEB_01}: engine "gone" is no configured primary engine`,
    };
    expect(
      assessReadiness({
        ...base,
        captures: [capture(DATA), nearLimit('3m 10s')],
        captureProblems: [uncapturable],
      }).reasons,
    ).toEqual([uncapturable.message]);
  });
});

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

describe('readiness notices of a capture paused near the limit', () => {
  /**
   * A notifier over a real notice store, readiness assessed from `input` as it changes, and the
   * notifications sent kept.
   */
  async function sweeping() {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const state = { input: base, sent: [] as NotificationSendOptions[] };
    const readinessOf = async (refs: string[]) =>
      refs.map((): ReadinessSummary => {
        const {
          plan: _,
          lastRun,
          captures,
          ...r
        } = assessReadiness(state.input);
        return {
          ...r,
          captures: captures.map(c => ({
            ...c,
            latest: c.latest && {
              id: c.latest.id,
              createdAt: c.latest.createdAt,
            },
          })),
          lastRun: lastRun && {
            ...('id' in lastRun && { id: lastRun.id, entityRef: WEB }),
            mode: lastRun.mode,
            status: lastRun.status,
            createdAt: lastRun.createdAt,
            finishedAt: lastRun.finishedAt,
          },
        };
      });
    const notices = new ReadinessNoticeStore(knex);
    const notifier = new ReadinessNotifier(
      notices,
      { readinessOf },
      {
        recoverableEntities: async () => [WEB],
        ownersOf: async refs =>
          new Map(refs.map(ref => [ref, ['group:default/team-a']])),
      },
      { getEntitiesByRefs: async () => ({ items: [] }) },
      {
        send: async (options: NotificationSendOptions) => {
          state.sent.push(options);
        },
      },
      mockServices.auth(),
      mockServices.logger.mock(),
    );
    return { notifier, notices, state };
  }

  it('records the risk untold, once per change of status, not per capture; a notice that it is recoverable again names it', async () => {
    const { notifier, notices, state } = await sweeping();
    expect(await notifier.sweep()).toMatchObject({ sent: 0 });
    // Captures near the limit, one after another: at risk from the first, and nobody told.
    state.input = { ...base, captures: [capture(DATA), nearLimit('3m 10s')] };
    expect(await notifier.sweep()).toMatchObject({ sent: 0 });
    const atRisk = (await notices.all()).get(WEB)!;
    expect(atRisk.status).toBe('at-risk');
    state.input = { ...base, captures: [capture(DATA), nearLimit('3m 40s')] };
    expect(await notifier.sweep()).toMatchObject({ sent: 0 });
    expect((await notices.all()).get(WEB)).toEqual(atRisk);
    // A failed test recovery is a loss, told once; the pause does not make it another.
    state.input = {
      ...state.input,
      lastRun: run('failed', 'run-2', 'probe tcp:80 on web-01 timed out'),
    };
    expect(await notifier.sweep()).toMatchObject({ sent: 1 });
    expect(await notifier.sweep()).toMatchObject({ sent: 0 });
    // Recovered again, still near the limit: recoverable again, at risk, and why (and the alarm
    // resolved in place).
    state.input = { ...state.input, lastRun: run('succeeded', 'run-3') };
    expect(await notifier.sweep()).toMatchObject({ sent: 2 });
    const regained = state.sent[1].payload;
    expect(regained.title).toBe('web is recoverable again (at risk)');
    expect(regained.description).toContain(
      `now at risk: Latest capture of ${WEB_01} (capture cap-web-01 of 2026-12-06T00:00:00.000Z) paused production near the pause limit: pause 3m 40s of the 5m limit`,
    );
    // Captured near the limit again: still at risk, nothing more told.
    state.input = {
      ...state.input,
      captures: [capture(DATA), nearLimit('3m 50s')],
    };
    expect(await notifier.sweep()).toMatchObject({ sent: 0 });
    expect(state.sent).toHaveLength(3);
  });
});
