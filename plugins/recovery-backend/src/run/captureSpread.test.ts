import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import type {
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import { captureOf } from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { RunService } from './RunService';

/*
 * A run restores each machine's newest capture: where one machine's latest capture failed (or it
 * was captured on its own), they are of different moments. The timeline names the capture each
 * machine restores, and warns where they span more than taking them one after another would.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const INFRA = 'resource:default/infra-01';
const DATA = 'resource:default/data-01';
const WEB = 'resource:default/web-01';
const svc = (ref: string, machine: string, dependsOn: string[] = []) =>
  [
    ref,
    { ref, machines: [machine], dependsOn, probes: [{ kind: 'tcp', port: 1 }] },
  ] as [string, ServiceNode];
const graph: RecoveryGraph = {
  rootRef: 'component:default/web',
  roots: ['component:default/web'],
  services: new Map([
    svc('component:default/dns', INFRA),
    svc('component:default/database', DATA, ['component:default/dns']),
    svc('component:default/web', WEB, ['component:default/database']),
  ]),
  machines: new Map(
    [INFRA, DATA, WEB].map(ref => [
      ref,
      {
        ref,
        locator: { machineRef: ref, engine: 'primary', container: ref },
      },
    ]),
  ),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
};
const needs = { [DATA]: [INFRA], [WEB]: [DATA] };

describe.each(databases.eachSupportedId())(
  'the captures a run restores, on %s',
  databaseId => {
    let runStore: RunStore;
    let captureStore: CaptureStore;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      captureStore = new CaptureStore(knex);
    });

    /** Captures each machine at `at` (ms before now), each capture taking `durationMs`; then runs web. */
    async function runAfterCaptures(
      at: Record<string, number>,
      durationMs = 2_000,
    ) {
      const now = Date.now();
      for (const [machineRef, msAgo] of Object.entries(at))
        await captureStore.insertCapture({
          ...captureOf(
            `cap-${machineRef.split('/')[1]}`,
            machineRef,
            new Date(now - msAgo).toISOString(),
          ),
          durationMs,
        });
      const providers = new ProviderRegistry();
      providers.addHypervisorHost(new FakeHost(needs));
      const graphs = {
        getEntity: async () => ({
          apiVersion: 'backstage.io/v1alpha1',
          kind: 'Component',
          metadata: { name: 'web' },
        }),
        load: async () => graph,
        visibleTo: async (refs: string[], _c: BackstageCredentials) => refs,
      };
      const runs = new RunService(
        runStore,
        captureStore,
        providers,
        new PlanService(graphs as unknown as CatalogGraphLoader),
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
      const started = await runs.start({
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
      });
      await runs.waitFor(started.id);
      await runs.shutdown();
      return (await runStore.getRun(started.id))!;
    }

    it("warns where one machine's capture is older than the others by more than capturing them took, naming the oldest and the newest", async () => {
      // data-01's capture of this round failed: it restores the one of the round before, 57 s older.
      const run = await runAfterCaptures({
        [INFRA]: 4_000,
        [DATA]: 59_000,
        [WEB]: 0,
      });
      expect(run.status).toBe('succeeded');
      const data = run.machines.find(m => m.machineRef === DATA)!;
      const web = run.machines.find(m => m.machineRef === WEB)!;
      expect(
        run.steps
          .filter(s => s.level === 'warning')
          .map(s => [s.machineRef, s.message]),
      ).toEqual([
        [
          undefined,
          `Restores captures taken 59 s apart, from ${DATA}'s of ${data.capturedAt} (the oldest) to ${WEB}'s of ${web.capturedAt} (the newest): ` +
            'more than taking them one after another would (6 s), so the machines come back as they were at different moments, and what they exchanged in between may be on one side only',
        ],
      ]);
      // Each machine's restore names the capture it restores and when it was taken.
      for (const m of run.machines)
        expect(run.steps).toContainEqual(
          expect.objectContaining({
            machineRef: m.machineRef,
            level: 'info',
            message: `Restoring capture ${m.captureId} of ${m.capturedAt}`,
          }),
        );
    });

    it('says nothing of captures taken one after another in one go, however long that took', async () => {
      // Three captures of 40 s each, back to back: 80 s from the first to the last.
      const run = await runAfterCaptures(
        { [INFRA]: 80_000, [DATA]: 40_000, [WEB]: 0 },
        40_000,
      );
      expect(run.status).toBe('succeeded');
      expect(run.steps.filter(s => s.level === 'warning')).toEqual([]);
    });
  },
);
