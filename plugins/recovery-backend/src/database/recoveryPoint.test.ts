import { TestDatabases } from '@backstage/backend-test-utils';
import type { Knex } from 'knex';
import { RunConflictError } from '../run/errors';
import { captureOf, testRunOf } from '../testing/entities';
import { CaptureStore } from './CaptureStore';
import { migrate, migrationsDirectory } from './migrations';
import { ReadinessHistoryStore } from './ReadinessHistoryStore';
import { RunStore } from './RunStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const A = 'resource:default/pa-01';
const B = 'resource:default/pb-01';
const C = 'resource:default/pc-01';

const newRun = (id: string, machineRefs: string[], recoveryPoint?: string) =>
  testRunOf('component:default/point', id, machineRefs, recoveryPoint);

describe.each(databases.eachSupportedId())(
  'runs to a recovery point on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    let knex: Knex;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
      // A: three kept captures; B: kept from Nov 3 on (older ones pruned); C: never captured.
      await captureStore.insertCapture(
        captureOf('a1', A, '2026-11-01T00:00:00.000Z'),
      );
      await captureStore.insertCapture(
        captureOf('a2', A, '2026-11-02T00:00:00.000Z'),
      );
      await captureStore.insertCapture(
        captureOf('a3', A, '2026-11-04T00:00:00.000Z'),
      );
      await captureStore.insertCapture(
        captureOf('b3', B, '2026-11-03T00:00:00.000Z'),
      );
      await captureStore.insertCapture(
        captureOf('b4', B, '2026-11-05T00:00:00.000Z'),
      );
    });

    /** Ends a run as its driver would. */
    const finish = async (
      id: string,
      status: 'succeeded' | 'failed',
      error?: { machineRef: string; message: string },
    ) => {
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, {
        status,
        finishedAt: '2026-11-06T00:00:00.000Z',
        ...(status === 'succeeded' ? { rtoSeconds: 10 } : { error: error! }),
      });
    };

    it('restores, per machine, its newest capture taken at or before the point, and records the point and each capture time', async () => {
      const admitted = await runStore.admitRun(
        newRun('p-between', [A, B], '2026-11-03T12:00:00.000Z'),
        new Date('2026-11-06T00:00:00.000Z'),
      );
      expect(
        'captures' in admitted &&
          [...admitted.captures.values()].map(c => c.id),
      ).toEqual(['a2', 'b3']);
      const run = (await runStore.getRun('p-between'))!;
      expect(run.recoveryPoint).toBe('2026-11-03T12:00:00.000Z');
      expect(
        run.machines.map(m => [m.machineRef, m.captureId, m.capturedAt]),
      ).toEqual([
        [A, 'a2', '2026-11-02T00:00:00.000Z'],
        [B, 'b3', '2026-11-03T00:00:00.000Z'],
      ]);
      await finish('p-between', 'succeeded');
      // At the instant of a capture: that capture.
      await runStore.admitRun(
        newRun('p-exact', [A], '2026-11-04T00:00:00.000Z'),
        new Date('2026-11-06T00:00:00.000Z'),
      );
      expect(
        (await runStore.getRun('p-exact'))!.machines.map(m => m.captureId),
      ).toEqual(['a3']);
      await finish('p-exact', 'succeeded');
      // Without a point: the latest, and no point recorded.
      await runStore.admitRun(
        newRun('p-none', [A, B]),
        new Date('2026-11-06T00:00:00.000Z'),
      );
      const latest = (await runStore.getRun('p-none'))!;
      expect(latest.machines.map(m => [m.captureId, m.capturedAt])).toEqual([
        ['a3', '2026-11-04T00:00:00.000Z'],
        ['b4', '2026-11-05T00:00:00.000Z'],
      ]);
      expect(latest).not.toHaveProperty('recoveryPoint', expect.anything());
      await finish('p-none', 'succeeded');
    });

    it('refuses with a conflict a point some machines have no capture kept at or before, naming each with its oldest kept capture, and admits nothing', async () => {
      const refused = runStore.admitRun(
        newRun('p-early', [A, B, C], '2026-11-01T12:00:00.000Z'),
        new Date('2026-11-06T00:00:00.000Z'),
      );
      await expect(refused).rejects.toMatchObject({
        name: 'RecoveryPointTooEarlyError',
        statusCode: 409,
        recoveryPoint: '2026-11-01T12:00:00.000Z',
        machines: [
          { machineRef: B, oldestCaptureAt: '2026-11-03T00:00:00.000Z' },
        ],
        neverCaptured: [C],
        message:
          `No capture kept at or before the recovery point 2026-11-01T12:00:00.000Z of ${B} (its oldest kept is of 2026-11-03T00:00:00.000Z), ` +
          `${C} (never captured): capture ${C} first (POST /captures): no point, nor the latest captures, can restore it until then`,
      });
      await expect(refused).rejects.toBeInstanceOf(RunConflictError);
      expect(await refused.catch(e => e.earliestRecoveryPoint)).toBeUndefined();
      expect(await runStore.getRun('p-early')).toBeUndefined();
      // Before every capture of A too: A is named as well.
      await expect(
        runStore.admitRun(
          newRun('p-earlier', [A, B], '2026-10-31T00:00:00.000Z'),
          new Date(),
        ),
      ).rejects.toMatchObject({
        machines: [
          { machineRef: A, oldestCaptureAt: '2026-11-01T00:00:00.000Z' },
          { machineRef: B, oldestCaptureAt: '2026-11-03T00:00:00.000Z' },
        ],
        neverCaptured: [],
        // The newest of their oldest: A has a capture at or before it too.
        earliestRecoveryPoint: '2026-11-03T00:00:00.000Z',
        message:
          `No capture kept at or before the recovery point 2026-10-31T00:00:00.000Z of ${A} (its oldest kept is of 2026-11-01T00:00:00.000Z), ` +
          `${B} (its oldest kept is of 2026-11-03T00:00:00.000Z): choose a later point, 2026-11-03T00:00:00.000Z at the earliest ` +
          '(recovery.captureStore.keepLast sets how many captures of a machine are kept), or none to restore the latest captures',
      });
      // The host is free: a refused run holds nothing.
      expect(
        await runStore.activeRuns({ hypervisorHost: 'host-p-early' }),
      ).toEqual([]);
    });

    it('leaves runs to a recovery point out of what readiness reads: neither the last run nor a failure', async () => {
      // A failed run to a point, newer than every run of the latest captures.
      await runStore.admitRun(
        newRun('p-failed', [A], '2026-11-03T00:00:00.000Z'),
        new Date('2026-11-07T00:00:00.000Z'),
      );
      await finish('p-failed', 'failed', {
        machineRef: A,
        message: 'probe tcp:1 did not pass',
      });
      // The last that counts for A is still the run of the latest captures, by machines as by entity.
      expect((await runHistory.lastFinishedRun({ machineRefs: [A] }))?.id).toBe(
        'p-none',
      );
      expect(
        (
          await runHistory.lastFinishedRun({
            entityRef: 'component:default/point',
          })
        )?.id,
      ).toBe('p-none');
      expect(
        (
          await runHistory.lastFinishedRuns([
            { machineRefs: [A] },
            { entityRef: 'component:default/point' },
            { machineRefs: [A, B] },
          ])
        ).map(r => r?.id),
      ).toEqual(['p-none', 'p-none', 'p-none']);
      // And the failure to a point counts against nothing, before or after that run.
      expect(
        (
          await runHistory.lastFailedRuns([
            { machineRefs: [A] },
            {
              machineRefs: [A],
              after: { id: 'p-none', createdAt: '2026-11-06T00:00:00.000Z' },
            },
          ])
        ).map(r => r?.id),
      ).toEqual([undefined, undefined]);
      // The run itself is read as any other, with its point.
      expect(await runStore.getRun('p-failed')).toMatchObject({
        status: 'failed',
        recoveryPoint: '2026-11-03T00:00:00.000Z',
      });
    });
  },
);

