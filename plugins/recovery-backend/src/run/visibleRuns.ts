import type { RecoveryRun, RunStatus } from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryStore } from '../database/RecoveryStore';

/** Most runs `GET /runs` reads to fill a page with runs the caller may see. */
export const MAX_RUNS_SCANNED = 2000;

/** The caller's view of the catalog: which of these entity refs the caller may see. */
export type VisibleTo = (entityRefs: string[]) => Promise<string[]>;

/**
 * Whether the caller may see a run: whoever sees its entity in the catalog. Everything that
 * shows or names runs asks this (or listVisibleRuns, by the same rule), so a run hidden in one
 * answer is hidden in all of them.
 */
export async function isRunVisible(run: Pick<RecoveryRun, 'entityRef'>, visible: VisibleTo): Promise<boolean> {
  return (await visible([run.entityRef])).length > 0;
}

/**
 * The newest `limit` runs matching `query` whose entity the caller may see (`visible` answers
 * the visible refs among those given). Hidden runs are left out of the page, not counted in it:
 * runs are read newest first in growing windows (limit, then 4× as many in all, …) until the
 * page is full, the runs end, or `maxScanned` were read. Each read continues after the last run
 * of the one before, so no run is read, or asked about, twice.
 */
export async function listVisibleRuns(
  store: Pick<RecoveryStore, 'listRuns'>,
  query: { entityRef?: string; status?: RunStatus[] },
  limit: number,
  visible: VisibleTo,
  maxScanned = MAX_RUNS_SCANNED,
): Promise<RecoveryRun[]> {
  const items: RecoveryRun[] = [];
  const shown = new Map<string, boolean>(); // entity ref → visible, asked once per call
  let after: RecoveryRun | undefined;
  let scanned = 0;
  for (let window = limit; ; window = Math.min(window * 4, maxScanned)) {
    const pageSize = window - scanned;
    const rows = await store.listRuns({ ...query, limit: pageSize, after });
    scanned += rows.length;
    const unasked = [...new Set(rows.map(r => r.entityRef))].filter(ref => !shown.has(ref));
    if (unasked.length > 0) {
      const seen = new Set(await visible(unasked));
      for (const ref of unasked) shown.set(ref, seen.has(ref));
    }
    items.push(...rows.filter(r => shown.get(r.entityRef)));
    if (items.length >= limit || rows.length < pageSize || window >= maxScanned) return items.slice(0, limit);
    after = rows[rows.length - 1];
  }
}
