import { TestDatabases } from '@backstage/backend-test-utils';
import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import type { Knex } from 'knex';
import { migrate } from '../database/migrations';
import { RunStore } from '../database/RunStore';
import { listVisibleRuns } from './visibleRuns';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const SEEN = 'component:default/seen';
const HIDDEN = 'component:default/hidden';
const plan: BootPlan = { entityRef: SEEN, waves: [], machines: [] };

describe.each(databases.eachSupportedId())(
  'listVisibleRuns on %p',
  databaseId => {
    let runStore: RunStore;
    let knex: Knex;
    // Newest first: r29 … r00. Two runs an instant, so pages end between runs of one created_at.
    const visibleIds = ['r21', 'r09', 'r08', 'r02'];

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      runStore = new RunStore(knex);
      for (let i = 0; i < 30; i++) {
        const id = `r${String(i).padStart(2, '0')}`;
        const entityRef = visibleIds.includes(id) ? SEEN : HIDDEN;
        await runStore.insertRun(
          {
            id,
            entityRef,
            mode: 'test',
            trigger: 'user',
            hypervisorHost: 'h',
            plan: { ...plan, entityRef },
            options: {},
            machines: [],
          },
          new Date(Date.UTC(2026, 10, 21, 12, 0, Math.floor(i / 2))),
        );
      }
    });

    const visible = new Set([SEEN]);

    it('pages the visible runs newest first, each key read once, only the runs shown read in full', async () => {
      const all = (await runStore.listRuns({ limit: 100 })).map(r => r.id);
      const shown = all.filter(id => visibleIds.includes(id));
      for (const [limit, maxKeysPage] of [
        [1, 2000],
        [2, 2000],
        [3, 2000],
        [5, 2000],
        [2, 5],
        [1, 7],
        [30, 2000],
        [40, 10],
      ]) {
        const listRunKeys = vi.spyOn(runStore, 'listRunKeys');
        const getRuns = vi.spyOn(runStore, 'getRuns');
        const asked: string[][] = [];
        const items = await listVisibleRuns(
          runStore,
          {},
          limit,
          async refs => {
            asked.push(refs);
            return refs.filter(r => visible.has(r));
          },
          maxKeysPage,
        );
        const calls = listRunKeys.mock.calls.map(([query]) => query);
        const pages = await Promise.all(
          listRunKeys.mock.results.map(
            r => r.value as Promise<Array<{ id: string }>>,
          ),
        );
        const fullReads = getRuns.mock.calls.map(([ids]) => ids);
        listRunKeys.mockRestore();
        getRuns.mockRestore();

        expect({ limit, maxKeysPage, ids: items.map(r => r.id) }).toEqual({
          limit,
          maxKeysPage,
          ids: shown.slice(0, limit),
        });
        expect(
          items.every(r => r.entityRef === SEEN && r.plan.entityRef === SEEN),
        ).toBe(true);
        // Every key read once, in order; each read starts after the last key of the one before.
        const read = pages.flat().map(r => r.id);
        expect(read).toEqual(all.slice(0, read.length));
        calls.forEach((query, i) =>
          expect(query.after?.id).toBe(
            i === 0 ? undefined : pages[i - 1].at(-1)!.id,
          ),
        );
        // Windows: limit, then ×4, each read at most maxKeysPage (or the limit).
        calls.forEach((query, i) =>
          expect(query.limit).toBe(
            Math.min(limit * 4 ** i, Math.max(limit, maxKeysPage)),
          ),
        );
        // Only the runs shown are read with their plans and timelines.
        expect(fullReads).toEqual([shown.slice(0, limit)]);
        // Each entity asked about once.
        expect(asked.flat().sort()).toEqual([...new Set(asked.flat())].sort());
      }
    });

    it('continues after a given run (the next page), of any entity', async () => {
      const after = (await runStore.getRun('r21'))!;
      const items = await listVisibleRuns(runStore, { after }, 2, async refs =>
        refs.filter(r => visible.has(r)),
      );
      expect(items.map(r => r.id)).toEqual(['r09', 'r08']);
    });

    it('keeps the status filter on later pages', async () => {
      await runStore.updateRun('r21', { status: 'running' });
      await runStore.updateRun('r08', { status: 'running' });
      await runStore.updateRun('r27', { status: 'running' });
      const items = await listVisibleRuns(
        runStore,
        { status: ['running'] },
        2,
        async refs => refs.filter(r => visible.has(r)),
      );
      expect(items.map(r => r.id)).toEqual(['r21', 'r08']);
    });

    it('fills a page past thousands of newer runs the caller may not see: a page shorter than the limit is the last', async () => {
      // Another team's nightly checks: 2,100 runs newer than every run of the entity the caller sees.
      const rows = Array.from({ length: 2100 }, (_, i) => ({
        id: `n${String(i).padStart(4, '0')}`,
        entity_ref: HIDDEN,
        mode: 'test',
        status: 'succeeded',
        trigger: 'schedule',
        hypervisor_host: 'h',
        plan: JSON.stringify({ ...plan, entityRef: HIDDEN }),
        options: '{}',
        created_at: new Date(Date.UTC(2026, 10, 22, 0, 0, 0, i)),
        heartbeat_at: new Date(Date.UTC(2026, 10, 22)),
      }));
      for (let i = 0; i < rows.length; i += 100)
        await knex('recovery_runs').insert(rows.slice(i, i + 100));
      try {
        const items = await listVisibleRuns(runStore, {}, 20, async refs =>
          refs.filter(r => visible.has(r)),
        );
        expect(items.map(r => r.id)).toEqual(['r21', 'r09', 'r08', 'r02']);
      } finally {
        await knex('recovery_runs').where('id', 'like', 'n%').delete();
      }
    });
  },
);
