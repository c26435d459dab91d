import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import type { AnalysisResult } from '@backstage-recovery/plugin-recovery-node';
import { Knex } from 'knex';
import { NEWEST_FIRST } from './rows';

export interface StoredAnalysis {
  id: string;
  scope: string;
  events: number;
  createdAt: string;
  result: AnalysisResult;
}

// SQLite caps bound variables per statement; 8 columns × 500 rows stays well under it.
const BATCH = 500;
/**
 * Events stored between two yields to the event loop on SQLite, whose driver runs each statement
 * synchronously: a few ms of work, so a push of 100,000 events does not stall health checks, the
 * UI and a running recovery's timing for seconds.
 */
export const INSERT_SLICE = 1_000;
/** Events read per query when streaming the table. */
const EVENT_PAGE = 5_000;
/** Events deleted per statement: each holds its row locks only briefly, so collection goes on. */
const DELETE_BATCH = 1_000;

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

const toEvent = (r: any): InitializationEvent => ({
  machine: r.machine,
  service: r.service,
  type: r.type,
  time: Number(r.time),
  ...(r.reference !== null &&
    r.reference !== undefined && { reference: Number(r.reference) }),
});

/** Initialization events and analysis results, through knex. */
export class EventStore {
  constructor(private readonly db: Knex) {}

  /**
   * Stores events once each; returns how many were new. `pushedBy`: who pushed them through the
   * API, as authenticated (the source they name is theirs to choose); none where collected.
   */
  async insertEvents(
    events: InitializationEvent[],
    source: string,
    pushedBy?: string,
  ): Promise<number> {
    const receivedAt = new Date();
    const rows = events.map(e => ({
      machine: e.machine,
      service: e.service,
      type: e.type,
      // Parsers give fractions of a ms (journald µs, docker ns) that a bigint column refuses on
      // PostgreSQL; boot ordering needs no finer than whole ms, and rounding keeps re-sent events one.
      time: Math.round(e.time),
      reference: e.reference === undefined ? null : Math.round(e.reference),
      source,
      pushed_by: pushedBy ?? null,
      received_at: receivedAt,
    }));
    // In the unique key's order: a row another push inserts and has not committed yet waits for
    // it, so two pushes of the same events in different orders (overlapping exports, an engine's
    // stream and a push) would each wait for the other (a deadlock on PostgreSQL).
    rows.sort(
      (a, b) =>
        compare(a.machine, b.machine) ||
        compare(a.service, b.service) ||
        compare(a.type, b.type) ||
        a.time - b.time,
    );
    // One transaction for all batches: a call that fails stores none of its events, not the
    // batches before the error while the caller is told it failed.
    return this.db.transaction(async trx => {
      if (trx.client.driverName === 'better-sqlite3')
        return insertOnSqlite(trx, rows);
      let inserted = 0;
      for (let i = 0; i < rows.length; i += BATCH) {
        const added = await trx('recovery_events')
          .insert(rows.slice(i, i + BATCH))
          .onConflict(['machine', 'service', 'type', 'time'])
          .ignore()
          .returning('id');
        inserted += added.length;
      }
      return inserted;
    });
  }

  /** Time (epoch ms) of the newest event stored from `source`, where that source resumes. */
  async newestEventTimeFrom(source: string): Promise<number | undefined> {
    const row = await this.db('recovery_events')
      .where({ source })
      .max({ newest: 'time' })
      .first();
    return row?.newest === null || row?.newest === undefined
      ? undefined
      : Number(row.newest);
  }

  /**
   * Events in time order, one page of at most `pageSize` at a time, so a reader of a large table
   * holds one page rather than all of it. `clock`: only clock readings (true), all but them
   * (false), or both (absent).
   */
  async *eventPages(
    options: { clock?: boolean; pageSize?: number } = {},
  ): AsyncGenerator<InitializationEvent[]> {
    const pageSize = options.pageSize ?? EVENT_PAGE;
    let after: { time: number; id: number } | undefined;
    for (;;) {
      const q = this.db('recovery_events')
        .select('id', 'machine', 'service', 'type', 'time', 'reference')
        .orderBy([{ column: 'time' }, { column: 'id' }])
        .limit(pageSize);
      if (options.clock === true) q.where('type', 'clock');
      if (options.clock === false) q.whereNot('type', 'clock');
      // Keyset paging: an offset would rescan every earlier page, and rows deleted or added
      // meanwhile would shift it. A row value, not `time > ? or (time = ? and id > ?)`: PostgreSQL
      // bounds the (time, id) index scan with it, where the OR made each page scan from the start.
      if (after)
        q.whereRaw('(??, ??) > (?, ?)', ['time', 'id', after.time, after.id]);
      const rows = await q;
      if (rows.length) yield rows.map(toEvent);
      if (rows.length < pageSize) return;
      const last = rows[rows.length - 1];
      after = { time: Number(last.time), id: Number(last.id) };
    }
  }

  /** Per machine, the time of its newest event not after `notAfter` (epoch ms); machines without one are absent. */
  async newestEventTimes(notAfter: number): Promise<Map<string, number>> {
    const rows = await this.db('recovery_events')
      .where('time', '<=', notAfter)
      .groupBy('machine')
      .select('machine', this.db.raw('max(??) as ??', ['time', 'newest']));
    return new Map(
      rows.map((r: { machine: string; newest: unknown }) => [
        r.machine,
        Number(r.newest),
      ]),
    );
  }

