import type {
  RecoveryRun,
  RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import type { RunStore } from '../database/RunStore';

/** Most run keys `GET /runs` reads in one statement while it looks for runs the caller may see. */
const MAX_KEYS_PAGE = 2000;

/** The caller's view of the catalog: which of these entity refs the caller may see. */
export type VisibleTo = (entityRefs: string[]) => Promise<string[]>;

/**
 * Whether the caller may see a run: whoever sees its entity in the catalog. Everything that
 * shows or names runs asks this (or listVisibleRuns, by the same rule), so a run hidden in one
 * answer is hidden in all of them.
 */
export async function isRunVisible(
  run: Pick<RecoveryRun, 'entityRef'>,
  visible: VisibleTo,
): Promise<boolean> {
  return (await visible([run.entityRef])).length > 0;
}

/**
 * The newest `limit` runs matching `query` whose entity the caller may see (`visible` answers
 * the visible refs among those given). Hidden runs are left out of the page, not counted in it:
 * runs are walked newest first by their keys alone (id, time, entity; no plan or timeline), in
 * growing windows (limit, then 4× as many, up to MAX_KEYS_PAGE a read), until the page is full or
 * the runs end, so a page shorter than `limit` is the last, however many hidden runs come first.
 * Each read continues after the last key of the one before; only the runs shown are read in full.
 */
export async function listVisibleRuns(
  store: Pick<RunStore, 'listRunKeys' | 'getRuns'>,
  query: {
    entityRef?: string;
    status?: RunStatus[];
    after?: Pick<RecoveryRun, 'createdAt' | 'id'>;
  },
  limit: number,
  visible: VisibleTo,
  maxKeysPage = MAX_KEYS_PAGE,
): Promise<RecoveryRun[]> {
  const ids: string[] = [];
  const shown = new Map<string, boolean>(); // entity ref → visible, asked once per call
  let after = query.after;
  for (
    let window = limit;
    ;
    window = Math.min(window * 4, Math.max(limit, maxKeysPage))
  ) {
    const keys = await store.listRunKeys({ ...query, limit: window, after });
    const unasked = [...new Set(keys.map(r => r.entityRef))].filter(
      ref => !shown.has(ref),
    );
    if (unasked.length > 0) {
      const seen = new Set(await visible(unasked));
      for (const ref of unasked) shown.set(ref, seen.has(ref));
    }
    ids.push(...keys.filter(r => shown.get(r.entityRef)).map(r => r.id));
    if (ids.length >= limit || keys.length < window) break;
    after = keys[keys.length - 1];
  }
  // A run that finished since its key was read is no longer one an active list shows.
  const runs = await store.getRuns(ids.slice(0, limit));
  return query.status
    ? runs.filter(r => query.status!.includes(r.status))
    : runs;
}
