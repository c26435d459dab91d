import { MiddlewareFactory } from '@backstage/backend-defaults/rootHttpRouter';
import type {
  BackstageCredentials,
  LoggerService,
} from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { ConflictError, ServiceUnavailableError } from '@backstage/errors';
import type {
  HypervisorHost,
  LabHandle,
  LabNetwork,
  LabResources,
  MachineHandle,
  RecoveryGraph,
  RestorableCapture,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { engineError } from '@backstage-recovery/plugin-recovery-node';
import type {
  ProbeSpec,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  failedMachine,
  formatMeasured,
} from '@backstage-recovery/plugin-recovery-common';
import express from 'express';
import request from 'supertest';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { ReadinessHistoryStore } from '../database/ReadinessHistoryStore';
import { RunStore } from '../database/RunStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import type { Inference } from '../plan/inference';
import { InferenceSource, PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import { PROBE_PROGRESS_LINES } from './boot';
import { HypervisorHostBusyError, RunConflictError } from './errors';
import { RunService, RunServiceOptions } from './RunService';
import { FakeHost } from '../testing/FakeHost';
import { storedCapture } from '../testing/entities';
import { recordingLogger } from '../testing/logger';

const svc = (
  ref: string,
  machine: string,
  dependsOn: string[] = [],
): ServiceNode => ({
  ref,
  machines: [machine],
  dependsOn,
  probes: [{ kind: 'tcp', port: 1 }],
});
const demoGraph: RecoveryGraph = {
  rootRef: 'component:default/web',
  roots: ['component:default/web'],
  services: new Map(
    [
      svc('component:default/dns', 'resource:default/infra-01'),
      svc('component:default/database', 'resource:default/data-01', [
        'component:default/dns',
      ]),
      svc('component:default/web', 'resource:default/web-01', [
        'component:default/database',
      ]),
    ].map(s => [s.ref, s]),
  ),
  machines: new Map(
    ['infra-01', 'data-01', 'web-01'].map(n => [
      `resource:default/${n}`,
      {
        ref: `resource:default/${n}`,
        locator: {
          machineRef: `resource:default/${n}`,
          engine: 'primary',
          container: n,
        },
      },
    ]),
  ),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};
/** An entity users may not see in the catalog; services (the plugin itself) see every one. */
const HIDDEN = 'component:default/hidden';
const visibleTo = async (refs: string[], credentials: BackstageCredentials) =>
  (credentials.principal as { type: string }).type === 'user'
    ? refs.filter(ref => ref !== HIDDEN)
    : refs;

const needs = {
  'resource:default/data-01': ['resource:default/infra-01'],
  'resource:default/web-01': ['resource:default/data-01'],
};

const options: RunServiceOptions = {
  machineReadyTimeoutMs: 300,
  probeIntervalMs: 20,
  heartbeatIntervalMs: 50,
  staleAfterMs: 1_000,
  stepTimeoutMs: 10 * 60_000,
  // Unit tests of everything but the hold look at once; its own test sets one.
  minReadyMs: 0,
  allowTestHooks: true,
};

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
// Each test gets a database of its own, and PostgreSQL takes up to a second or more to drop each
// on a loaded machine: more than the 60 s of TestDatabases' own afterAll. This one, registered
// after it, runs first (after-hooks run in reverse) and leaves that one nothing to do.
afterAll(
  () => (databases as unknown as { shutdown(): Promise<void> }).shutdown(),
  5 * 60_000,
);

/** For state the runs reach in the background: vi.waitFor's default 1 s is short on a loaded machine. */
const eventually = { timeout: 10_000, interval: 20 };

describe.each(databases.eachSupportedId())('RunService on %s', databaseId => {
  let captureStore: CaptureStore;
  let runStore: RunStore;
  let runHistory: ReadinessHistoryStore;

  beforeEach(async () => {
    const knex = await databases.init(databaseId);
    await migrate(knex);
    captureStore = new CaptureStore(knex);
    runStore = new RunStore(knex);
    runHistory = new ReadinessHistoryStore(knex);
    for (const n of ['infra-01', 'data-01', 'web-01'])
      await captureStore.insertCapture(storedCapture(n));
  });

  /** A test recovery of web started on `runs` and driven to its end, as the store then has it. */
  async function testRunOfWeb(runs: RunService): Promise<RecoveryRun> {
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    return (await runStore.getRun(started.id))!;
  }

  function service(
    host: HypervisorHost,
    overrides: Partial<RunServiceOptions> = {},
    graph = demoGraph,
    logger: LoggerService = mockServices.logger.mock(),
    inference?: InferenceSource,
  ) {
    const providers = new ProviderRegistry();
    providers.addHypervisorHost(host);
    const web = {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: 'web' },
    };
    const graphs = {
      getEntity: async () => web,
      load: async () => graph,
      visibleTo,
    };
    const plans = new PlanService(
      graphs as unknown as CatalogGraphLoader,
      inference,
    );
    return new RunService(
      runStore,
      captureStore,
      providers,
      plans,
      graphs,
      logger,
      {
        ...options,
        ...overrides,
      },
    );
  }

  it('boots wave by wave, gates each machine on its probes, measures RTO and tears down', async () => {
    // Its network takes 300 ms, which RTO counts: a recovery needs it as much as the machines.
    const host = new (class extends FakeHost {
      async createLab(
        runId: string,
        networks: Parameters<FakeHost['createLab']>[1],
      ) {
        await new Promise(resolve => setTimeout(resolve, 300));
        return super.createLab(runId, networks);
      }
    })(needs);
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    expect(started.status).toBe('pending');
    await runs.waitFor(started.id);

    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('succeeded');
    expect(host.started).toEqual([
      'resource:default/infra-01',
      'resource:default/data-01',
      'resource:default/web-01',
    ]);
    const [infra, data, web] = run.machines;
    expect(run.machines.every(m => m.phase === 'ready')).toBe(true);
    // Each with the capture it restored, and where that was taken: it may be pruned later.
    expect(run.machines.map(m => [m.captureId, m.capturedFrom])).toEqual(
      ['infra-01', 'data-01', 'web-01'].map(n => [
        `cap-${n}`,
        { engine: 'primary', container: n },
      ]),
    );
    expect(Date.parse(infra.readyAt!)).toBeLessThanOrEqual(
      Date.parse(data.startedAt!),
    );
    expect(Date.parse(data.readyAt!)).toBeLessThanOrEqual(
      Date.parse(web.startedAt!),
    );
    expect(run.rtoSeconds).toBeGreaterThanOrEqual(
      (Date.parse(web.readyAt!) - Date.parse(infra.restoreStartedAt!)) / 1000 +
        0.3,
    );
    expect(run.rtoSeconds).toBeLessThanOrEqual(
      (Date.parse(web.readyAt!) - Date.parse(run.startedAt!)) / 1000,
    );
    expect(run.steps.map(s => s.message)).toEqual(
      expect.arrayContaining([
        'Test recovery of component:default/web on fake: 3 waves, 3 machines',
        `All 3 machines verified in ${run.rtoSeconds} s; the final check found them all still running and answering`,
        expect.stringMatching(
          /^Lab torn down: removed 3 containers and 1 network$/,
        ),
      ]),
    );
    expect(await host.listLabResources(run.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it("says where a recovery's time went: the chain of machine waits that took longest, beside the waves booted one after another", async () => {
    // web also waits for a cache on a machine of its own, which boots beside infra-01 but slowly.
    const cache = 'resource:default/cache-01';
    const [capture] = await captureStore.listCaptures(
      'resource:default/infra-01',
      1,
    );
    await captureStore.insertCapture({
      ...capture,
      id: 'cap-cache-01',
      machineRef: cache,
      container: 'cache-01',
      artifact: '/store/cache-01.tar',
      createdAt: new Date().toISOString(),
    });
    const graph: RecoveryGraph = {
      ...demoGraph,
      services: new Map([
        ...demoGraph.services,
        ['component:default/cache', svc('component:default/cache', cache)],
        [
          'component:default/web',
          svc('component:default/web', 'resource:default/web-01', [
            'component:default/database',
            'component:default/cache',
          ]),
        ],
      ]),
      machines: new Map([
        ...demoGraph.machines,
        [
          cache,
          {
            ref: cache,
            locator: {
              machineRef: cache,
              engine: 'primary',
              container: 'cache-01',
            },
          },
        ],
      ]),
    };
    const host = new (class extends FakeHost {
      async restoreMachine(lab: LabHandle, restorable: RestorableCapture) {
        if (restorable.machineRef === cache)
          await new Promise(resolve => setTimeout(resolve, 600));
        return super.restoreMachine(lab, restorable);
      }
    })({
      ...needs,
      'resource:default/web-01': ['resource:default/data-01', cache],
    });
    const run = await testRunOfWeb(service(host, {}, graph));
    expect(run.status).toBe('succeeded');
    expect(run.plan.waves).toEqual([
      [cache, 'resource:default/infra-01'],
      ['resource:default/data-01'],
      ['resource:default/web-01'],
    ]);
    const took = Object.fromEntries(
      run.machines.map(m => [
        m.machineRef,
        (Date.parse(m.readyAt!) - Date.parse(m.restoreStartedAt!)) / 1000,
      ]),
    );
    // To the millisecond, as the run's RTO is written.
    const s = formatMeasured;
    const chain = took[cache] + took['resource:default/web-01'];
    const byWaves =
      Math.max(took[cache], took['resource:default/infra-01']) +
      took['resource:default/data-01'] +
      took['resource:default/web-01'];
    expect(run.steps.map(step => step.message)).toContain(
      `Critical path: ${cache} (${s(took[cache])}) → resource:default/web-01 (${s(took['resource:default/web-01'])}): ${s(chain)}, each machine from its restore to ready, ` +
        `the least its boot order allows; wave after wave (each waiting for its slowest machine) the machines took ${s(byWaves)}`,
    );
    // Not on a failed run: its times say where it stopped, not where a recovery's time goes.
    const failed = await testRunOfWeb(
      service(new FakeHost(needs, ['resource:default/data-01'])),
    );
    expect(failed.status).toBe('failed');
    expect(
      failed.steps.some(step => step.message.startsWith('Critical path')),
    ).toBe(false);
  });

  it("gives each machine's restore the run's captures, by which the host shares the volumes machines share in production", async () => {
    const given = new Map<string, string[]>();
    const host = new (class extends FakeHost {
      async restoreMachine(
        lab: LabHandle,
        restorable: RestorableCapture,
        restore?: { runCaptures?: RestorableCapture[] },
      ) {
        given.set(
          restorable.machineRef,
          (restore?.runCaptures ?? []).map(c => c.machineRef).sort(),
        );
        return super.restoreMachine(lab, restorable);
      }
    })(needs);
    const run = await testRunOfWeb(service(host));
    expect(run.status).toBe('succeeded');
    const machines = [...given.keys()].sort();
    expect(machines.length).toBeGreaterThan(1);
    for (const machineRef of machines)
      expect(given.get(machineRef)).toEqual(machines);
  });

  it('warns in its timeline of each capture it restores that is older than the RPO, and of none within it', async () => {
    // data-01's newest capture is two days old, over web's RPO of a day; the others are fresh.
    const [fresh] = await captureStore.listCaptures('resource:default/data-01');
    await captureStore.pruneCaptures('resource:default/data-01', 0);
    await captureStore.insertCapture({
      ...fresh,
      id: 'cap-data-01-old',
      createdAt: new Date(Date.now() - 2 * 86_400_000).toISOString(),
    });
    const run = await testRunOfWeb(service(new FakeHost(needs)));
    expect(run.status).toBe('succeeded');
    const warnings = run.steps.filter(s => s.level === 'warning');
    expect(warnings).toEqual([
      {
        at: expect.any(String),
        machineRef: 'resource:default/data-01',
        level: 'warning',
        message: expect.stringMatching(
          /^Restores its capture of \S+, 2 d old when the run was admitted, over the RPO of 24 h: a recovery from it would lose what changed since$/,
        ),
      },
      // Beside fresh captures of the others, it is of another moment than theirs (captureSpread.test.ts).
      expect.objectContaining({
        machineRef: undefined,
        message: expect.stringMatching(
          /^Restores captures taken 48 h apart, from resource:default\/data-01's of /,
        ),
      }),
    ]);
  });

  it('warns in its timeline of each capture it restores that holds a machine that was not serving, so its pass is no proof production was well', async () => {
    // web-01 was captured stopped (killed); data-01 running with its health check failing; infra-01 running.
    for (const [n, machineState] of [
      [
        'web-01',
        {
          status: 'exited' as const,
          exitCode: 137,
          since: '2026-12-06T00:59:00Z',
        },
      ],
      [
        'data-01',
        {
          status: 'running' as const,
          health: 'unhealthy' as const,
          failingStreak: 3,
          healthOutput: 'pg_isready: no response',
        },
      ],
      ['infra-01', { status: 'running' as const, health: 'healthy' as const }],
    ] as const) {
      await captureStore.pruneCaptures(`resource:default/${n}`, 0);
      await captureStore.insertCapture({
        ...storedCapture(n),
        id: `cap-${n}-state`,
        machineState,
      });
    }
    const run = await testRunOfWeb(service(new FakeHost(needs)));
    expect(run.status).toBe('succeeded');
    expect(
      run.steps
        .filter(s => s.level === 'warning')
        .map(s => [s.machineRef, s.message]),
    ).toEqual([
      [
        'resource:default/data-01',
        expect.stringMatching(
          /^Restores its capture of \S+, taken while resource:default\/data-01 was running but unhealthy \(3 failing health checks in a row\): the capture holds a machine that was not serving, so this run passing proves that capture boots, not that production was well$/,
        ),
      ],
      [
        'resource:default/web-01',
        expect.stringMatching(
          /^Restores its capture of \S+, taken while resource:default\/web-01 was exited \(code 137, since 2026-12-06T00:59:00Z\): the capture holds a machine that was not serving, so this run passing proves that capture boots, not that production was well$/,
        ),
      ],
    ]);
  });

  it('fails a run before it builds anything where the host lacks the room its captures take, saying how much of each', async () => {
    const host = new FakeHost(needs);
    const asked: Array<{ runId: string; waves: string[][] }> = [];
    const GiB = 1024 ** 3;
    Object.assign(host, {
      room: async (runId: string, waves: RestorableCapture[][]) => {
        asked.push({
          runId,
          waves: waves.map(wave => wave.map(c => c.captureId)),
        });
        return {
          neededBytes: 3 * GiB,
          freeBytes: 2 * GiB,
          where: 'fake:/var/lib/docker',
        };
      },
    });
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    // By wave, in boot order: a wave's captures are restored at once.
    expect(asked).toEqual([
      {
        runId: run.id,
        waves: [['cap-infra-01'], ['cap-data-01'], ['cap-web-01']],
      },
    ]);
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({
      message:
        'fake has 2.0 GiB free in fake:/var/lib/docker, but restoring the 3 captures takes 3.0 GiB: free space there (images and volumes no run uses), or recover onto a larger host',
    });
    expect(host.started).toEqual([]);
    expect(host.labels.size).toBe(0);
    expect(run.machines.map(m => m.phase)).toEqual([
      'skipped',
      'skipped',
      'skipped',
    ]);
  });

  it('fails a run whose host stops answering at the host, not at the machine it was booting', async () => {
    const host = new FakeHost(needs);
    const start = host.startMachine.bind(host);
    host.startMachine = async machine => {
      if (machine.machineRef === 'resource:default/data-01')
        throw new ServiceUnavailableError(
          "Docker engine 'fake' is unreachable (EPIPE)",
        );
      return start(machine);
    };
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({
      message:
        "hypervisor host fake stopped answering while resource:default/data-01 was booting: Docker engine 'fake' is unreachable (EPIPE)",
      // The host's condition, not the plan's: it covers no plan (coversPlan).
      hostUnreachable: true,
    });
    expect(run.machines.map(m => [m.machineRef, m.phase])).toEqual([
      ['resource:default/infra-01', 'ready'],
      ['resource:default/data-01', 'failed'],
      ['resource:default/web-01', 'skipped'],
    ]);
    expect(
      run.steps.filter(s => s.message.includes('stopped answering')),
    ).toHaveLength(1);
  });

  it('fails a run whose host runs out of disk while restoring a machine at the host, not at that machine, and tears its lab down', async () => {
    const host = new FakeHost(needs);
    const restore = host.restoreMachine.bind(host);
    const full =
      "restoring resource:default/data-01 (capture c) in the lab of run r failed: Docker engine 'fake' answered: " +
      'Error processing tar file(exit status 1): write /3f5a/layer.tar: no space left on device';
    host.restoreMachine = async (lab, capture) => {
      if (capture.machineRef === 'resource:default/data-01')
        throw engineError(full, 'fake', 'answered', {
          kind: 'exhausted',
          resource: 'disk',
        });
      return restore(lab, capture);
    };
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('failed');
    // No machine named: readiness blames none, and counts the run for web alone.
    expect(run.error).toEqual({
      message: `hypervisor host fake ran out of disk while restoring resource:default/data-01: ${full}`,
    });
    expect(failedMachine(run)).toBeUndefined();
    expect(run.machines.map(m => [m.machineRef, m.phase])).toEqual([
      ['resource:default/infra-01', 'ready'],
      ['resource:default/data-01', 'failed'],
      ['resource:default/web-01', 'skipped'],
    ]);
    // The host answers: its lab goes as any failed test recovery's.
    expect(host.labels.size).toBe(0);
  });

  it('fails a run before it builds anything where the host has less memory available than its machines held when captured', async () => {
    const GiB = 1024 ** 3;
    const host = Object.assign(new FakeHost(needs), {
      room: async () => ({
        neededBytes: GiB,
        freeBytes: 40 * GiB,
        where: 'fake:/var/lib/docker',
        neededMemoryBytes: 6 * GiB,
        memoryKnownFor: 3,
        availableMemoryBytes: 4 * GiB,
      }),
    });
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({
      message:
        'fake has 4.0 GiB of memory available, but the machines held 6.0 GiB of memory when captured: stop what else runs there, or recover onto a larger host',
    });
    expect(host.started).toEqual([]);
    expect(host.labels.size).toBe(0);
  });

  it('says the room a run takes and has in its timeline, and goes on where the host cannot tell or the look fails', async () => {
    const GiB = 1024 ** 3;
    const rooms = [
      async () => ({
        neededBytes: 1.5 * GiB,
        freeBytes: 40 * GiB,
        where: 'fake:/var/lib/docker',
      }),
      async () => ({
        neededBytes: 1.5 * GiB,
        where: 'fake:/var/lib/docker',
        unknown: 'df in /var/lib/docker said: permission denied',
      }),
      async () => ({
        neededBytes: 1.5 * GiB,
        freeBytes: 40 * GiB,
        where: 'fake:/var/lib/docker',
        neededMemoryBytes: 0.5 * GiB,
        memoryKnownFor: 3,
        availableMemoryBytes: 12 * GiB,
      }),
      // Captures from before memory was recorded, beside newer ones; a host that cannot say.
      async () => ({
        neededBytes: 1.5 * GiB,
        freeBytes: 40 * GiB,
        where: 'fake:/var/lib/docker',
        neededMemoryBytes: 0.25 * GiB,
        memoryKnownFor: 2,
      }),
      async () => {
        throw new Error('engine did not answer');
      },
    ];
    const said: string[] = [];
    for (const room of rooms) {
      const host = Object.assign(new FakeHost(needs), { room });
      const runs = service(host);
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      const run = (await runStore.getRun(started.id))!;
      expect(run.status).toBe('succeeded');
      const step = run.steps.find(s => /room/i.test(s.message))!;
      said.push(`${step.level}: ${step.message}`);
    }
    expect(said).toEqual([
      'info: Room on fake: restoring the 3 captures takes 1.5 GiB, 40.0 GiB free in fake:/var/lib/docker',
      'warning: Room on fake: restoring the 3 captures takes 1.5 GiB; free space unknown (df in /var/lib/docker said: permission denied)',
      'info: Room on fake: restoring the 3 captures takes 1.5 GiB, 40.0 GiB free in fake:/var/lib/docker; the machines held 512.0 MiB of memory when captured, 12.0 GiB available',
      'info: Room on fake: restoring the 3 captures takes 1.5 GiB, 40.0 GiB free in fake:/var/lib/docker; 2 of the 3 machines (those whose captures say) held 256.0 MiB of memory when captured',
      'warning: Room on fake unknown, the run goes on without that check: engine did not answer',
    ]);
  });

  it('returns the run as admitted, however fast driving it moves it on', async () => {
    // Every read but the first is slow: the driver's own read must not let it overtake start's.
    const getRun = runStore.getRun.bind(runStore);
    let reads = 0;
    runStore.getRun = async runId => {
      if (reads++ > 0) await new Promise(resolve => setTimeout(resolve, 100));
      return getRun(runId);
    };
    const runs = service(new FakeHost(needs));
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    expect(started).toMatchObject({ status: 'pending', startedAt: undefined });
    await runs.waitFor(started.id);
    expect((await getRun(started.id))!.status).toBe('succeeded');
  });

  it("names the service whose probe failed on a machine that runs two, and by its port alone the machine's own", async () => {
    // infra-01 runs dns and orders; orders' tcp:8082 never answers, nor infra-01's own tcp:5432.
    const twoServices = (machineProbe: boolean): RecoveryGraph => ({
      ...demoGraph,
      roots: ['component:default/web', 'component:default/orders'],
      services: new Map([
        ...demoGraph.services,
        [
          'component:default/orders',
          {
            ...svc('component:default/orders', 'resource:default/infra-01'),
            probes: [{ kind: 'tcp', port: 8082 }],
          },
        ],
      ]),
      machines: new Map(
        [...demoGraph.machines].map(([ref, machine]) => [
          ref,
          ref === 'resource:default/infra-01' && machineProbe
            ? { ...machine, probes: [{ kind: 'tcp', port: 5432 }] }
            : machine,
        ]),
      ),
    });
    class RefusingHost extends FakeHost {
      async probe(lab: LabHandle, machine: MachineHandle, probe: ProbeSpec) {
        return probe.port === 1
          ? super.probe(lab, machine, probe)
          : {
              ok: false,
              message: `connection to ${machine.machineRef}:${probe.port} refused`,
            };
      }
    }
    const failure = async (machineProbe: boolean) => {
      const runs = service(
        new RefusingHost(needs),
        {},
        twoServices(machineProbe),
      );
      return (await testRunOfWeb(runs)).error;
    };
    expect(await failure(false)).toEqual({
      machineRef: 'resource:default/infra-01',
      probe: 'tcp:8082',
      message: expect.stringContaining(
        'resource:default/infra-01 failed: probe tcp:8082 of component:default/orders did not pass within 0.3 s: connection to resource:default/infra-01:8082 refused',
      ),
    });
    expect(await failure(true)).toEqual({
      machineRef: 'resource:default/infra-01',
      probe: 'tcp:5432',
      message: expect.stringContaining(
        'resource:default/infra-01 failed: probe tcp:5432 did not pass within 0.3 s: connection to resource:default/infra-01:5432 refused',
      ),
    });
  });

  it('fails a reversed boot order on the probe that never passes, naming machine and probe', async () => {
    const host = new FakeHost(needs);
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
      options: { reverseBootOrder: true },
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('failed');
    expect(host.started).toEqual(['resource:default/web-01']);
    expect(run.error).toEqual({
      machineRef: 'resource:default/web-01',
      probe: 'tcp:1',
      message: expect.stringContaining(
        'resource:default/web-01 failed: probe tcp:1 of component:default/web did not pass within 0.3 s: connection to resource:default/web-01:1 refused',
      ),
    });
    expect(
      run.machines.find(m => m.machineRef === 'resource:default/web-01'),
    ).toMatchObject({
      phase: 'failed',
      probe: 'tcp:1',
      logTail: 'console of resource:default/web-01',
    });
    // The machines of the later waves never started: skipped, none left waiting.
    expect(
      run.machines
        .filter(m => m.machineRef !== 'resource:default/web-01')
        .map(m => [m.phase, m.finishedAt]),
    ).toEqual([
      ['skipped', undefined],
      ['skipped', undefined],
    ]);
    expect(await host.listLabResources(run.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('skips every machine when the lab cannot be created', async () => {
    const host = new FakeHost(needs);
    host.createLab = async () => {
      throw new Error('engine unreachable');
    };
    const logger = recordingLogger();
    const runs = service(host, {}, demoGraph, logger);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.error).toEqual({ message: 'engine unreachable' });
    expect(run.machines.map(m => m.phase)).toEqual([
      'skipped',
      'skipped',
      'skipped',
    ]);
    // The run keeps the message; the log, where it came from, on the run's child logger.
    expect(logger.lines).toContainEqual({
      level: 'warn',
      fields: { runId: started.id },
      message: 'Run failed',
      error: expect.objectContaining({
        message: 'engine unreachable',
        stack: expect.stringMatching(/^Error: engine unreachable\n\s+at /),
      }),
    });
  });

  it("logs where a machine's failure came from on the run's child logger", async () => {
    const host = new FakeHost(needs);
    host.restoreMachine = async () => {
      throw new Error('image layer missing');
    };
    const logger = recordingLogger();
    const run = await testRunOfWeb(service(host, {}, demoGraph, logger));
    expect(run.status).toBe('failed');
    const failed = run.machines.find(m => m.phase === 'failed')!;
    expect(logger.lines).toContainEqual({
      level: 'warn',
      fields: { runId: run.id, machineRef: failed.machineRef },
      message: 'Machine failed',
      error: expect.objectContaining({
        message: 'image layer missing',
        stack: expect.stringMatching(/^Error: image layer missing\n\s+at /),
      }),
    });
  });

  it('tells the host, with each restore, the machines of earlier waves', async () => {
    const host = new FakeHost(needs);
    const restore = host.restoreMachine.bind(host);
    const told: Record<string, string[]> = {};
    const restoreAndTell: HypervisorHost['restoreMachine'] = async (
      lab,
      capture,
      restoring,
    ) => {
      told[capture.machineRef] = (restoring?.booted ?? []).map(
        m => m.machineRef,
      );
      return restore(lab, capture);
    };
    host.restoreMachine = restoreAndTell;
    expect((await testRunOfWeb(service(host))).status).toBe('succeeded');
    expect(told).toEqual({
      'resource:default/infra-01': [],
      'resource:default/data-01': ['resource:default/infra-01'],
      'resource:default/web-01': [
        'resource:default/infra-01',
        'resource:default/data-01',
      ],
    });
  });

  it("tells the host, with each network of the lab, the engine its machine was captured from: only there is a network of that name production's own", async () => {
    await captureStore.insertCapture({
      ...storedCapture('web-01'),
      id: 'cap-web-01-elsewhere',
      engine: 'site-b',
      createdAt: new Date(Date.now() + 1_000).toISOString(),
    });
    const host = new FakeHost(needs);
    const createLab = host.createLab.bind(host);
    let told: LabNetwork[] = [];
    host.createLab = async (runId, networks) => {
      told = networks;
      return createLab(runId, networks);
    };
    expect((await testRunOfWeb(service(host))).status).toBe('succeeded');
    expect(told.map(n => `${n.name} ${n.engine}`).sort()).toEqual([
      'prod primary',
      'prod primary',
      'prod site-b',
    ]);
  });

  it("says with a machine's failure that the lab could not use production's addresses", async () => {
    // Production's subnet is in use on the recovery engine: the host gives infra-01 another address.
    await captureStore.insertCapture({
      ...storedCapture('infra-01'),
      id: 'cap-infra-01-addressed',
      runtime: {
        hostname: 'infra-01',
        networks: [
          {
            name: 'prod',
            subnet: '172.29.10.0/24',
            gateway: '172.29.10.1',
            ipv4Address: '172.29.10.11',
            aliases: [],
          },
        ],
        env: [],
        exposedPorts: [],
        labels: {},
      },
      adaptations: ['bind mount of host path /srv/infra at /data dropped'],
      durationMs: 1,
      createdAt: new Date(Date.now() + 1_000).toISOString(),
    });
    const adapted =
      'network prod: production subnet 172.29.10.0/24 is in use on engine fake; the lab uses 10.202.12.0/24 and the machine gets a dynamic address instead of 172.29.10.11';
    const host = new FakeHost(needs);
    const restore = host.restoreMachine.bind(host);
    host.restoreMachine = async (lab, capture) => {
      const restored = await restore(lab, capture);
      return capture.machineRef === 'resource:default/infra-01'
        ? { ...restored, addressesLost: [adapted] }
        : restored;
    };
    const unhealthy = new Set<string>();
    host.inspectMachine = async machine => ({
      running: true,
      health: unhealthy.has(machine.machineRef) ? 'unhealthy' : 'healthy',
    });
    const runs = service(host);

    // The machine that lost its address fails: its own adaptation is the explanation.
    unhealthy.add('resource:default/infra-01');
    const first = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(first.id);
    const run = (await runStore.getRun(first.id))!;
    const reason = `its health check reports unhealthy (the lab could not use production's addresses: ${adapted})`;
    expect(run.error).toEqual({
      machineRef: 'resource:default/infra-01',
      message: `resource:default/infra-01 failed: ${reason}`,
    });
    expect(run.machines[0]).toMatchObject({ phase: 'failed', message: reason });
    // Losing an address is a warning: it did not fail the machine by itself.
    expect(
      run.steps
        .filter(s => s.machineRef === 'resource:default/infra-01')
        .map(s => [s.level, s.message]),
    ).toEqual([
      [
        'info',
        expect.stringMatching(/^Restoring capture cap-infra-01-addressed of /),
      ],
      // What the capture left out, too: the restored machine lacks it.
      [
        'info',
        'Adapted at capture: bind mount of host path /srv/infra at /data dropped',
      ],
      ['info', 'Adapted: dropped host port binding 8080->80/tcp'],
      ['warning', `Adapted, without production's addresses: ${adapted}`],
      ['error', `resource:default/infra-01 failed: ${reason}`],
    ]);

    // A machine that kept its own addresses fails: the adaptation of the one it reaches is named.
    unhealthy.clear();
    unhealthy.add('resource:default/data-01');
    const second = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(second.id);
    expect((await runStore.getRun(second.id))!.error?.message).toBe(
      `resource:default/data-01 failed: its health check reports unhealthy (the lab could not use production's addresses: resource:default/infra-01: ${adapted})`,
    );

    // One that does not wait for infra-01 (web-01 waits for data-01 alone): nothing of infra-01's.
    unhealthy.clear();
    unhealthy.add('resource:default/web-01');
    const third = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(third.id);
    expect((await runStore.getRun(third.id))!.error?.message).toBe(
      'resource:default/web-01 failed: its health check reports unhealthy',
    );
  });

  it("keeps what a machine's last failed health check said with its console tail, out of its failure and the timeline", async () => {
    const host = new FakeHost(needs);
    const said =
      'FATAL: password authentication failed for user "billing_admin"';
    host.inspectMachine = async machine =>
      machine.machineRef === 'resource:default/data-01'
        ? { running: true, health: 'unhealthy', healthOutput: said }
        : { running: true, health: 'healthy' };
    const run = await testRunOfWeb(service(host));
    const reason =
      'its health check reports unhealthy (what its last check said is kept with its console tail)';
    expect(run.error?.message).toBe(
      `resource:default/data-01 failed: ${reason}`,
    );
    const data = run.machines.find(
      m => m.machineRef === 'resource:default/data-01',
    );
    expect(data).toMatchObject({ phase: 'failed', message: reason });
    // Read only with recovery.run.logs.read on the machine (consolesSeenBy), as its console is.
    expect(data?.logTail).toBe(
      `console of resource:default/data-01\n[last failed health check] ${said}`,
    );
    expect(
      JSON.stringify({
        ...run,
        machines: run.machines.map(({ logTail, ...m }) => m),
      }),
    ).not.toContain('billing_admin');
  });

  it.each([
    ['keeps answering "starting"', 'answers', 'with its output'],
    ['keeps answering "starting"', 'answers', 'without output'],
    ['is seen starting, then its inspect hangs', 'hangs', 'with its output'],
    ['is seen starting, then its inspect hangs', 'hangs', 'without output'],
  ] as const)(
    'fails a machine whose health check %s past its ready timeout (%s, %s), and boots none of its dependents',
    async (_how, inspect, output) => {
      const withOutput = output === 'with its output';
      const host = new FakeHost(needs);
      const inspectMachine = host.inspectMachine.bind(host);
      // Each check says something new: the failure keeps the last one the run saw.
      let looks = 0;
      let lastSaid: string | undefined;
      host.inspectMachine = async machine => {
        if (machine.machineRef !== 'resource:default/data-01')
          return inspectMachine(machine);
        looks++;
        if (inspect === 'hangs' && looks > 1)
          return new Promise<never>(() => {});
        lastSaid = withOutput
          ? `pg_isready: /var/run/postgresql:5432 - rejecting connections (check ${looks})`
          : undefined;
        return { running: true, health: 'starting', healthOutput: lastSaid };
      };
      const run = await testRunOfWeb(
        service(host, { machineReadyTimeoutMs: 1_000 }),
      );
      const reason = `health check still starting after 1 s${withOutput ? ' (what its last check said is kept with its console tail)' : ''}`;
      expect(run.status).toBe('failed');
      expect(run.error).toEqual({
        machineRef: 'resource:default/data-01',
        message: `resource:default/data-01 failed: ${reason}`,
      });
      // Looked at more than once: started, it had the whole timeout to pass.
      expect(looks).toBeGreaterThan(1);
      const data = run.machines.find(
        m => m.machineRef === 'resource:default/data-01',
      );
      expect(data).toMatchObject({ phase: 'failed', message: reason });
      expect(data?.logTail).toBe(
        withOutput
          ? `console of resource:default/data-01\n[last failed health check] ${lastSaid}`
          : 'console of resource:default/data-01',
      );
      // web-01 needs data-01: skipped, never started.
      expect(run.machines.map(m => [m.machineRef, m.phase])).toEqual([
        ['resource:default/infra-01', 'ready'],
        ['resource:default/data-01', 'failed'],
        ['resource:default/web-01', 'skipped'],
      ]);
      expect(host.started).toEqual([
        'resource:default/infra-01',
        'resource:default/data-01',
      ]);
    },
  );

  it('fails fast when a machine stops, with its exit code', async () => {
    const host = new FakeHost(needs, ['resource:default/infra-01']);
    const runs = service(host, { machineReadyTimeoutMs: 60_000 });
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('failed');
    expect(run.error?.message).toBe(
      'resource:default/infra-01 failed: stopped with exit code 3',
    );
  });

  it.each([
    ['stops', 'stopped with exit code 7 after it was ready', undefined],
    [
      'stops answering its probe',
      'probe tcp:1 of component:default/database stopped passing after it was ready: connection to resource:default/data-01:1 refused',
      'tcp:1',
    ],
  ])(
    'fails the run when a machine of an earlier wave %s before the run ends, with its console tail',
    async (how, reason, probe) => {
      const host = new FakeHost(needs);
      const start = host.startMachine.bind(host);
      host.startMachine = async machine => {
        await start(machine);
        // data-01 passed its probe; it falls over while web-01, the last wave, boots.
        if (machine.machineRef === 'resource:default/web-01') {
          const data = `${machine.runId}/resource:default/data-01`;
          if (how === 'stops') host.exit(data, 7);
          else host.stopAnswering(data);
        }
      };
      const runs = service(host);
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      const run = (await runStore.getRun(started.id))!;
      expect(run.status).toBe('failed');
      expect(run.error).toEqual({
        machineRef: 'resource:default/data-01',
        probe,
        message: `resource:default/data-01 failed: ${reason}`,
      });
      expect(run.rtoSeconds).toBeUndefined();
      const [infra, data, web] = run.machines;
      expect(data).toMatchObject({
        phase: 'failed',
        message: reason,
        logTail: 'console of resource:default/data-01',
      });
      expect(data.readyAt).toBeDefined();
      expect([infra.phase, web.phase]).toEqual(['ready', 'ready']);
      expect(
        run.steps
          .filter(s => s.level === 'error')
          .map(s => [s.machineRef, s.message]),
      ).toContainEqual([
        'resource:default/data-01',
        `resource:default/data-01 failed: ${reason}`,
      ]);
      expect(await host.listLabResources(run.id)).toEqual({
        machines: [],
        networks: [],
      });
    },
  );

  it('holds the final check until the last machine has been ready for minReadyMs: one of the last wave that exits moments after it got ready fails the run', async () => {
    const host = new FakeHost(needs);
    const verify = host.probe.bind(host);
    let exitsAfterMs = 100;
    // On the real clock: when web-01 passed its probe, when the final check looked at it.
    let readyAt: number | undefined;
    let checkedAt = 0;
    let exiting: NodeJS.Timeout | undefined;
    host.probe = async (lab, machine, spec) => {
      const result = await verify(lab, machine, spec);
      // web-01 passes its probe, then exits moments on: no probe of its own saw it go.
      if (
        machine.machineRef === 'resource:default/web-01' &&
        result.ok &&
        readyAt === undefined
      ) {
        readyAt = performance.now();
        exiting = setTimeout(() => host.exit(machine.id, 1), exitsAfterMs);
      }
      return result;
    };
    const inspect = host.inspectMachine.bind(host);
    host.inspectMachine = async machine => {
      if (machine.machineRef === 'resource:default/web-01')
        checkedAt = performance.now();
      return inspect(machine);
    };
    // The run's clock stands still (its waits stay real): its hold is the whole 0.4 s, set after
    // the exit's 0.1 s, however long recording web-01 ready took on a loaded machine.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const held = await testRunOfWeb(service(host, { minReadyMs: 400 }));
      expect(held.status).toBe('failed');
      expect(held.error?.message).toBe(
        'resource:default/web-01 failed: stopped with exit code 1 after it was ready',
      );
      expect(held.steps.map(s => s.message)).toContain(
        'Final check in 0.4 s, once every machine has been ready for 0.4 s (recovery.runs.minReadyTime)',
      );
      // The hold lengthens the run only (the measured RTO would still have ended at web-01's ready).
      expect(checkedAt - readyAt!).toBeGreaterThanOrEqual(400);

      // Without the hold the final check looks at once, long before an exit 5 s on: the run passed.
      readyAt = undefined;
      exitsAfterMs = 5_000;
      const unheld = await testRunOfWeb(service(host, { minReadyMs: 0 }));
      expect(unheld.status).toBe('succeeded');
      expect(
        unheld.steps.filter(s => s.message.startsWith('Final check in')),
      ).toEqual([]);
    } finally {
      clearTimeout(exiting);
      vi.useRealTimers();
    }
  });

  it('gives a machine one ready timeout from its start to passing its probes, however slow the start', async () => {
    const host = new FakeHost(needs);
    const startCalled = new Map<string, number>();
    const start = host.startMachine.bind(host);
    host.startMachine = async machine => {
      startCalled.set(machine.machineRef, Date.now());
      vi.setSystemTime(Date.now() + 700); // a start that takes 0.7 s
      await start(machine);
    };
    // infra-01 answers 1.4 s after its start was called: past its 1 s budget, though within
    // a second full budget counted from the end of its 0.7 s start. Each attempt takes 0.1 s.
    const probe = host.probe.bind(host);
    host.probe = async (lab, machine, spec) => {
      const answer =
        Date.now() - startCalled.get(machine.machineRef)! < 1_400
          ? { ok: false, message: 'connection refused' }
          : await probe(lab, machine, spec);
      vi.setSystemTime(Date.now() + 100);
      return answer;
    };
    // The clock moves only as the start and the probe say (sleeps stay real): however loaded the
    // machine running the test, its attempts come at 0.7, 0.8, 0.9 and 1 s, and it fails at 1.1 s.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const runs = service(host, { machineReadyTimeoutMs: 1_000 });
      const run = await testRunOfWeb(runs);
      expect(run.status).toBe('failed');
      expect(run.error).toEqual({
        machineRef: 'resource:default/infra-01',
        probe: 'tcp:1',
        message:
          'resource:default/infra-01 failed: probe tcp:1 of component:default/dns did not pass within 1 s: connection refused',
      });
      expect(
        Date.parse(run.machines[0].finishedAt!) -
          startCalled.get('resource:default/infra-01')!,
      ).toBeLessThan(1_400);
    } finally {
      vi.useRealTimers();
    }
  });

  it('fails a machine whose readiness the store could not record with that cause, leaving it in no phase in progress', async () => {
    const host = new FakeHost(needs);
    const updateRunMachine = runStore.updateRunMachine.bind(runStore);
    let failed = false;
    runStore.updateRunMachine = async (runId, machineRef, patch) => {
      if (!failed && patch.phase === 'ready') {
        failed = true;
        throw new Error('Connection terminated unexpectedly');
      }
      return updateRunMachine(runId, machineRef, patch);
    };
    const runs = service(host);
    const run = await testRunOfWeb(runs);
    expect(run.status).toBe('failed');
    // The store's failure, not a refused move out of a phase the store never held.
    expect(run.error).toEqual({
      machineRef: 'resource:default/infra-01',
      message:
        'resource:default/infra-01 failed: Connection terminated unexpectedly',
    });
    expect(run.machines.map(m => m.phase)).toEqual([
      'failed',
      'skipped',
      'skipped',
    ]);
    expect(await host.listLabResources(run.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('fails a run whose success the store could not record with that cause, instead of leaving it running', async () => {
    const host = new FakeHost(needs);
    const updateRun = runStore.updateRun.bind(runStore);
    let failed = false;
    runStore.updateRun = async (runId, patch) => {
      if (!failed && patch.status === 'succeeded') {
        failed = true;
        throw new Error('Connection terminated unexpectedly');
      }
      return updateRun(runId, patch);
    };
    const logger = recordingLogger();
    const runs = service(host, {}, demoGraph, logger);
    const run = await testRunOfWeb(runs);
    // Left running, the host would stay busy until another replica took the run for orphaned.
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({
      message: 'Connection terminated unexpectedly',
    });
    expect(run.finishedAt).toBeDefined();
    expect(logger.lines.map(l => l.message)).not.toContainEqual(
      expect.stringMatching(/crashed/),
    );
    expect(await host.listLabResources(run.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('takes deadlines longer than a timer holds as deadlines, not as instants', async () => {
    // A month each: beyond 2^31 - 1 ms, which Node's timers cut to 1 ms.
    const month = 30 * 24 * 3600_000;
    const host = new FakeHost(needs);
    const restore = host.restoreMachine.bind(host);
    host.restoreMachine = async (lab, capture) => {
      await new Promise(resolve => setTimeout(resolve, 20));
      return restore(lab, capture);
    };
    const runs = service(host, {
      stepTimeoutMs: month,
      machineReadyTimeoutMs: month,
    });
    const run = await testRunOfWeb(runs);
    expect(run.error).toBeUndefined();
    expect(run.status).toBe('succeeded');
  });

  it('records a machine failed when it failed, while its console tail is still being read', async () => {
    // infra-01 never answers; the engine takes 1 s to give its console.
    const host = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    const logTail = host.logTail.bind(host);
    let tailAsked: number | undefined;
    let shownWhileReading: string | undefined;
    host.logTail = async machine => {
      tailAsked = Date.now();
      await new Promise(resolve => setTimeout(resolve, 1_000));
      shownWhileReading = (await runStore.getRun(machine.runId))!.machines[0]
        .phase;
      return logTail(machine);
    };
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    const [infra] = (await runStore.getRun(started.id))!.machines;
    expect(shownWhileReading).toBe('failed');
    expect(Date.parse(infra.finishedAt!)).toBeLessThanOrEqual(tailAsked!);
    expect(infra).toMatchObject({
      phase: 'failed',
      probe: 'tcp:1',
      logTail: 'console of resource:default/infra-01',
    });
  }, 10_000);

  it("keeps a failed machine's reason as the run's error where its console tail cannot be stored", async () => {
    const host = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    const updateRunMachine = runStore.updateRunMachine.bind(runStore);
    runStore.updateRunMachine = async (runId, machineRef, patch) => {
      if (patch.logTail !== undefined)
        throw new Error('Connection terminated unexpectedly');
      return updateRunMachine(runId, machineRef, patch);
    };
    const runs = service(host);
    const run = await testRunOfWeb(runs);
    expect(run.status).toBe('failed');
    expect(run.error).toMatchObject({
      machineRef: 'resource:default/infra-01',
      probe: 'tcp:1',
    });
    expect(run.machines[0]).toMatchObject({
      phase: 'failed',
      probe: 'tcp:1',
      logTail: undefined,
    });
  }, 10_000);

  it('refuses what it cannot do, saying why', async () => {
    const host = new FakeHost(needs);
    await expect(
      service(host, { allowTestHooks: false }).start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
        options: { reverseBootOrder: true },
      }),
    ).rejects.toThrow('Run options reverseBootOrder are test hooks');

    const runs = service(host, { machineReadyTimeoutMs: 60_000 });
    const blocker = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    const busy = service(blocker, { machineReadyTimeoutMs: 60_000 });
    const first = await busy.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await expect(
      busy.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      }),
    ).rejects.toThrow(`Hypervisor host 'fake' is busy with run ${first.id}`);
    await busy.shutdown();
    const interrupted = (await runStore.getRun(first.id))!;
    expect(interrupted.status).toBe('interrupted');
    expect(interrupted.error?.message).toBe(
      'Interrupted: the backend is shutting down',
    );

    await captureStore.pruneCaptures('resource:default/data-01', 0);
    await expect(
      runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      }),
    ).rejects.toThrow('No capture of resource:default/data-01 yet');
  });

  it('refuses a plan without a dependency the catalog declares but does not hold, unless asked; other catalog problems go into the timeline', async () => {
    const missing = {
      entityRef: 'component:default/database',
      message:
        'component:default/database dependsOn component:default/cache, which is not in the catalog: a recovery plan cannot include it',
    };
    const unannotated = {
      entityRef: 'resource:default/data-01',
      annotation: 'recovery.backstage-recovery.io/engine',
      message:
        'Machine resource:default/data-01 has no recovery.backstage-recovery.io/engine annotation: set it to the id of the primary engine that runs it',
    };
    const objective = {
      entityRef: 'component:default/web',
      annotation: 'recovery.backstage-recovery.io/rto',
      message:
        'component:default/web: recovery.backstage-recovery.io/rto "soon" is not a duration such as 30m, 4h or 1d',
    };
    const problems = [unannotated, objective, missing];
    const host = new FakeHost(needs);
    const runs = service(
      host,
      {},
      { ...demoGraph, problems, missing: [missing] },
    );
    const asked = {
      entityRef: 'component:default/web',
      mode: 'test' as const,
      trigger: 'user' as const,
    };
    const refused = runs.start(asked);
    await expect(refused).rejects.toThrow(RunConflictError);
    await expect(refused).rejects.toThrow(
      `component:default/web cannot be recovered as the catalog declares it: ${missing.message}. Fix the catalog, or start the run accepting missing dependencies (acceptMissingDependencies: true) to recover without them`,
    );
    expect(await runStore.listRuns({})).toEqual([]);

    // Asked to: the run tests the plan it has, and says what the catalog got wrong.
    const started = await runs.start({
      ...asked,
      acceptMissingDependencies: true,
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('succeeded');
    expect(
      run.steps
        .filter(step => step.level === 'warning')
        .map(step => [step.machineRef, step.message]),
    ).toEqual([
      ['resource:default/data-01', `Catalog problem: ${unannotated.message}`],
      [undefined, `Catalog problem: ${objective.message}`],
      [undefined, `Catalog problem: ${missing.message}`],
    ]);

    // Without a missing dependency, no need to ask.
    const unasked = service(host, {}, { ...demoGraph, problems: [objective] });
    const admitted = await unasked.start(asked);
    await unasked.waitFor(admitted.id);
    expect((await runStore.getRun(admitted.id))!.status).toBe('succeeded');
  });

  it("keeps with a run the names its plan's warnings mention: each reader's warnings are filtered once its analysis is pruned", async () => {
    const warnings = [
      'web started 30 s after db in every boot: too soon to tell',
      'db started 2 s after vault in every boot: too soon to tell',
      'only 8 boots of at least half the services in the history (fewer than 20)',
      'few samples: vault → cache (score 0.7, 3 samples)',
    ];
    const analysis: Inference = {
      id: 'analysis-1',
      createdAt: '2024-05-01T00:00:00Z',
      dependencies: [],
      machineWaits: [],
      warnings,
      names: new Map([
        ['web', 'component:default/web'],
        ['db', 'component:default/database'],
        ['vault', HIDDEN],
        ['cache', 'component:default/cache'],
        ['stray', undefined],
      ]),
      observed: new Set(),
      threshold: 0.5,
    };
    let pruned = false;
    const inference = {
      inferenceFor: async () => analysis,
      inferenceOf: vi.fn(async (id: string) =>
        !pruned && id === analysis.id ? analysis : undefined,
      ),
    };
    const runs = service(
      new FakeHost(needs),
      {},
      structuredClone(demoGraph),
      undefined,
      inference,
    );
    const run = await testRunOfWeb(runs);
    const elsewhere =
      '1 warning of the analysis about parts of the system outside this plan: see its analysis';
    expect(run.plan.analysis).toMatchObject({
      warnings: [warnings[0], warnings[1], warnings[2], elsewhere],
      // Only those its warnings mention (cache is named only in the one about other parts).
      names: [
        ['web', 'component:default/web'],
        ['db', 'component:default/database'],
        ['vault', HIDDEN],
      ],
    });

    // Its analysis pruned (recovery.analysis.keepLast): read by the names the run keeps.
    pruned = true;
    const plans = new PlanService(
      { visibleTo } as unknown as CatalogGraphLoader,
      inference,
    );
    const forUser = await plans.runSeenBy(run, mockCredentials.user());
    expect(forUser.plan.analysis).toEqual({
      id: 'analysis-1',
      createdAt: '2024-05-01T00:00:00Z',
      warnings: [
        warnings[0],
        warnings[2],
        elsewhere,
        'left out as the catalog does not show them to you: 1 warning about parts outside this plan',
      ],
    });
    expect(
      (await plans.runSeenBy(run, mockCredentials.service())).plan.analysis!
        .warnings,
    ).toEqual([warnings[0], warnings[1], warnings[2], elsewhere]);
    expect(inference.inferenceOf).not.toHaveBeenCalled();
  });

  it('names the waits its waves learned from boot history, with their evidence, a learned one of low confidence as a warning', async () => {
    // The catalog declares no service dependency: the order is all learned.
    const graph = structuredClone(demoGraph);
    for (const s of graph.services.values()) s.dependsOn = [];
    const analysis: Inference = {
      id: 'analysis-1',
      createdAt: '2024-05-01T00:00:00Z',
      dependencies: [
        {
          service: 'component:default/database',
          dependsOn: 'component:default/dns',
          score: 0.95,
          samples: 12,
          confidence: 'high',
        },
        {
          service: 'component:default/web',
          dependsOn: 'component:default/database',
          score: 0.82,
          samples: 1,
          confidence: 'low',
        },
      ],
      machineWaits: [],
      warnings: [],
      names: new Map(),
      observed: new Set(),
      threshold: 0.7,
    };
    const runs = service(new FakeHost(needs), {}, graph, undefined, {
      inferenceFor: async () => analysis,
      inferenceOf: async () => analysis,
    });
    const run = await testRunOfWeb(runs);
    expect(run.status).toBe('succeeded');
    // The run keeps the evidence with its plan.
    expect(run.plan.inferred).toEqual(analysis.dependencies);
    expect(run.steps.slice(0, 3).map(s => [s.level, s.message])).toEqual([
      [
        'info',
        'Test recovery of component:default/web on fake: 3 waves, 3 machines',
      ],
      [
        'info',
        'Wave 2 waits on learned dependency: component:default/database → component:default/dns (score 0.95, 12 boots)',
      ],
      [
        'warning',
        'Wave 3 waits on learned dependency: component:default/web → component:default/database (score 0.82, 1 boot, low confidence): a learned dependency of low confidence (seen in fewer boots than the analysis trusts) may be wrong; declare it in spec.dependsOn if it is real, or let more boots confirm or drop it',
      ],
    ]);
  });

  it('names the run holding the host only to whoever may see it, as GET /runs does', async () => {
    await runStore.insertRun(
      {
        id: 'holder',
        entityRef: HIDDEN,
        mode: 'test',
        trigger: 'schedule',
        hypervisorHost: 'fake',
        plan: { entityRef: HIDDEN, waves: [], machines: [] },
        options: {},
        machines: [],
      },
      new Date(),
    );
    const runs = service(new FakeHost(needs));
    const refusal = (credentials?: BackstageCredentials) =>
      runs
        .start({
          entityRef: 'component:default/web',
          mode: 'test',
          trigger: 'user',
          credentials,
        })
        .then(
          () => expect.fail('admitted while the host is busy'),
          (error: HypervisorHostBusyError) => {
            expect(error).toBeInstanceOf(HypervisorHostBusyError);
            return {
              message: error.message,
              runId: error.runId,
              entityRef: error.entityRef,
            };
          },
        );
    const named = {
      message: `Hypervisor host 'fake' is busy with run holder of ${HIDDEN}`,
      runId: 'holder',
      entityRef: HIDDEN,
    };
    // A user who may not see it: still busy (worth retrying), but no run or entity named.
    expect(await refusal(mockCredentials.user())).toEqual({
      message: "Hypervisor host 'fake' is busy with another run",
      runId: undefined,
      entityRef: undefined,
    });
    expect(await refusal(mockCredentials.service())).toEqual(named);
    // The backend itself (no caller).
    expect(await refusal()).toEqual(named);
    expect(await runStore.listRuns({})).toHaveLength(1);
  });

  it.each([
    ['one backend', 1],
    ['two replicas', 2],
  ])(
    'admits one of two concurrent runs on the same host (%s) and refuses the other',
    async (_, backends) => {
      // Infra never comes up, so the admitted run keeps the host busy until shut down.
      const host = new FakeHost({
        'resource:default/infra-01': ['resource:default/never'],
      });
      const replicas = Array.from({ length: backends }, () =>
        service(host, { machineReadyTimeoutMs: 60_000 }),
      );
      const results = await Promise.allSettled(
        [0, 1].map(i =>
          replicas[i % backends].start({
            entityRef: 'component:default/web',
            mode: 'test',
            trigger: 'user',
          }),
        ),
      );

      const admitted = results.flatMap(r =>
        r.status === 'fulfilled' ? [r.value] : [],
      );
      const refused = results.flatMap(r =>
        r.status === 'rejected' ? [r.reason] : [],
      );
      expect(admitted).toHaveLength(1);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toBeInstanceOf(RunConflictError);
      expect(refused[0]).toBeInstanceOf(HypervisorHostBusyError);
      expect(refused[0].message).toBe(
        `Hypervisor host 'fake' is busy with run ${admitted[0].id} of component:default/web`,
      );
      expect(
        (await runStore.activeRuns({ hypervisorHost: 'fake' })).map(r => r.id),
      ).toEqual([admitted[0].id]);
      expect(
        await runStore.listRuns({ entityRef: 'component:default/web' }),
      ).toHaveLength(1);

      await Promise.all(replicas.map(r => r.shutdown()));
      expect((await runStore.getRun(admitted[0].id))!.status).toBe(
        'interrupted',
      );
    },
  );

  it.each([
    ['on this backend', 1],
    ['on another replica', 2],
  ])(
    'a failover preempts the test recovery holding the host (%s): the test is interrupted, its lab removed first',
    async (_, backends) => {
      // The test run's infra-01 never answers its probe: it holds the host until its ready timeout.
      const host = new FakeHost(needs);
      const probe = host.probe.bind(host);
      let testRunId = '';
      host.probe = (lab, machine, spec) =>
        machine.runId === testRunId
          ? new Promise<never>(() => {})
          : probe(lab, machine, spec);
      const replicas = Array.from({ length: backends }, () =>
        service(host, { machineReadyTimeoutMs: 60_000 }),
      );
      const test = await replicas[0].start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'schedule',
      });
      testRunId = test.id;
      await vi.waitFor(async () => {
        expect((await runStore.getRun(test.id))!.machines[0].phase).toBe(
          'verifying',
        );
      }, eventually);

      // A test does not preempt a test.
      await expect(
        replicas[backends - 1].start({
          entityRef: 'component:default/web',
          mode: 'test',
          trigger: 'user',
        }),
      ).rejects.toBeInstanceOf(HypervisorHostBusyError);
      const failover = await replicas[backends - 1].start({
        entityRef: 'component:default/web',
        mode: 'failover',
        trigger: 'user',
      });
      await replicas[backends - 1].waitFor(failover.id);
      await replicas[0].waitFor(test.id);

      const interrupted = (await runStore.getRun(test.id))!;
      const message = `Interrupted: preempted by failover ${failover.id}`;
      expect(interrupted).toMatchObject({
        status: 'interrupted',
        error: { message },
      });
      expect(interrupted.machines.map(m => [m.phase, m.message])).toEqual([
        ['interrupted', message],
        ['skipped', undefined],
        ['skipped', undefined],
      ]);
      expect(await host.listLabResources(test.id)).toEqual({
        machines: [],
        networks: [],
      });
      expect(await runStore.runsWithLabLeft()).toEqual([]);
      // Interrupted: it says nothing about recoverability.
      expect(
        await runHistory.lastFinishedRun({
          entityRef: 'component:default/web',
        }),
      ).toMatchObject({ id: failover.id });

      const run = (await runStore.getRun(failover.id))!;
      expect(run.status).toBe('succeeded');
      expect(run.steps.map(s => s.message)).toContain(
        `Preempted test recovery ${test.id}, which held fake: its lab is removed before this failover's is built`,
      );
      // Its lab was built only once the test's was gone.
      const built = run.steps.findIndex(s =>
        s.message.startsWith('Created network'),
      );
      expect(built).toBeGreaterThan(
        run.steps.findIndex(s =>
          s.message.startsWith('Preempted test recovery'),
        ),
      );
      expect((await host.listLabResources(failover.id)).machines).toHaveLength(
        3,
      );

      // A failover holding the host is not preempted, by a test or another failover.
      for (const mode of ['test', 'failover'] as const) {
        await runStore.insertRun(
          {
            id: `held-${mode}`,
            entityRef: 'component:default/web',
            mode: 'failover',
            trigger: 'user',
            hypervisorHost: 'fake',
            plan: run.plan,
            options: {},
            machines: [],
          },
          new Date(),
        );
        await expect(
          replicas[0].start({
            entityRef: 'component:default/web',
            mode,
            trigger: 'user',
          }),
        ).rejects.toBeInstanceOf(HypervisorHostBusyError);
        await runStore.updateRun(`held-${mode}`, {
          status: 'failed',
          error: { message: 'done' },
        });
      }
      await Promise.all(replicas.map(r => r.shutdown()));
    },
  );

  it('cleans up runs orphaned by a stopped backend, leaving no machine in progress', async () => {
    const host = new FakeHost(needs);
    await runStore.insertRun(
      {
        id: 'orphan',
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
        hypervisorHost: 'fake',
        plan: { entityRef: 'component:default/web', waves: [], machines: [] },
        options: {},
        machines: ['infra-01', 'data-01', 'web-01', 'mail-01'].map(
          (n, wave) => ({
            machineRef: `resource:default/${n}`,
            wave,
          }),
        ),
      },
      new Date(Date.now() - 10_000),
    );
    await runStore.updateRun('orphan', { status: 'running' });
    await runStore.updateRunMachine('orphan', 'resource:default/infra-01', {
      phase: 'ready',
    });
    await runStore.updateRunMachine('orphan', 'resource:default/data-01', {
      phase: 'verifying',
    });
    await runStore.updateRunMachine('orphan', 'resource:default/web-01', {
      phase: 'restoring',
    });
    await host.createLab('orphan', [{ name: 'prod', aliases: [] }]);
    // The updates above refreshed its heartbeat: count any heartbeat as stale.
    const runs = service(host, { staleAfterMs: -60_000 });
    expect(await runs.cleanUpInterruptedRuns()).toEqual(['orphan']);
    const run = (await runStore.getRun('orphan'))!;
    expect(run.status).toBe('interrupted');
    expect(run.error?.message).toBe(
      'Interrupted: the backend driving this run stopped; removed 0 containers and 1 network',
    );
    expect(run.machines.map(m => [m.machineRef, m.phase, m.message])).toEqual([
      ['resource:default/infra-01', 'ready', undefined],
      [
        'resource:default/data-01',
        'interrupted',
        'Interrupted: the backend driving this run stopped',
      ],
      [
        'resource:default/web-01',
        'interrupted',
        'Interrupted: the backend driving this run stopped',
      ],
      ['resource:default/mail-01', 'skipped', undefined],
    ]);
    expect(run.machines[1].finishedAt).toBeDefined();
    expect(await host.listLabResources('orphan')).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('records a test lab as left with the claim that frees its host, so a run admitted meanwhile finds it', async () => {
    const host = new FakeHost(needs);
    for (const [id, mode] of [
      ['orphan-test', 'test'],
      ['orphan-failover', 'failover'],
    ] as const) {
      await runStore.insertRun(
        {
          id,
          entityRef: 'component:default/web',
          mode,
          trigger: 'user',
          hypervisorHost: 'fake',
          plan: { entityRef: 'component:default/web', waves: [], machines: [] },
          options: {},
          machines: [],
        },
        new Date(Date.now() - 10_000),
      );
      await runStore.updateRun(id, { status: 'running' });
      await host.createLab(id, [{ name: 'prod', aliases: [] }]);
    }
    // What a run admitted right after each claim (the host is free from then) would find left.
    const leftAtClaim = new Map<string, string[]>();
    const claim = runStore.claimStaleRun.bind(runStore);
    runStore.claimStaleRun = async (...args) => {
      const claimed = await claim(...args);
      leftAtClaim.set(
        args[0],
        (await runStore.runsWithLabLeft('fake')).map(r => r.id),
      );
      return claimed;
    };
    const runs = service(host, { staleAfterMs: -60_000 });
    expect((await runs.cleanUpInterruptedRuns()).sort()).toEqual([
      'orphan-failover',
      'orphan-test',
    ]);
    expect(leftAtClaim.get('orphan-test')).toEqual(['orphan-test']);
    // A failover's lab is kept, not torn down: never recorded as left for removal.
    expect(leftAtClaim.get('orphan-failover')).toEqual([]);
    // Torn down: no longer left.
    expect(await runStore.runsWithLabLeft()).toEqual([]);
    expect(await host.listLabResources('orphan-test')).toEqual({
      machines: [],
      networks: [],
    });
    expect(
      (await host.listLabResources('orphan-failover')).networks,
    ).toHaveLength(1);
  });

  it.each(['succeeded', 'failed'] as const)(
    'finishes a test recovery whose backend stopped during its teardown with the result it had reached (%s), not as interrupted, and removes the rest of its lab',
    async result => {
      // web-01 exits once started where the run is to fail.
      const host = new FakeHost(
        needs,
        result === 'failed' ? ['resource:default/web-01'] : [],
      );
      // The first backend's teardown goes no further: it was killed in it (released at the end).
      let inTeardown!: () => void;
      const tearingDown = new Promise<void>(resolve => {
        inTeardown = resolve;
      });
      let release!: () => void;
      const released = new Promise<void>(resolve => {
        release = resolve;
      });
      const teardown = host.teardown.bind(host);
      let first = true;
      host.teardown = async runId => {
        if (first) {
          first = false;
          inTeardown();
          await released;
        }
        return teardown(runId);
      };
      const killed = service(host);
      const started = await killed.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      await tearingDown;
      // Another backend, to which every heartbeat looks stale: the first one's driver looks gone.
      const taking = service(host, { staleAfterMs: -60_000 });
      expect(await taking.cleanUpInterruptedRuns()).toEqual([started.id]);
      const run = (await runStore.getRun(started.id))!;
      expect(run.status).toBe(result);
      if (result === 'succeeded') {
        expect(run.error).toBeUndefined();
        expect(run.rtoSeconds).toBeGreaterThan(0);
        expect(run.machines.every(m => m.phase === 'ready')).toBe(true);
      } else {
        expect(run.error).toEqual({
          machineRef: 'resource:default/web-01',
          message: 'resource:default/web-01 failed: stopped with exit code 3',
        });
        expect(run.rtoSeconds).toBeUndefined();
      }
      expect(run.steps.at(-1)).toMatchObject({
        level: 'warning',
        message: `The backend driving this run stopped during its teardown, after the run had ${result}: that result stands; removed the rest of its lab: 3 containers and 1 network`,
      });
      expect(await host.listLabResources(started.id)).toEqual({
        machines: [],
        networks: [],
      });
      expect(await runStore.runsWithLabLeft()).toEqual([]);
      // The first backend's driver, were it alive after all, finds the run finished, and leaves its result.
      release();
      await killed.waitFor(started.id);
      expect((await runStore.getRun(started.id))!).toMatchObject({
        status: result,
        rtoSeconds: run.rtoSeconds,
        error: run.error,
      });
    },
  );

  it('finishes a test recovery interrupted by its backend shutting down, killed in that teardown, as interrupted: the claim keeps the shutdown as its cause', async () => {
    const host = new FakeHost(needs);
    // Its first machine never answers its probe: the run is under way when the backend stops.
    let runId = '';
    const probe = host.probe.bind(host);
    host.probe = (lab, machine, spec) =>
      machine.runId === runId
        ? new Promise<never>(() => {})
        : probe(lab, machine, spec);
    // The teardown goes no further: the backend was killed in it (released at the end).
    let inTeardown!: () => void;
    const tearingDown = new Promise<void>(resolve => {
      inTeardown = resolve;
    });
    let release!: () => void;
    const released = new Promise<void>(resolve => {
      release = resolve;
    });
    const teardown = host.teardown.bind(host);
    host.teardown = async id => {
      inTeardown();
      await released;
      return teardown(id);
    };
    const killed = service(host, { machineReadyTimeoutMs: 60_000 });
    runId = (
      await killed.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      })
    ).id;
    await vi.waitFor(async () => {
      expect((await runStore.getRun(runId))!.machines[0].phase).toBe(
        'verifying',
      );
    }, eventually);
    const shutdown = killed.shutdown();
    await tearingDown;
    host.teardown = teardown;
    const taking = service(host, { staleAfterMs: -60_000 });
    expect(await taking.cleanUpInterruptedRuns()).toEqual([runId]);
    const run = (await runStore.getRun(runId))!;
    expect(run).toMatchObject({
      status: 'interrupted',
      error: { message: 'Interrupted: the backend is shutting down' },
    });
    expect(run.steps.at(-1)).toMatchObject({
      level: 'warning',
      message: expect.stringMatching(
        /^The backend driving this run stopped during its teardown, after the run had been interrupted: that result stands; removed the rest of its lab: /,
      ),
    });
    // It counts for nothing.
    expect(
      (
        await runHistory.lastFinishedRun({
          entityRef: 'component:default/web',
        })
      )?.id,
    ).not.toBe(runId);
    release();
    await shutdown;
    expect((await runStore.getRun(runId))!.status).toBe('interrupted');
  });

  it.each([
    ['succeeded', 'on this backend', 1],
    ['failed', 'on this backend', 1],
    ['succeeded', 'on another replica', 2],
    ['failed', 'on another replica', 2],
  ] as const)(
    'a failover preempting a test recovery in its teardown (%s, %s) leaves it finished with the result it had reached, not interrupted, its lab removed before the failover builds its own',
    async (result, _, backends) => {
      const host = new FakeHost(needs);
      // The test's web-01 exits once started where the test is to fail; the failover's boots.
      const startMachine = host.startMachine.bind(host);
      host.startMachine = async machine => {
        await startMachine(machine);
        if (
          result === 'failed' &&
          machine.runId === testRunId &&
          machine.machineRef === 'resource:default/web-01'
        )
          host.exit(machine.id, 3);
      };
      // The test's own teardown is held until the failover is admitted.
      let inTeardown!: () => void;
      const tearingDown = new Promise<void>(resolve => {
        inTeardown = resolve;
      });
      let release!: () => void;
      const released = new Promise<void>(resolve => {
        release = resolve;
      });
      const teardown = host.teardown.bind(host);
      let testRunId = '';
      host.teardown = async runId => {
        if (runId === testRunId) {
          inTeardown();
          await released;
        }
        return teardown(runId);
      };
      // What of the test's lab is on the host when the failover builds its own.
      let testLabAtFailover: LabResources | undefined;
      const createLab = host.createLab.bind(host);
      host.createLab = async (runId, networks) => {
        if (runId !== testRunId)
          testLabAtFailover = await host.listLabResources(testRunId);
        return createLab(runId, networks);
      };
      const replicas = Array.from({ length: backends }, () => service(host));
      const test = await replicas[0].start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'schedule',
      });
      testRunId = test.id;
      await tearingDown;
      const failover = await replicas[backends - 1].start({
        entityRef: 'component:default/web',
        mode: 'failover',
        trigger: 'user',
      });
      release();
      await replicas[backends - 1].waitFor(failover.id);
      await replicas[0].waitFor(test.id);

      const run = (await runStore.getRun(test.id))!;
      expect(run.status).toBe(result);
      if (result === 'succeeded') {
        expect(run.error).toBeUndefined();
        expect(run.rtoSeconds).toBeGreaterThan(0);
        expect(run.machines.every(m => m.phase === 'ready')).toBe(true);
      } else {
        expect(run.error).toEqual({
          machineRef: 'resource:default/web-01',
          message: 'resource:default/web-01 failed: stopped with exit code 3',
        });
        expect(run.rtoSeconds).toBeUndefined();
      }
      expect(run.steps).toContainEqual(
        expect.objectContaining({
          level: 'warning',
          message: `Failover ${failover.id} preempted this run during its teardown, after the run had ${result}: that result stands; its lab is removed before the failover's is built`,
        }),
      );
      expect(run.steps.some(s => s.message.startsWith('Interrupted'))).toBe(
        false,
      );
      expect(await host.listLabResources(test.id)).toEqual({
        machines: [],
        networks: [],
      });
      expect(await runStore.runsWithLabLeft()).toEqual([]);

      const taking = (await runStore.getRun(failover.id))!;
      expect(taking.status).toBe('succeeded');
      // Its lab was built only once the test's was gone.
      const preempted = taking.steps.findIndex(
        s =>
          s.message ===
          `Preempted test recovery ${test.id}, which held fake: its lab is removed before this failover's is built`,
      );
      expect(preempted).toBeGreaterThan(-1);
      expect(
        taking.steps.findIndex(s => s.message.startsWith('Created network')),
      ).toBeGreaterThan(preempted);
      expect(testLabAtFailover).toEqual({ machines: [], networks: [] });
      await Promise.all(replicas.map(r => r.shutdown()));
    },
  );

  it.each([
    ['createLab', 'Creating the lab did not finish within 0.1 s'],
    [
      'restoreMachine',
      'resource:default/infra-01 failed: restore did not finish within 0.1 s',
    ],
    [
      'startMachine',
      'resource:default/infra-01 failed: start did not finish within 0.3 s',
    ],
    [
      'inspectMachine',
      'resource:default/infra-01 failed: inspect did not finish within 0.3 s',
    ],
    [
      'probe',
      'resource:default/infra-01 failed: probe tcp:1 of component:default/dns did not finish within 0.3 s',
    ],
  ] as const)(
    'fails the run when the engine hangs in %s, naming machine and step, and frees the host',
    async (step, message) => {
      const host = new FakeHost(needs);
      host[step] = () => new Promise<never>(() => {});
      const runs = service(host, { stepTimeoutMs: 100 });
      const run = await testRunOfWeb(runs);
      expect(run.status).toBe('failed');
      expect(run.error?.message).toBe(message);
      if (step !== 'createLab') {
        expect(run.machines[0]).toMatchObject({
          machineRef: 'resource:default/infra-01',
          phase: 'failed',
        });
      }
      if (step === 'probe') expect(run.error?.probe).toBe('tcp:1');
      // The host is free again: the next run is admitted, not refused as busy.
      const next = await runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      expect(next.status).toBe('pending');
      await runs.shutdown();
    },
    10_000,
  );

  it('still fails the run and ends it when reading the console or tearing down hangs', async () => {
    const host = new FakeHost(needs, ['resource:default/infra-01']);
    host.logTail = () => new Promise<never>(() => {});
    host.teardown = () => new Promise<never>(() => {});
    const runs = service(host, { stepTimeoutMs: 100 });
    const run = await testRunOfWeb(runs);
    expect(run.status).toBe('failed');
    expect(run.error?.message).toBe(
      'resource:default/infra-01 failed: stopped with exit code 3',
    );
    expect(run.machines[0]).toMatchObject({
      phase: 'failed',
      logTail: undefined,
    });
    expect(run.steps.map(s => s.message)).toContain(
      'Teardown failed: teardown did not finish within 0.1 s; the lab stays on fake until it is removed before the next run there or by the cleanup task',
    );
  }, 10_000);

  /** A test recovery whose teardown fails while `engine.down`: its lab stays on the host. */
  async function labLeftBehind() {
    const host = new FakeHost(needs);
    const teardown = host.teardown.bind(host);
    const engine = { down: true };
    host.teardown = async runId => {
      if (engine.down) throw new Error('engine unreachable');
      return teardown(runId);
    };
    const runs = service(host);
    const first = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(first.id);
    return { host, runs, first, engine };
  }

  /**
   * A host whose engine can go away: while `engine.down`, every call fails as the Docker host's
   * do when its socket is gone (an EngineError, unreachable), naming what it was doing.
   */
  function hostWithEngine(
    engine: { down: boolean },
    host = new FakeHost(needs),
  ) {
    const calls: string[] = [];
    const methods = host as unknown as Record<
      string,
      (...args: unknown[]) => Promise<unknown>
    >;
    for (const name of [
      'createLab',
      'restoreMachine',
      'startMachine',
      'inspectMachine',
      'probe',
      'logTail',
      'listLabResources',
      'teardown',
    ]) {
      const original = methods[name].bind(host);
      methods[name] = async (...args) => {
        calls.push(name);
        if (engine.down) {
          throw engineError(
            `${name} failed: Docker engine 'fake' is unreachable at /run/fake.sock (ENOENT): is it running, and may the backend use it?`,
            'fake',
            'unreachable',
          );
        }
        return original(...args);
      };
    }
    return { host, calls };
  }

  it("fails a run whose host's engine cannot be reached saying so first, with no lab to tear down or record as left; the next one too, until it answers", async () => {
    const engine = { down: true };
    const { host, calls } = hostWithEngine(engine);
    const runs = service(host);
    for (const attempt of [1, 2]) {
      const run = await testRunOfWeb(runs);
      expect({ attempt, status: run.status, error: run.error }).toEqual({
        attempt,
        status: 'failed',
        // The host's failure, said first and once; no machine blamed.
        error: {
          message:
            "hypervisor host fake cannot be reached: listLabResources failed: Docker engine 'fake' is unreachable at /run/fake.sock (ENOENT): is it running, and may the backend use it?",
          hostUnreachable: true,
        },
      });
      expect(run.machines.map(m => m.phase)).toEqual([
        'skipped',
        'skipped',
        'skipped',
      ]);
      // Nothing was asked of the host that could make part of a lab: nothing to tear down, no
      // lab recorded as left for the next run to be blamed on.
      expect(
        run.steps.filter(s => s.level !== 'info').map(s => s.message),
      ).toEqual([run.error!.message]);
      expect(await runStore.runsWithLabLeft()).toEqual([]);
    }
    expect(calls).toEqual(['listLabResources', 'listLabResources']);

    engine.down = false;
    expect((await testRunOfWeb(runs)).status).toBe('succeeded');
    await runs.shutdown();
  });

  it('records a lab the engine went away under as left, its teardown not checked rather than failed, and blames no later run on it', async () => {
    const engine = { down: false };
    const { host } = hostWithEngine(engine);
    // The engine stops while data-01 is first restored: the lab and infra-01 are on it.
    const restore = host.restoreMachine.bind(host);
    let stopped = false;
    host.restoreMachine = async (lab, capture) => {
      if (capture.machineRef === 'resource:default/data-01' && !stopped)
        engine.down = stopped = true;
      return restore(lab, capture);
    };
    const runs = service(host);
    const first = await testRunOfWeb(runs);
    expect(first.status).toBe('failed');
    expect(first.error?.message).toMatch(
      /^hypervisor host fake stopped answering while resource:default\/data-01 was booting: restoreMachine failed: Docker engine 'fake' is unreachable at /,
    );
    // Whether the lab is still there is unknown: said so, without the engine's words again.
    expect(first.steps.filter(s => /teardown/i.test(s.message))).toEqual([
      {
        at: expect.any(String),
        level: 'warning',
        message:
          'Teardown not checked: hypervisor host fake cannot be reached; whatever of the lab reached it is removed once it answers, before the next run there or by the cleanup task',
      },
    ]);
    expect(await runStore.runsWithLabLeft()).toEqual([
      { id: first.id, hypervisorHost: 'fake' },
    ]);

    // While it is still down, the next run fails as the host's, not on the lab left.
    const next = await testRunOfWeb(runs);
    expect(next.error?.message).toMatch(
      /^hypervisor host fake cannot be reached: listLabResources failed: Docker engine 'fake' is unreachable/,
    );
    expect(next.error?.message).not.toContain(first.id);
    expect(await runStore.runsWithLabLeft()).toEqual([
      { id: first.id, hypervisorHost: 'fake' },
    ]);

    // Once it answers, the lab left goes before the next run builds its own, as before.
    engine.down = false;
    expect((await testRunOfWeb(runs)).status).toBe('succeeded');
    expect(await runStore.runsWithLabLeft()).toEqual([]);
    expect(await host.listLabResources()).toEqual({
      machines: [],
      networks: [],
    });
    expect((await runStore.getRun(first.id))!.steps.at(-1)!.message).toMatch(
      /^Lab torn down later: removed 1 container and 1 network$/,
    );
    await runs.shutdown();
  });

  it('keeps recorded, as not checked, the lab of a run whose lab creation the engine broke off: it may have made part of it', async () => {
    const engine = { down: false };
    const { host } = hostWithEngine(engine);
    const create = host.createLab.bind(host);
    // The engine made the network, then went away before it answered.
    host.createLab = async (runId, networks) => {
      await create(runId, networks);
      engine.down = true;
      throw engineError(
        "createLab failed: Docker engine 'fake' is unreachable at /run/fake.sock (ECONNRESET): is it running, and may the backend use it?",
        'fake',
        'unreachable',
      );
    };
    const runs = service(host);
    const run = await testRunOfWeb(runs);
    expect(run.error).toEqual({
      message:
        "hypervisor host fake cannot be reached: createLab failed: Docker engine 'fake' is unreachable at /run/fake.sock (ECONNRESET): is it running, and may the backend use it?",
      hostUnreachable: true,
    });
    expect(run.steps.at(-1)).toMatchObject({
      level: 'warning',
      message: expect.stringMatching(
        /^Teardown not checked: hypervisor host fake cannot be reached; /,
      ),
    });
    expect(await runStore.runsWithLabLeft()).toEqual([
      { id: run.id, hypervisorHost: 'fake' },
    ]);
    engine.down = false;
    await runs.cleanUpInterruptedRuns();
    expect(await host.listLabResources()).toEqual({
      machines: [],
      networks: [],
    });
    expect((await runStore.getRun(run.id))!.steps.at(-1)!.message).toBe(
      'Lab torn down later: removed 0 containers and 1 network',
    );
    await runs.shutdown();
  });

  it('fails a run whose host stops answering as it reads the room, before it builds the lab', async () => {
    const engine = { down: false };
    const { host, calls } = hostWithEngine(engine);
    const roomy = Object.assign(host, {
      room: async () => {
        engine.down = true;
        throw engineError(
          "checking the room failed: Docker engine 'fake' is unreachable at /run/fake.sock (ECONNREFUSED): is it running, and may the backend use it?",
          'fake',
          'unreachable',
        );
      },
    });
    const runs = service(roomy);
    const run = await testRunOfWeb(runs);
    expect(run.error?.message).toBe(
      "hypervisor host fake cannot be reached: checking the room failed: Docker engine 'fake' is unreachable at /run/fake.sock (ECONNREFUSED): is it running, and may the backend use it?",
    );
    expect(calls).not.toContain('createLab');
    await runs.shutdown();
  });

  it("removes a failover's probe helpers once its machines are verified: what it keeps is its machines, counted as named", async () => {
    /** A host whose probes make a probe container in the lab, as the Docker host's do. */
    class ProbingHost extends FakeHost {
      readonly removals: string[] = [];
      async probe(
        lab: LabHandle,
        machine: MachineHandle,
        spec: Parameters<FakeHost['probe']>[2],
      ) {
        this.labels.set(`${lab.runId}/probe`, lab.runId);
        return super.probe(lab, machine, spec);
      }
      async removeProbes(runId: string) {
        this.removals.push(runId);
        this.labels.delete(`${runId}/probe`);
        return [`${runId}/probe`];
      }
    }
    const host = new ProbingHost(needs);
    const runs = service(host);
    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await runs.waitFor(failover.id);
    const run = (await runStore.getRun(failover.id))!;
    expect(run.status).toBe('succeeded');
    expect(host.removals).toEqual([failover.id]);
    expect((await host.listLabResources(failover.id)).machines).toEqual(
      [
        'resource:default/infra-01',
        'resource:default/data-01',
        'resource:default/web-01',
      ].map(m => `${failover.id}/${m}`),
    );
    expect(run.steps.map(s => s.message)).toContainEqual(
      `Kept 3 containers and 1 network on fake, labelled with run ${failover.id} (left running: resource:default/infra-01, resource:default/data-01, resource:default/web-01): ` +
        `a failover is never torn down automatically; release it once production runs on its primary machines again (recovery release ${failover.id}, or POST /runs/${failover.id}/release)`,
    );

    // A host that could not remove its probe: the summary names each container it counts.
    const stuck = new ProbingHost(needs);
    stuck.removeProbes = async () => {
      throw new Error('engine said no');
    };
    const logger = recordingLogger();
    const again = service(stuck, {}, demoGraph, logger);
    await runs.releaseFailover(failover.id);
    const second = await again.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await again.waitFor(second.id);
    const kept = (await runStore.getRun(second.id))!.steps.find(s =>
      s.message.startsWith('Kept '),
    )!.message;
    const containers = (await stuck.listLabResources(second.id)).machines;
    expect(containers).toHaveLength(4);
    expect(kept).toContain(
      `Kept 4 containers (${containers.join(', ')}) and 1 network (lab-${second.id}-prod) on fake`,
    );
    expect(logger.lines).toContainEqual({
      level: 'warn',
      fields: { runId: second.id, hypervisorHost: 'fake' },
      message:
        "Could not remove the run's probe helpers from its host (its release removes them)",
      error: new Error('engine said no'),
    });
    await again.releaseFailover(second.id);
    expect(stuck.labels.size).toBe(0);
  });

  it('a lab its teardown left on the host is removed before the next run there, or that run fails saying whose lab is in the way', async () => {
    const { host, runs, first, engine } = await labLeftBehind();
    // The recovery itself succeeded; its lab is still there.
    expect((await runStore.getRun(first.id))!.status).toBe('succeeded');
    expect(await runStore.runsWithLabLeft('fake')).toEqual([
      { id: first.id, hypervisorHost: 'fake' },
    ]);
    expect((await host.listLabResources(first.id)).machines).toHaveLength(3);

    // While it cannot be removed, the next run fails before building its own lab, naming it.
    const blocked = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(blocked.id);
    const blockedRun = (await runStore.getRun(blocked.id))!;
    expect(blockedRun.status).toBe('failed');
    expect(blockedRun.error?.message).toContain(
      `the lab of run ${first.id} is still on fake and could not be removed (engine unreachable)`,
    );
    expect(host.started).toHaveLength(3);

    // Once the host answers, the next run removes it first and goes ahead.
    engine.down = false;
    const next = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(next.id);
    expect((await runStore.getRun(next.id))!.status).toBe('succeeded');
    expect(await runStore.runsWithLabLeft()).toEqual([]);
    expect(await host.listLabResources()).toEqual({
      machines: [],
      networks: [],
    });
    expect((await runStore.getRun(first.id))!.steps.at(-1)).toMatchObject({
      level: 'info',
      message: expect.stringMatching(/^Lab torn down later: removed /),
    });
    await runs.shutdown();
  }, 10_000);

  it('a left lab that two removals take at once is said torn down once', async () => {
    const { runs, first, engine } = await labLeftBehind();
    engine.down = false;
    await Promise.all([
      runs.cleanUpInterruptedRuns(),
      runs.cleanUpInterruptedRuns(),
    ]);
    expect(await runStore.runsWithLabLeft()).toEqual([]);
    const said = (await runStore.getRun(first.id))!.steps.filter(s =>
      s.message.startsWith('Lab torn down later'),
    );
    expect(said).toHaveLength(1);
    await runs.shutdown();
  }, 10_000);

  it('says in its own timeline that it removes the lab an earlier run left, before it builds its own', async () => {
    const { runs, first, engine } = await labLeftBehind();
    const removing = `Removing the lab run ${first.id} left on fake, before building this run's`;
    const blocked = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(blocked.id);
    expect(
      (await runStore.getRun(blocked.id))!.steps.map(s => s.message),
    ).toContain(removing);

    // The removal may take a step deadline on a slow engine: the timeline says what the run waits for.
    engine.down = false;
    const next = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(next.id);
    const messages = (await runStore.getRun(next.id))!.steps.map(
      s => s.message,
    );
    expect(messages.indexOf(removing)).toBeGreaterThan(0);
    expect(messages.indexOf(removing)).toBeLessThan(
      messages.findIndex(m => m.startsWith('Created isolated network')),
    );
    await runs.shutdown();
  }, 10_000);

  it('the cleanup task removes a lab a teardown left, and keeps trying while it cannot', async () => {
    const { host, runs, first, engine } = await labLeftBehind();
    await runs.cleanUpInterruptedRuns();
    expect(await runStore.runsWithLabLeft()).toEqual([
      { id: first.id, hypervisorHost: 'fake' },
    ]);
    engine.down = false;
    await runs.cleanUpInterruptedRuns();
    expect(await runStore.runsWithLabLeft()).toEqual([]);
    expect(await host.listLabResources()).toEqual({
      machines: [],
      networks: [],
    });
    await runs.shutdown();
  }, 10_000);

  it("says in the timeline what a machine's probe answers while it does not pass yet: as the answer changes, throttled", async () => {
    const host = new FakeHost({});
    const probe = host.probe.bind(host);
    // Per attempt on data-01: the seconds that pass before it answers, and its answer (none: passes).
    const answers: Array<[number, string?]> = [
      [0, 'connection refused'], // said: the first answer
      [1, 'connection refused'], // the same: not said
      [1, 'HTTP 503'], // changed, 2 s after the last said: not yet
      [4, 'HTTP 503'], // 6 s after: said, with its attempt
      [30, 'HTTP 503'], // the same, 30 s after: not said
      [40, 'HTTP 503'], // the same, 70 s after: said again, a minute on
      [0],
    ];
    let attempt = 0;
    host.probe = async (lab, machine, spec) => {
      if (machine.machineRef !== 'resource:default/data-01')
        return probe(lab, machine, spec);
      // Passing from then on, the final check's look too.
      const [seconds, message] =
        answers[Math.min(attempt++, answers.length - 1)];
      vi.setSystemTime(Date.now() + seconds * 1000);
      return message === undefined
        ? { ok: true, message: 'connected' }
        : { ok: false, message };
    };
    // The clock moves only as the probe says (sleeps stay real).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const run = await testRunOfWeb(
        service(host, { machineReadyTimeoutMs: 10 * 60_000 }),
      );
      expect([run.status, run.error]).toEqual(['succeeded', undefined]);
      const said = (n: number, message: string) => ({
        machineRef: 'resource:default/data-01',
        level: 'info',
        message: `probe tcp:1 of component:default/database not passing yet (attempt ${n}): ${message}`,
      });
      expect(
        run.steps
          .filter(s => s.message.includes('not passing yet'))
          .map(({ machineRef, level, message }) => ({
            machineRef,
            level,
            message,
          })),
      ).toEqual([
        said(1, 'connection refused'),
        said(4, 'HTTP 503'),
        said(6, 'HTTP 503'),
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it("lists a machine's probe answers up to a cap, the last saying that further attempts go unlisted", async () => {
    const host = new FakeHost({});
    const probe = host.probe.bind(host);
    // Every attempt on data-01 a new answer 6 s after the last, each one said, until it passes.
    const failing = PROBE_PROGRESS_LINES + 5;
    let attempt = 0;
    host.probe = async (lab, machine, spec) => {
      if (machine.machineRef !== 'resource:default/data-01')
        return probe(lab, machine, spec);
      attempt++;
      if (attempt > failing) return { ok: true, message: 'connected' };
      vi.setSystemTime(Date.now() + 6_000);
      return { ok: false, message: `HTTP 503 (answer ${attempt})` };
    };
    // The clock moves only as the probe says (sleeps stay real).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const run = await testRunOfWeb(
        service(host, { machineReadyTimeoutMs: 10 * 60_000 }),
      );
      expect([run.status, run.error]).toEqual(['succeeded', undefined]);
      const said = run.steps
        .filter(s => s.message.includes('not passing yet'))
        .map(s => s.message);
      const line = (n: number) =>
        `probe tcp:1 of component:default/database not passing yet (attempt ${n}): HTTP 503 (answer ${n})`;
      expect(said).toEqual([
        ...Array.from({ length: PROBE_PROGRESS_LINES - 1 }, (_, i) =>
          line(i + 1),
        ),
        `${line(PROBE_PROGRESS_LINES)}; further attempts are not listed until it passes or times out`,
      ]);
      // Attempts past the cap were made all the same, unlisted.
      expect(attempt).toBeGreaterThan(failing);
    } finally {
      vi.useRealTimers();
    }
  });

  it('words a probe that stops answering at the deadline by its last answer', async () => {
    const host = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    const probe = host.probe.bind(host);
    let answered = 0;
    host.probe = (...args) =>
      answered++ < 2 ? probe(...args) : new Promise<never>(() => {});
    const runs = service(host);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    expect((await runStore.getRun(started.id))!.error).toEqual({
      machineRef: 'resource:default/infra-01',
      probe: 'tcp:1',
      message:
        'resource:default/infra-01 failed: probe tcp:1 of component:default/dns did not pass within 0.3 s: connection to resource:default/infra-01:1 refused',
    });
  }, 10_000);

  it('removes a machine whose restore finishes after its deadline, once the lab is gone', async () => {
    const host = new FakeHost(needs);
    const restore = host.restoreMachine.bind(host);
    let lateRestore: Promise<unknown> | undefined;
    host.restoreMachine = (lab, capture) => {
      const restored = new Promise(resolve => setTimeout(resolve, 300)).then(
        () => restore(lab, capture),
      );
      lateRestore = restored;
      return restored;
    };
    const logger = recordingLogger();
    const runs = service(host, { stepTimeoutMs: 100 }, undefined, logger);
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    expect((await runStore.getRun(started.id))!.status).toBe('failed');
    expect(await host.listLabResources(started.id)).toEqual({
      machines: [],
      networks: [],
    });

    await lateRestore;
    await vi.waitFor(async () => {
      expect(await host.listLabResources(started.id)).toEqual({
        machines: [],
        networks: [],
      });
      // Said once removed, on the run's child logger.
      expect(logger.lines).toContainEqual({
        level: 'warn',
        fields: { runId: started.id },
        message: expect.stringMatching(
          /^Removed .+ created after a step's deadline$/,
        ),
      });
    }, eventually);
  });

  it('removes what a restore that fails after its deadline created first', async () => {
    const host = new FakeHost(needs);
    let lateFailure: Promise<unknown> | undefined;
    host.restoreMachine = (lab, capture) => {
      lateFailure = new Promise(resolve => setTimeout(resolve, 300)).then(
        () => {
          host.labels.set(`${lab.runId}/${capture.machineRef}`, lab.runId); // e.g. the image it loaded
          throw new Error(`network lab-${lab.runId}-prod not found`);
        },
      );
      return lateFailure as never;
    };
    const runs = service(host, { stepTimeoutMs: 100 });
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    expect((await runStore.getRun(started.id))!.error?.message).toBe(
      'resource:default/infra-01 failed: restore did not finish within 0.1 s',
    );

    await lateFailure!.catch(() => {});
    await vi.waitFor(async () => {
      expect(await host.listLabResources(started.id)).toEqual({
        machines: [],
        networks: [],
      });
    }, eventually);
  });

  it('records what a late restore created as a lab left on the host when removing it fails, for the cleanup task to remove', async () => {
    const host = new FakeHost(needs);
    const restore = host.restoreMachine.bind(host);
    let release!: () => void;
    const gate = new Promise<void>(resolve => (release = resolve));
    let lateRestore: Promise<unknown> | undefined;
    host.restoreMachine = (lab, capture) => {
      lateRestore = gate.then(() => restore(lab, capture));
      return lateRestore as never;
    };
    // The run's own teardown works; by the time the late restore settles the engine fails.
    const teardown = host.teardown.bind(host);
    const engine = { down: false };
    host.teardown = async runId => {
      if (engine.down) throw new Error('engine unreachable');
      return teardown(runId);
    };
    const runs = service(host, { stepTimeoutMs: 100 });
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    expect((await runStore.getRun(started.id))!.status).toBe('failed');
    expect(await runStore.runsWithLabLeft()).toEqual([]);
    engine.down = true;
    release();
    await lateRestore;
    await vi.waitFor(async () => {
      expect(await runStore.runsWithLabLeft()).toEqual([
        { id: started.id, hypervisorHost: 'fake' },
      ]);
    }, eventually);
    expect((await host.listLabResources(started.id)).machines).toEqual([
      `${started.id}/resource:default/infra-01`,
    ]);

    engine.down = false;
    await runs.cleanUpInterruptedRuns();
    expect(await runStore.runsWithLabLeft()).toEqual([]);
    expect(await host.listLabResources(started.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it("removes the probe container a final check's probe makes again after its deadline", async () => {
    const host = new FakeHost(needs);
    const probe = host.probe.bind(host);
    const probed = new Map<string, number>();
    let lateProbe: Promise<unknown> | undefined;
    host.probe = (lab, machine, spec) => {
      const count = (probed.get(machine.machineRef) ?? 0) + 1;
      probed.set(machine.machineRef, count);
      // The final check's probe of infra-01 finds the probe container gone and makes it again, slowly.
      if (machine.machineRef !== 'resource:default/infra-01' || count === 1)
        return probe(lab, machine, spec);
      lateProbe = new Promise(resolve => setTimeout(resolve, 300)).then(() => {
        host.labels.set(`${lab.runId}/probe`, lab.runId);
        return probe(lab, machine, spec);
      });
      return lateProbe as never;
    };
    const runs = service(host, { stepTimeoutMs: 100 });
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    expect((await runStore.getRun(started.id))!.error?.message).toBe(
      'resource:default/infra-01 failed: probe tcp:1 of component:default/dns did not finish within 0.1 s after it was ready',
    );

    await lateProbe;
    await vi.waitFor(async () => {
      expect(await host.listLabResources(started.id)).toEqual({
        machines: [],
        networks: [],
      });
    }, eventually);
  });

  it('warns that a machine with neither a health check nor probes is ready only in that it runs', async () => {
    const bare: RecoveryGraph = {
      ...demoGraph,
      services: new Map(
        [
          {
            ...svc('component:default/dns', 'resource:default/infra-01'),
            probes: [],
          },
          {
            ...svc('component:default/database', 'resource:default/data-01', [
              'component:default/dns',
            ]),
            probes: [],
          },
          svc('component:default/web', 'resource:default/web-01', [
            'component:default/database',
          ]),
        ].map(x => [x.ref, x]),
      ),
    };
    const host = new FakeHost(needs);
    const inspect = host.inspectMachine.bind(host);
    // data-01 has a health check of its own, and no probes either.
    host.inspectMachine = async machine => ({
      ...(await inspect(machine)),
      ...(machine.machineRef === 'resource:default/data-01'
        ? { health: 'healthy' as const }
        : {}),
    });
    const runs = service(host, {}, bare);
    const run = await testRunOfWeb(runs);
    expect(run.status).toBe('succeeded');
    expect(
      run.steps
        .filter(s => s.level === 'warning')
        .map(s => [s.machineRef, s.message]),
    ).toEqual([
      [
        'resource:default/infra-01',
        'Ready only in that it runs: it has no health check and neither it nor its services have probes, so nothing showed them answering (annotate them, or the machine, with recovery.backstage-recovery.io/probes)',
      ],
    ]);
    await runs.shutdown();
  });

  it("stops a failed machine's wave siblings at once, and removes a late step's debris once the run ended", async () => {
    // dns and database boot in one wave; web waits for both.
    const wide: RecoveryGraph = {
      ...demoGraph,
      services: new Map(
        [
          svc('component:default/dns', 'resource:default/infra-01'),
          svc('component:default/database', 'resource:default/data-01'),
          svc('component:default/web', 'resource:default/web-01', [
            'component:default/dns',
            'component:default/database',
          ]),
        ].map(x => [x.ref, x]),
      ),
    };
    const host = new FakeHost({});
    const seen: string[] = [];
    const restore = host.restoreMachine.bind(host);
    host.restoreMachine = async (lab, capture) => {
      if (capture.machineRef === 'resource:default/infra-01')
        await new Promise(resolve => setTimeout(resolve, 300));
      return restore(lab, capture);
    };
    const probe = host.probe.bind(host);
    host.probe = async (lab, machine, spec) => {
      if (machine.machineRef === 'resource:default/data-01')
        await new Promise(resolve => setTimeout(resolve, 600));
      const result = await probe(lab, machine, spec);
      seen.push(`probed ${machine.machineRef}`);
      return result;
    };
    const teardown = host.teardown.bind(host);
    host.teardown = async runId => {
      seen.push('teardown');
      return teardown(runId);
    };
    const runs = service(
      host,
      { stepTimeoutMs: 100, machineReadyTimeoutMs: 2_000 },
      wide,
    );
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);

    const run = (await runStore.getRun(started.id))!;
    const failure =
      'resource:default/infra-01 failed: restore did not finish within 0.1 s';
    expect(run.error?.message).toBe(failure);
    // data-01's probe, still unanswered, was not waited for: it ended with the run.
    expect(
      run.machines.find(m => m.machineRef === 'resource:default/data-01'),
    ).toMatchObject({ phase: 'failed', message: `the run failed: ${failure}` });
    expect(seen[0]).toBe('teardown');
    expect(seen).not.toContain('probed resource:default/data-01');
    // infra-01's restore settles after the run's end: what it made goes then.
    await new Promise(resolve => setTimeout(resolve, 400));
    expect(await host.listLabResources(started.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('names the failing probe when the verify deadline falls during the inspect after it', async () => {
    const host = new FakeHost(needs);
    host.probe = async (_lab, machine) => {
      await new Promise(resolve => setTimeout(resolve, 250));
      return {
        ok: false,
        message: `connection to ${machine.machineRef}:1 refused`,
      };
    };
    const inspect = host.inspectMachine.bind(host);
    let inspections = 0;
    host.inspectMachine = async machine => {
      // Slow from the second inspect on: it outlasts the 50 ms left after the probe.
      if (++inspections > 1)
        await new Promise(resolve => setTimeout(resolve, 150));
      return inspect(machine);
    };
    const runs = service(host);
    const run = await testRunOfWeb(runs);
    expect(run.error).toMatchObject({
      machineRef: 'resource:default/infra-01',
      probe: 'tcp:1',
      message:
        'resource:default/infra-01 failed: probe tcp:1 of component:default/dns did not pass within 0.3 s: connection to resource:default/infra-01:1 refused',
    });
  });

  it('stops a hung step at shutdown instead of waiting for it', async () => {
    const host = new FakeHost(needs);
    host.restoreMachine = () => new Promise<never>(() => {});
    const runs = service(host); // default step deadline: minutes
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await vi.waitFor(async () => {
      expect((await runStore.getRun(started.id))!.machines[0].phase).toBe(
        'restoring',
      );
    }, eventually);
    await runs.shutdown();
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('interrupted');
    // The interruption is no machine's failure: the error names none, the machine says why it stopped.
    expect(run.error).toEqual({
      message: 'Interrupted: the backend is shutting down',
    });
    expect(run.machines.map(m => [m.machineRef, m.phase, m.message])).toEqual([
      [
        'resource:default/infra-01',
        'interrupted',
        'Interrupted: the backend is shutting down',
      ],
      ['resource:default/data-01', 'skipped', undefined],
      ['resource:default/web-01', 'skipped', undefined],
    ]);
    expect(run.machines[0].finishedAt).toBeDefined();
    expect(
      run.steps.filter(s => s.level === 'error').map(s => s.message),
    ).toEqual(['Interrupted: the backend is shutting down']);
  });

  /** Tells that the stage is reached, then never answers. */
  const hang = (reached: () => void) => {
    reached();
    return new Promise<never>(() => {});
  };
  it.each<[string, (host: FakeHost, reached: () => void) => void]>([
    [
      'reading the room',
      (h, r) => {
        (h as HypervisorHost).room = () => hang(r);
      },
    ],
    [
      'creating the lab',
      (h, r) => {
        h.createLab = () => hang(r);
      },
    ],
    [
      'restoring wave 1',
      (h, r) => {
        h.restoreMachine = () => hang(r);
      },
    ],
    [
      'restoring wave 2',
      (h, r) => {
        const restore = h.restoreMachine.bind(h);
        h.restoreMachine = (lab, c) =>
          c.machineRef.endsWith('data-01') ? hang(r) : restore(lab, c);
      },
    ],
    [
      'starting',
      (h, r) => {
        h.startMachine = () => hang(r);
      },
    ],
    [
      'inspecting',
      (h, r) => {
        h.inspectMachine = () => hang(r);
      },
    ],
    [
      'probing wave 3',
      (h, r) => {
        const probe = h.probe.bind(h);
        h.probe = (lab, m, spec) =>
          m.machineRef.endsWith('web-01') ? hang(r) : probe(lab, m, spec);
      },
    ],
    [
      'the final check',
      (h, r) => {
        const probe = h.probe.bind(h);
        let n = 0;
        h.probe = (lab, m, spec) =>
          m.machineRef.endsWith('infra-01') && ++n > 1
            ? hang(r)
            : probe(lab, m, spec);
      },
    ],
  ])(
    'interrupted while %s, a test recovery ends interrupted, no machine in progress, its lab gone, counting for nothing',
    async (_, stage) => {
      const host = new FakeHost(needs);
      let reached!: () => void;
      const at = new Promise<void>(resolve => {
        reached = resolve;
      });
      stage(host, reached);
      const runs = service(host, { machineReadyTimeoutMs: 60_000 });
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      await at;
      await runs.shutdown();
      const run = (await runStore.getRun(started.id))!;
      expect(run).toMatchObject({
        status: 'interrupted',
        error: { message: 'Interrupted: the backend is shutting down' },
        rtoSeconds: undefined,
      });
      // None left in progress, and none failed: one cut off says so.
      expect(
        run.machines.filter(
          m => !['ready', 'skipped', 'interrupted'].includes(m.phase),
        ),
      ).toEqual([]);
      expect(run.steps.at(-1)!.message).toMatch(/^Lab torn down: removed /);
      expect(await host.listLabResources(run.id)).toEqual({
        machines: [],
        networks: [],
      });
      expect(
        await runHistory.lastFinishedRun({
          entityRef: 'component:default/web',
        }),
      ).toBeUndefined();
    },
  );

  it('admits no run once the backend shuts down, and interrupts one admitted as it began', async () => {
    const host = new FakeHost(needs);
    const runs = service(host);
    // Shutting down while a request is being admitted: that run must not go on driving unseen.
    const admit = runStore.admitRun.bind(runStore);
    let stopped: Promise<void> | undefined;
    runStore.admitRun = async (...args) => {
      const admission = await admit(...args);
      stopped ??= runs.shutdown();
      return admission;
    };
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await stopped;
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('interrupted');
    expect(run.error).toEqual({
      message: 'Interrupted: the backend is shutting down',
    });
    expect(host.started).toEqual([]);
    expect(await host.listLabResources(run.id)).toEqual({
      machines: [],
      networks: [],
    });

    // Asked again (the CLI does on a 503), it is the next backend's to run.
    await expect(
      runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      }),
    ).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      message: expect.stringContaining('shutting down'),
    });
    expect(await runStore.activeRuns({})).toEqual([]);
  });

  it('tears down a test lab at shutdown but keeps what an interrupted failover booted', async () => {
    // Infra never comes up: both runs are still verifying it when the backend shuts down.
    const never = { 'resource:default/infra-01': ['resource:default/never'] };
    const testHost = new FakeHost(never);
    const testRuns = service(testHost, { machineReadyTimeoutMs: 60_000 });
    const failoverHost = new FakeHost(never);
    const failoverRuns = service(failoverHost, {
      machineReadyTimeoutMs: 60_000,
    });
    // In turn: to admission both hosts are the one host 'fake'.
    const test = await testRuns.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await vi.waitFor(async () => {
      expect((await runStore.getRun(test.id))!.machines[0].phase).toBe(
        'verifying',
      );
    }, eventually);
    await testRuns.shutdown();
    expect((await runStore.getRun(test.id))!.error?.message).toBe(
      'Interrupted: the backend is shutting down',
    );
    expect(await testHost.listLabResources(test.id)).toEqual({
      machines: [],
      networks: [],
    });

    const failover = await failoverRuns.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await vi.waitFor(async () => {
      expect((await runStore.getRun(failover.id))!.machines[0].phase).toBe(
        'verifying',
      );
    }, eventually);
    await failoverRuns.shutdown();
    const run = (await runStore.getRun(failover.id))!;
    expect(run.status).toBe('interrupted');
    expect(run.error?.message).toBe(
      // Its one container is named: the machine it was verifying, not ready.
      `Interrupted: the backend is shutting down; kept 1 container and 1 network on fake, labelled with run ${failover.id} (not ready: resource:default/infra-01): a failover is never torn down automatically`,
    );
    expect(await failoverHost.listLabResources(failover.id)).toEqual({
      machines: [`${failover.id}/resource:default/infra-01`],
      networks: [`lab-${failover.id}-prod`],
    });
    expect(run.steps.map(s => s.message)).not.toContainEqual(
      expect.stringMatching(/^Lab torn down/),
    );
  });

  it('keeps what a failover orphaned by a stopped backend booted', async () => {
    const host = new FakeHost(needs);
    await runStore.insertRun(
      {
        id: 'orphan',
        entityRef: 'component:default/web',
        mode: 'failover',
        trigger: 'user',
        hypervisorHost: 'fake',
        plan: { entityRef: 'component:default/web', waves: [], machines: [] },
        options: {},
        machines: [{ machineRef: 'resource:default/infra-01', wave: 0 }],
      },
      new Date(Date.now() - 10_000),
    );
    await runStore.updateRun('orphan', { status: 'running' });
    const lab = await host.createLab('orphan', [{ name: 'prod', aliases: [] }]);
    await host.restoreMachine(lab, {
      machineRef: 'resource:default/infra-01',
    } as RestorableCapture);
    const runs = service(host, { staleAfterMs: -60_000 });
    expect(await runs.cleanUpInterruptedRuns()).toEqual(['orphan']);
    const run = (await runStore.getRun('orphan'))!;
    expect(run.status).toBe('interrupted');
    expect(run.error?.message).toBe(
      'Interrupted: the backend driving this run stopped; kept 1 container and 1 network on fake, labelled with run orphan: a failover is never torn down automatically',
    );
    expect(await host.listLabResources('orphan')).toEqual({
      machines: ['orphan/resource:default/infra-01'],
      networks: ['lab-orphan-prod'],
    });
  });

  it('keeps what a failed failover booted, saying what it left running, where a test recovery tears down', async () => {
    // web-01 never answers: the last wave fails after infra-01 and data-01 are ready.
    const host = new FakeHost({
      ...needs,
      'resource:default/web-01': ['resource:default/never'],
    });
    const runs = service(host);
    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await runs.waitFor(failover.id);
    const run = (await runStore.getRun(failover.id))!;
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({
      machineRef: 'resource:default/web-01',
      probe: 'tcp:1',
      // The three containers it counts are the three machines it names: two running, one not ready.
      message: `resource:default/web-01 failed: probe tcp:1 of component:default/web did not pass within 0.3 s: connection to resource:default/web-01:1 refused; kept 3 containers and 1 network on fake, labelled with run ${failover.id} (left running: resource:default/infra-01, resource:default/data-01; not ready: resource:default/web-01): a failover is never torn down automatically`,
    });
    expect(await host.listLabResources(failover.id)).toEqual({
      machines: [
        'resource:default/infra-01',
        'resource:default/data-01',
        'resource:default/web-01',
      ].map(m => `${failover.id}/${m}`),
      networks: [`lab-${failover.id}-prod`],
    });
    expect(run.steps.map(s => s.message)).not.toContainEqual(
      expect.stringMatching(/^Lab torn down/),
    );
    expect(await runStore.runsWithLabLeft()).toEqual([]);

    const test = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(test.id);
    expect((await runStore.getRun(test.id))!.error?.message).toBe(
      'resource:default/web-01 failed: probe tcp:1 of component:default/web did not pass within 0.3 s: connection to resource:default/web-01:1 refused',
    );
    expect(await host.listLabResources(test.id)).toEqual({
      machines: [],
      networks: [],
    });
    expect((await host.listLabResources(failover.id)).machines).toHaveLength(3);
  });

  /** A newer capture of each demo machine, on production's subnet 172.29.10.0/24 at its own address. */
  async function captureOnProductionSubnet() {
    for (const [n, address] of [
      ['infra-01', '172.29.10.11'],
      ['data-01', '172.29.10.12'],
      ['web-01', '172.29.10.13'],
    ]) {
      const [capture] = await captureStore.listCaptures(
        `resource:default/${n}`,
        1,
      );
      await captureStore.insertCapture({
        ...capture,
        id: `cap-subnet-${n}`,
        runtime: {
          ...capture.runtime,
          networks: [
            {
              name: 'prod',
              subnet: '172.29.10.0/24',
              ipv4Address: address,
              aliases: [],
            },
          ],
        },
        createdAt: new Date(Date.now() + 1000).toISOString(),
      });
    }
  }

  it("refuses, before a run exists, a test recovery or a second failover beside what a failover keeps on the host on production's subnets; admits them once it is removed", async () => {
    await captureOnProductionSubnet();
    const host = new FakeHost(needs);
    const runs = service(host);
    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await runs.waitFor(failover.id);
    const { finishedAt, status } = (await runStore.getRun(failover.id))!;
    expect(status).toBe('succeeded');
    const kept = `failover ${failover.id} of component:default/web (succeeded at ${finishedAt}) keeps 3 containers and 1 network there`;
    const remove =
      `Once production no longer needs them, release failover ${failover.id} (recovery release ${failover.id}, or POST /runs/${failover.id}/release), ` +
      `or else remove what it kept there by hand (everything labelled recovery.backstage-recovery.io/run-id=${failover.id}), and start the run again; or recover onto another hypervisor host`;
    await expect(
      runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      }),
    ).rejects.toThrow(
      `component:default/web cannot be test-recovered on fake now: ${kept}, serving production with production's subnet 172.29.10.0/24; ` +
        `this test recovery's isolated lab cannot have those subnets beside them, so it would not emulate production. ${remove}`,
    );
    const second = runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await expect(second).rejects.toThrow(
      `component:default/web cannot be failed over on fake now: ${kept}, serving production with machines resource:default/infra-01, resource:default/data-01, resource:default/web-01 and production's subnet 172.29.10.0/24; ` +
        `a second failover would boot them again, or apart from them on other addresses. ${remove}`,
    );
    await expect(second).rejects.toBeInstanceOf(RunConflictError);
    // Named, with its parts for a client to say it once for every run it holds up.
    await expect(second).rejects.toMatchObject({
      name: 'KeptFailoverError',
      failover: `failover ${failover.id} of component:default/web (succeeded at ${finishedAt})`,
      host: 'fake',
      keeps: '3 containers and 1 network',
      holding:
        "machines resource:default/infra-01, resource:default/data-01, resource:default/web-01 and production's subnet 172.29.10.0/24",
      runId: failover.id,
      entityRef: 'component:default/web',
    });
    // Refused, not failed: nothing counts against the entity.
    expect((await runStore.listRuns({ limit: 10 })).map(r => r.id)).toEqual([
      failover.id,
    ]);
    // An engineer released the failover: what it kept is gone, and the host is free for both again.
    await runs.releaseFailover(failover.id, 'user:default/ana');
    expect(await host.listLabResources(failover.id)).toEqual({
      machines: [],
      networks: [],
    });
    const test = await testRunOfWeb(runs);
    expect(test.status).toBe('succeeded');

    // Whoever may not see the failover's entity is not told which run it is.
    const hiddenRuns = service(host, {}, { ...demoGraph, rootRef: HIDDEN });
    const hiddenFailover = await hiddenRuns.start({
      entityRef: HIDDEN,
      mode: 'failover',
      trigger: 'user',
    });
    await hiddenRuns.waitFor(hiddenFailover.id);
    const refusal: Error = await runs
      .start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
        credentials: mockCredentials.user(),
      })
      .then(
        () => new Error('admitted'),
        e => e,
      );
    expect(refusal.message).toMatch(
      /^component:default\/web cannot be test-recovered on fake now: an earlier failover keeps 3 containers and 1 network there, .* have that failover released \(or what it kept there removed\) and start the run again/,
    );
    expect(refusal.message).not.toContain(hiddenFailover.id);
    expect(refusal).toMatchObject({ runId: undefined, entityRef: undefined });
  });

  it("refuses a test recovery beside a failover that keeps production's IPv6 subnet, however the captures write it, though their IPv4 subnets differ", async () => {
    /** A newer capture of each demo machine on `subnet` and production's IPv6 subnet as `subnet6` writes it. */
    const captureDualStack = async (
      tag: string,
      subnet: string,
      subnet6: string,
    ) => {
      for (const [i, n] of ['infra-01', 'data-01', 'web-01'].entries()) {
        const [capture] = await captureStore.listCaptures(
          `resource:default/${n}`,
          1,
        );
        await captureStore.insertCapture({
          ...capture,
          id: `cap-${tag}-${n}`,
          runtime: {
            ...capture.runtime,
            networks: [
              {
                name: 'prod',
                subnet,
                ipv6Subnet: subnet6,
                ipv6Address: subnet6.replace(/::?\/64$/, `::${11 + i}`),
                aliases: [],
              },
            ],
          },
          createdAt: new Date(Date.now() + 1000).toISOString(),
        });
      }
    };
    await captureDualStack('v6-kept', '172.29.10.0/24', 'fd00:29:10::/64');
    const host = new FakeHost(needs);
    const runs = service(host);
    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await runs.waitFor(failover.id);
    expect((await runStore.getRun(failover.id))!.status).toBe('succeeded');
    // Captured since on another IPv4 subnet: only the IPv6 one is held.
    await captureDualStack('v6-test', '172.29.99.0/24', 'FD00:29:10:0::/64');
    await expect(
      runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      }),
    ).rejects.toThrow(
      `serving production with production's subnet fd00:29:10::/64; this test recovery's isolated lab cannot have those subnets beside them`,
    );
  });

  it('refuses a test recovery beside a failover that finished between the check of what failovers keep and the admission', async () => {
    await captureOnProductionSubnet();
    const host = new FakeHost(needs);
    const runs = service(host);
    // The failover's last step, its result, is held: it is still active when the test run is checked.
    let atLastStep!: () => void;
    const lastStep = new Promise<void>(resolve => (atLastStep = resolve));
    let finish!: () => void;
    const finishing = new Promise<void>(resolve => (finish = resolve));
    const updateRun = runStore.updateRun.bind(runStore);
    runStore.updateRun = async (runId, patch) => {
      if (patch.status === 'succeeded') {
        atLastStep();
        await finishing;
      }
      return updateRun(runId, patch);
    };
    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await lastStep;
    // Once the check has looked (no failover finished yet), the failover finishes, before the admission.
    const finishedFailovers = runStore.finishedFailovers.bind(runStore);
    const seen: string[][] = [];
    runStore.finishedFailovers = async hypervisorHost => {
      const failovers = await finishedFailovers(hypervisorHost);
      seen.push(failovers.map(f => f.id));
      if (seen.length === 1) {
        finish();
        await runs.waitFor(failover.id);
      }
      return failovers;
    };
    const refusal = runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await expect(refusal).rejects.toMatchObject({
      name: 'KeptFailoverError',
      message: expect.stringContaining(
        `component:default/web cannot be test-recovered on fake now: failover ${failover.id} of component:default/web (succeeded at `,
      ),
      runId: failover.id,
    });
    expect(seen).toEqual([[], [failover.id]]);
    // Refused, not admitted to fail late on the subnets the failover keeps.
    expect((await runStore.listRuns({ limit: 10 })).map(r => r.id)).toEqual([
      failover.id,
    ]);
    expect((await runStore.getRun(failover.id))!.status).toBe('succeeded');
  });

  it('releases a finished failover: removes what it kept, says who and what in its timeline; a second release finds nothing left', async () => {
    const host = new FakeHost(needs);
    const runs = service(host);
    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await runs.waitFor(failover.id);
    // Its timeline says, when it succeeds, what it keeps and how that ends.
    const machines = ['infra-01', 'data-01', 'web-01'].map(
      m => `resource:default/${m}`,
    );
    expect(
      (await runStore.getRun(failover.id))!.steps.map(s => s.message),
    ).toContain(
      `Kept 3 containers and 1 network on fake, labelled with run ${failover.id} (left running: ${machines.join(', ')}): a failover is never torn down automatically; ` +
        `release it once production runs on its primary machines again (recovery release ${failover.id}, or POST /runs/${failover.id}/release)`,
    );
    // Two at once (a double click): one removes it all, the other waits for it and finds nothing.
    const [first, second] = await Promise.all([
      runs.releaseFailover(failover.id, 'user:default/ana'),
      runs.releaseFailover(failover.id, 'user:default/ben'),
    ]);
    const containers = ['infra-01', 'data-01', 'web-01'].map(
      m => `${failover.id}/resource:default/${m}`,
    );
    const removed = `removed 3 containers (${containers.join(', ')}) and 1 network (lab-${failover.id}-prod) it kept on fake`;
    // Whichever of the two reaches the host first removes it all; the other finds nothing left.
    const said = [first, second]
      .map(r => r.steps.at(-1)!)
      .map(step => ({ level: step.level, message: step.message }));
    expect(said.map(step => step.level)).toEqual(['info', 'info']);
    expect(
      said
        .map(step =>
          step.message.replace(/^Released by user:default\/(ana|ben): /, ''),
        )
        .sort(),
    ).toEqual(['nothing of it was left on fake', removed]);
    expect(await host.listLabResources(failover.id)).toEqual({
      machines: [],
      networks: [],
    });
    // The run itself stands as it finished.
    expect(second).toMatchObject({
      status: 'succeeded',
      finishedAt: (await runStore.getRun(failover.id))!.finishedAt,
    });
    const again = await runs.releaseFailover(failover.id);
    expect(again.steps.at(-1)!.message).toBe(
      'Released by an unnamed caller: nothing of it was left on fake',
    );
  });

  it('refuses to release a test recovery, an active failover or an unknown run; one whose host cannot tear it down is a 503 that records nothing', async () => {
    const host = new FakeHost(needs);
    const runs = service(host);
    const test = await testRunOfWeb(runs);
    await expect(runs.releaseFailover(test.id)).rejects.toThrow(
      `Run ${test.id} is a test recovery, not a failover: only a failover's machines are kept on the host, and a test recovery's lab is torn down when it finishes`,
    );
    await expect(runs.releaseFailover('no-such-run')).rejects.toMatchObject({
      name: 'NotFoundError',
    });
    await runStore.insertRun(
      {
        id: 'booting',
        entityRef: 'component:default/web',
        mode: 'failover',
        trigger: 'user',
        hypervisorHost: 'fake',
        plan: {
          entityRef: 'component:default/web',
          waves: [],
          machines: [],
        } as any,
        options: {},
        machines: [],
      },
      new Date(),
    );
    const active = runs.releaseFailover('booting');
    await expect(active).rejects.toThrow(
      'Failover booting is still pending: release it once it has finished (its machines may be booting production now)',
    );
    await expect(active).rejects.toBeInstanceOf(ConflictError);
    await runStore.updateRun('booting', {
      status: 'failed',
      finishedAt: new Date().toISOString(),
    });

    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await runs.waitFor(failover.id);
    const steps = (await runStore.getRun(failover.id))!.steps.length;
    const teardown = host.teardown.bind(host);
    host.teardown = async () => {
      throw new Error('connect ECONNREFUSED /var/run/docker.sock');
    };
    const unreachable = runs.releaseFailover(failover.id, 'user:default/ana');
    await expect(unreachable).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
    });
    await expect(unreachable).rejects.toThrow(
      `Hypervisor host 'fake' could not tear down what failover ${failover.id} kept there: connect ECONNREFUSED /var/run/docker.sock. The failover is not released: release it again once the host answers`,
    );
    // A host that hangs past the step deadline is as unreachable.
    const hung = service(host, { stepTimeoutMs: 50 });
    host.teardown = () => new Promise<never>(() => {});
    await expect(hung.releaseFailover(failover.id)).rejects.toThrow(
      /could not tear down what failover .* kept there: teardown did not finish within 0.05 s/,
    );
    expect((await runStore.getRun(failover.id))!.steps).toHaveLength(steps);
    expect((await host.listLabResources(failover.id)).machines).toHaveLength(3);
    host.teardown = teardown;
    expect(
      (await runs.releaseFailover(failover.id, 'user:default/ana')).steps.at(
        -1,
      )!.message,
    ).toMatch(/^Released by user:default\/ana: removed 3 containers/);
  });

  it("fails a failover its host refuses before making anything (an earlier failover's machines hold production's subnets) with the host's reason, and no note of anything kept", async () => {
    const refusal =
      "production network prod (172.29.10.0/24) is held on engine fake by network lab-first-prod of failover first, whose machines kept there serve production: this failover's machines would boot on other addresses, apart from them";
    const host = new FakeHost(needs);
    host.createLab = async () => {
      throw new ConflictError(refusal);
    };
    const runs = service(host);
    const failover = await runs.start({
      entityRef: 'component:default/web',
      mode: 'failover',
      trigger: 'user',
    });
    await runs.waitFor(failover.id);
    const run = (await runStore.getRun(failover.id))!;
    expect(run.status).toBe('failed');
    expect(run.error).toEqual({
      message: `${refusal}; nothing of it is on fake`,
    });
    expect(run.machines.map(m => m.phase)).toEqual([
      'skipped',
      'skipped',
      'skipped',
    ]);
    expect(await runStore.runsWithLabLeft()).toEqual([]);
  });

  it('claims an orphaned-looking run before tearing its lab down: its live driver stops without failing a machine', async () => {
    // infra-01 never comes up: the run is verifying it when another replica cleans up.
    const host = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    const teardown = host.teardown.bind(host);
    host.teardown = async runId => {
      const removed = await teardown(runId);
      await new Promise(resolve => setTimeout(resolve, 200)); // an engine takes its time
      return removed;
    };
    const driver = service(host, { machineReadyTimeoutMs: 60_000 });
    const started = await driver.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await vi.waitFor(async () => {
      expect((await runStore.getRun(started.id))!.machines[0].phase).toBe(
        'verifying',
      );
    }, eventually);
    // Another replica that counts any heartbeat as stale (a long pause, say).
    const cleaner = service(host, { staleAfterMs: -60_000 });
    // It pauses again between its claim and tearing down: the live driver learns meanwhile, at
    // its next heartbeat, that it lost the run, and must leave the lab to the cleaner.
    const claim = runStore.claimStaleRun.bind(runStore);
    runStore.claimStaleRun = async (...args) => {
      const claimed = await claim(...args);
      await new Promise(resolve =>
        setTimeout(resolve, options.heartbeatIntervalMs * 6),
      );
      return claimed;
    };
    expect(await cleaner.cleanUpInterruptedRuns()).toEqual([started.id]);
    await driver.waitFor(started.id);

    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('interrupted');
    expect(run.error).toEqual({
      message:
        'Interrupted: the backend driving this run stopped; removed 1 container and 1 network',
    });
    expect(run.machines.map(m => [m.machineRef, m.phase, m.message])).toEqual([
      [
        'resource:default/infra-01',
        'interrupted',
        'Interrupted: the backend driving this run stopped',
      ],
      ['resource:default/data-01', 'skipped', undefined],
      ['resource:default/web-01', 'skipped', undefined],
    ]);
    // The driver saw its machine vanish with the lab: no failure of it, only that it stopped;
    // its own teardown came after the cleaner's, with nothing left to remove.
    const errors = run.steps
      .filter(s => s.level === 'error')
      .map(s => s.message);
    expect(errors).toHaveLength(2);
    expect(errors).toEqual(
      expect.arrayContaining([
        'Interrupted: the backend driving this run stopped; removed 1 container and 1 network',
        'Stopped driving: the run was already finished elsewhere; removed 0 containers and 0 networks',
      ]),
    );
    expect(await host.listLabResources(started.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  it('records the lab as left when a driver that lost its run cannot tear down what it built', async () => {
    // infra-01 never comes up: the run is verifying it when another replica fails it.
    const host = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    const teardown = host.teardown.bind(host);
    const engine = { down: false };
    host.teardown = async runId => {
      if (engine.down) throw new Error('engine unreachable');
      return teardown(runId);
    };
    const runs = service(host, { machineReadyTimeoutMs: 60_000 });
    const started = await runs.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await vi.waitFor(async () => {
      expect((await runStore.getRun(started.id))!.machines[0].phase).toBe(
        'verifying',
      );
    }, eventually);
    engine.down = true;
    await runStore.updateRun(started.id, {
      status: 'failed',
      error: { message: 'failed elsewhere' },
    });
    await runs.waitFor(started.id);

    const run = (await runStore.getRun(started.id))!;
    expect(run.error?.message).toBe('failed elsewhere');
    expect(run.steps.map(s => s.message)).toContain(
      'Stopped driving: the run was already finished elsewhere; teardown failed: engine unreachable',
    );
    expect(await runStore.runsWithLabLeft()).toEqual([
      { id: started.id, hypervisorHost: 'fake' },
    ]);
    engine.down = false;
    await runs.cleanUpInterruptedRuns();
    expect(await host.listLabResources(started.id)).toEqual({
      machines: [],
      networks: [],
    });
  });

  /** A test run left running on the host by a backend that stopped: its heartbeat is as of now. */
  async function orphanOnHost(host: FakeHost, id: string): Promise<void> {
    await runStore.insertRun(
      {
        id,
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
        hypervisorHost: 'fake',
        plan: { entityRef: 'component:default/web', waves: [], machines: [] },
        options: {},
        machines: [],
      },
      new Date(),
    );
    await runStore.updateRun(id, { status: 'running' });
    await host.createLab(id, [{ name: 'prod', aliases: [] }]);
  }

  it("claims a run orphaned after a sweep once its heartbeat turns stale, not at the cleanup task's next run, and looks no more once no run is active", async () => {
    const host = new FakeHost(needs);
    const runs = service(host);
    const sweeps = vi.spyOn(runs, 'cleanUpInterruptedRuns');
    const beatAt = Date.now();
    await orphanOnHost(host, 'orphan');
    // Its heartbeat is fresh: nothing to claim yet (the task would look next in 30 s).
    expect(await runs.sweepInterruptedRuns()).toEqual([]);
    // Interrupted by the claim, then told what its teardown removed: waited for whole.
    await vi.waitFor(async () => {
      expect((await runStore.getRun('orphan'))!).toMatchObject({
        status: 'interrupted',
        error: {
          message:
            'Interrupted: the backend driving this run stopped; removed 0 containers and 1 network',
        },
      });
    }, eventually);
    const run = (await runStore.getRun('orphan'))!;
    // Stale by staleAfterMs (1 s), not sooner, and claimed then, not at the task's next run 30 s
    // on: only that takes 5 s more, however loaded the machine.
    const claimedAfter = Date.parse(run.finishedAt!) - beatAt;
    expect(claimedAfter).toBeGreaterThanOrEqual(options.staleAfterMs);
    expect(claimedAfter).toBeLessThan(options.staleAfterMs + 5_000);
    expect(await host.listLabResources('orphan')).toEqual({
      machines: [],
      networks: [],
    });
    expect(sweeps).toHaveBeenCalledTimes(2);
    // No run active: no look left.
    await new Promise(resolve =>
      setTimeout(resolve, options.staleAfterMs + 200),
    );
    expect(sweeps).toHaveBeenCalledTimes(2);
    await runs.shutdown();
  });

  it('keeps one look for orphaned runs, which each sweep replaces, claims no live run, and leaves no look after shutdown', async () => {
    const host = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    const runs = service(host);
    const sweeps = vi.spyOn(runs, 'cleanUpInterruptedRuns');
    await orphanOnHost(host, 'orphan');
    for (let i = 0; i < 3; i++) await runs.sweepInterruptedRuns();
    // Half a threshold later its heartbeat is fresher (a driver stalled a while, say): the sweeps
    // then look again only when that one turns stale, not also when the first would have.
    await new Promise(resolve => setTimeout(resolve, options.staleAfterMs / 2));
    const beatAt = Date.now();
    await runStore.heartbeat('orphan');
    for (let i = 0; i < 3; i++) await runs.sweepInterruptedRuns();
    await vi.waitFor(async () => {
      expect((await runStore.getRun('orphan'))!.status).toBe('interrupted');
    }, eventually);
    expect(
      Date.parse((await runStore.getRun('orphan'))!.finishedAt!) - beatAt,
    ).toBeGreaterThanOrEqual(options.staleAfterMs);
    // The six sweeps and one look.
    expect(sweeps).toHaveBeenCalledTimes(7);

    // A live run on another replica, beating every 50 ms (never ready, it holds the host), is
    // looked at each time its heartbeat would turn stale, and never is.
    const driver = service(host, { machineReadyTimeoutMs: 60_000 });
    const live = await driver.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await runs.sweepInterruptedRuns();
    await new Promise(resolve => setTimeout(resolve, 2 * options.staleAfterMs));
    expect((await runStore.getRun(live.id))!.status).toBe('running');
    expect(sweeps.mock.calls.length).toBeGreaterThan(8);
    await runs.shutdown();
    const looked = sweeps.mock.calls.length;
    await new Promise(resolve => setTimeout(resolve, 2 * options.staleAfterMs));
    expect(sweeps).toHaveBeenCalledTimes(looked);
    await driver.shutdown();
    expect((await runStore.getRun(live.id))!.error?.message).toBe(
      'Interrupted: the backend is shutting down',
    );
  });

  it("judges a run stale by the database's clock, not by a cleaning replica's skewed one", async () => {
    const host = new FakeHost({
      'resource:default/infra-01': ['resource:default/never'],
    });
    // Its ready timeout outlasts the skew below, which it sees too (one process, one Date.now).
    const driver = service(host, { machineReadyTimeoutMs: 10 * 60_000 });
    const started = await driver.start({
      entityRef: 'component:default/web',
      mode: 'test',
      trigger: 'user',
    });
    await vi.waitFor(async () => {
      expect((await runStore.getRun(started.id))!.machines[0].phase).toBe(
        'verifying',
      );
    }, eventually);
    // The cleaning replica's clock runs 5 min ahead: the driver, beating every 50 ms, is alive
    // (stale only after 30 s, for a loaded machine may hold its beats back a while).
    const realNow = Date.now;
    const skewed = vi
      .spyOn(Date, 'now')
      .mockImplementation(() => realNow.call(Date) + 5 * 60_000);
    try {
      expect(
        await service(host, { staleAfterMs: 30_000 }).cleanUpInterruptedRuns(),
      ).toEqual([]);
    } finally {
      skewed.mockRestore();
    }
    expect((await runStore.getRun(started.id))!.status).toBe('running');
    expect((await host.listLabResources(started.id)).machines).toHaveLength(1);
    await driver.shutdown();
    expect((await runStore.getRun(started.id))!.error?.message).toBe(
      'Interrupted: the backend is shutting down',
    );
  });

  it.each(['test', 'failover'] as const)(
    'stops driving a %s run another replica has failed, without overwriting that failure',
    async mode => {
      const host = new FakeHost(needs);
      let release!: () => void;
      const gate = new Promise<void>(resolve => (release = resolve));
      const restore = host.restoreMachine.bind(host);
      let restored: Promise<unknown> | undefined;
      host.restoreMachine = (lab, capture) => {
        const late = gate.then(() => restore(lab, capture));
        restored = late;
        return late;
      };
      const runs = service(host);
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode,
        trigger: 'user',
      });
      await vi.waitFor(async () => {
        expect((await runStore.getRun(started.id))!.machines[0].phase).toBe(
          'restoring',
        );
      }, eventually);
      // What cleanUpInterruptedRuns on another replica writes when the heartbeat looks stale.
      await runStore.updateRun(started.id, {
        status: 'failed',
        error: { message: 'failed elsewhere' },
      });
      // Its heartbeat finds out; only then does the restore finish, late.
      await vi.waitFor(async () => {
        expect(
          (await runStore.getRun(started.id))!.steps.map(s => s.message),
        ).toContainEqual(
          expect.stringMatching(
            /^Stopped driving: the run was already finished elsewhere/,
          ),
        );
      }, eventually);
      release();
      await runs.waitFor(started.id);
      await restored;

      const run = (await runStore.getRun(started.id))!;
      expect(run.status).toBe('failed');
      expect(run.error?.message).toBe('failed elsewhere');
      expect(run.machines.some(m => m.phase === 'ready')).toBe(false);
      expect(host.started).toEqual([]);
      expect(run.steps.map(s => s.message)).toContainEqual(
        expect.stringMatching(
          /^Stopped driving: the run was already finished elsewhere/,
        ),
      );
      // A test lab goes, even what its late restore created; a failover is never torn down.
      await vi.waitFor(async () => {
        expect(await host.listLabResources(started.id)).toEqual(
          mode === 'test'
            ? { machines: [], networks: [] }
            : {
                machines: [`${started.id}/resource:default/infra-01`],
                networks: [`lab-${started.id}-prod`],
              },
        );
      }, eventually);
    },
  );
});

describe('HypervisorHostBusyError', () => {
  it('reaches HTTP clients as a 409 they can tell from a machine never captured', async () => {
    // Backstage's own error handler, as the backend's root router applies it.
    const app = express();
    app.post('/busy', () => {
      throw new HypervisorHostBusyError('fake', {
        runId: 'r1',
        entityRef: 'component:default/web',
      });
    });
    app.post('/busy-hidden', () => {
      throw new HypervisorHostBusyError('fake');
    });
    app.post('/uncaptured', () => {
      throw new ConflictError('No capture of resource:default/data-01 yet');
    });
    app.use(
      MiddlewareFactory.create({
        config: mockServices.rootConfig(),
        logger: mockServices.logger.mock(),
      }).error(),
    );

    const busy = await request(app).post('/busy');
    expect(busy.status).toBe(409);
    expect(busy.body.error).toMatchObject({
      name: 'HypervisorHostBusyError',
      message:
        "Hypervisor host 'fake' is busy with run r1 of component:default/web",
      runId: 'r1',
      entityRef: 'component:default/web',
    });
    // Held by a run the caller may not see: told apart all the same, naming no run.
    const hidden = await request(app).post('/busy-hidden');
    expect(hidden.status).toBe(409);
    expect(hidden.body.error).toEqual({
      name: 'HypervisorHostBusyError',
      message: "Hypervisor host 'fake' is busy with another run",
      statusCode: 409,
    });
    const uncaptured = await request(app).post('/uncaptured');
    expect(uncaptured.status).toBe(409);
    expect(uncaptured.body.error.name).toBe('ConflictError');
  });
});
