import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { EntityMachinesMissingError, MissingDependenciesError } from './errors';
import { RunService } from './RunService';

/*
 * Accepting missing dependencies leaves them out of the plan; never the machine the entity itself
 * runs on, removed from the catalog while the entity still names it: a run without it boots only
 * what the entity depends on, and would succeed without ever booting or probing the entity.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const LEDGER = 'component:default/ledger';
const ledger = componentEntity('ledger', [
  'resource:default/ledger-01',
  'component:default/dns',
]);
const dns = componentEntity('dns', ['resource:default/infra-01']);

describe.each(databases.eachSupportedId())(
  'a run of an entity whose own machine the catalog no longer holds, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
      for (const n of ['infra-01', 'ledger-01'])
        await captureStore.insertCapture(storedCapture(n));
    });

    function runsOver(entities: Entity[]) {
      const graphs = new CatalogGraphLoader(
        catalogServiceMock({ entities }),
        mockServices.auth(),
        { rpoSeconds: 86400, rtoSeconds: 3600 },
      );
      const providers = new ProviderRegistry();
      providers.addHypervisorHost(new FakeHost({}));
      return new RunService(
        runStore,
        captureStore,
        providers,
        new PlanService(graphs),
        graphs,
        mockServices.logger.mock(),
        {
          machineReadyTimeoutMs: 2_000,
          probeIntervalMs: 20,
          heartbeatIntervalMs: 50,
          staleAfterMs: 60_000,
          stepTimeoutMs: 60_000,
          minReadyMs: 0,
          allowTestHooks: false,
        },
      );
    }
    const asked = {
      entityRef: LEDGER,
      mode: 'test' as const,
      trigger: 'user' as const,
    };

    it('refuses the run naming the missing machine, accepting missing dependencies or not', async () => {
      // ledger-01 deleted from the catalog; ledger still dependsOn it.
      const runs = runsOver([ledger, dns, machineEntity('infra-01')]);
      const expected =
        'component:default/ledger runs on no machine the catalog holds (component:default/ledger dependsOn resource:default/ledger-01, which is not in the catalog: a recovery plan cannot include it). ' +
        'Accepting missing dependencies recovers without them, not without the machines the entity runs on: a run would boot none of them. ' +
        'Put the machine back in the catalog, or point the dependsOn at the machine the entity runs on now';
      for (const acceptMissingDependencies of [true, false]) {
        const refused = runs.start({ ...asked, acceptMissingDependencies });
        await expect(refused).rejects.toThrow(EntityMachinesMissingError);
        await expect(refused).rejects.toMatchObject({
          name: 'ConflictError',
          message: expected,
        });
      }
      // Nothing started: infra-01 alone is never booted as if it were the ledger's recovery.
      expect(await runStore.listRuns({})).toEqual([]);
      await runs.shutdown();
    });

    it("still recovers without a missing dependency where the entity's own machine is there", async () => {
      const runs = runsOver([
        componentEntity('ledger', [
          'resource:default/ledger-01',
          'component:default/cache',
        ]),
        machineEntity('ledger-01'),
      ]);
      await expect(runs.start(asked)).rejects.toThrow(MissingDependenciesError);
      const started = await runs.start({
        ...asked,
        acceptMissingDependencies: true,
      });
      await runs.waitFor(started.id);
      const run = (await runStore.getRun(started.id))!;
      expect(run.status).toBe('succeeded');
      expect(run.machines.map(m => m.machineRef)).toEqual([
        'resource:default/ledger-01',
      ]);
      await runs.shutdown();
    });
  },
);
