import { TestDatabases } from '@backstage/backend-test-utils';
import type {
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { storedCapture } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { runServiceOver } from '../testing/runService';

/*
 * Cancelling a test recovery (RunService.cancel): it stops booting, its lab goes, and it ends
 * interrupted naming who cancelled it; through another replica over the same database too, which
 * the driver learns at its next heartbeat; one whose driver is gone, when the orphan sweep claims it.
 * Failovers and finished runs are refused.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

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
const ALICE = 'user:default/alice';
const asked = { entityRef: service.ref, trigger: 'user' as const };

describe.each(databases.eachSupportedId())(
  'cancelling a run, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;
    let knex: Awaited<ReturnType<typeof databases.init>>;

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
      await captureStore.insertCapture(storedCapture('web-01'));
    });

    /** A host whose machine never answers its probe: a run holds it until its ready timeout (10 min). */
    function hopelessHost() {
      const host = new FakeHost({});
      host.probe = () => new Promise<never>(() => {});
      return host;
    }

    const verifying = async (runId: string) =>
      vi.waitFor(
        async () =>
          expect((await runStore.getRun(runId))!.machines[0].phase).toBe(
            'verifying',
          ),
        { timeout: 10_000, interval: 20 },
      );

    it('stops a running test recovery at once, tears its lab down and ends it interrupted, naming who and when', async () => {
      const host = hopelessHost();
      const runs = runServiceOver(runStore, captureStore, host, graph, {
        machineReadyTimeoutMs: 600_000,
        // No heartbeat during the test: the cancel reaches the run through its own driver.
        heartbeatIntervalMs: 600_000,
        staleAfterMs: 1_200_000,
      });
      const run = await runs.start({ ...asked, mode: 'test' });
      await verifying(run.id);
      const asOf = Date.now();
      const answered = await runs.cancel(run.id, ALICE);
      expect(answered.status).toBe('running');
      await runs.waitFor(run.id);
      await runs.shutdown();

      const cancelled = (await runStore.getRun(run.id))!;
      expect(cancelled.status).toBe('interrupted');
      expect(cancelled.error!.cancelledBy).toBe(ALICE);
      const at = cancelled.error!.message.match(
        /^Interrupted: cancelled by user:default\/alice at (\S+)$/,
      )![1];
      expect(Date.parse(at)).toBeGreaterThanOrEqual(asOf - 1000);
      expect(cancelled.steps.map(s => s.message)).toContain(
        cancelled.error!.message,
      );
      expect(cancelled.machines[0].phase).toBe('interrupted');
      // Its lab is gone from the host.
      expect(await host.listLabResources(run.id)).toEqual({
        machines: [],
        networks: [],
      });
    });

    it("reaches a run another replica drives at that replica's next heartbeat", async () => {
      const host = hopelessHost();
      const timings = {
        machineReadyTimeoutMs: 600_000,
        heartbeatIntervalMs: 50,
        staleAfterMs: 60_000,
      };
      const driver = runServiceOver(
        runStore,
        captureStore,
        host,
        graph,
        timings,
      );
      const other = runServiceOver(
        runStore,
        captureStore,
        host,
        graph,
        timings,
      );
      const run = await driver.start({ ...asked, mode: 'test' });
      await verifying(run.id);
      await other.cancel(run.id, ALICE);
      await driver.waitFor(run.id);
      await Promise.all([driver.shutdown(), other.shutdown()]);

      const cancelled = (await runStore.getRun(run.id))!;
      expect(cancelled.status).toBe('interrupted');
      expect(cancelled.error).toEqual({
        message: expect.stringMatching(
          /^Interrupted: cancelled by user:default\/alice at /,
        ),
        cancelledBy: ALICE,
      });
      expect(await host.listLabResources(run.id)).toEqual({
        machines: [],
        networks: [],
      });
    });

    it('ends a run cancelled while its backend was gone as cancelled by whoever asked, when the orphan sweep claims it, its lab torn down as for any orphan', async () => {
      const host = new FakeHost({});
      await runStore.insertRun(
        {
          id: 'orphan',
          entityRef: service.ref,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'fake',
          plan: { entityRef: service.ref, waves: [[WEB]], machines: [] },
          options: {},
          machines: [{ machineRef: WEB, wave: 0 }],
        },
        new Date(Date.now() - 10_000),
      );
      await runStore.updateRun('orphan', { status: 'running' });
      await runStore.updateRunMachine('orphan', WEB, { phase: 'verifying' });
      await host.createLab('orphan', [{ name: 'prod', aliases: [] }]);
      // No backend drives it: the request waits for a heartbeat that never comes. Any heartbeat
      // counts as stale (the updates above refreshed it).
      const runs = runServiceOver(runStore, captureStore, host, graph, {
        staleAfterMs: -60_000,
      });
      expect((await runs.cancel('orphan', ALICE)).status).toBe('running');
      expect(await runs.cleanUpInterruptedRuns()).toEqual(['orphan']);
      await runs.shutdown();

      const run = (await runStore.getRun('orphan'))!;
      expect(run.status).toBe('interrupted');
      const cancelled =
        'Interrupted: cancelled by user:default/alice at [^ ;]+; the backend driving this run stopped';
      expect(run.error).toEqual({
        message: expect.stringMatching(
          new RegExp(`^${cancelled}; removed 0 containers and 1 network$`),
        ),
        cancelledBy: ALICE,
      });
      expect(run.steps.at(-1)?.message).toBe(run.error!.message);
      expect(run.machines[0]).toMatchObject({
        phase: 'interrupted',
        message: expect.stringMatching(new RegExp(`^${cancelled}$`)),
      });
      expect(await host.listLabResources('orphan')).toEqual({
        machines: [],
        networks: [],
      });
    });

    it('leaves the lab to the replica that claimed a cancelled run as orphaned where its driver was alive after all', async () => {
      const host = new FakeHost({});
      host.probe = () => new Promise<never>(() => {});
      // The driver misses the request (it paused, say), and fails its machine at the ready timeout.
      const driverStore = new RunStore(knex);
      driverStore.cancelRequest = async () => undefined;
      const driver = runServiceOver(driverStore, captureStore, host, graph, {
        machineReadyTimeoutMs: 500,
      });
      const run = await driver.start({ ...asked, mode: 'test' });
      await verifying(run.id);
      // Another replica takes its heartbeat for stale, and pauses between its claim and the teardown.
      const cleaner = runServiceOver(runStore, captureStore, host, graph, {
        staleAfterMs: -60_000,
      });
      const claim = runStore.claimStaleRun.bind(runStore);
      runStore.claimStaleRun = async (...args) => {
        const claimed = await claim(...args);
        await new Promise(resolve => setTimeout(resolve, 1_000));
        return claimed;
      };
      await cleaner.cancel(run.id, ALICE);
      expect(await cleaner.cleanUpInterruptedRuns()).toEqual([run.id]);
      await driver.waitFor(run.id);
      await Promise.all([driver.shutdown(), cleaner.shutdown()]);

      // The cleaner removed the lab; the driver waited for it, and found nothing left.
      const cancelled = (await runStore.getRun(run.id))!;
      expect(cancelled.error).toEqual({
        message: expect.stringMatching(
          /^Interrupted: cancelled by user:default\/alice at [^ ;]+; the backend driving this run stopped; removed 1 container and 1 network$/,
        ),
        cancelledBy: ALICE,
      });
      expect(cancelled.steps.map(s => s.message)).toContain(
        'Stopped driving: the run was already finished elsewhere; removed 0 containers and 0 networks',
      );
    });

    it('refuses a failover (release it once finished) and a finished run, naming its status', async () => {
      const host = new FakeHost({});
      const runs = runServiceOver(runStore, captureStore, host, graph);
      const failover = await runs.start({ ...asked, mode: 'failover' });
      await expect(runs.cancel(failover.id, ALICE)).rejects.toMatchObject({
        name: 'ConflictError',
        message: `Run ${failover.id} is a failover: its machines stand in for production, so it cannot be cancelled. Once it has finished and production is back, release it (POST /runs/${failover.id}/release)`,
      });
      await runs.waitFor(failover.id);
      await runs.releaseFailover(failover.id, ALICE);
      const test = await runs.start({ ...asked, mode: 'test' });
      await runs.waitFor(test.id);
      expect((await runStore.getRun(test.id))!.status).toBe('succeeded');
      await expect(runs.cancel(test.id, ALICE)).rejects.toMatchObject({
        name: 'ConflictError',
        message: `Run ${test.id} has already finished (succeeded): there is nothing to cancel`,
      });
      await expect(runs.cancel('no-such-run', ALICE)).rejects.toMatchObject({
        name: 'NotFoundError',
      });
      await runs.shutdown();
    });
  },
);
