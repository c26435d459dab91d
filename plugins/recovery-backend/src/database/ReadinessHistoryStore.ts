import type {
  BootPlan,
  RecoveryRun,
  RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import { Knex } from 'knex';
import { groupBy } from '../lib/groupBy';
import {
  chunks,
  finished,
  iso,
  json,
  MAX_RUNS_PAGE,
  NEWEST_FIRST,
  olderThan,
  runsWithDetails,
} from './rows';

/** What a run's row says without its machines and steps. */
export type RunHead = Pick<
  RecoveryRun,
  'id' | 'entityRef' | 'status' | 'plan' | 'error'
>;

// Runs that say nothing about recoverability: interrupted ones (by their status), test-hook runs
// that boot in reverse precisely to fail, and runs to a recovery point, which prove that point
// boots, not the latest captures.
function countsForReadiness(q: Knex.QueryBuilder, table: string): void {
  q.whereNot(`${table}.status`, 'interrupted' satisfies RunStatus)
    .whereNull(`${table}.recovery_point`)
    .where(`${table}.reverse_boot_order`, false);
}

/**
 * The finished runs readiness judges an entity by: its last run that counts, and the failures
 * since. Reads the runs RunStore writes.
 */
export class ReadinessHistoryStore {
  constructor(private readonly db: Knex) {}

  /**
   * Succeeded failovers whose supervision could not bring a machine back
   * (RunSupervision.degraded), with their details, newest first: production runs on them, part of
   * it down. Those of `entityRefs`, and those that booted any of `machineRefs` (a system's
   * failover, for the services whose plan holds its machines). One statement per chunk of refs; a
   * released failover's degradation is cleared.
   */
  async degradedFailovers(
    entityRefs: string[],
    machineRefs: string[] = [],
  ): Promise<RecoveryRun[]> {
    const entityChunks = chunks([...new Set(entityRefs)]);
    const machineChunks = chunks([...new Set(machineRefs)]);
    const rows = new Map<string, any>();
    for (
      let i = 0;
      i < Math.max(entityChunks.length, machineChunks.length);
      i++
    )
      for (const row of await this.db('recovery_runs')
        .where(of =>
          of
            .whereIn('entity_ref', entityChunks[i] ?? [])
            .orWhereExists(booted =>
              booted
                .select(this.db.raw('1'))
                .from('recovery_run_machines as m')
                .whereRaw('m.run_id = recovery_runs.id')
                .whereIn('m.machine_ref', machineChunks[i] ?? []),
            ),
        )
        .where({ mode: 'failover', status: 'succeeded' })
        .whereNotNull('supervision')
        .orderBy(NEWEST_FIRST))
        rows.set(row.id, row);
    return runsWithDetails(
      this.db,
      [...rows.values()].filter(
        r => json<RecoveryRun['supervision']>(r.supervision)?.degraded,
      ),
    );
  }

  /**
   * The newest finished run that tells whether something is recoverable (interrupted runs and
   * reverse-boot-order test-hook runs are skipped) and that `accept`s, with its details. With
   * `machineRefs`, only runs that booted every one of them, whatever entity they recovered;
   * otherwise only the runs of `entityRef`. Candidates are read a page at a time, newest first
   * (`pageSize` first, growing pages after), without their machines and steps: usually the first
   * one is accepted.
   *
   * With `machineRefs`, the walk goes through the runs newest first, keeps those that booted the
   * first machine given and checks each page of them for the others: give first a machine few
   * runs booted (the entity's own rather than a platform's that every run boots), and the walk
   * stops soon at the entity's newest run, however long the history of the machines it shares.
   * Grouping the runs of every machine given instead cost all of those machines' history at
   * every call, and the readiness overview makes one per entity.
   */
  async lastFinishedRun(
    query: { machineRefs?: string[]; entityRef?: string },
    accept: (run: RunHead) => boolean = () => true,
    pageSize = 20,
  ): Promise<RecoveryRun | undefined> {
    const machineRefs = [...new Set(query.machineRefs ?? [])];
    if (machineRefs.length === 0) {
      if (!query.entityRef) return undefined;
      const q = this.db('recovery_runs')
        .where({ entity_ref: query.entityRef })
        .modify(finished, 'recovery_runs')
        .modify(countsForReadiness, 'recovery_runs')
        .orderBy(NEWEST_FIRST)
        .limit(pageSize);
      for (let offset = 0; ; offset += pageSize) {
        const rows = await q.clone().offset(offset);
        const row = rows.find((r: any) => accept(toRunHead(r)));
        if (row) return (await runsWithDetails(this.db, [row]))[0];
        if (rows.length < pageSize) return undefined;
      }
    }
    const [first, ...others] = machineRefs;
    let after: { id: string; created_at: unknown } | undefined;
    for (let size = pageSize; ; size = Math.min(size * 4, MAX_RUNS_PAGE)) {
      // Ids and times only, newest first along recovery_runs_created_idx, each run checked for
      // the first machine by its key: no run's plan is read, nor the history sorted.
      const q = this.db('recovery_runs')
        .whereExists(booted =>
          booted
            .select(this.db.raw('1'))
            .from('recovery_run_machines as m')
            .whereRaw('m.run_id = recovery_runs.id')
            .where('m.machine_ref', first),
        )
        .orderBy(NEWEST_FIRST)
        .limit(size)
        .select('id', 'created_at');
      // Keyset on NEWEST_FIRST, with the time as the database returned it.
      if (after) {
        const { id, created_at: at } = after;
        q.modify(olderThan, at, id);
      }
      const page: Array<{ id: string; created_at: unknown }> = await q;
      if (page.length === 0) return undefined;
      // A run's machines are unique per run (primary key), so counting them finds full cover.
      const ids = page.map(r => r.id);
      const covered =
        others.length === 0
          ? new Set(ids)
          : new Set(
              (
                await this.db('recovery_run_machines')
                  .whereIn('run_id', ids)
                  .whereIn('machine_ref', others)
                  .groupBy('run_id')
                  .havingRaw('count(*) = ?', [others.length])
                  .select('run_id')
              ).map(r => r.run_id),
            );
      const candidates = ids.filter(id => covered.has(id));
      // The newest alone first: it is usually accepted, and a row holds its whole plan.
      for (const chunk of [candidates.slice(0, 1), candidates.slice(1)]) {
        if (chunk.length === 0) continue;
        const rows = await this.db('recovery_runs')
          .whereIn('id', chunk)
          .modify(finished, 'recovery_runs')
          .modify(countsForReadiness, 'recovery_runs')
          .orderBy(NEWEST_FIRST);
        const row = rows.find((r: any) => accept(toRunHead(r)));
        if (row) return (await runsWithDetails(this.db, [row]))[0];
      }
      if (page.length < size) return undefined;
      after = page[page.length - 1];
    }
  }

  /**
   * lastFinishedRun of many queries at once, as the readiness overview asks one per entity: for
   * each, the same run. One walk of the runs newest first serves them all, `pageSize` runs a
   * page (ids, times and entities along recovery_runs_created_idx, their machines by key); of a
   * query's candidates in a page (the runs that booted every machine it gives, or of its entity)
   * the newest row (plan and all) is read first, the others only if the query refused it, all
   * queries' at once; the walk ends once every query has its run. So the statements grow with the
   * history walked, not with the queries; a query whose machines no run booted walks all of it.
   */
  async lastFinishedRuns(
    queries: Array<{
      machineRefs?: string[];
      entityRef?: string;
      accept?: (run: RunHead) => boolean;
    }>,
    pageSize = MAX_RUNS_PAGE,
  ): Promise<Array<RecoveryRun | undefined>> {
    type Pending = {
      index: number;
      first?: string;
      others: string[];
      entityRef?: string;
      accept: (run: RunHead) => boolean;
    };
    const found = new Array<string | undefined>(queries.length);
    let pending = queries.flatMap<Pending>(
      ({ machineRefs = [], entityRef, accept = () => true }, index) => {
        const [first, ...others] = [...new Set(machineRefs)];
        if (first !== undefined) return [{ index, first, others, accept }];
        return entityRef ? [{ index, others: [], entityRef, accept }] : [];
      },
    );
    // Rows read, by id, as heads; null where the run does not count (active, interrupted, a test hook).
    const rows = new Map<string, { row: any; head: RunHead } | null>();
    const read = async (ids: string[]) => {
      const unread = [...new Set(ids)].filter(id => !rows.has(id));
      for (const chunk of chunks(unread)) {
        const counted = await this.db('recovery_runs')
          .whereIn('id', chunk)
          .modify(finished, 'recovery_runs')
          .modify(countsForReadiness, 'recovery_runs');
        for (const row of counted)
          rows.set(row.id, { row, head: toRunHead(row) });
      }
      for (const id of unread) if (!rows.has(id)) rows.set(id, null);
    };
    let after: { id: string; created_at: unknown } | undefined;
    while (pending.length > 0) {
      const q = this.db('recovery_runs')
        .orderBy(NEWEST_FIRST)
        .limit(pageSize)
        .select('id', 'created_at', 'entity_ref');
      // Keyset on NEWEST_FIRST, with the time as the database returned it.
      if (after) {
        const { id, created_at: at } = after;
        q.modify(olderThan, at, id);
      }
      const page: Array<{
        id: string;
        created_at: unknown;
        entity_ref: string;
      }> = await q;
      if (page.length === 0) break;
      const booted = new Map<string, Set<string>>(
        page.map(r => [r.id, new Set()]),
      );
      for (const m of await this.db('recovery_run_machines')
        .whereIn(
          'run_id',
          page.map(r => r.id),
        )
        .select('run_id', 'machine_ref')) {
        booted.get(m.run_id)!.add(m.machine_ref);
      }
      const byFirst = groupBy(
        pending.filter(p => p.first !== undefined),
        p => p.first!,
      );
      const byEntity = groupBy(
        pending.filter(p => p.entityRef !== undefined),
        p => p.entityRef!,
      );
      // Each query's candidates in this page, newest first.
      const candidates = new Map<Pending, string[]>();
      const add = (p: Pending, id: string) => {
        if (!candidates.has(p)) candidates.set(p, []);
        candidates.get(p)!.push(id);
      };
      for (const { id, entity_ref: entityRef } of page) {
        const machines = booted.get(id)!;
        for (const machineRef of machines) {
          for (const p of byFirst.get(machineRef) ?? [])
            if (p.others.every(o => machines.has(o))) add(p, id);
        }
        for (const p of byEntity.get(entityRef) ?? []) add(p, id);
      }
      // Each query's newest candidate first, all at once: it is usually accepted, and a row holds
      // its whole plan. Then the rest of the candidates of those that refused it.
      for (const round of [
        (ids: string[]) => ids.slice(0, 1),
        (ids: string[]) => ids.slice(1),
      ]) {
        const trying = [...candidates]
          .filter(([p]) => found[p.index] === undefined)
          .map(([p, ids]) => ({ p, ids: round(ids) }));
        await read(trying.flatMap(t => t.ids));
        for (const { p, ids } of trying) {
          const id = ids.find(candidate => {
            const counted = rows.get(candidate);
            return counted && p.accept(counted.head);
          });
          if (id !== undefined) found[p.index] = id;
        }
      }
      pending = pending.filter(p => found[p.index] === undefined);
      if (page.length < pageSize) break;
      after = page[page.length - 1];
    }
    const runs = new Map<string, RecoveryRun>();
    const ids = [
      ...new Set(found.filter((id): id is string => id !== undefined)),
    ];
    for (const chunk of chunks(ids)) {
      for (const run of await runsWithDetails(
        this.db,
        chunk.map(id => rows.get(id)!.row),
      ))
        runs.set(run.id, run);
    }
    return found.map(id => (id === undefined ? undefined : runs.get(id)));
  }

  /**
   * For each query, the newest finished run that failed on one of `machineRefs` (the machine its
   * error names), newer than `after` in NEWEST_FIRST order when given, and that `accept`s, with its
   * details; interrupted and reverse-boot-order runs are skipped, as lastFinishedRun skips them.
   * Readiness asks it for a failure since an entity's last covering run. One walk of the failed
   * runs newest first serves every query, `pageSize` a page (ids, times and errors along
   * recovery_runs_status_created_idx: no plan, no sort); of
   * each query's candidates in a page the newest row is read first, the others only if it refused
   * it, all queries' at once. The walk ends once every query is answered or has reached its
   * `after` (no older row is read when every query has one): the statements grow with the failed
   * runs walked, not with the queries.
   */
  async lastFailedRuns(
    queries: Array<{
      machineRefs: string[];
      after?: Pick<RecoveryRun, 'createdAt' | 'id'>;
      accept?: (run: RunHead) => boolean;
    }>,
    pageSize = MAX_RUNS_PAGE,
  ): Promise<Array<RecoveryRun | undefined>> {
    type Pending = {
      index: number;
      machines: Set<string>;
      after?: { at: number; id: string };
      accept: (run: RunHead) => boolean;
    };
    // Each query's row, once found: read whole, to be read with its details at the end.
    const found: any[] = queries.map(() => undefined);
    let pending = queries.flatMap<Pending>(
      ({ machineRefs, after, accept = () => true }, index) =>
        machineRefs.length === 0
          ? []
          : [
              {
                index,
                machines: new Set(machineRefs),
                after: after && {
                  at: Date.parse(after.createdAt),
                  id: after.id,
                },
                accept,
              },
            ],
    );
    // Whether a run (its time as epoch ms, its id) comes after a query's `after`: NEWEST_FIRST's order.
    const since = (p: Pending, at: number, id: string) =>
      !p.after || at > p.after.at || (at === p.after.at && id > p.after.id);
    const heads = new Map<string, { row: any; head: RunHead }>();
    let before: { id: string; created_at: unknown } | undefined;
    while (pending.length > 0) {
      const q = this.db('recovery_runs')
        .where('status', 'failed')
        .modify(countsForReadiness, 'recovery_runs')
        .orderBy(NEWEST_FIRST)
        .limit(pageSize)
        .select('id', 'created_at', 'error');
      // No query looks past the oldest `after`.
      const oldest = pending.every(p => p.after)
        ? Math.min(...pending.map(p => p.after!.at))
        : undefined;
      if (oldest !== undefined) q.where('created_at', '>=', new Date(oldest));
      // Keyset on NEWEST_FIRST, with the time as the database returned it.
      if (before) q.modify(olderThan, before.created_at, before.id);
      const page: Array<{ id: string; created_at: unknown; error: unknown }> =
        await q;
      if (page.length === 0) break;
      // Each query's candidates in this page, newest first: failed on one of its machines, after its `after`.
      const candidates = new Map<Pending, string[]>();
      for (const row of page) {
        const failedOn = json<NonNullable<RecoveryRun['error']>>(
          row.error,
        )?.machineRef;
        if (failedOn === undefined) continue;
        const at = Date.parse(iso(row.created_at)!);
        for (const p of pending) {
          if (!p.machines.has(failedOn) || !since(p, at, row.id)) continue;
          if (!candidates.has(p)) candidates.set(p, []);
          candidates.get(p)!.push(row.id);
        }
      }
      // Each query's newest candidate first, all at once (a row holds its whole plan); then the
      // rest of the candidates of those that refused it.
      for (const round of [
        (ids: string[]) => ids.slice(0, 1),
        (ids: string[]) => ids.slice(1),
      ]) {
        const trying = [...candidates]
          .filter(([p]) => found[p.index] === undefined)
          .map(([p, ids]) => ({ p, ids: round(ids) }));
        const unread = [...new Set(trying.flatMap(t => t.ids))].filter(
          id => !heads.has(id),
        );
        for (const chunk of chunks(unread)) {
          for (const row of await this.db('recovery_runs').whereIn('id', chunk))
            heads.set(row.id, { row, head: toRunHead(row) });
        }
        for (const { p, ids } of trying) {
          const id = ids.find(
            candidate =>
              heads.has(candidate) && p.accept(heads.get(candidate)!.head),
          );
          if (id !== undefined) found[p.index] = heads.get(id)!.row;
        }
      }
      if (page.length < pageSize) break;
      const last = page[page.length - 1];
      before = last;
      const at = Date.parse(iso(last.created_at)!);
      // Answered, or the walk has reached its `after`: nothing older tells it more.
      pending = pending.filter(
        p => found[p.index] === undefined && since(p, at, last.id),
      );
    }
    const rows = [
      ...new Map(
        found.filter(row => row !== undefined).map(row => [row.id, row]),
      ).values(),
    ];
    const runs = new Map<string, RecoveryRun>();
    for (const chunk of chunks(rows))
      for (const run of await runsWithDetails(this.db, chunk))
        runs.set(run.id, run);
    return found.map(row => (row === undefined ? undefined : runs.get(row.id)));
  }
}

function toRunHead(row: any): RunHead {
  return {
    id: row.id,
    entityRef: row.entity_ref,
    status: row.status,
    plan: json<BootPlan>(row.plan)!,
    error: json(row.error),
  };
}
