import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type {
  ReadinessStatus,
  ReadinessSummary,
  ReasonRun,
  RunSummary,
} from '@backstage-recovery/plugin-recovery-common';
import type { Entity } from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { NotificationSendOptions } from '@backstage/plugin-notifications-node';
import {
  ReadinessNoticeStore,
  type ReadinessAlarm,
} from '../database/ReadinessNoticeStore';
import { migrate, migrationsDirectory } from '../database/migrations';
import { groupEntity as group } from '../testing/groups';
import { recordingLogger } from '../testing/logger';
import { recordedMetrics } from '../testing/metrics';
import { utcTime } from './notices/noticeText';
import {
  ABSENCE_KEPT_MS,
  nextNotice,
  readinessChange,
  ReadinessNotifier,
} from './ReadinessNotifier';
import { RecoveryMetrics } from './RecoveryMetrics';

const WEB = 'component:default/web';
const DB = 'component:default/database';
const SHOP = 'system:default/shop';
const TEAM_A = 'group:default/team-a';
const TEAM_B = 'group:default/team-b';
const ALICE = 'user:default/alice';

const T0 = '2026-12-01T00:00:00.000Z';
const T1 = '2026-12-02T00:00:00.000Z';
const byRef = (a: { entityRef: string }, b: { entityRef: string }) =>
  a.entityRef.localeCompare(b.entityRef);
const ALARM: ReadinessAlarm = {
  scope: 'recovery-readiness:a1',
  title: 'web is not recoverable',
  sentAt: T0,
};

describe('readiness notices', () => {
  it('tell nothing of an entity seen for the first time, whatever its status: there is no change to tell', () => {
    for (const status of [
      'ready',
      'at-risk',
      'unknown',
      'not-recoverable',
    ] as const)
      expect(readinessChange(undefined, status)).toBeUndefined();
    // Never seen recoverable, and so never told otherwise: becoming recoverable is no news either.
    expect(
      readinessChange(
        { entityRef: WEB, status: 'not-recoverable', since: T0 },
        'unknown',
      ),
    ).toBeUndefined();
  });

  it('tell a loss from any recoverable status, "recoverable again" only after an alarm that was sent, and nothing else', () => {
    for (const status of ['ready', 'at-risk', 'unknown'] as const) {
      expect(
        readinessChange(
          { entityRef: WEB, status, since: T0 },
          'not-recoverable',
        ),
      ).toBe('lost');
      expect(
        readinessChange(
          {
            entityRef: WEB,
            status: 'not-recoverable',
            since: T0,
            alarm: ALARM,
          },
          status,
        ),
      ).toBe('regained');
      // Told already (the alarm waits for the other entities it named): not twice.
      expect(
        readinessChange(
          {
            entityRef: WEB,
            status: 'not-recoverable',
            since: T0,
            alarm: { ...ALARM, closedAt: T1 },
          },
          status,
        ),
      ).toBeUndefined();
    }
    expect(
      readinessChange(
        { entityRef: WEB, status: 'not-recoverable', since: T0, alarm: ALARM },
        'not-recoverable',
      ),
    ).toBeUndefined();
    expect(
      readinessChange(
        { entityRef: WEB, status: 'ready', since: T0 },
        'at-risk',
      ),
    ).toBeUndefined();
  });

  it('keep what was kept while the status holds, a new status from now, and an alarm waiting for others with whom it went to', () => {
    const before = {
      entityRef: WEB,
      status: 'not-recoverable' as const,
      since: T0,
      alarm: ALARM,
      owners: [TEAM_A],
    };
    expect(nextNotice(before, WEB, 'not-recoverable', T1)).toBe(before);
    expect(nextNotice(before, WEB, 'ready', T1)).toEqual({
      entityRef: WEB,
      status: 'ready',
      since: T1,
    });
    const waiting = {
      ...before,
      status: 'ready' as const,
      alarm: { ...ALARM, closedAt: T1 },
      users: [ALICE],
    };
    expect(nextNotice(waiting, WEB, 'at-risk', T1)).toEqual({
      ...waiting,
      status: 'at-risk',
      since: T1,
    });
  });
});

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

/** When the test's failed runs ended. */
const RUN_AT = '2026-12-05T23:56:05.210Z';