describe.each(databases.eachSupportedId())(
  'the recovery point migration on %p',
  databaseId => {
    it("adds the run's recovery point and each machine's capture time, filled in for runs stored before where their capture is kept, and goes back down", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const directory = migrationsDirectory;
      const name = '20261213000000_run_recovery_point.js';
      await knex.migrate.down({ directory, name });
      expect(
        await knex.schema.hasColumn('recovery_runs', 'recovery_point'),
      ).toBe(false);
      expect(
        await knex.schema.hasColumn(
          'recovery_run_machines',
          'capture_created_at',
        ),
      ).toBe(false);
      const at = new Date('2026-11-20T00:00:00.000Z');
      await knex('recovery_captures').insert({
        id: 'kept',
        machine_ref: A,
        engine: 'primary',
        container: 'pa-01',
        image_id: 'sha256:1',
        size_bytes: 1,
        checksum: 'sha256:1',
        artifact: '/captures/kept.tar',
        runtime: '{}',
        adaptations: '[]',
        duration_ms: 1,
        created_at: at,
      });
      await knex('recovery_runs').insert({
        id: 'old',
        entity_ref: 'component:default/point',
        mode: 'test',
        status: 'succeeded',
        trigger: 'user',
        hypervisor_host: 'h',
        plan: '{"entityRef":"component:default/point","waves":[],"machines":[]}',
        created_at: at,
      });
      await knex('recovery_run_machines').insert([
        {
          run_id: 'old',
          machine_ref: A,
          wave: 0,
          phase: 'ready',
          capture_id: 'kept',
        },
        {
          run_id: 'old',
          machine_ref: B,
          wave: 0,
          phase: 'ready',
          capture_id: 'pruned',
        },
      ]);
      await knex('recovery_run_steps').insert({
        run_id: 'old',
        at,
        level: 'info',
        message: 'Test recovery of component:default/point',
      });
      await knex.migrate.up({ directory, name });
      const runStore = new RunStore(knex);
      const runHistory = new ReadinessHistoryStore(knex);
      const old = (await runStore.getRun('old'))!;
      expect(old.recoveryPoint).toBeUndefined();
      expect(old.machines.map(m => [m.machineRef, m.capturedAt])).toEqual([
        [A, '2026-11-20T00:00:00.000Z'],
        [B, undefined],
      ]);
      // Runs stored before count for readiness as they did.
      expect((await runHistory.lastFinishedRun({ machineRefs: [A] }))?.id).toBe(
        'old',
      );
      await knex.migrate.down({ directory, name });
      expect(
        await knex.schema.hasColumn('recovery_runs', 'recovery_point'),
      ).toBe(false);
      expect(
        await knex.schema.hasColumn(
          'recovery_run_machines',
          'capture_created_at',
        ),
      ).toBe(false);
      // The runs, their machines and their steps outlive the columns: on SQLite, a rebuilt recovery_runs
      // would have taken the others with it (ON DELETE CASCADE).
      for (const [table, rows] of [
        ['recovery_runs', 1],
        ['recovery_run_machines', 2],
        ['recovery_run_steps', 1],
      ] as const) {
        const [{ n }] = await knex(table)
          .where(table === 'recovery_runs' ? { id: 'old' } : { run_id: 'old' })
          .count({ n: '*' });
        expect({ table, rows: Number(n) }).toEqual({ table, rows });
      }
      await migrate(knex);
    });
  },
);
