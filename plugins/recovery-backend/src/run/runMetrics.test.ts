import { TestDatabases } from '@backstage/backend-test-utils';
import type {
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { RecoveryMetrics } from '../service/RecoveryMetrics';
import { storedCapture } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { recordedMetrics } from '../testing/metrics';
import { runServiceOver } from '../testing/runService';

/* How runs end, in the plugin's metrics: once a run, wherever it ends; the RTO of those that succeed. */

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

const WEB = 'resource:default/web-01';
const service: ServiceNode = {
  ref: 'component:default/web',
  machines: [WEB],
  dependsOn: [],
  probes: [{ kind: 'tcp', port: 1 }],
};
const graph: RecoveryGraph = {
  rootRef: service.ref,
  roots: [service.ref],
  services: new Map([[service.ref, service]]),
  machines: new Map([
    [
      WEB,
      {
        ref: WEB,
        locator: { machineRef: WEB, engine: 'primary', container: 'web-01' },
      },
    ],
  ]),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};
const FINISHED = 'recovery.runs.finished';
const RTO = 'recovery.runs.rto';
const eventually = { timeout: 10_000, interval: 20 };

describe('run metrics', () => {
  let runStore: RunStore;
  let captureStore: CaptureStore;

  beforeEach(async () => {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    runStore = new RunStore(knex);
    captureStore = new CaptureStore(knex);
    await captureStore.insertCapture(storedCapture('web-01'));
  });

  /** A RunService on `host` whose metrics are recorded. */
  function recorded(host: FakeHost, timings = {}) {
    const recording = recordedMetrics();
    const runs = runServiceOver(
      runStore,
      captureStore,
      host,
      graph,
      timings,
      new RecoveryMetrics(recording.metrics, 3600),
    );
    return { runs, ...recording };
  }

  it('counts a succeeded test recovery by result, mode and trigger, and records its measured RTO in seconds', async () => {
    const { runs, made, calls } = recorded(new FakeHost({}));
    const started = await runs.start({
      entityRef: service.ref,
      mode: 'test',
      trigger: 'schedule',
    });
    await runs.waitFor(started.id);
    const run = (await runStore.getRun(started.id))!;
    expect(run.status).toBe('succeeded');
    expect(run.rtoSeconds).toBeGreaterThan(0);

    expect(calls('createCounter', FINISHED)).toEqual([
      [1, { result: 'succeeded', mode: 'test', trigger: 'schedule' }],
    ]);
    expect(calls('createHistogram', RTO)).toEqual([
      [run.rtoSeconds, { mode: 'test', trigger: 'schedule' }],
    ]);
    expect(made('createCounter', FINISHED)).toBe(1);
    expect(made('createHistogram', RTO)).toBe(1);
  });

  it('counts a failed run, and records no RTO for it', async () => {
    // web-01 exits once started: its probe never passes.
    const { runs, calls } = recorded(new FakeHost({}, [WEB]));
    const started = await runs.start({
      entityRef: service.ref,
      mode: 'test',
      trigger: 'user',
    });
    await runs.waitFor(started.id);
    expect((await runStore.getRun(started.id))!.status).toBe('failed');

    expect(calls('createCounter', FINISHED)).toEqual([
      [1, { result: 'failed', mode: 'test', trigger: 'user' }],
    ]);
    expect(calls('createHistogram', RTO)).toEqual([]);
  });

  it('counts a cancelled test recovery as interrupted', async () => {
    const host = new FakeHost({});
    // Its machine never answers: the run waits until cancelled.
    host.probe = () => new Promise<never>(() => {});
    const { runs, calls } = recorded(host, { machineReadyTimeoutMs: 60_000 });
    const started = await runs.start({
      entityRef: service.ref,
      mode: 'test',
      trigger: 'user',
    });
    await vi.waitFor(
      async () =>
        expect((await runStore.getRun(started.id))!.machines[0].phase).toBe(
          'verifying',
        ),
      eventually,
    );
    await runs.cancel(started.id, 'user:default/ada');
    await runs.waitFor(started.id);
    expect((await runStore.getRun(started.id))!.status).toBe('interrupted');

    expect(calls('createCounter', FINISHED)).toEqual([
      [1, { result: 'interrupted', mode: 'test', trigger: 'user' }],
    ]);
  });

  it('counts a test recovery a failover preempted once, as interrupted, beside the failover that succeeded', async () => {
    const host = new FakeHost({});
    const probe = host.probe.bind(host);
    let testRunId = '';
    host.probe = (lab, machine, spec) =>
      machine.runId === testRunId
        ? new Promise<never>(() => {})
        : probe(lab, machine, spec);
    const { runs, calls } = recorded(host, { machineReadyTimeoutMs: 60_000 });
    const asked = { entityRef: service.ref, trigger: 'user' as const };
    const test = await runs.start({ ...asked, mode: 'test' });
    testRunId = test.id;
    await vi.waitFor(
      async () =>
        expect((await runStore.getRun(test.id))!.machines[0].phase).toBe(
          'verifying',
        ),
      eventually,
    );
    const failover = await runs.start({ ...asked, mode: 'failover' });
    await runs.waitFor(test.id);
    await runs.waitFor(failover.id);
    await runs.shutdown();
    const kept = (await runStore.getRun(failover.id))!;
    expect(kept.status).toBe('succeeded');

    expect(calls('createCounter', FINISHED)).toEqual(
      expect.arrayContaining([
        [1, { result: 'interrupted', mode: 'test', trigger: 'user' }],
        [1, { result: 'succeeded', mode: 'failover', trigger: 'user' }],
      ]),
    );
    expect(calls('createCounter', FINISHED)).toHaveLength(2);
    expect(calls('createHistogram', RTO)).toEqual([
      [kept.rtoSeconds, { mode: 'failover', trigger: 'user' }],
    ]);
  });

  it('counts a run orphaned by a stopped backend as interrupted, by the backend that cleans it up', async () => {
    await runStore.insertRun(
      {
        id: 'orphan',
        entityRef: service.ref,
        mode: 'test',
        trigger: 'schedule',
        hypervisorHost: 'fake',
        plan: { entityRef: service.ref, waves: [], machines: [] },
        options: {},
        machines: [{ machineRef: WEB, wave: 0 }],
      },
      new Date(Date.now() - 10_000),
    );
    await runStore.updateRun('orphan', { status: 'running' });
    // Every heartbeat looks stale to it.
    const { runs, calls } = recorded(new FakeHost({}), {
      staleAfterMs: -60_000,
    });
    expect(await runs.cleanUpInterruptedRuns()).toEqual(['orphan']);

    expect(calls('createCounter', FINISHED)).toEqual([
      [1, { result: 'interrupted', mode: 'test', trigger: 'schedule' }],
    ]);
  });
});
