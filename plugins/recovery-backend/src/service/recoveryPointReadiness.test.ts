import {
  mockCredentials,
  mockServices,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { ReadinessHistoryStore } from '../database/ReadinessHistoryStore';
import { RunStore } from '../database/RunStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { catalogHidingFromUsers } from '../testing/catalog';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { PlanService } from './PlanService';
import { ReadinessService } from './ReadinessService';

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;
const site = 'system:default/point-site';

const catalog = [
  machineEntity('db-01'),
  machineEntity('web-01'),
  componentEntity('database', [m('db-01')]),
  componentEntity('web', [m('web-01'), c('database')]),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'point-site', namespace: 'default' },
    spec: {},
    relations: ['database', 'web'].map(n => ({
      type: 'hasPart',
      targetRef: c(n),
    })),
  },
];

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });
const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
const everything = mockCredentials.service();
const HOUR = 3_600_000;

/*
 * A run to an earlier recovery point proves that point boots, not the latest captures: whatever it
 * ends with, readiness (one entity's, and the overview's) judges by the runs of the latest captures.
 */
describe.each(databases.eachSupportedId())(
  'readiness beside runs to a recovery point on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    let plans: PlanService;
    let service: ReadinessService;
    let created = Date.now() - 5 * HOUR;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(catalog, []),
        mockServices.auth(),
        objectives,
      );
      plans = new PlanService(graphs);
      service = new ReadinessService(
        captureStore,
        runHistory,
        plans,
        graphs,
        objectives,
        7 * 86_400,
        () => ['primary'],
      );
      // Each machine: a capture of three days ago (before the bad change), and one of a minute ago.
      for (const name of ['db-01', 'web-01']) {
        await captureStore.insertCapture({
          ...storedCapture(name),
          id: `old-${name}`,
          createdAt: new Date(Date.now() - 72 * HOUR).toISOString(),
        });
        await captureStore.insertCapture({
          ...storedCapture(name),
          id: `new-${name}`,
          createdAt: new Date(Date.now() - 60_000).toISOString(),
        });
      }
    });

    /** A test recovery of the site, admitted as a backend admits it (to `recoveryPoint` if given), ended with `outcome`. */
    const run = async (
      id: string,
      outcome: Pick<RecoveryRun, 'status' | 'rtoSeconds' | 'error'>,
      recoveryPoint?: string,
    ) => {
      const plan = (await plans.plan(site)).plan!;
      const machines = plan.machines.map(pm => ({
        machineRef: pm.machineRef,
        wave: pm.wave,
      }));
      await runStore.admitRun(
        {
          id,
          entityRef: site,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          machines,
          recoveryPoint,
        },
        new Date((created += 60_000)),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, {
        ...outcome,
        finishedAt: new Date(Date.now() - HOUR).toISOString(),
      });
    };
    const twoDaysAgo = () => new Date(Date.now() - 48 * HOUR).toISOString();
    const failedOn = (machine: string) => ({
      status: 'failed' as const,
      error: { machineRef: m(machine), message: 'probe tcp:80 did not pass' },
    });
    /** Each entity's status, reasons and last run, by readiness and by the overview (which must agree). */
    const verdicts = async (refs = [site, c('web'), c('database')]) => {
      const alone = await Promise.all(
        refs.map(ref => service.readiness(ref, everything)),
      );
      const overview = await service.readinessOf(refs, everything);
      const byRef = new Map(overview.map(r => [r.entityRef, r]));
      return Object.fromEntries(
        alone.map(r => {
          const listed = byRef.get(r.entityRef)!;
          expect([listed.status, listed.reasons, listed.lastRun?.id]).toEqual([
            r.status,
            r.reasons,
            r.lastRun && 'id' in r.lastRun ? r.lastRun.id : undefined,
          ]);
          return [
            r.entityRef,
            [
              r.status,
              r.reasons,
              r.lastRun && 'id' in r.lastRun ? r.lastRun.id : undefined,
            ],
          ];
        }),
      );
    };

    it('does not make a failed entity ready when a run to an earlier point succeeds', async () => {
      await run('latest-failed', failedOn('web-01'));
      await run(
        'point-ok',
        { status: 'succeeded', rtoSeconds: 40 },
        twoDaysAgo(),
      );
      // The point run restored the captures of then, and is recorded as such.
      const point = (await runStore.getRun('point-ok'))!;
      expect(point.machines.map(x => x.captureId).sort()).toEqual([
        'old-db-01',
        'old-web-01',
      ]);
      const failed = 'Last test recovery failed: probe tcp:80 did not pass';
      expect(await verdicts([site, c('web')])).toEqual({
        [site]: ['not-recoverable', [failed], 'latest-failed'],
        [c('web')]: ['not-recoverable', [failed], 'latest-failed'],
      });
    });

    it('does not make a ready entity failed when a run to an earlier point fails on a machine of its plan', async () => {
      await run('latest-ok', { status: 'succeeded', rtoSeconds: 40 });
      await run('point-failed', failedOn('db-01'), twoDaysAgo());
      expect(await verdicts()).toEqual({
        [site]: ['ready', [], 'latest-ok'],
        [c('web')]: ['ready', [], 'latest-ok'],
        [c('database')]: ['ready', [], 'latest-ok'],
      });
    });

    it('leaves an entity whose only runs were to a point as never tested', async () => {
      await run(
        'point-only',
        { status: 'succeeded', rtoSeconds: 40 },
        twoDaysAgo(),
      );
      const verdict = await verdicts();
      for (const ref of [site, c('web'), c('database')])
        expect(verdict[ref][2]).toBeUndefined();
      expect(verdict[site][0]).not.toBe('ready');
    });
  },
);
