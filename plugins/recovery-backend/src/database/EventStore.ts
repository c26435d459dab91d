import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import type { AnalysisResult } from '@backstage-recovery/plugin-recovery-node';
import { Knex } from 'knex';
import { NEWEST_FIRST } from './RecoveryStore';

export interface StoredAnalysis {
  id: string;
  scope: string;
  events: number;
  createdAt: string;
  result: AnalysisResult;
}

// SQLite caps bound variables per statement; 7 columns × 500 rows stays well under it.
const BATCH = 500;

/** Initialization events and analysis results, through knex. */
export class EventStore {
  constructor(private readonly db: Knex) {}

  /** Stores events once each; returns how many were new. */
  async insertEvents(events: InitializationEvent[], source: string): Promise<number> {
    let inserted = 0;
    const receivedAt = new Date();
    for (let i = 0; i < events.length; i += BATCH) {
      const rows = events.slice(i, i + BATCH).map(e => ({
        machine: e.machine,
        service: e.service,
        type: e.type,
        // Parsers give fractions of a ms (journald µs, docker ns) that a bigint column refuses on
        // PostgreSQL; boot ordering needs no finer than whole ms, and rounding keeps re-sent events one.
        time: Math.round(e.time),
        reference: e.reference === undefined ? null : Math.round(e.reference),
        source,
        received_at: receivedAt,
      }));
      const added = await this.db('recovery_events')
        .insert(rows)
        .onConflict(['machine', 'service', 'type', 'time'])
        .ignore()
        .returning('id');
      inserted += added.length;
    }
    return inserted;
  }

  /** Events in time order, optionally from `since` (epoch ms) on. */
  async listEvents(options: { since?: number } = {}): Promise<InitializationEvent[]> {
    const q = this.db('recovery_events')
      .select('machine', 'service', 'type', 'time', 'reference')
      .orderBy([{ column: 'time' }, { column: 'id' }]);
    if (options.since !== undefined) q.where('time', '>=', options.since);
    const rows = await q;
    return rows.map(r => ({
      machine: r.machine,
      service: r.service,
      type: r.type,
      time: Number(r.time),
      ...(r.reference !== null && r.reference !== undefined && { reference: Number(r.reference) }),
    }));
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

  async latestAnalysis(scope: string): Promise<StoredAnalysis | undefined> {
    const row = await this.db('recovery_analyses')
      .where({ scope })
      .orderBy(NEWEST_FIRST)
      .first();
    if (!row) return undefined;
    return {
      id: row.id,
      scope: row.scope,
      events: Number(row.events),
      createdAt: new Date(row.created_at).toISOString(),
      result: JSON.parse(row.result),
    };
  }
}