describe.each(databases.eachSupportedId())(
  'ReadinessNotifier on %s',
  databaseId => {
    /** A notifier over a real store, with readiness and the notifications service played by the test. */
    async function notifier() {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const notices = new ReadinessNoticeStore(knex);
      const state = {
        entities: [] as string[],
        statuses: new Map<string, ReadinessStatus>(),
        /**
         * The failed last run of an entity, of it or of another entity (its system's, say): readiness
         * for owners withholds one of another entity as ReadinessService does.
         */
        runs: new Map<
          string,
          {
            id: string;
            entityRef: string;
            message: string;
            failedAt?: string;
            /** When it ended: RUN_AT where not given. */
            finishedAt?: string;
          }
        >(),
        /** When the last run of an entity without a failed one ended, succeeded: none where not given. */
        recovered: new Map<string, string>(),
        /**
         * Reasons of an entity without such a run, as readiness for owners words them (`told`) and as
         * the plugin sees them (`whole`, runs of other entities named), with the runs of other
         * entities they are about (`runs`: withheld in `told`); else one reason, `why`.
         */
        views: new Map<
          string,
          { told: string[]; whole: string[]; runs?: ReasonRun[] }
        >(),
        owners: new Map<string, string[]>([[WEB, [TEAM_A]]]),
        /** The catalog's groups; team-a's member is alice. */
        groups: [group(TEAM_A, [ALICE])] as Entity[],
        /** Requests for the catalog's entities (the groups). */
        reads: 0,
        /** The entities readiness was asked for as the plugin sees them, runs of other entities in full. */
        wholeViews: [] as string[][],
        sent: [] as NotificationSendOptions[],
        /** Entities whose notice the notifications service refuses. */
        refuse: new Set<string>(),
        /** No notifications backend installed: every notice answered 404. */
        absent: false,
        /** Notices the notifications service was given, sent or not. */
        attempts: 0,
        /** Owners the catalog no longer holds. */
        gone: new Set<string>(),
        /** Awaited before each send: one that never ends plays a backend stopped mid-sweep. */
        hold: undefined as undefined | (() => Promise<void>),
      };
      const readiness = {
        readinessOf: async (
          refs: string[],
          _credentials: unknown,
          options?: { ownRunsOnly?: boolean },
        ) => {
          if (!options?.ownRunsOnly) state.wholeViews.push(refs);
          return refs.map(entityRef => {
            const status = state.statuses.get(entityRef)!;
            const run = state.runs.get(entityRef);
            const view = state.views.get(entityRef);
            if (!run) {
              const recoveredAt = state.recovered.get(entityRef);
              const succeeded: RunSummary | undefined = recoveredAt
                ? {
                    mode: 'test',
                    status: 'succeeded',
                    createdAt: recoveredAt,
                    finishedAt: recoveredAt,
                  }
                : undefined;
              if (!view)
                return {
                  entityRef,
                  status,
                  reasons: ['why'],
                  ...(succeeded && { lastRun: succeeded }),
                } as ReadinessSummary;
              const reasonRuns = options?.ownRunsOnly
                ? view.runs?.map(({ reason }) => ({ reason }))
                : view.runs;
              return {
                entityRef,
                status,
                reasons: options?.ownRunsOnly ? view.told : view.whole,
                ...(reasonRuns && { reasonRuns }),
              } as ReadinessSummary;
            }
            const withheld =
              options?.ownRunsOnly && run.entityRef !== entityRef;
            const lastRun: RunSummary = {
              mode: 'test',
              status: 'failed',
              createdAt: '2026-12-05T23:55:00.000Z',
              finishedAt: run.finishedAt ?? RUN_AT,
              ...(run.failedAt && { failedAt: run.failedAt }),
              ...(!withheld && { id: run.id, entityRef: run.entityRef }),
            };
            const message = withheld
              ? `${run.failedAt ?? 'the run'} failed, in a run of another entity (its details on this entity's Recovery tab, to those the catalog shows that entity)`
              : run.message;
            const reasonRuns = [
              {
                reason: 0,
                ...(!withheld && {
                  run: { id: run.id, entityRef: run.entityRef },
                }),
              },
            ];
            return {
              entityRef,
              status,
              reasons: [`Last test recovery failed: ${message}`],
              reasonRuns,
              lastRun,
            } as ReadinessSummary;
          });
        },
      };
      const notifications = {
        send: async (options: NotificationSendOptions) => {
          const refs =
            options.recipients.type === 'entity'
              ? [options.recipients.entityRef].flat()
              : [];
          state.attempts += 1;
          // As the default notifications service words it.
          if (state.absent)
            throw new Error(
              'Failed to send notifications: Error: Request failed with status 404',
            );
          if (refs.some(ref => state.refuse.has(ref)))
            throw new Error('Request failed with status 503');
          await state.hold?.();
          state.sent.push(options);
        },
      };
      const logger = recordingLogger();
      const catalog = {
        recoverableEntities: async () => state.entities,
        ownersOf: async (refs: string[]) =>
          new Map(refs.map(ref => [ref, state.owners.get(ref) ?? []])),
      };
      /** The catalog's groups, less those it no longer holds, as the catalog answers queries of them. */
      const directory: Pick<CatalogService, 'getEntitiesByRefs'> = {
        getEntitiesByRefs: async (request, options) => {
          state.reads += 1;
          const entities = state.groups.filter(
            g =>
              !state.gone.has(
                `group:${g.metadata.namespace}/${g.metadata.name}`,
              ),
          );
          return catalogServiceMock({ entities }).getEntitiesByRefs(
            request,
            options,
          );
        },
      };
      const sweeper = new ReadinessNotifier(
        notices,
        readiness,
        catalog,
        directory,
        notifications,
        mockServices.auth(),
        logger,
      );
      /** A first sweep with every entity given seen recoverable: a later loss is a change. */
      const seenRecoverable = async (...refs: string[]) => {
        state.entities = [...new Set([...state.entities, ...refs])];
        refs.forEach(ref => state.statuses.set(ref, 'ready'));
        expect(await sweeper.sweep()).toMatchObject({ sent: 0 });
      };
      const recipientsOf = (s: NotificationSendOptions) =>
        s.recipients.type === 'entity' ? s.recipients.entityRef : 'broadcast';
      return {
        sweeper,
        notices,
        state,
        logger,
        knex,
        seenRecoverable,
        recipientsOf,
      };
    }

    it('tells nothing at a first sweep, nor of an entity that was never recoverable becoming so; then each loss once, to the entity', async () => {
      const { sweeper, notices, state, recipientsOf } = await notifier();
      // A backend started on an empty database: every entity not recoverable (never captured).
      state.entities = [WEB, SHOP];
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      expect(await sweeper.sweep()).toEqual({
        entities: 2,
        sent: 0,
        failed: 0,
      });
      expect(await sweeper.sweep()).toEqual({
        entities: 2,
        sent: 0,
        failed: 0,
      });
      // Captured: recoverable, never tested. No "recoverable again": nobody was told otherwise.
      state.statuses.set(WEB, 'unknown').set(SHOP, 'ready');
      expect(await sweeper.sweep()).toEqual({
        entities: 2,
        sent: 0,
        failed: 0,
      });
      expect(
        [...(await notices.all()).values()]
          .map(n => [n.entityRef, n.status, n.alarm])
          .sort(),
      ).toEqual([
        [WEB, 'unknown', undefined],
        [SHOP, 'ready', undefined],
      ]);

      // A real regression, from either: told at once, each to its own owners (shop's are none here).
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      expect(await sweeper.sweep()).toEqual({
        entities: 2,
        sent: 2,
        failed: 0,
      });
      expect(
        state.sent.map(s => [
          recipientsOf(s),
          s.payload.title,
          s.payload.severity,
        ]),
      ).toEqual([
        [WEB, 'web is not recoverable', 'high'],
        [SHOP, 'system shop is not recoverable', 'high'],
      ]);
      expect(await sweeper.sweep()).toEqual({
        entities: 2,
        sent: 0,
        failed: 0,
      });
      expect((await notices.all()).get(WEB)).toMatchObject({
        status: 'not-recoverable',
        owners: [TEAM_A],
        users: [ALICE],
        alarm: { title: 'web is not recoverable' },
      });
    });

    it('tells "recoverable again" in a notice of its own, and resolves the alarm in place: each notice in a scope of its own', async () => {
      const { sweeper, notices, state, seenRecoverable, recipientsOf } =
        await notifier();
      await seenRecoverable(WEB);
      state.statuses.set(WEB, 'not-recoverable');
      await sweeper.sweep();
      const [alarm] = state.sent;
      state.statuses.set(WEB, 'ready');
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 2,
        failed: 0,
      });
      const [, back, resolved] = state.sent;
      // To whom the alarm was told, as its rewrite in place: should the entity have changed owners
      // since, not to owners who never had the alarm.
      expect(recipientsOf(back)).toEqual([TEAM_A, ALICE]);
      expect(recipientsOf(resolved)).toEqual([TEAM_A, ALICE]);
      expect(back.payload).toMatchObject({
        title: 'web is recoverable again (ready)',
        severity: 'low',
      });
      expect(resolved.payload).toMatchObject({
        title: 'Resolved: web is not recoverable',
        severity: 'low',
        scope: alarm.payload.scope,
      });
      expect(back.payload.scope).not.toBe(alarm.payload.scope);
      expect((await notices.all()).get(WEB)).toEqual({
        entityRef: WEB,
        status: 'ready',
        since: expect.any(String),
      });
      expect(await sweeper.sweep()).toMatchObject({ sent: 0 });

      // Lost again: a new alarm, in a new scope, and a new "recoverable again" after it.
      state.statuses.set(WEB, 'not-recoverable');
      await sweeper.sweep();
      state.statuses.set(WEB, 'at-risk');
      await sweeper.sweep();
      const scopes = state.sent.map(s => s.payload.scope);
      expect(scopes).toHaveLength(6);
      // Two alarms, each resolved in its own scope; four notices of their own.
      expect(new Set(scopes).size).toBe(4);
      expect(scopes[5]).toBe(scopes[3]);
      expect(state.sent[4].payload.title).toBe(
        'web is recoverable again (at risk)',
      );
    });

    it('tells the entities one failed run made not recoverable, of the same owners, in one alarm naming the run, its entity and its cause', async () => {
      const { sweeper, state, seenRecoverable, recipientsOf } =
        await notifier();
      const DNS = 'component:default/dns';
      const REPORTS = 'component:default/reports';
      state.owners
        .set(DB, [TEAM_A])
        .set(SHOP, [TEAM_A])
        .set(DNS, [TEAM_A])
        .set(REPORTS, [TEAM_B]);
      await seenRecoverable(WEB, DB, SHOP, DNS, REPORTS);
      // web's test recovery failed as a whole (the recovery engine down): the last test recovery of
      // web and of what its plan holds, reports (team-b's) among them; dns's own failed on its machine.
      const webRun = {
        id: 'run-web',
        entityRef: WEB,
        message: 'Creating the lab failed: connect ENOENT /run/recovery.sock',
      };
      for (const ref of [WEB, DB, SHOP, REPORTS]) state.runs.set(ref, webRun);
      state.runs.set(DNS, {
        id: 'run-dns',
        entityRef: DNS,
        failedAt: 'resource:default/infra-01',
        message: 'resource:default/infra-01 did not pass probe tcp:53',
      });
      for (const ref of [WEB, DB, SHOP, DNS, REPORTS])
        state.statuses.set(ref, 'not-recoverable');
      expect(await sweeper.sweep()).toEqual({
        entities: 5,
        sent: 3,
        failed: 0,
      });
      // The run of another entity is read as the plugin sees it for those losses alone.
      expect(state.wholeViews).toEqual([[DB, SHOP, REPORTS]]);
      expect(state.sent.map(s => [recipientsOf(s), s.payload.title])).toEqual([
        [
          [WEB, DB, SHOP],
          "database, web and system shop are not recoverable: web's test recovery failed",
        ],
        [DNS, 'dns is not recoverable: its test recovery failed'],
        [
          REPORTS,
          'reports is not recoverable: a test recovery of another entity failed',
        ],
      ]);
      const [all, dns, reports] = state.sent.map(s => s.payload);
      expect(all.description).toBe(
        "web's test recovery (run run-web) failed at 2026-12-05 23:56:05 UTC: Creating the lab failed: connect ENOENT /run/recovery.sock; " +
          'it was the last test recovery of database, web and system shop, not recoverable until one succeeds',
      );
      expect(all.link).toBe('/recovery/runs/run-web');
      expect(dns.description).toBe(
        'Its test recovery (run run-dns) failed at 2026-12-05 23:56:05 UTC: resource:default/infra-01 did not pass probe tcp:53',
      );
      // team-b does not own web: neither the run, its entity nor its message.
      expect(reports.description).toMatch(
        /^A test recovery of another entity failed as a whole at 2026-12-05 23:56:05 UTC; it was the last test recovery of reports/,
      );
      expect(JSON.stringify(reports)).not.toMatch(/run-web|ENOENT|\bweb\b/);

      // All back at once: one notice for the three, the alarm resolved; reports' apart.
      for (const ref of [WEB, DB, SHOP, DNS, REPORTS])
        state.statuses.set(ref, 'ready');
      state.runs.clear();
      expect(await sweeper.sweep()).toEqual({
        entities: 5,
        sent: 6,
        failed: 0,
      });
      expect(state.sent.slice(3).map(s => s.payload.title)).toEqual([
        'database, web and system shop are recoverable again',
        'dns is recoverable again (ready)',
        'reports is recoverable again (ready)',
        "Resolved: database, web and system shop are not recoverable: web's test recovery failed",
        'Resolved: dns is not recoverable: its test recovery failed',
        'Resolved: reports is not recoverable: a test recovery of another entity failed',
      ]);
    });

    it("names another entity's run where the owners told all own it (with others), not where one of them does not", async () => {
      const { sweeper, state, seenRecoverable } = await notifier();
      // web is owned by team-a and team-b; database by team-a: its owners own web. shop by team-a and alice: alice does not.
      state.owners
        .set(WEB, [TEAM_A, TEAM_B])
        .set(DB, [TEAM_A])
        .set(SHOP, [TEAM_A, ALICE]);
      await seenRecoverable(DB, SHOP);
      const webRun = { id: 'run-web', entityRef: WEB, message: 'boom' };
      state.runs.set(DB, webRun).set(SHOP, webRun);
      state.statuses.set(DB, 'not-recoverable').set(SHOP, 'not-recoverable');
      await sweeper.sweep();
      expect(state.sent.map(s => s.payload.title)).toEqual([
        "database is not recoverable: web's test recovery failed",
        'system shop is not recoverable: a test recovery of another entity failed',
      ]);
    });

    it('quotes a reason tied to another entity\'s run naming that run where the owners told all own its entity, else withheld: in an alarm and in a "recoverable again"', async () => {
      const { sweeper, state, seenRecoverable, recipientsOf } =
        await notifier();
      // web is team-a's, as is database, whose run the reasons are tied to; shop is team-b's.
      state.owners.set(DB, [TEAM_A]).set(SHOP, [TEAM_B]);
      await seenRecoverable(WEB, SHOP);
      // The last run that recovered part of their plans, database's, failed on db-01 before their plans grew.
      const withheld = `resource:default/db-01 failed, in a run of another entity (its details on this entity's Recovery tab, to those the catalog shows that entity)`;
      const grown = (which: string) =>
        `Its boot plan changed since its last test recovery, ${which} (10 min ago), which did not boot resource:default/cache-01: none has recovered the plan it has now`;
      const dbRun = { id: 'r-db', entityRef: DB };
      const failedReasons = {
        told: [
          `Last test recovery failed: ${withheld}`,
          grown('in a run of another entity'),
        ],
        whole: [
          `Last test recovery, run r-db of ${DB}, failed: probe tcp:5432 did not pass`,
          grown(`run r-db of ${DB}`),
        ],
        runs: [
          { reason: 0, run: dbRun },
          { reason: 1, run: dbRun },
        ],
      };
      state.views.set(WEB, failedReasons).set(SHOP, failedReasons);
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      expect(await sweeper.sweep()).toMatchObject({ sent: 2 });
      expect(state.wholeViews).toEqual([[WEB, SHOP]]);
      expect(
        state.sent.map(s => [recipientsOf(s), s.payload.description]),
      ).toEqual([
        [WEB, `${failedReasons.whole[0]}; ${failedReasons.whole[1]}`],
        [SHOP, `${failedReasons.told[0]}; ${failedReasons.told[1]}`],
      ]);

      // Recovered but at risk, the plan still grown since: "recoverable again" quotes it, as the alarm did.
      const stillGrown = {
        told: [failedReasons.told[1]],
        whole: [failedReasons.whole[1]],
        runs: [{ reason: 0, run: dbRun }],
      };
      state.views.set(WEB, stillGrown).set(SHOP, stillGrown);
      state.statuses.set(WEB, 'at-risk').set(SHOP, 'at-risk');
      expect(await sweeper.sweep()).toMatchObject({ sent: 4 });
      const back = state.sent.filter(s =>
        s.payload.title.includes('recoverable again'),
      );
      expect(
        back.map(s => [
          s.payload.title,
          s.payload.description!.replace(/^.*; now at risk: /, ''),
        ]),
      ).toEqual([
        ['web is recoverable again (at risk)', failedReasons.whole[1]],
        ['system shop is recoverable again (at risk)', failedReasons.told[1]],
      ]);
      // Read a moment apart, the two views disagree (another run ended between): withheld.
      state.statuses.set(WEB, 'not-recoverable');
      state.views.set(WEB, {
        ...failedReasons,
        whole: [...failedReasons.whole, 'Never test-recovered'],
      });
      await sweeper.sweep();
      expect(state.sent.at(-1)!.payload.description).toBe(
        `${failedReasons.told[0]}; ${failedReasons.told[1]}`,
      );
    });

    it("reads which run a reason is about from readiness's reasonRuns, not from its words: reworded, it is named to owners of that run's entity alone", async () => {
      const { sweeper, state, seenRecoverable, recipientsOf } =
        await notifier();
      // web is team-a's, as is database, whose run the reason is about; shop is team-b's.
      state.owners.set(DB, [TEAM_A]).set(SHOP, [TEAM_B]);
      await seenRecoverable(WEB, SHOP);
      // Worded with none of the words readiness uses now: neither "run ID of ENTITY" nor "in a run of another entity".
      const view = {
        told: [
          'Machines were added since the newest recovery of the plan (one not shown here), 10 min ago',
        ],
        whole: [
          `Machines were added since the newest recovery of the plan (r-db, for ${DB}), 10 min ago`,
        ],
        runs: [{ reason: 0, run: { id: 'r-db', entityRef: DB } }],
      };
      state.views.set(WEB, view).set(SHOP, view);
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      expect(await sweeper.sweep()).toMatchObject({ sent: 2 });
      expect(state.wholeViews).toEqual([[WEB, SHOP]]);
      expect(
        state.sent.map(s => [recipientsOf(s), s.payload.description]),
      ).toEqual([
        [WEB, view.whole[0]],
        [SHOP, view.told[0]],
      ]);
    });

    it('withholds another entity\'s run in "recoverable again" once a user the alarm reached has left the owners it was told through', async () => {
      const { sweeper, state, seenRecoverable, recipientsOf } =
        await notifier();
      const BOB = 'user:default/bob';
      // web and database are team-a's (alice and bob): web's alarm names database's run to both.
      state.owners.set(DB, [TEAM_A]);
      state.groups = [group(TEAM_A, [ALICE, BOB]), group(TEAM_B, [])];
      await seenRecoverable(WEB);
      const withheld = 'in a run of another entity';
      const grown = (which: string) =>
        `Its boot plan changed since its last test recovery, ${which} (10 min ago), which did not boot resource:default/cache-01: none has recovered the plan it has now`;
      state.views.set(WEB, {
        told: [grown(withheld)],
        whole: [grown(`run r-db of ${DB}`)],
        runs: [{ reason: 0, run: { id: 'r-db', entityRef: DB } }],
      });
      state.statuses.set(WEB, 'not-recoverable');
      await sweeper.sweep();
      expect(
        state.sent.map(s => [recipientsOf(s), s.payload.description]),
      ).toEqual([[WEB, grown(`run r-db of ${DB}`)]]);

      // bob moves to team-b, which does not own database; web recovers, at risk for the same reason.
      state.groups = [group(TEAM_A, [ALICE]), group(TEAM_B, [BOB])];
      state.statuses.set(WEB, 'at-risk');
      await sweeper.sweep();
      const [back] = state.sent.slice(1);
      // Still to bob, whom the alarm reached; so database's run is not named to anyone.
      expect(recipientsOf(back)).toEqual([TEAM_A, ALICE, BOB]);
      expect(back.payload.title).toBe('web is recoverable again (at risk)');
      expect(back.payload.description!.replace(/^.*; now at risk: /, '')).toBe(
        grown(withheld),
      );
      expect(JSON.stringify(back)).not.toContain('r-db');
    });

    it('resolves an alarm in place for those it went to alone: an entity\'s new owners get no "Resolved" naming a run they were not told of', async () => {
      const { sweeper, state, seenRecoverable, recipientsOf } =
        await notifier();
      state.owners.set(DB, [TEAM_A]);
      state.groups.push(group(TEAM_B, ['user:default/bob']));
      await seenRecoverable(WEB, DB);
      for (const ref of [WEB, DB]) {
        state.statuses.set(ref, 'not-recoverable');
        state.runs.set(ref, {
          id: 'r-1',
          entityRef: WEB,
          message: 'recovery engine unreachable',
        });
      }
      await sweeper.sweep();
      expect(state.sent.map(s => [s.payload.title, recipientsOf(s)])).toEqual([
        [
          "database and web are not recoverable: web's test recovery failed",
          [WEB, DB],
        ],
      ]);

      // database moves to team-b, then both recover.
      state.owners.set(DB, [TEAM_B]);
      for (const ref of [WEB, DB]) state.statuses.set(ref, 'ready');
      state.runs.clear();
      await sweeper.sweep();
      const resolved = state.sent.filter(s =>
        s.payload.title.startsWith('Resolved: '),
      );
      expect(resolved.map(s => [s.payload.title, recipientsOf(s)])).toEqual([
        [
          "Resolved: database and web are not recoverable: web's test recovery failed",
          [TEAM_A, ALICE],
        ],
      ]);
      // "Recoverable again" goes to those the alarm reached, as the resolved alarm does: one notice
      // for both. database's new owners, who never had the alarm, are told nothing of its end.
      expect(
        state.sent.slice(1).map(s => [s.payload.title, recipientsOf(s)]),
      ).toEqual([
        ['database and web are recoverable again', [TEAM_A, ALICE]],
        [
          "Resolved: database and web are not recoverable: web's test recovery failed",
          [TEAM_A, ALICE],
        ],
      ]);
    });

    it('keeps an entity lost again in the earlier alarm it was told the end of: that alarm resolved naming it, to whom it went, once the others are', async () => {
      const { sweeper, notices, state, seenRecoverable, recipientsOf } =
        await notifier();
      state.owners.set(DB, [TEAM_A]);
      await seenRecoverable(WEB, DB);
      for (const ref of [WEB, DB]) state.statuses.set(ref, 'not-recoverable');
      await sweeper.sweep();
      const [first] = state.sent;
      expect(first.payload.title).toBe('database and web are not recoverable');
      // web recovers (the alarm waits for database), then is lost again: a new alarm of its own.
      state.statuses.set(WEB, 'ready');
      await sweeper.sweep();
      state.statuses.set(WEB, 'not-recoverable');
      await sweeper.sweep();
      const second = state.sent.at(-1)!;
      expect(second.payload).toMatchObject({
        title: 'web is not recoverable',
        severity: 'high',
      });
      expect((await notices.all()).get(WEB)).toMatchObject({
        alarm: { scope: second.payload.scope },
        pastAlarms: [{ scope: first.payload.scope, owners: [TEAM_A] }],
      });

      // database recovers: the first alarm is resolved, web still in it; web's own still stands.
      state.statuses.set(DB, 'ready');
      await sweeper.sweep();
      const resolved = state.sent.filter(s =>
        s.payload.title.startsWith('Resolved: '),
      );
      expect(
        resolved.map(s => [s.payload.title, s.payload.scope, recipientsOf(s)]),
      ).toEqual([
        [
          'Resolved: database and web are not recoverable',
          first.payload.scope,
          [TEAM_A, ALICE],
        ],
      ]);
      expect(resolved[0].payload.description).toMatch(
        /^They were not recoverable .*The newer notices about database and web say what became of them$/,
      );
      expect((await notices.all()).get(WEB)).toMatchObject({
        status: 'not-recoverable',
        alarm: { scope: second.payload.scope },
      });
      expect((await notices.all()).get(WEB)!.pastAlarms).toBeUndefined();

      state.statuses.set(WEB, 'ready');
      await sweeper.sweep();
      expect(state.sent.slice(-2).map(s => s.payload.title)).toEqual([
        'web is recoverable again (ready)',
        'Resolved: web is not recoverable',
      ]);
      expect([...(await notices.all()).values()].sort(byRef)).toEqual([
        { entityRef: DB, status: 'ready', since: expect.any(String) },
        { entityRef: WEB, status: 'ready', since: expect.any(String) },
      ]);
    });

    it('resolves an alarm for several entities once the last of them is told it is over', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      state.owners.set(DB, [TEAM_A]).set(SHOP, [TEAM_A]);
      await seenRecoverable(WEB, DB, SHOP);
      for (const ref of [WEB, DB, SHOP])
        state.statuses.set(ref, 'not-recoverable');
      await sweeper.sweep();
      expect(state.sent.map(s => s.payload.title)).toEqual([
        'database, web and system shop are not recoverable',
      ]);
      const scope = state.sent[0].payload.scope;

      state.statuses.set(DB, 'ready');
      expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
      expect(state.sent[1].payload.title).toBe(
        'database is recoverable again (ready)',
      );
      expect((await notices.all()).get(DB)).toMatchObject({
        status: 'ready',
        alarm: { scope, closedAt: expect.any(String) },
        owners: [TEAM_A],
      });
      // Nothing more while the others are not.
      expect(await sweeper.sweep()).toMatchObject({ sent: 0 });

      // web recovers, shop leaves the catalog: told each, then the alarm resolved for all three.
      state.statuses.set(WEB, 'at-risk');
      state.entities = [WEB, DB];
      expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
      expect(await sweeper.sweep()).toMatchObject({ sent: 2 });
      expect(
        state.sent
          .slice(2)
          .map(s => [s.payload.title, s.payload.scope === scope]),
      ).toEqual([
        ['web is recoverable again (at risk)', false],
        ['system shop is no longer assessed for recovery', false],
        ['Resolved: database, web and system shop are not recoverable', true],
      ]);
      expect(state.sent.at(-1)!.payload.description).toMatch(
        /The newer notices about database, web and system shop say what became of them$/,
      );
      expect(
        [...(await notices.all()).values()].sort((a, b) =>
          a.entityRef.localeCompare(b.entityRef),
        ),
      ).toEqual([
        { entityRef: DB, status: 'ready', since: expect.any(String) },
        { entityRef: WEB, status: 'at-risk', since: expect.any(String) },
      ]);
    });

    it('sends a notice it could not send at the next sweep, and says why in one warning', async () => {
      const { sweeper, state, logger, seenRecoverable } = await notifier();
      await seenRecoverable(WEB);
      state.statuses.set(WEB, 'not-recoverable');
      state.refuse.add(WEB);
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 0,
        failed: 1,
      });
      expect(logger.lines.filter(l => l.level === 'warn')).toEqual([
        {
          level: 'warn',
          message:
            'Readiness notices: could not send 1 notice, retried at the next sweep (is @backstage/plugin-notifications-backend installed? ' +
            'recovery.notifications.enabled: false turns notices off); the first failed with',
          fields: { entityRefs: [WEB] },
          error: new Error('Request failed with status 503'),
        },
      ]);
      state.refuse.clear();
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 1,
        failed: 0,
      });
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 0,
        failed: 0,
      });
    });

    it('says once that no notifications backend is installed and tries no notice for a day, not at every sweep; then sends what waited once one answers', async () => {
      const { sweeper, notices, state, logger, seenRecoverable } =
        await notifier();
      await seenRecoverable(WEB, SHOP);
      const at = (iso: string) => vi.setSystemTime(new Date(iso));
      vi.useFakeTimers({
        toFake: ['Date'],
        now: new Date('2026-12-06T10:00:00.000Z'),
      });
      const said = () =>
        logger.lines.filter(l => l.level === 'warn' || l.level === 'error');
      try {
        state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
        state.owners.set(SHOP, [TEAM_B]);
        state.groups.push(group(TEAM_B, ['user:default/bob']));
        state.absent = true;
        // Two alarms (two teams): the first answered 404, the second not tried.
        expect(await sweeper.sweep()).toEqual({
          entities: 2,
          sent: 0,
          failed: 2,
        });
        expect(state.attempts).toBe(1);
        expect(said()).toEqual([
          {
            level: 'warn',
            message:
              'Readiness notices: no notifications backend is installed (a notice was answered 404 Not Found): install @backstage/plugin-notifications-backend, ' +
              'or set recovery.notifications.enabled: false to turn notices off. 2 notices wait, tried again in a day or once the backend restarts; the first failed with',
            fields: {},
            error: new Error(
              'Failed to send notifications: Error: Request failed with status 404',
            ),
          },
        ]);
        // The sweeps of the day after: nothing tried, nothing said.
        for (const time of ['10:15', '16:00', '23:59'])
          expect(
            await (at(`2026-12-06T${time}:00.000Z`), sweeper.sweep()),
          ).toMatchObject({ sent: 0, failed: 2 });
        expect(state.attempts).toBe(1);
        // A day on, tried again: still none, and not said again.
        at('2026-12-07T10:00:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 0, failed: 2 });
        expect(state.attempts).toBe(2);
        expect(said()).toHaveLength(1);
        // Installed since: at the next try, both alarms, the outage counted from when first seen.
        state.absent = false;
        at('2026-12-08T10:00:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 2, failed: 0 });
        expect((await notices.all()).get(WEB)!.alarm).toMatchObject({
          lostAt: '2026-12-06T10:00:00.000Z',
        });
        // Sent at every sweep again: web recoverable again, and its alarm resolved.
        state.statuses.set(WEB, 'ready');
        at('2026-12-08T10:15:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 2, failed: 0 });
        expect(said()).toHaveLength(1);
      } finally {
        vi.useRealTimers();
      }
    });

    it('counts an outage a run made from when that run ended to when the run that recovered it ended, not from the sweeps that saw them', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      const DNS = 'component:default/dns';
      const at = (iso: string) => vi.setSystemTime(new Date(iso));
      vi.useFakeTimers({
        toFake: ['Date'],
        now: new Date('2026-12-06T02:20:00.000Z'),
      });
      try {
        await seenRecoverable(WEB, DNS);
        state.owners.set(DNS, [TEAM_A]);
        state.runs.set(WEB, {
          id: 'run-web',
          entityRef: WEB,
          message: 'resource:default/web-01 did not pass probe tcp:80',
          finishedAt: '2026-12-06T02:26:29.000Z',
        });
        state.statuses.set(WEB, 'not-recoverable');
        // dns is not recoverable for its reasons alone: seen so at the sweep.
        state.statuses.set(DNS, 'not-recoverable');
        at('2026-12-06T02:26:47.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 2 });
        expect((await notices.all()).get(WEB)!.alarm).toMatchObject({
          sentAt: '2026-12-06T02:26:47.000Z',
          lostAt: '2026-12-06T02:26:29.000Z',
        });
        expect((await notices.all()).get(DNS)!.alarm).toMatchObject({
          lostAt: '2026-12-06T02:26:47.000Z',
        });
        state.runs.clear();
        state.recovered.set(WEB, '2026-12-06T02:32:56.000Z');
        for (const ref of [WEB, DNS]) state.statuses.set(ref, 'ready');
        at('2026-12-06T02:33:48.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 4 });
        expect(
          state.sent
            .slice(2)
            .map(s => [s.payload.metadata?.entityRefs, s.payload.description]),
        ).toEqual([
          [
            [WEB],
            'Not recoverable for 6 min, from 2026-12-06 02:26:29 UTC to 2026-12-06 02:32:56 UTC; now ready: why',
          ],
          [
            [DNS],
            'Not recoverable for 7 min, from 2026-12-06 02:26:47 UTC to 2026-12-06 02:33:48 UTC; now ready: why',
          ],
          [
            [DNS],
            'It was not recoverable for 7 min, from 2026-12-06 02:26:47 UTC to 2026-12-06 02:33:48 UTC. The newer notice about dns says what became of it',
          ],
          [
            [WEB],
            'It was not recoverable for 6 min, from 2026-12-06 02:26:29 UTC to 2026-12-06 02:32:56 UTC. The newer notice about web says what became of it',
          ],
        ]);
      } finally {
        vi.useRealTimers();
      }
    });

    it('counts an outage from when the loss was first seen, not from when its alarm could at last be sent; a loss seen untold and over is forgotten', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      await seenRecoverable(WEB, SHOP);
      const at = (iso: string) => vi.setSystemTime(new Date(iso));
      vi.useFakeTimers({
        toFake: ['Date'],
        now: new Date('2026-12-06T10:00:00.000Z'),
      });
      try {
        state.statuses.set(WEB, 'not-recoverable');
        state.refuse.add(WEB);
        expect(await sweeper.sweep()).toMatchObject({ sent: 0, failed: 1 });
        at('2026-12-06T10:30:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 0, failed: 1 });
        state.refuse.clear();
        at('2026-12-06T11:00:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
        expect((await notices.all()).get(WEB)).toMatchObject({
          since: '2026-12-06T10:00:00.000Z',
          alarm: {
            sentAt: '2026-12-06T11:00:00.000Z',
            lostAt: '2026-12-06T10:00:00.000Z',
          },
        });
        expect((await notices.all()).get(WEB)!.lossSeen).toBeUndefined();
        state.statuses.set(WEB, 'ready');
        at('2026-12-06T12:00:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 2 });
        for (const s of state.sent.slice(-2))
          expect(s.payload.description).toMatch(
            /^(It was n|N)ot recoverable for 2 h, from 2026-12-06 10:00:00 UTC to 2026-12-06 12:00:00 UTC/,
          );

        // shop's loss, refused, is over before it is told: nothing told, and its next loss counted from then.
        state.statuses.set(SHOP, 'not-recoverable');
        state.refuse.add(SHOP);
        await sweeper.sweep();
        expect((await notices.all()).get(SHOP)).toMatchObject({
          status: 'ready',
          lossSeen: '2026-12-06T12:00:00.000Z',
        });
        state.statuses.set(SHOP, 'ready');
        at('2026-12-06T13:00:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 0, failed: 0 });
        expect((await notices.all()).get(SHOP)!.lossSeen).toBeUndefined();
        state.refuse.clear();
        state.statuses.set(SHOP, 'not-recoverable');
        at('2026-12-06T14:00:00.000Z');
        expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
        expect((await notices.all()).get(SHOP)!.alarm).toMatchObject({
          lostAt: '2026-12-06T14:00:00.000Z',
        });
      } finally {
        vi.useRealTimers();
      }
    });

    it('records each notice as it is sent: a sweep stopped halfway (a backend restarted) sends none of them twice', async () => {
      const { sweeper, state, seenRecoverable, recipientsOf } =
        await notifier();
      await seenRecoverable(WEB, SHOP);
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      // The second send never ends: the backend stops there, before the sweep's end.
      let stopped!: () => void;
      const stoppedAt = new Promise<void>(ok => (stopped = ok));
      state.hold = () => {
        if (state.sent.length === 0) return Promise.resolve();
        stopped();
        return new Promise<void>(() => {});
      };
      void sweeper.sweep();
      await stoppedAt;
      const [first] = state.sent.map(recipientsOf);
      state.hold = undefined;
      // The next sweep, by this replica or another, sends only the notice not sent.
      expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
      expect(state.sent.map(recipientsOf)).toEqual([
        first,
        first === WEB ? SHOP : WEB,
      ]);
    });

    it('sends no more once the scheduler aborts the sweep at its timeout, when another replica may start one', async () => {
      const { sweeper, state, seenRecoverable, recipientsOf } =
        await notifier();
      await seenRecoverable(WEB, SHOP);
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      const timeout = new AbortController();
      state.hold = async () => timeout.abort();
      await expect(sweeper.sweep(timeout.signal)).rejects.toMatchObject({
        name: 'AbortError',
      });
      expect(state.sent).toHaveLength(1);
      state.hold = undefined;
      expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
      expect(new Set(state.sent.map(recipientsOf))).toEqual(
        new Set([WEB, SHOP]),
      );
    });

    it('keeps each entity told it is over as that notice is sent: a sweep stopped halfway sends none of them twice, and resolves the alarms after', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      state.owners.set(SHOP, ['user:default/jane']);
      await seenRecoverable(WEB, SHOP);
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      await sweeper.sweep();
      // Both leave the catalog: missing from two sweeps, their alarms are closed at the second.
      state.entities = [];
      await sweeper.sweep();
      const told = state.sent.length;
      // The scheduler stops the sweep (its timeout, a backend shutting down) once one is told.
      const timeout = new AbortController();
      state.hold = async () => timeout.abort();
      await expect(sweeper.sweep(timeout.signal)).rejects.toMatchObject({
        name: 'AbortError',
      });
      expect(state.sent.slice(told)).toHaveLength(1);
      state.hold = undefined;
      // The next sweep, by this replica or another, tells the other one, then resolves both alarms.
      expect(await sweeper.sweep()).toMatchObject({ sent: 3 });
      expect(state.sent.slice(told).map(s => s.payload.title)).toEqual([
        `web is no longer assessed for recovery`,
        `system shop is no longer assessed for recovery`,
        'Resolved: web is not recoverable',
        'Resolved: system shop is not recoverable',
      ]);
      expect((await notices.all()).size).toBe(0);
    });

    it('resolves an alarm at the next sweep where that could not be sent, without telling its end again', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      await seenRecoverable(WEB);
      state.statuses.set(WEB, 'not-recoverable');
      await sweeper.sweep();
      state.statuses.set(WEB, 'ready');
      // The notifications service refuses the second send.
      const send = state.hold;
      state.hold = async () => {
        if (state.sent.length === 2)
          throw new Error('Request failed with 503 Service Unavailable');
        await send?.();
      };
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 1,
        failed: 1,
      });
      expect((await notices.all()).get(WEB)).toMatchObject({
        status: 'ready',
        alarm: { closedAt: expect.any(String) },
      });
      state.hold = undefined;
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 1,
        failed: 0,
      });
      expect(state.sent.map(s => s.payload.title)).toEqual([
        'web is not recoverable',
        'web is recoverable again (ready)',
        'Resolved: web is not recoverable',
      ]);
      expect((await notices.all()).get(WEB)).toEqual({
        entityRef: WEB,
        status: 'ready',
        since: expect.any(String),
      });
    });

    it('closes the alarm of an entity no longer assessed, to those told, retried until sent, then forgets it: back, it is seen anew', async () => {
      const { sweeper, notices, state, seenRecoverable, recipientsOf } =
        await notifier();
      await seenRecoverable(WEB, SHOP);
      state.statuses.set(WEB, 'not-recoverable');
      await sweeper.sweep();
      expect((await notices.all()).get(WEB)).toMatchObject({
        owners: [TEAM_A],
        users: [ALICE],
      });

      // Deleted from the catalog: the entity no longer resolves to its owners, the recorded ones do.
      // Missing from one sweep's list, it is closed at the next.
      state.entities = [];
      expect(await sweeper.sweep()).toEqual({
        entities: 0,
        sent: 0,
        failed: 0,
      });
      state.refuse.add(TEAM_A);
      expect(await sweeper.sweep()).toEqual({
        entities: 0,
        sent: 0,
        failed: 1,
      });
      // Refused: kept, to be sent at the next sweep. Shop, never told of, is kept as last seen for a while (see below).
      expect([...(await notices.all()).keys()].sort()).toEqual(
        [WEB, SHOP].sort(),
      );
      state.refuse.clear();
      expect(await sweeper.sweep()).toEqual({
        entities: 0,
        sent: 2,
        failed: 0,
      });
      expect(
        state.sent
          .slice(-2)
          .map(s => [s.payload.title, s.payload.severity, recipientsOf(s)]),
      ).toEqual([
        [`web is no longer assessed for recovery`, 'low', [TEAM_A, ALICE]],
        ['Resolved: web is not recoverable', 'low', [TEAM_A, ALICE]],
      ]);
      // Told it is gone: forgotten.
      expect([...(await notices.all()).keys()]).toEqual([SHOP]);
      expect(await sweeper.sweep()).toEqual({
        entities: 0,
        sent: 0,
        failed: 0,
      });

      // Back in the catalog, still not recoverable: seen for the first time again, nothing to tell.
      state.entities = [WEB];
      expect((await sweeper.sweep()).sent).toBe(0);
    });

    it('closes an alarm only when its entity is missing at two sweeps in a row: a list read mid-rebuild closes nothing', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      await seenRecoverable(WEB);
      state.statuses.set(WEB, 'not-recoverable');
      await sweeper.sweep();
      const lost = (await notices.all()).get(WEB)!;

      state.entities = [];
      expect(await sweeper.sweep()).toEqual({
        entities: 0,
        sent: 0,
        failed: 0,
      });
      const missing = (await notices.all()).get(WEB)!;
      expect(missing).toEqual({ ...lost, absentSince: expect.any(String) });

      // Back in the list: nothing told, the alarm stands as before.
      state.entities = [WEB];
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 0,
        failed: 0,
      });
      expect((await notices.all()).get(WEB)).toEqual(lost);
      state.entities = [];
      await sweeper.sweep();
      const firstMissing = (await notices.all()).get(WEB)!.absentSince!;
      await new Promise(resolve => setTimeout(resolve, 5));
      expect(await sweeper.sweep()).toMatchObject({ sent: 2 });
      // The closing notice dates the departure from when the entity was first found missing.
      expect(state.sent.at(-2)!.payload.description).toMatch(
        new RegExp(`to ${utcTime(firstMissing)}$`),
      );
      expect(state.sent).toHaveLength(3);
    });

    it('remembers an entity missing from the list as last seen for a day: one back not recoverable within it is told; past it, it is new', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      const at = (time: string) => vi.setSystemTime(new Date(time));
      vi.useFakeTimers({
        toFake: ['Date'],
        now: new Date('2026-12-06T10:00:00.000Z'),
      });
      try {
        await seenRecoverable(WEB, DB, SHOP);
        const seen = (await notices.all()).get(WEB)!;
        // A catalog refresh leaves web and database out of the list for an hour: four sweeps.
        state.entities = [SHOP];
        for (const time of ['10:15', '10:30', '10:45', '11:00']) {
          at(`2026-12-06T${time}:00.000Z`);
          expect(await sweeper.sweep()).toEqual({
            entities: 1,
            sent: 0,
            failed: 0,
          });
        }
        expect((await notices.all()).get(WEB)).toEqual({
          ...seen,
          absentSince: '2026-12-06T10:15:00.000Z',
        });
        // web is back, not recoverable: a loss from how it was last seen, told.
        state.entities = [WEB, SHOP];
        state.statuses.set(WEB, 'not-recoverable');
        at('2026-12-06T11:15:00.000Z');
        expect(await sweeper.sweep()).toEqual({
          entities: 2,
          sent: 1,
          failed: 0,
        });
        expect(state.sent.map(s => s.payload.title)).toEqual([
          'web is not recoverable',
        ]);
        expect((await notices.all()).get(WEB)).toMatchObject({
          status: 'not-recoverable',
          alarm: { title: 'web is not recoverable' },
        });
        expect((await notices.all()).get(WEB)!.absentSince).toBeUndefined();

        // database is still missing a day after it was first: forgotten at the first sweep past the day.
        at(
          new Date(
            Date.parse('2026-12-06T10:15:00.000Z') + ABSENCE_KEPT_MS - 1,
          ).toISOString(),
        );
        await sweeper.sweep();
        expect((await notices.all()).has(DB)).toBe(true);
        at(
          new Date(
            Date.parse('2026-12-06T10:15:00.000Z') + ABSENCE_KEPT_MS,
          ).toISOString(),
        );
        await sweeper.sweep();
        expect((await notices.all()).has(DB)).toBe(false);
        // Back after that, not recoverable: seen anew, nothing to tell.
        state.entities = [WEB, DB, SHOP];
        state.statuses.set(DB, 'not-recoverable');
        expect(await sweeper.sweep()).toEqual({
          entities: 3,
          sent: 0,
          failed: 0,
        });
        expect(state.sent).toHaveLength(1);
      } finally {
        vi.useRealTimers();
      }
    });

    it('keeps as last seen an entity that went missing while its alarm waited for others, once the alarm is resolved', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      state.owners.set(DB, [TEAM_A]);
      await seenRecoverable(WEB, DB);
      for (const ref of [WEB, DB]) state.statuses.set(ref, 'not-recoverable');
      await sweeper.sweep();
      // web recovers (told: the alarm waits for database), then leaves the list for a while.
      state.statuses.set(WEB, 'ready');
      await sweeper.sweep();
      state.entities = [DB];
      await sweeper.sweep();
      await sweeper.sweep();
      // database recovers: the alarm is resolved; web, missing, is kept as it was last seen.
      state.statuses.set(DB, 'ready');
      await sweeper.sweep();
      expect(state.sent.at(-1)!.payload.title).toBe(
        'Resolved: database and web are not recoverable',
      );
      expect((await notices.all()).get(WEB)).toEqual({
        entityRef: WEB,
        status: 'ready',
        since: expect.any(String),
        absentSince: expect.any(String),
      });
      // Back, not recoverable: told.
      state.entities = [WEB, DB];
      state.statuses.set(WEB, 'not-recoverable');
      expect(await sweeper.sweep()).toMatchObject({ sent: 1 });
      expect(state.sent.at(-1)!.payload.title).toBe('web is not recoverable');
    });

    it('closes an alarm told before this version in the scope it went out in, and keeps the owners of one told before owners were kept', async () => {
      const { sweeper, notices, state, knex, recipientsOf } = await notifier();
      // Told by a version without the owners column nor a scope of its own: the row has neither.
      const directory = migrationsDirectory;
      await knex.migrate.down({
        directory,
        name: '20261215000100_readiness_notice_alarm.js',
      });
      await knex('recovery_readiness_notices').insert([
        { entity_ref: WEB, status: 'not-recoverable', since: new Date(T0) },
        { entity_ref: SHOP, status: 'ready', since: new Date(T0) },
      ]);
      await migrate(knex);
      expect((await notices.all()).get(WEB)).toEqual({
        entityRef: WEB,
        status: 'not-recoverable',
        since: T0,
        alarm: {
          scope: `recovery-readiness:${WEB}`,
          title: `${WEB} is not recoverable`,
          sentAt: T0,
        },
      });
      expect((await notices.all()).get(SHOP)).toEqual({
        entityRef: SHOP,
        status: 'ready',
        since: T0,
      });

      state.entities = [WEB];
      state.statuses.set(WEB, 'not-recoverable');
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 0,
        failed: 0,
      });
      // Whom it reached then is not known: no users are kept for it, and the groups are not read.
      expect((await notices.all()).get(WEB)).toMatchObject({
        owners: [TEAM_A],
      });
      expect((await notices.all()).get(WEB)?.users).toBeUndefined();
      expect(state.reads).toBe(0);

      // Deleted from the catalog: only the kept owners still resolve; its alarm resolved in its scope.
      state.entities = [];
      await sweeper.sweep();
      expect(await sweeper.sweep()).toEqual({
        entities: 0,
        sent: 2,
        failed: 0,
      });
      expect(
        state.sent.map(s => [
          recipientsOf(s),
          s.payload.title,
          s.payload.scope === `recovery-readiness:${WEB}`,
        ]),
      ).toEqual([
        [[WEB, TEAM_A], 'web is no longer assessed for recovery', false],
        [[WEB, TEAM_A], `Resolved: ${WEB} is not recoverable`, true],
      ]);
    });

    it('closes an alarm also to the users it reached once their group has left the catalog, when the entity is back or gone', async () => {
      const { sweeper, notices, state, seenRecoverable, recipientsOf } =
        await notifier();
      // web's team-a has alice and, through its sub-team, carol; shop is owned by jane herself and by team-a.
      state.groups = [
        group(TEAM_A, [ALICE], ['group:default/team-a-ops']),
        group('group:default/team-a-ops', ['user:default/carol']),
      ];
      state.owners.set(SHOP, ['user:default/jane', TEAM_A]);
      await seenRecoverable(WEB, SHOP);
      state.statuses.set(WEB, 'not-recoverable').set(SHOP, 'not-recoverable');
      expect(await sweeper.sweep()).toEqual({
        entities: 2,
        sent: 2,
        failed: 0,
      });
      // team-a, then its sub-team: a request a level, for both losses.
      expect(state.reads).toBe(2);
      expect((await notices.all()).get(WEB)).toMatchObject({
        owners: [TEAM_A],
        users: [ALICE, 'user:default/carol'],
      });
      expect((await notices.all()).get(SHOP)).toMatchObject({
        users: [ALICE, 'user:default/carol', 'user:default/jane'],
      });

      // The teams are removed from the catalog: the notifications plugin resolves them to no one.
      state.gone.add(TEAM_A).add('group:default/team-a-ops');
      state.statuses.set(WEB, 'ready');
      state.entities = [WEB];
      // web is told at once; shop, missing from the catalog's list, at the second sweep.
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 2,
        failed: 0,
      });
      expect(await sweeper.sweep()).toEqual({
        entities: 1,
        sent: 2,
        failed: 0,
      });
      expect(
        state.sent.slice(2).map(s => [s.payload.title, recipientsOf(s)]),
      ).toEqual([
        [
          'web is recoverable again (ready)',
          [TEAM_A, ALICE, 'user:default/carol'],
        ],
        // The alarm rewritten in place for those it went to alone.
        [
          'Resolved: web is not recoverable',
          [TEAM_A, ALICE, 'user:default/carol'],
        ],
        // jane, owner and reached, once.
        [
          'system shop is no longer assessed for recovery',
          ['user:default/jane', TEAM_A, ALICE, 'user:default/carol'],
        ],
        [
          'Resolved: system shop is not recoverable',
          ['user:default/jane', TEAM_A, ALICE, 'user:default/carol'],
        ],
      ]);
    });

    it("reads the owners' groups once for every loss of a sweep, tells each team one alarm, and neither reads nor writes in a sweep that tells nothing", async () => {
      const { sweeper, notices, state, knex, seenRecoverable } =
        await notifier();
      const teams = Array.from(
        { length: 10 },
        (_, i) => `group:default/team-${i}`,
      );
      state.groups = teams.map((team, i) =>
        group(team, [`user:default/u${i}`]),
      );
      const entities = Array.from(
        { length: 1_000 },
        (_, i) => `component:default/s${i}`,
      );
      entities.forEach((ref, i) => state.owners.set(ref, [teams[i % 10]]));
      await seenRecoverable(...entities);
      entities.forEach(ref => state.statuses.set(ref, 'not-recoverable'));
      // The same reasons for all: a notice per team, naming its hundred.
      expect(await sweeper.sweep()).toEqual({
        entities: 1_000,
        sent: 10,
        failed: 0,
      });
      expect(state.reads).toBe(1);
      expect(state.sent[3].payload.title).toBe(
        's103, s113, s123 and 97 more are not recoverable',
      );
      expect(state.sent[3].recipients).toEqual({
        type: 'entity',
        entityRef: entities.filter((_, i) => i % 10 === 3),
      });
      expect((await notices.all()).get('component:default/s13')?.users).toEqual(
        ['user:default/u3'],
      );

      const statements: string[] = [];
      knex.on('query', (query: { sql: string }) => statements.push(query.sql));
      expect(await sweeper.sweep()).toEqual({
        entities: 1_000,
        sent: 0,
        failed: 0,
      });
      expect(state.reads).toBe(1);
      // What was told, read in one statement; nothing written.
      expect(statements).toHaveLength(1);
    });

    it('warns that a loss reached no one when no owner of the entity is in the catalog (a group removed from it)', async () => {
      const { sweeper, state, logger, seenRecoverable } = await notifier();
      const API = 'component:default/api';
      const DOCS = 'component:default/docs';
      // web's team left the catalog; shop is owned by a user; api by no one; docs by a team without members.
      state.gone.add(TEAM_A);
      state.owners.set(SHOP, ['user:default/jane']);
      state.groups.push(group('group:default/empty', []));
      state.owners.set(DOCS, ['group:default/empty']);
      await seenRecoverable(WEB, SHOP, API, DOCS);
      for (const ref of [WEB, SHOP, API, DOCS])
        state.statuses.set(ref, 'not-recoverable');
      expect(await sweeper.sweep()).toEqual({
        entities: 4,
        sent: 4,
        failed: 0,
      });
      const warned = () => logger.lines.filter(l => l.level === 'warn');
      expect(warned()).toEqual([
        {
          level: 'warn',
          message:
            'Readiness notices: told no one that 3 entities are not recoverable, as no owner of theirs resolves to a user; ' +
            'give them an owner the catalog holds, with members',
          fields: {
            entityRefs: [WEB, API, DOCS],
            owners: [
              `owned by ${TEAM_A} not in the catalog`,
              'owned by no one',
              'owned by group:default/empty with no members',
            ],
          },
        },
      ]);
      // Said when told, not at every sweep after.
      await sweeper.sweep();
      expect(warned()).toHaveLength(1);
    });

    it('keeps what it was told of many entities (past the bound variables SQLite takes in one statement)', async () => {
      const { sweeper, notices, state, seenRecoverable } = await notifier();
      const entities = Array.from(
        { length: 1_200 },
        (_, i) => `component:default/s${i}`,
      );
      // Each its own owner: a notice each.
      entities.forEach(ref =>
        state.owners.set(ref, [`user:default/${ref.split('/')[1]}`]),
      );
      await seenRecoverable(...entities);
      entities.forEach((ref, i) =>
        state.statuses.set(ref, i % 2 ? 'ready' : 'not-recoverable'),
      );
      expect(await sweeper.sweep()).toEqual({
        entities: 1_200,
        sent: 600,
        failed: 0,
      });
      expect((await notices.all()).size).toBe(1_200);
      state.entities = [];
      vi.useFakeTimers({ toFake: ['Date'], now: new Date() });
      try {
        expect(await sweeper.sweep()).toEqual({
          entities: 0,
          sent: 0,
          failed: 0,
        });
        expect(await sweeper.sweep()).toEqual({
          entities: 0,
          sent: 1_200,
          failed: 0,
        });
        // Those told they are gone, forgotten; the others a day after they went missing.
        expect((await notices.all()).size).toBe(600);
        vi.setSystemTime(Date.now() + ABSENCE_KEPT_MS);
        expect(await sweeper.sweep()).toEqual({
          entities: 0,
          sent: 0,
          failed: 0,
        });
        expect((await notices.all()).size).toBe(0);
      } finally {
        vi.useRealTimers();
      }
    });

    it("gives the readiness gauge each status's count as the last sweep saw it, those gone from the catalog left out", async () => {
      const { sweeper, notices, state } = await notifier();
      const { metrics, collect, made } = recordedMetrics();
      new RecoveryMetrics(metrics).observeReadiness(() =>
        notices.countByStatus(),
      );
      state.entities = [WEB, DB, SHOP];
      state.statuses.set(WEB, 'ready').set(DB, 'at-risk').set(SHOP, 'ready');
      await sweeper.sweep();
      expect(await collect('recovery.readiness.entities')).toEqual([
        [2, { status: 'ready' }],
        [1, { status: 'at-risk' }],
        [0, { status: 'not-recoverable' }],
        [0, { status: 'unknown' }],
      ]);
      // The database leaves the catalog, and the shop turns not recoverable.
      state.entities = [WEB, SHOP];
      state.statuses.set(SHOP, 'not-recoverable');
      await sweeper.sweep();
      expect(await collect('recovery.readiness.entities')).toEqual([
        [1, { status: 'ready' }],
        [0, { status: 'at-risk' }],
        [1, { status: 'not-recoverable' }],
        [0, { status: 'unknown' }],
      ]);
      expect(made('createObservableGauge', 'recovery.readiness.entities')).toBe(
        1,
      );
    });
  },
);
