import { TestDatabases } from '@backstage/backend-test-utils';
import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import type { Knex } from 'knex';
import { finishRun, webPlan } from '../testing/entities';
import { migrate } from './migrations';
import { ReadinessHistoryStore } from './ReadinessHistoryStore';
import { RunStore } from './RunStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'ReadinessHistoryStore on %p',
  databaseId => {
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    let knex: Knex;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
    });

    it('skips interrupted and reverse-boot-order runs when finding the last finished run, telling interrupted ones by their status alone', async () => {
      const entityRef = 'component:default/skips';
      const base = {
        entityRef,
        mode: 'test' as const,
        trigger: 'schedule' as const,
        hypervisorHost: 'recovery',
        plan: webPlan,
        machines: [],
      };
      const finish = async (
        id: string,
        at: string,
        status: 'succeeded' | 'failed' | 'interrupted',
        options: { reverseBootOrder?: boolean },
        error?: { machineRef?: string; message: string },
      ) => {
        await runStore.insertRun({ ...base, id, options }, new Date(at));
        await runStore.updateRun(id, { status: 'running' });
        await runStore.updateRun(id, { status, error });
      };
      await finish(
        'skip-1',
        '2026-11-22T01:00:00Z',
        'failed',
        {},
        { message: 'resource:default/web-01 failed: probe tcp:80' },
      );
      expect((await runHistory.lastFinishedRun({ entityRef }))?.id).toBe(
        'skip-1',
      );

      await finish('skip-2', '2026-11-22T02:00:00Z', 'succeeded', {
        reverseBootOrder: false,
      });
      await finish(
        'skip-3',
        '2026-11-22T03:00:00Z',
        'failed',
        { reverseBootOrder: true },
        { message: 'probe tcp:1 did not pass' },
      );
      await finish(
        'skip-4',
        '2026-11-22T04:00:00Z',
        'interrupted',
        {},
        {
          machineRef: 'resource:default/web-01',
          message: 'Interrupted: the backend is shutting down',
        },
      );
      await finish(
        'skip-5',
        '2026-11-22T05:00:00Z',
        'interrupted',
        {},
        {
          message:
            'Interrupted: the backend driving this run stopped; removed 1 container and 1 network',
        },
      );
      expect((await runHistory.lastFinishedRun({ entityRef }))?.id).toBe(
        'skip-2',
      );
      expect(
        (await runHistory.lastFinishedRuns([{ entityRef }])).map(r => r?.id),
      ).toEqual(['skip-2']);

      // A failure whose words merely start as an interruption's (a host's own) is a failure.
      await finish(
        'skip-6',
        '2026-11-22T06:00:00Z',
        'failed',
        {},
        { message: 'Interrupted: the engine restarted the lab' },
      );
      expect((await runHistory.lastFinishedRun({ entityRef }))?.id).toBe(
        'skip-6',
      );
      expect(
        (await runHistory.lastFinishedRuns([{ entityRef }])).map(r => r?.id),
      ).toEqual(['skip-6']);
    });

    it('tells a reverse-boot-order run by a column of its own, which RunStore writes, not by the text of its options', async () => {
      const entityRef = 'component:default/reversed';
      const insert = async (id: string, at: string, reverse: boolean) => {
        await runStore.insertRun(
          {
            id,
            entityRef,
            mode: 'test',
            trigger: 'user',
            hypervisorHost: 'recovery',
            plan: webPlan,
            machines: [],
            options: reverse ? { reverseBootOrder: true } : {},
          },
          new Date(at),
        );
        await runStore.updateRun(id, { status: 'running' });
        await runStore.updateRun(id, { status: 'succeeded' });
      };
      await insert('forward-1', '2026-11-22T01:00:00Z', false);
      await insert('reversed-1', '2026-11-22T02:00:00Z', true);
      const flags = await knex('recovery_runs')
        .where({ entity_ref: entityRef })
        .orderBy('id')
        .select('id', 'reverse_boot_order');
      expect(flags.map(r => [r.id, Boolean(r.reverse_boot_order)])).toEqual([
        ['forward-1', false],
        ['reversed-1', true],
      ]);
      // The options' JSON is not what readiness reads: the column alone says it.
      await knex('recovery_runs')
        .where({ id: 'reversed-1' })
        .update({ options: '{}' });
      await knex('recovery_runs')
        .where({ id: 'forward-1' })
        .update({ options: '{"reverseBootOrder":true}' });
      expect((await runHistory.lastFinishedRun({ entityRef }))?.id).toBe(
        'forward-1',
      );
      expect(
        (await runHistory.lastFinishedRuns([{ entityRef }])).map(r => r?.id),
      ).toEqual(['forward-1']);
    });

    it('finds the last finished run that booted every machine given, whatever its entity', async () => {
      const [a, b, c] = ['cover-a', 'cover-b', 'cover-c'].map(
        n => `resource:default/${n}`,
      );
      await finishRun(
        runStore,
        'cover-1',
        '2026-11-23T01:00:00Z',
        [a, b, c],
        'succeeded',
      );
      await finishRun(
        runStore,
        'cover-2',
        '2026-11-23T02:00:00Z',
        [a, b],
        'failed',
      );
      await finishRun(
        runStore,
        'cover-3',
        '2026-11-23T03:00:00Z',
        [a],
        'succeeded',
      );

      expect(
        (await runHistory.lastFinishedRun({ machineRefs: [a, b, c] }))?.id,
      ).toBe('cover-1');
      expect(
        (await runHistory.lastFinishedRun({ machineRefs: [b, a] }))?.id,
      ).toBe('cover-2');
      expect((await runHistory.lastFinishedRun({ machineRefs: [a] }))?.id).toBe(
        'cover-3',
      );
      // Candidates the caller refuses are passed over, page after page, down to the last.
      const refused = new Set(['cover-3', 'cover-2']);
      const last = await runHistory.lastFinishedRun(
        { machineRefs: [a] },
        run => !refused.has(run.id),
        1,
      );
      expect(last).toMatchObject({
        id: 'cover-1',
        entityRef: 'component:default/cover-1',
        rtoSeconds: 30,
      });
      expect(last!.machines.map(m => m.machineRef)).toEqual([a, b, c]);
      expect(
        await runHistory.lastFinishedRun({ machineRefs: [a] }, () => false, 2),
      ).toBeUndefined();
      expect(
        await runHistory.lastFinishedRun({
          machineRefs: [a, 'resource:default/elsewhere'],
        }),
      ).toBeUndefined();
    });

    it('walks past pages of runs that booted only the first machine, runs of the same instant included, and never takes an active run', async () => {
      const [own, shared] = ['walk-own', 'walk-shared'].map(
        n => `resource:default/${n}`,
      );
      await finishRun(runStore, 'walk-0', '2026-11-24T01:00:00Z', [
        shared,
        own,
      ]);
      // Seven runs of one instant, pages of 1, 4, 16: ties in time cross page boundaries (by id).
      const instant = '2026-11-24T02:00:00Z';
      for (const id of [
        'walk-1',
        'walk-2',
        'walk-4',
        'walk-5',
        'walk-6',
        'walk-7',
      ])
        await finishRun(runStore, id, instant, [own]);
      await finishRun(runStore, 'walk-3', instant, [own, shared]);
      await finishRun(
        runStore,
        'walk-8',
        '2026-11-24T03:00:00Z',
        [own, shared],
        'running',
      );

      const last = (accept?: (run: { id: string }) => boolean) =>
        runHistory
          .lastFinishedRun({ machineRefs: [own, shared] }, accept, 1)
          .then(r => r?.id);
      expect(await last()).toBe('walk-3');
      expect(await last(run => run.id !== 'walk-3')).toBe('walk-0');
      expect(
        await runHistory
          .lastFinishedRun({ machineRefs: [shared, own] }, undefined, 1)
          .then(r => r?.id),
      ).toBe('walk-3');
      expect(
        await runHistory
          .lastFinishedRun({ machineRefs: [own] }, undefined, 1)
          .then(r => r?.id),
      ).toBe('walk-7');
    });

    it('finds for many queries at once the run lastFinishedRun finds for each, in a few statements', async () => {
      // A history of runs over six machines and three entities: every outcome, some active, some
      // that do not count, many of one instant, across pages of 7.
      let seed = 7;
      const random = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
      const machines = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'].map(
        n => `resource:default/many-${n}`,
      );
      const entities = ['e0', 'e1', 'e2'].map(
        n => `component:default/many-${n}`,
      );
      for (let k = 0; k < 60; k++) {
        const id = `many-${String(k).padStart(2, '0')}`;
        const booted = machines.filter(() => random(2) === 0);
        const outcome = random(10);
        await runStore.insertRun(
          {
            id,
            entityRef: entities[random(3)],
            mode: 'test',
            trigger: 'schedule',
            hypervisorHost: 'recovery',
            plan: {
              ...webPlan,
              machines: booted.map((machineRef, wave) => ({
                machineRef,
                wave,
                services: [],
                waitsFor: [],
                probes: [],
              })),
            },
            options: outcome === 0 ? { reverseBootOrder: true } : {},
            machines: booted.map((machineRef, wave) => ({ machineRef, wave })),
          },
          new Date(
            Date.parse('2026-11-25T00:00:00Z') + Math.floor(k / 4) * 60_000,
          ),
        );
        await runStore.updateRun(id, { status: 'running' });
        if (outcome === 1) continue;
        if (outcome === 2)
          await runStore.updateRun(id, {
            status: 'interrupted',
            error: { message: 'Interrupted: the backend is shutting down' },
          });
        else if (outcome < 5)
          await runStore.updateRun(id, {
            status: 'failed',
            error: {
              machineRef: booted[0],
              message: 'probe tcp:80 did not pass',
            },
          });
        else
          await runStore.updateRun(id, { status: 'succeeded', rtoSeconds: k });
      }
      // Every pair of machines in both orders, each machine alone, one no run booted, each entity
      // without machines; some refusing the runs whose plan boots m5 (as coversPlan refuses some).
      const noM5 = (run: { plan: BootPlan }) =>
        !run.plan.machines.some(m => m.machineRef === machines[5]);
      const queries: Array<
        Parameters<ReadinessHistoryStore['lastFinishedRuns']>[0][number]
      > = [
        ...machines.flatMap(a =>
          machines.map(b => ({ machineRefs: a === b ? [a] : [a, b] })),
        ),
        ...machines.map(a => ({ machineRefs: [a, machines[2]], accept: noM5 })),
        { machineRefs: [machines[0], 'resource:default/many-never'] },
        ...entities.map(entityRef => ({ entityRef })),
        { entityRef: entities[1], accept: noM5 },
        {},
      ];
      const each = await Promise.all(
        queries.map(({ accept, ...query }) =>
          runHistory.lastFinishedRun(query, accept),
        ),
      );
      expect(each.filter(run => run !== undefined).length).toBeGreaterThan(
        queries.length / 2,
      );
      expect(await runHistory.lastFinishedRuns(queries, 7)).toEqual(each);

      const statements: string[] = [];
      const listen = (q: { sql: string }) => statements.push(q.sql);
      knex.on('query', listen);
      try {
        expect(await runHistory.lastFinishedRuns(queries)).toEqual(each);
      } finally {
        knex.off('query', listen);
      }
      // One page of the history: its runs, their machines, the candidates a round at a time, the found runs' details.
      expect(statements.length).toBeLessThanOrEqual(8);
    });

    it('finds for many queries at once the newest failure on their machines since a given run, page after page, never an interrupted or reverse-order one', async () => {
      // Runs over four machines and three entities, four of an instant: failed on one of the machines
      // they booted, succeeded, still running, interrupted or booted in reverse (both stored naming
      // the machine they were on).
      let seed = 11;
      const random = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
      const machines = ['m0', 'm1', 'm2', 'm3'].map(
        n => `resource:default/failing-${n}`,
      );
      const entities = ['e0', 'e1', 'e2'].map(
        n => `component:default/failing-${n}`,
      );
      const history: Array<{
        id: string;
        at: number;
        entityRef: string;
        counts: boolean;
        failedOn?: string;
      }> = [];
      for (let k = 0; k < 48; k++) {
        const id = `failing-${String(k).padStart(2, '0')}`;
        const booted = machines.filter(() => random(2) === 0);
        if (booted.length === 0) booted.push(machines[random(4)]);
        const [entityRef, outcome, at] = [
          entities[random(3)],
          random(6),
          Date.parse('2026-11-26T00:00:00Z') + Math.floor(k / 4) * 60_000,
        ];
        const failedOn = booted[random(booted.length)];
        await runStore.insertRun(
          {
            id,
            entityRef,
            mode: 'test',
            trigger: 'schedule',
            hypervisorHost: 'recovery',
            plan: {
              ...webPlan,
              machines: booted.map((machineRef, wave) => ({
                machineRef,
                wave,
                services: [],
                waitsFor: [],
                probes: [],
              })),
            },
            options: outcome === 0 ? { reverseBootOrder: true } : {},
            machines: booted.map((machineRef, wave) => ({ machineRef, wave })),
          },
          new Date(at),
        );
        await runStore.updateRun(id, { status: 'running' });
        if (outcome === 1) continue;
        if (outcome === 5)
          await runStore.updateRun(id, { status: 'succeeded', rtoSeconds: k });
        else {
          const message =
            outcome === 2
              ? 'Interrupted: the backend is shutting down'
              : 'probe tcp:80 did not pass';
          await runStore.updateRun(id, {
            status: outcome === 2 ? 'interrupted' : 'failed',
            error: { machineRef: failedOn, message },
          });
          history.push({ id, at, entityRef, counts: outcome > 2, failedOn });
        }
      }
      const keyOf = (k: number) => ({
        id: `failing-${k}`,
        createdAt: new Date(
          Date.parse('2026-11-26T00:00:00Z') + Math.floor(k / 4) * 60_000,
        ).toISOString(),
      });
      const notE1 = (run: { entityRef: string }) =>
        run.entityRef !== entities[1];
      const queries: Array<
        Parameters<ReadinessHistoryStore['lastFailedRuns']>[0][number]
      > = [
        ...machines.map(m => ({ machineRefs: [m] })),
        ...machines.map((m, i) => ({
          machineRefs: [m, machines[(i + 1) % 4]],
          accept: notE1,
        })),
        // Since a run of an instant that others share (36 to 39): those of it with a greater id are newer.
        ...machines.map(m => ({ machineRefs: [m], after: keyOf(39) })),
        { machineRefs: [machines[3]], after: keyOf(37) },
        { machineRefs: machines, after: keyOf(47) },
        { machineRefs: ['resource:default/failing-never'] },
        { machineRefs: [] },
      ];
      // What each query must find, from the history as written.
      const expected = queries.map(
        ({ machineRefs, after, accept = () => true }) => {
          const since = (h: (typeof history)[number]) =>
            !after ||
            h.at > Date.parse(after.createdAt) ||
            (h.at === Date.parse(after.createdAt) && h.id > after.id);
          const found = history.filter(
            h =>
              h.counts &&
              machineRefs.includes(h.failedOn!) &&
              since(h) &&
              accept({ entityRef: h.entityRef } as never),
          );
          return found.sort((a, b) => b.at - a.at || (b.id > a.id ? 1 : -1))[0]
            ?.id;
        },
      );
      expect(expected.filter(id => id !== undefined).length).toBeGreaterThan(
        queries.length / 2,
      );
      // The history as seeded: m0 last failed in 39, m1 in 43, m2 in 29, m3 in 38 (of 39's instant).
      expect(expected.slice(8, 13)).toEqual([
        undefined,
        'failing-43',
        undefined,
        undefined,
        'failing-38',
      ]);
      for (const pageSize of [3, 500])
        expect(
          (await runHistory.lastFailedRuns(queries, pageSize)).map(
            run => run?.id,
          ),
        ).toEqual(expected);
      const found = await runHistory.lastFailedRuns(queries);
      expect(found[0]).toMatchObject({
        error: { machineRef: machines[0] },
        machines: expect.arrayContaining([
          expect.objectContaining({ machineRef: machines[0] }),
        ]),
      });

      const statements: string[] = [];
      const listen = (q: { sql: string }) => statements.push(q.sql);
      knex.on('query', listen);
      try {
        await runHistory.lastFailedRuns(queries);
      } finally {
        knex.off('query', listen);
      }
      // One page of the failed runs, the candidates a round at a time, the found runs' details.
      expect(statements.length).toBeLessThanOrEqual(5);
    });

    if (databaseId === 'SQLITE_3') {
      it('reads the newest runs in order along an index, not by sorting the whole history', async () => {
        const statements: Array<{ sql: string; bindings: Knex.RawBinding[] }> =
          [];
        const listen = (q: { sql: string; bindings: Knex.RawBinding[] }) =>
          statements.push(q);
        knex.on('query', listen);
        try {
          await runHistory.lastFinishedRun({
            machineRefs: [
              'resource:default/walk-own',
              'resource:default/walk-shared',
            ],
          });
          await runStore.listRuns({ limit: 5 });
          // The failed runs since a run, and since none.
          await runHistory.lastFailedRuns([
            {
              machineRefs: ['resource:default/walk-own'],
              after: { id: 'walk-0', createdAt: '2026-11-24T01:00:00Z' },
            },
          ]);
          await runHistory.lastFailedRuns([
            { machineRefs: ['resource:default/walk-own'] },
          ]);
        } finally {
          knex.off('query', listen);
        }
        const reads = statements.filter(
          q =>
            /from `recovery_runs`/.test(q.sql) &&
            /order by .*`created_at` desc/.test(q.sql) &&
            !/`id` in/.test(q.sql),
        );
        expect(reads).toHaveLength(4);
        for (const { sql, bindings } of reads) {
          const plan = (
            await knex.raw(`explain query plan ${sql}`, bindings)
          ).map((r: { detail: string }) => r.detail);
          expect(plan).not.toContainEqual(
            expect.stringContaining('TEMP B-TREE FOR ORDER BY'),
          );
        }
      });
    }
  },
);
