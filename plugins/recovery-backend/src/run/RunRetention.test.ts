import {
  mockCredentials,
  mockServices,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type {
  BootPlan,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { Entity } from '@backstage/catalog-model';
import type { Knex } from 'knex';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { NightlyCheckStore } from '../database/NightlyCheckStore';
import { ReadinessHistoryStore } from '../database/ReadinessHistoryStore';
import { RunStore } from '../database/RunStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { PlanService } from '../service/PlanService';
import { ReadinessService } from '../service/ReadinessService';
import { catalogHidingFromUsers } from '../testing/catalog';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { recordingAuditor } from '../testing/auditor';
import { recordingLogger } from '../testing/logger';
import { RunRetention } from './RunRetention';

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;
const site = 'system:default/retained-site';

// With the relations the catalog derives (dependencyOf, partOf): the nightly check and retention
// find the entities readiness is of by them.
const related = (entity: Entity, type: string, targetRef: string): Entity => ({
  ...entity,
  relations: [...(entity.relations ?? []), { type, targetRef }],
});
const catalog: Entity[] = [
  related(machineEntity('db-01'), 'dependencyOf', c('database')),
  related(machineEntity('web-01'), 'dependencyOf', c('web')),
  related(componentEntity('database', [m('db-01')]), 'partOf', site),
  related(componentEntity('web', [m('web-01'), c('database')]), 'partOf', site),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'retained-site', namespace: 'default' },
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
const DAY = 86_400_000;
const RETENTION = 90 * DAY;

describe.each(databases.eachSupportedId())(
  'run retention on %p',
  databaseId => {
    let knex: Knex;
    let runStore: RunStore;
    let plans: PlanService;
    let readiness: ReadinessService;
    let nightlyChecks: NightlyCheckStore;
    const now = Date.now();

    beforeEach(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      const captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(catalog, []),
        mockServices.auth(),
        objectives,
      );
      plans = new PlanService(graphs);
      nightlyChecks = new NightlyCheckStore(knex);
      readiness = new ReadinessService(
        captureStore,
        new ReadinessHistoryStore(knex),
        plans,
        graphs,
        objectives,
        7 * 86_400,
        () => ['primary'],
        nightlyChecks,
      );
      for (const name of ['db-01', 'web-01'])
        await captureStore.insertCapture({
          ...storedCapture(name),
          createdAt: new Date(now - DAY).toISOString(),
        });
    });

    /** A run of `entityRef` created `daysAgo`, over its plan as the catalog gives it now, with a timeline and machine details. */
    const run = async (
      id: string,
      entityRef: string,
      daysAgo: number,
      outcome: Pick<RecoveryRun, 'status' | 'error'>,
      extra: {
        mode?: RecoveryRun['mode'];
        recoveryPoint?: string;
        labLeft?: boolean;
      } = {},
    ) => {
      // An entity gone from the catalog keeps the plan it was run with.
      const plan: BootPlan =
        entityRef === c('gone')
          ? { entityRef, waves: [[m('db-01')]], machines: [] }
          : (await plans.plan(entityRef)).plan!;
      const createdAt = new Date(now - daysAgo * DAY);
      await runStore.insertRun(
        {
          id,
          entityRef,
          mode: extra.mode ?? 'test',
          trigger: 'schedule',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          recoveryPoint: extra.recoveryPoint,
          machines: plan.waves.flatMap((wave, k) =>
            wave.map(machineRef => ({ machineRef, wave: k })),
          ),
        },
        createdAt,
      );
      await runStore.updateRun(id, { status: 'running' });
      for (const machineRef of plan.waves.flat())
        await runStore.updateRunMachine(id, machineRef, {
          phase: 'ready',
          logTail: 'listening on :80',
          probe: 'tcp:80',
        });
      await runStore.appendStep(id, {
        at: createdAt.toISOString(),
        level: 'info',
        message: 'Lab created',
      });
      if (outcome.status !== 'running')
        await runStore.updateRun(id, {
          ...outcome,
          finishedAt: new Date(createdAt.getTime() + 60_000).toISOString(),
        });
      if (extra.labLeft) await runStore.setLabLeft(id, true);
    };
    const failedOn = (machine: string) => ({
      status: 'failed' as const,
      error: { machineRef: m(machine), message: 'probe tcp:80 did not pass' },
    });
    const ok = { status: 'succeeded' as const };

    /** Nightly checks over half a year, as a site accumulates them. */
    const history = async () => {
      await run('gone-300d', c('gone'), 300, ok);
      await run('gone-250d', c('gone'), 250, ok);
      await run('site-200d', site, 200, ok);
      await run('db-180d', c('database'), 180, ok);
      await run('db-170d', c('database'), 170, ok);
      await run('db-failover', c('database'), 150, ok, { mode: 'failover' });
      await run('db-lab-left', c('database'), 140, failedOn('db-01'), {
        labLeft: true,
      });
      await run('db-interrupted', c('database'), 120, {
        status: 'interrupted',
        error: { message: 'Interrupted: the backend stopped' },
      });
      await run('site-running', site, 130, { status: 'running' });
      await run('site-cover', site, 100, ok);
      await run('site-interrupted', site, 98, {
        status: 'interrupted',
        error: { message: 'Interrupted: the backend stopped' },
      });
      await run('web-failed', c('web'), 95, failedOn('web-01'));
      await run('web-interrupted', c('web'), 92, {
        status: 'interrupted',
        error: { message: 'Interrupted: the backend stopped' },
      });
      // To a recovery point: proves that point, not the latest captures, so readiness skips it.
      await run('site-point', site, 2, ok, {
        recoveryPoint: new Date(now - 3 * DAY).toISOString(),
      });
    };
    const pruned = [
      'gone-300d',
      'site-200d',
      'db-180d',
      'db-170d',
      'site-interrupted',
    ];

    /** Every entity's readiness, alone and in the overview, at one instant. */
    const verdicts = async () => {
      vi.useFakeTimers({ toFake: ['Date'], now: now + 60_000 });
      try {
        const refs = [site, c('web'), c('database')];
        return {
          alone: await Promise.all(
            refs.map(ref => readiness.readiness(ref, everything)),
          ),
          overview: await readiness.readinessOf(refs, everything),
        };
      } finally {
        vi.useRealTimers();
      }
    };
    const rowsOf = async (table: string, column: string) =>
      new Set(await knex(table).distinct(column).pluck(column));

    it('deletes the runs past the retention with their machines and steps, and leaves readiness as it was', async () => {
      await history();
      const before = await verdicts();
      // The history is one readiness reads through: its verdicts rest on runs past the retention.
      expect(
        before.alone.map(r => r.lastRun && 'id' in r.lastRun && r.lastRun.id),
      ).toEqual(['web-failed', 'web-failed', 'site-cover']);
      const logger = recordingLogger();
      const auditor = recordingAuditor();
      expect([...(await readiness.runsRestedOn())].sort()).toEqual([
        'site-cover',
        'web-failed',
      ]);
      const retention = new RunRetention(
        runStore,
        readiness,
        logger,
        auditor,
        RETENTION,
      );

      const deleted = await retention.prune(now);

      expect(await verdicts()).toEqual(before);
      expect(deleted).toBe(pruned.length);
      const runs = await rowsOf('recovery_runs', 'id');
      const machines = await rowsOf('recovery_run_machines', 'run_id');
      const steps = await rowsOf('recovery_run_steps', 'run_id');
      for (const id of pruned) {
        expect([id, runs.has(id), machines.has(id), steps.has(id)]).toEqual([
          id,
          false,
          false,
          false,
        ]);
      }
      // Kept: each entity's newest finished run, a failover, a lab left on its host, a run in
      // progress, what readiness rests on, and what is younger than the retention.
      expect([...runs].sort()).toEqual(
        [
          'db-failover',
          'db-interrupted',
          'db-lab-left',
          'gone-250d',
          'site-cover',
          'site-point',
          'site-running',
          'web-failed',
          'web-interrupted',
        ].sort(),
      );
      for (const id of runs) expect([id, steps.has(id)]).toEqual([id, true]);
      expect(logger.lines).toEqual([
        expect.objectContaining({
          level: 'info',
          message: `Deleted 5 recovery runs older than 90d, with their machines and steps (recovery.runs.retention)`,
        }),
      ]);

      // On record as the plugin's own deletion of recovery runs, oldest first.
      expect(auditor.events).toEqual([
        {
          eventId: 'run-retention',
          severityLevel: 'medium',
          request: undefined,
          meta: {
            runsDeleted: 5,
            runIds: pruned,
            retentionSeconds: 90 * 86_400,
          },
          ends: [{ status: 'succeeded', meta: undefined }],
        },
      ]);

      // Nothing more to delete: said by nothing in the log, nor in the audit trail.
      expect(await retention.prune(now)).toBe(0);
      expect(logger.lines).toHaveLength(1);
      expect(auditor.events).toHaveLength(1);
    });

    it('records a pass that failed as failed, with what it deleted before the failure', async () => {
      await history();
      const auditor = recordingAuditor();
      const lost = new Error('the database went away');
      // The first batch committed, then the database failed the next.
      const failing: Pick<RunStore, 'pruneRuns'> = {
        pruneRuns: async (before, keep, deletedIds) => {
          await runStore.pruneRuns(
            before,
            new Set([...keep, 'db-180d', 'db-170d', 'site-interrupted']),
            deletedIds,
          );
          throw lost;
        },
      };
      const logger = recordingLogger();
      await expect(
        new RunRetention(failing, readiness, logger, auditor, RETENTION).prune(
          now,
        ),
      ).rejects.toBe(lost);
      // What was deleted before the failure is said, not only the failure.
      expect(logger.lines).toEqual([
        {
          level: 'info',
          message:
            'Deleted 2 recovery runs older than 90d, with their machines and steps (recovery.runs.retention), before the pass failed',
          fields: {},
        },
      ]);
      expect(auditor.events).toEqual([
        {
          eventId: 'run-retention',
          severityLevel: 'medium',
          request: undefined,
          meta: {
            runsDeleted: 2,
            runIds: ['gone-300d', 'site-200d'],
            retentionSeconds: 90 * 86_400,
          },
          ends: [
            {
              status: 'failed',
              meta: undefined,
              error: 'the database went away',
            },
          ],
        },
      ]);
    });

    it('keeps the run the latest nightly check names, which readiness links to', async () => {
      await history();
      await nightlyChecks.record({
        checkedAt: new Date(now - 200 * DAY).toISOString(),
        outcomes: [
          {
            entityRef: c('database'),
            outcome: 'started',
            runId: 'db-180d',
            runEntityRef: c('database'),
            message: 'run db-180d succeeded in 30 s',
          },
        ],
      });
      expect(await readiness.runsRestedOn()).toContain('db-180d');
      await new RunRetention(
        runStore,
        readiness,
        recordingLogger(),
        recordingAuditor(),
        RETENTION,
      ).prune(now);
      const runs = await rowsOf('recovery_runs', 'id');
      expect([runs.has('db-180d'), runs.has('db-170d')]).toEqual([true, false]);
    });

    it('deletes in batches, keeping what it is told to keep', async () => {
      await history();
      const keep = new Set(['site-200d', 'site-cover', 'web-failed']);
      const deletedIds: string[] = [];
      expect(
        await runStore.pruneRuns(
          new Date(now - RETENTION),
          keep,
          deletedIds,
          2,
        ),
      ).toBe(pruned.length - 1);
      expect(deletedIds).toEqual(pruned.filter(id => id !== 'site-200d'));
      const runs = await rowsOf('recovery_runs', 'id');
      expect(runs.has('site-200d')).toBe(true);
      expect(runs.has('site-cover')).toBe(true);
      // Not kept: the newest finished run of no entity, younger than nothing readiness reads.
      expect(runs.has('db-180d')).toBe(false);
    });
  },
);

describe('run retention of many runs', () => {
  it('lists the first 100 ids deleted in its audit event, and how many more', async () => {
    const ids = Array.from({ length: 150 }, (_, i) => `run-${i}`);
    const auditor = recordingAuditor();
    await new RunRetention(
      {
        pruneRuns: async (_before, _keep, deletedIds = []) => {
          deletedIds.push(...ids);
          return ids.length;
        },
      },
      { runsRestedOn: async () => new Set<string>() },
      recordingLogger(),
      auditor,
      RETENTION,
    ).prune();
    expect(auditor.events.map(e => e.meta)).toEqual([
      {
        runsDeleted: 150,
        runIds: ids.slice(0, 100),
        runIdsOmitted: 50,
        retentionSeconds: 90 * 86_400,
      },
    ]);
  });
});
