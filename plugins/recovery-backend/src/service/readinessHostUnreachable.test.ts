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
const site = 'system:default/reach-site';

const catalog = [
  machineEntity('db-01'),
  machineEntity('web-01'),
  componentEntity('database', [m('db-01')]),
  componentEntity('web', [m('web-01'), c('database')]),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'reach-site', namespace: 'default' },
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
const UNREACHABLE =
  "hypervisor host recovery cannot be reached: listLabResources failed: Docker engine 'recovery' is unreachable at /run/recovery.sock (ENOENT): is it running, and may the backend use it?";

/*
 * A run that could not reach its hypervisor host failed on the host's condition, not the plan's:
 * it covers no plan, so readiness stands on the run before it, and says the host was out of reach.
 */
describe.each(databases.eachSupportedId())(
  'readiness after a run that could not reach its host, on %p',
  databaseId => {
    let runStore: RunStore;
    let plans: PlanService;
    let service: ReadinessService;
    let created = Date.now() - 5 * HOUR;

    beforeEach(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(catalog, []),
        mockServices.auth(),
        objectives,
      );
      plans = new PlanService(graphs);
      service = new ReadinessService(
        captureStore,
        new ReadinessHistoryStore(knex),
        plans,
        graphs,
        objectives,
        7 * 86_400,
        () => ['primary'],
      );
      for (const name of ['db-01', 'web-01'])
        await captureStore.insertCapture({
          ...storedCapture(name),
          id: `new-${name}`,
          createdAt: new Date(Date.now() - 60_000).toISOString(),
        });
    });

    /** A test recovery of the site, admitted as a backend admits it, ended with `outcome`. */
    const run = async (
      id: string,
      outcome: Pick<RecoveryRun, 'status' | 'rtoSeconds' | 'error'>,
    ) => {
      const plan = (await plans.plan(site)).plan!;
      await runStore.admitRun(
        {
          id,
          entityRef: site,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          machines: plan.machines.map(pm => ({
            machineRef: pm.machineRef,
            wave: pm.wave,
          })),
        },
        new Date((created += 60_000)),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, {
        ...outcome,
        finishedAt: new Date(Date.now() - HOUR).toISOString(),
      });
      return (await runStore.getRun(id))!;
    };
    const unreachable = {
      status: 'failed' as const,
      error: { message: UNREACHABLE, hostUnreachable: true },
    };
    const atRisk = (r: RecoveryRun) =>
      `The last test recovery could not reach the recovery host recovery at ${r.createdAt} (${UNREACHABLE}): it tells nothing of whether the entity recovers, so the run before it stands`;
    /** Each entity's status, reasons and last run, by readiness and by the overview (which must agree). */
    const verdicts = async (refs = [site, c('web'), c('database')]) => {
      const alone = await Promise.all(
        refs.map(ref => service.readiness(ref, everything)),
      );
      const overview = await service.readinessOf(refs, everything);
      const byRef = new Map(overview.map(r => [r.entityRef, r]));
      return Object.fromEntries(
        alone.map(r => {
          const lastRun =
            r.lastRun && 'id' in r.lastRun ? r.lastRun.id : undefined;
          const listed = byRef.get(r.entityRef)!;
          expect([listed.status, listed.reasons, listed.lastRun?.id]).toEqual([
            r.status,
            r.reasons,
            lastRun,
          ]);
          return [r.entityRef, [r.status, r.reasons, lastRun]];
        }),
      );
    };

    it('stands on the run before it, at risk for its own entity only, saying when the host was out of reach', async () => {
      await run('site-ok', { status: 'succeeded', rtoSeconds: 40 });
      const down = await run('site-unreachable', unreachable);
      expect(await verdicts()).toEqual({
        [site]: ['at-risk', [atRisk(down)], 'site-ok'],
        [c('web')]: ['ready', [], 'site-ok'],
        [c('database')]: ['ready', [], 'site-ok'],
      });
      // The run after it that recovers the plan is the last run again, and nothing more is said.
      await run('site-ok-again', { status: 'succeeded', rtoSeconds: 40 });
      expect((await verdicts([site]))[site]).toEqual([
        'ready',
        [],
        'site-ok-again',
      ]);
    });

    it('leaves an entity never recovered but for such a run never tested, at risk for the host out of reach', async () => {
      const down = await run('site-unreachable', unreachable);
      const [status, reasons, lastRun] = (await verdicts([site]))[site];
      expect({ status, lastRun }).toEqual({
        status: 'at-risk',
        lastRun: undefined,
      });
      expect(reasons).toEqual(
        expect.arrayContaining(['Never test-recovered', atRisk(down)]),
      );
    });

    it('still counts a failure on a machine before such a run', async () => {
      await run('site-ok', { status: 'succeeded', rtoSeconds: 40 });
      await run('site-failed', {
        status: 'failed',
        error: {
          machineRef: m('web-01'),
          message: 'probe tcp:80 did not pass',
        },
      });
      const down = await run('site-unreachable', unreachable);
      expect((await verdicts([site]))[site]).toEqual([
        'not-recoverable',
        ['Last test recovery failed: probe tcp:80 did not pass', atRisk(down)],
        'site-failed',
      ]);
    });
  },
);
