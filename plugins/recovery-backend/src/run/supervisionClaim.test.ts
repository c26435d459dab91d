import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { Knex } from 'knex';
import { CaptureStore } from '../database/CaptureStore';
import { migrate, migrationsDirectory } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { ProviderRegistry } from '../service/ProviderRegistry';
import { chainGraph, chainNeeds, DATA, INFRA, WEB } from '../testing/chainSite';
import { storedCapture } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import type { MachineHandle } from '@backstage-recovery/plugin-recovery-node';
import { runServiceOver } from '../testing/runService';
import { FailoverSupervision, supervisionLeaseMs } from './supervision';

/*
 * Every backend replica hears a kept machine stop and sweeps the kept failovers: a pass of a
 * failover is claimed in the database first, so that only one replica starts its machines again.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const options = {
  machineReadyTimeoutMs: 500,
  probeIntervalMs: 10,
  stepTimeoutMs: 60_000,
  minReadyMs: 0,
};
/** A host slow to tell a machine's state: replicas that look at once both find them stopped. */
class SlowHost extends FakeHost {
  async inspectMachine(machine: MachineHandle) {
    await new Promise(resolve => setTimeout(resolve, 50));
    return super.inspectMachine(machine);
  }
}
const MIGRATION = '20261228000000_run_supervision_claim.js';

describe.each(databases.eachSupportedId())(
  'supervision claimed across replicas, on %s',
  databaseId => {
    let knex: Knex;
    let runStore: RunStore;
    let host: SlowHost;

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      const captureStore = new CaptureStore(knex);
      for (const n of ['infra-01', 'data-01', 'web-01'])
        await captureStore.insertCapture(storedCapture(n));
      host = new SlowHost(chainNeeds);
    });

    /** A failover of web that succeeded on the host, its machines then stopped by an engine restart. */
    async function stoppedFailover(): Promise<string> {
      const runs = runServiceOver(
        runStore,
        new CaptureStore(knex),
        host,
        chainGraph,
        { ...options, staleAfterMs: 60_000 },
      );
      const { id } = await runs.start({
        entityRef: 'component:default/web',
        mode: 'failover',
        trigger: 'user',
      });
      await runs.waitFor(id);
      await runs.shutdown();
      expect((await runStore.getRun(id))!.status).toBe('succeeded');
      host.started.length = 0;
      host.restartEngine(id);
      return id;
    }
    /** The supervision of one backend replica over the shared store and host. */
    const replica = () => {
      const providers = new ProviderRegistry();
      providers.addHypervisorHost(host);
      return new FailoverSupervision(
        runStore,
        providers,
        mockServices.logger.mock(),
        mockServices.auditor.mock(),
        options,
      );
    };
    const claimOf = async (runId: string) =>
      knex('recovery_runs')
        .where({ id: runId })
        .first('supervision_claim', 'supervision_claimed_at');

    it('has two replicas sweeping at once start the stopped machines once, one restart on the timeline', async () => {
      const runId = await stoppedFailover();

      await Promise.all([replica().sweep(), replica().sweep()]);

      expect(host.started).toEqual([INFRA, DATA, WEB]);
      const run = (await runStore.getRun(runId))!;
      expect(run.supervision?.restarts).toBe(1);
      expect(
        run.steps.filter(s => s.message.startsWith('Supervision: ')),
      ).toHaveLength(1);
      // Released at the pass's end: the next stop is supervised at once.
      expect((await claimOf(runId)).supervision_claim).toBeNull();
    });

    it('skips a failover another replica holds, and takes over a claim past its lease', async () => {
      const runId = await stoppedFailover();
      expect(
        await runStore.claimSupervision(
          runId,
          'crashed-replica',
          supervisionLeaseMs(options),
        ),
      ).toBe(true);

      await replica().sweep();
      expect(host.started).toEqual([]);

      // The replica crashed mid-pass: its claim is never released, and ages past the lease.
      await knex('recovery_runs')
        .where({ id: runId })
        .update({
          supervision_claimed_at: new Date(
            Date.now() - 2 * supervisionLeaseMs(options),
          ),
        });
      await replica().sweep();

      expect(host.started).toEqual([INFRA, DATA, WEB]);
      expect((await runStore.getRun(runId))!.supervision?.restarts).toBe(1);
      expect((await claimOf(runId)).supervision_claim).toBeNull();
    });

    it('migrates the claim columns down and up again, keeping the runs', async () => {
      const runId = await stoppedFailover();
      await runStore.claimSupervision(runId, 'a', 60_000);
      const directory = migrationsDirectory;

      await knex.migrate.down({ directory, name: MIGRATION });
      for (const column of ['supervision_claim', 'supervision_claimed_at'])
        expect(await knex.schema.hasColumn('recovery_runs', column)).toBe(
          false,
        );
      expect((await runStore.getRun(runId))!.machines).toHaveLength(3);

      await knex.migrate.up({ directory, name: MIGRATION });
      expect(await claimOf(runId)).toEqual({
        supervision_claim: null,
        supervision_claimed_at: null,
      });
      expect(await runStore.claimSupervision(runId, 'b', 60_000)).toBe(true);
    });
  },
);
