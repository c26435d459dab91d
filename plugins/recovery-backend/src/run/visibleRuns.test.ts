import { TestDatabases } from '@backstage/backend-test-utils';
import type { BootPlan, RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { RecoveryStore } from '../database/RecoveryStore';
import { listVisibleRuns } from './visibleRuns';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const SEEN = 'component:default/seen';
const HIDDEN = 'component:default/hidden';
const plan: BootPlan = { entityRef: SEEN, waves: [], machines: [] };

/** What GET /runs answered before: every wider window re-read from the newest run. */
async function rereadingWindows(store: RecoveryStore, limit: number, visible: Set<string>, maxScanned: number) {
  for (let window = limit; ; window = Math.min(window * 4, maxScanned)) {
    const rows = await store.listRuns({ limit: window });
    const items = rows.filter(r => visible.has(r.entityRef));
    if (items.length >= limit || rows.length < window || window >= maxScanned) return items.slice(0, limit);
  }
}

describe.each(databases.eachSupportedId())('listVisibleRuns on %p', databaseId => {
  let store: RecoveryStore;
  // Newest first: r29 … r00. Two runs an instant, so pages end between runs of one created_at.
  const visibleIds = ['r21', 'r09', 'r08', 'r02'];

  beforeAll(async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    store = new RecoveryStore(knex);
    for (let i = 0; i < 30; i++) {
      const id = `r${String(i).padStart(2, '0')}`;
      const entityRef = visibleIds.includes(id) ? SEEN : HIDDEN;
      await store.insertRun(
        { id, entityRef, mode: 'test', trigger: 'user', hypervisorHost: 'h', plan: { ...plan, entityRef }, options: {}, machines: [] },
        new Date(Date.UTC(2026, 10, 21, 12, 0, Math.floor(i / 2))),
      );
    }
  });

  const visible = new Set([SEEN]);

  it('continues after the last run read instead of reading the newest again, with the same answer', async () => {
    for (const [limit, maxScanned] of [[1, 2000], [2, 2000], [3, 2000], [5, 2000], [2, 5], [1, 7], [30, 2000], [40, 10]]) {
      const listRuns = vi.spyOn(store, 'listRuns');
      const asked: string[][] = [];
      const items = await listVisibleRuns(store, {}, limit, async refs => {
        asked.push(refs);
        return refs.filter(r => visible.has(r));
      }, maxScanned);
      const calls = listRuns.mock.calls.map(([query]) => query);
      const pages = await Promise.all(listRuns.mock.results.map(r => r.value as Promise<RecoveryRun[]>));
      listRuns.mockRestore();

      const expected = await rereadingWindows(store, limit, visible, maxScanned);
      expect({ limit, maxScanned, ids: items.map(r => r.id) }).toEqual({ limit, maxScanned, ids: expected.map(r => r.id) });
      expect(items).toEqual(expected);

      // Every run read once, in order; each page starts after the last run of the one before.
      const read = pages.flat().map(r => r.id);
      expect(new Set(read).size).toBe(read.length);
      const all = (await store.listRuns({ limit: 100 })).map(r => r.id);
      expect(read).toEqual(all.slice(0, read.length));
      calls.forEach((query, i) => expect(query.after?.id).toBe(i === 0 ? undefined : pages[i - 1].at(-1)!.id));
      // The same windows as before, in all: limit, then ×4 up to maxScanned.
      const windows = calls.map((_, i) => Math.min(limit * 4 ** i, Math.max(limit, maxScanned)));
      expect(calls.map(q => q.limit)).toEqual(windows.map((w, i) => w - (windows[i - 1] ?? 0)));
      // Each entity asked about once.
      expect(asked.flat().sort()).toEqual([...new Set(asked.flat())].sort());
    }
  });

  it('keeps the status filter on later pages', async () => {
    await store.updateRun('r21', { status: 'running' });
    await store.updateRun('r08', { status: 'running' });
    await store.updateRun('r27', { status: 'running' });
    const items = await listVisibleRuns(store, { status: ['running'] }, 2, async refs => refs.filter(r => visible.has(r)));
    expect(items.map(r => r.id)).toEqual(['r21', 'r08']);
  });
});
