import { TestDatabases } from '@backstage/backend-test-utils';
import type {
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { captureOf } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { runServiceOver } from '../testing/runService';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const [APP, API] = ['resource:default/app-01', 'resource:default/api-01'];
const [SHOP, CATALOG] = ['component:default/shop', 'component:default/catalog'];

const service = (ref: string, machine: string) =>
  [
    ref,
    {
      ref,
      machines: [machine],
      dependsOn: [],
      probes: [{ kind: 'tcp', port: 1 }],
    },
  ] as [string, ServiceNode];

/** Two machines that need nothing of each other: one wave. */
const graph: RecoveryGraph = {
  rootRef: SHOP,
  roots: [SHOP, CATALOG],
  services: new Map([service(SHOP, APP), service(CATALOG, API)]),
  machines: new Map(
    [APP, API].map(ref => [
      ref,
      { ref, locator: { machineRef: ref, engine: 'primary', container: ref } },
    ]),
  ),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};

describe.each(databases.eachSupportedId())(
  'a wave one of whose machines fails, on %p',
  databaseId => {
    it("ends the run then, without waiting out the other machines' probes", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const runStore = new RunStore(knex);
      const captureStore = new CaptureStore(knex);
      for (const machineRef of [APP, API])
        await captureStore.insertCapture(
          captureOf(
            `cap-${machineRef.split('/')[1]}`,
            machineRef,
            new Date().toISOString(),
          ),
        );
      // app-01 exits as it starts; api-01's probe does not answer until its ready timeout.
      const host = new FakeHost({}, [APP]);
      const probe = host.probe.bind(host);
      host.probe = (lab, machine, spec) =>
        machine.machineRef === API
          ? new Promise(() => {})
          : probe(lab, machine, spec);
      const runs = runServiceOver(runStore, captureStore, host, graph, {
        machineReadyTimeoutMs: 20_000,
      });
      const started = await runs.start({
        entityRef: SHOP,
        mode: 'test',
        trigger: 'user',
      });
      const begun = Date.now();
      await runs.waitFor(started.id);
      const tookMs = Date.now() - begun;
      await runs.shutdown();

      const ended = (await runStore.getRun(started.id))!;
      expect(ended.plan.waves).toEqual([expect.arrayContaining([APP, API])]);
      expect(ended.status).toBe('failed');
      expect(ended.error?.message).toContain(`${APP} failed`);
      expect(ended.machines.find(m => m.machineRef === APP)?.phase).toBe(
        'failed',
      );
      expect(tookMs).toBeLessThan(3_000);
    }, 30_000);
  },
);