  /** The service names of a machine's starts and failures (not its clock readings). */
  async serviceNamesOn(machine: string): Promise<string[]> {
    return this.db('recovery_events')
      .where({ machine })
      .whereNot('type', 'clock')
      .distinct('service')
      .pluck('service');
  }

  /**
   * Deletes the events before `time` (epoch ms), of one machine when given, oldest first,
   * `batchSize` per statement; returns how many.
   */
  async deleteEventsBefore(
    time: number,
    batchSize = DELETE_BATCH,
    machine?: string,
  ): Promise<number> {
    let deleted = 0;
    for (;;) {
      const batch = this.db('recovery_events')
        .select('id')
        .where('time', '<', time)
        .orderBy('time')
        .limit(batchSize);
      if (machine !== undefined) batch.where({ machine });
      const n = await this.db('recovery_events').whereIn('id', batch).delete();
      deleted += n;
      if (n < batchSize) return deleted;
    }
  }

  async insertAnalysis(analysis: StoredAnalysis): Promise<void> {
    await this.db('recovery_analyses').insert({
      id: analysis.id,
      scope: analysis.scope,
      events: analysis.events,
      result: JSON.stringify(analysis.result),
      created_at: new Date(analysis.createdAt),
    });
  }

  /** Deletes all but the newest `keep` analyses of a scope; returns how many were deleted. */
  async pruneAnalyses(scope: string, keep: number): Promise<number> {
    let deleted = 0;
    for (;;) {
      // In batches: a first prune after a long time without one may have thousands to delete.
      const ids = await this.db('recovery_analyses')
        .where({ scope })
        .orderBy(NEWEST_FIRST)
        .offset(keep)
        .limit(BATCH)
        .pluck('id');
      if (ids.length === 0) return deleted;
      deleted += await this.db('recovery_analyses').whereIn('id', ids).delete();
    }
  }

  /** The scopes (systems) whose newest stored analysis is older than `before`. */
  async scopesAnalysedLastBefore(before: Date): Promise<string[]> {
    const rows = await this.db('recovery_analyses')
      .select('scope')
      .groupBy('scope')
      .havingRaw('max(created_at) < ?', [before]);
    return rows.map((r: { scope: string }) => r.scope).sort();
  }

  /** Deletes every analysis of `scope`, in batches; returns how many. */
  async deleteAnalysesOf(scope: string): Promise<number> {
    return this.pruneAnalyses(scope, 0);
  }

  /** Id of the newest analysis of `scope`: whether one parsed before is still the latest, without reading it. */
  async latestAnalysisId(scope: string): Promise<string | undefined> {
    const row = await this.db('recovery_analyses')
      .where({ scope })
      .orderBy(NEWEST_FIRST)
      .select('id')
      .first();
    return row?.id;
  }

  async latestAnalysis(scope: string): Promise<StoredAnalysis | undefined> {
    const row = await this.db('recovery_analyses')
      .where({ scope })
      .orderBy(NEWEST_FIRST)
      .first();
    return row && toAnalysis(row);
  }

  /** An analysis by its id, while it is kept (see pruneAnalyses). */
  async analysis(id: string): Promise<StoredAnalysis | undefined> {
    const row = await this.db('recovery_analyses').where({ id }).first();
    return row && toAnalysis(row);
  }
}

/** The driver's own statement, as better-sqlite3 runs one (see insertOnSqlite). */
interface SqliteStatement {
  run(...values: unknown[]): { changes: number };
}

/**
 * Inserts `rows` in the transaction `trx` holds on SQLite: one prepared statement run per row,
 * yielding to the event loop every {@link INSERT_SLICE} rows. better-sqlite3 runs each statement
 * synchronously, so knex's batches awaited nothing and a push held the event loop until its last
 * row; compiling and preparing each 500-row insert anew also took half of that time. Other
 * queries wait meanwhile (SQLite's pool has one connection, which the transaction holds).
 */
async function insertOnSqlite(
  trx: Knex.Transaction,
  rows: Array<{
    machine: string;
    service: string;
    type: string;
    time: number;
    reference: number | null;
    source: string;
    pushed_by: string | null;
    received_at: Date;
  }>,
): Promise<number> {
  const connection = await trx.client.acquireConnection();
  try {
    const insert: SqliteStatement = connection.prepare(
      'insert into recovery_events (machine, service, type, time, reference, source, pushed_by, received_at) ' +
        'values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (machine, service, type, time) do nothing',
    );
    let inserted = 0;
    for (let i = 0; i < rows.length; i++) {
      if (i > 0 && i % INSERT_SLICE === 0) await new Promise(setImmediate);
      const r = rows[i];
      inserted += insert.run(
        r.machine,
        r.service,
        r.type,
        r.time,
        r.reference,
        r.source,
        r.pushed_by,
        // As knex binds a Date on SQLite: epoch ms.
        r.received_at.valueOf(),
      ).changes;
    }
    return inserted;
  } finally {
    await trx.client.releaseConnection(connection);
  }
}

function toAnalysis(row: any): StoredAnalysis {
  return {
    id: row.id,
    scope: row.scope,
    events: Number(row.events),
    createdAt: new Date(row.created_at).toISOString(),
    result: JSON.parse(row.result),
  };
}
