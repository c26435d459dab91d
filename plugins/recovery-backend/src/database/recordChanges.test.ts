import { TestDatabases } from '@backstage/backend-test-utils';
import type { Knex } from 'knex';
import { admission, fullCaptureOf } from '../testing/entities';
import { CaptureStore } from './CaptureStore';
import { migrate } from './migrations';
import { RunStore } from './RunStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

/**
 * The stores tell RecoverySignals of each change a caller of the API would see, once committed:
 * the one place where a run's or a capture request's state changes, whoever changes it (its
 * driver, the sweep of orphaned runs, a preempting failover).
 */
describe.each(databases.eachSupportedId())(
  'changes told by the stores on %s',
  databaseId => {
    let knex: Knex;
    let told: string[];
    let runStore: RunStore;
    let captureStore: CaptureStore;
    /** For each change told, whether the run was visible to another connection then (committed). */
    let visibleWhenTold: Array<Promise<boolean>>;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      const reader = new RunStore(knex);
      runStore = new RunStore(knex, {
        onChange: id => {
          told.push(`run ${id}`);
          visibleWhenTold.push(reader.getRun(id).then(r => r !== undefined));
        },
      });
      captureStore = new CaptureStore(knex, {
        onRequestChange: id => told.push(`captureRequest ${id}`),
      });
    });
    beforeEach(() => {
      told = [];
      visibleWhenTold = [];
    });

    it("tells a run's admission once committed, and the test run a failover preempted", async () => {
      const m = `resource:default/told-${databaseId}`;
      await captureStore.insertCapture(
        fullCaptureOf(`told-cap-${databaseId}`, m, '2026-11-01T00:00:00.000Z'),
      );
      await runStore.admitRun(
        admission('told-test', m, 'told-host'),
        new Date(),
      );
      expect(told).toEqual(['run told-test']);
      expect(await Promise.all(visibleWhenTold)).toEqual([true]);

      told = [];
      await runStore.admitRun(
        { ...admission('told-failover', m, 'told-host'), mode: 'failover' },
        new Date(),
      );
      expect(told).toEqual(['run told-failover', 'run told-test']);
      expect((await runStore.getRun('told-test'))!.status).toBe('interrupted');

      // Refused (the host held by the failover): nothing changed, nothing told.
      told = [];
      await runStore.admitRun(
        admission('told-refused', m, 'told-host'),
        new Date(),
      );
      expect(told).toEqual([]);
    });

    it("tells each change of a run's status, machines and timeline, and nothing once it finished", async () => {
      const m = `resource:default/steps-${databaseId}`;
      await captureStore.insertCapture(
        fullCaptureOf(`steps-cap-${databaseId}`, m, '2026-11-01T00:00:00.000Z'),
      );
      await runStore.admitRun(
        admission('told-steps', m, 'steps-host'),
        new Date(),
      );
      await runStore.updateRun('told-steps', { status: 'running' });
      await runStore.updateRunMachine('told-steps', m, { phase: 'restoring' });
      await runStore.appendStep('told-steps', {
        at: new Date().toISOString(),
        level: 'info',
        message: 'Restoring',
      });
      // Driving the run is no change a caller sees.
      await runStore.heartbeat('told-steps');
      await runStore.updateRun('told-steps', {
        status: 'succeeded',
        finishedAt: new Date().toISOString(),
      });
      expect(told).toEqual(Array(5).fill('run told-steps'));

      told = [];
      expect(await runStore.updateRun('told-steps', { status: 'failed' })).toBe(
        false,
      );
      await runStore.updateRunMachine('told-steps', m, { phase: 'failed' });
      expect(told).toEqual([]);
      expect(await runStore.entityRefOf('told-steps')).toBe(
        'component:default/admit',
      );
      expect(await runStore.entityRefOf('no-such-run')).toBeUndefined();
    });

    it('tells a run the sweep claims from a stopped backend', async () => {
      const m = `resource:default/stale-${databaseId}`;
      await captureStore.insertCapture(
        fullCaptureOf(`stale-cap-${databaseId}`, m, '2026-11-01T00:00:00.000Z'),
      );
      await runStore.admitRun(
        admission('told-stale', m, 'stale-host'),
        new Date(),
      );
      await runStore.updateRun('told-stale', { status: 'running' });
      await knex('recovery_runs')
        .where({ id: 'told-stale' })
        .update({ heartbeat_at: new Date(Date.now() - 120_000) });
      told = [];
      expect(
        await runStore.claimStaleRun(
          'told-stale',
          60_000,
          'Interrupted: gone',
          new Date(),
          { labLeft: true },
        ),
      ).toBeDefined();
      expect(told).toEqual(['run told-stale']);
    });

    it("tells a capture request's acceptance, progress and end, and nothing of one ended elsewhere", async () => {
      const requests = captureStore.requests;
      await requests.insert({
        requestId: 'told-req',
        entityRef: 'component:default/web',
        machineRefs: [],
        createdAt: new Date().toISOString(),
      });
      await requests.progress('told-req', []);
      await requests.heartbeat('told-req');
      await requests.finish('told-req', { captures: [] }, new Date());
      expect(told).toEqual(Array(3).fill('captureRequest told-req'));

      told = [];
      expect(await requests.progress('told-req', [])).toBe(false);
      expect(told).toEqual([]);
      expect(await requests.entityRefOf('told-req')).toBe(
        'component:default/web',
      );
    });
  },
);
