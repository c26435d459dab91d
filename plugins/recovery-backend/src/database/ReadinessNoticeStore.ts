import type { ReadinessStatus } from '@backstage-recovery/plugin-recovery-common';
import { Knex } from 'knex';

/**
 * An alarm sent to owners: that entities are not recoverable. Each alarm has a scope of its own
 * (the notifications plugin replaces a notice in place only within a scope, keeping when the first
 * was created); the entities it named share it.
 */
export interface ReadinessAlarm {
  scope: string;
  /** Its title, to resolve it in place ("Resolved: …") once every entity it named is recoverable again or gone. */
  title: string;
  /** ISO time it was sent. */
  sentAt: string;
  /**
   * ISO time the loss was first seen, which notices count the outage from: before `sentAt` where
   * the notifications backend refused it at first. Absent for one sent before it was kept: `sentAt`.
   */
  lostAt?: string;
  /**
   * ISO time this entity's owners were told it is recoverable again, or gone: the alarm is
   * resolved once every entity it named has been; absent while this one is not recoverable.
   */
  closedAt?: string;
}

/**
 * An alarm an entity was in, told its end, when it was lost again (a new alarm) before that one
 * was resolved: kept, with whom it went to, until every entity it named has been told its end.
 */
export interface PastAlarm extends ReadinessAlarm {
  closedAt: string;
  owners?: string[];
  users?: string[];
}

/** The readiness status an entity was last seen with, what its owners were told of it, and since when it has held. */
export interface ReadinessNotice {
  entityRef: string;
  status: ReadinessStatus;
  /** ISO time the entity was first seen with this status. */
  since: string;
  /**
   * The alarm that told it is not recoverable, until that alarm is resolved: absent for a
   * not-recoverable status nobody was told of (the entity was first seen so, never recoverable).
   */
  alarm?: ReadinessAlarm;
  /** Who was told it is not recoverable: its owners (refs) at the time. */
  owners?: string[];
  /**
   * The users that notice reached (user refs): the owners resolved as the notifications plugin
   * resolves them, a group to its members. Absent for one told before they were kept.
   */
  users?: string[];
  /**
   * ISO time a sweep first saw it not recoverable, while its alarm could not be sent (kept for the
   * alarm sent at a later sweep to count from); dropped once it is recoverable again or told.
   */
  lossSeen?: string;
  /** Earlier alarms it was in that wait for other entities they named (see PastAlarm). */
  pastAlarms?: PastAlarm[];
  /** ISO time a sweep first found it missing from the recoverable entities (see ReadinessNotifier). */
  absentSince?: string;
}

// SQLite caps bound variables per statement.
const BATCH = 300;

/** What the readiness notifier last told, per entity, through knex. */
export class ReadinessNoticeStore {
  constructor(private readonly db: Knex) {}

  async all(): Promise<Map<string, ReadinessNotice>> {
    const rows = await this.db('recovery_readiness_notices').select();
    return new Map(
      rows.map(r => [
        r.entity_ref,
        {
          entityRef: r.entity_ref,
          status: r.status,
          since: new Date(r.since).toISOString(),
          ...(r.owners && { owners: JSON.parse(r.owners) }),
          ...(r.users && { users: JSON.parse(r.users) }),
          ...(r.absent_since && {
            absentSince: new Date(r.absent_since).toISOString(),
          }),
          ...(r.past_alarms && { pastAlarms: JSON.parse(r.past_alarms) }),
          ...(r.loss_seen && { lossSeen: new Date(r.loss_seen).toISOString() }),
          ...(r.alarm_scope && {
            alarm: {
              scope: r.alarm_scope,
              title: r.alarm_title ?? '',
              sentAt: new Date(r.alarm_sent ?? r.since).toISOString(),
              ...(r.alarm_lost && {
                lostAt: new Date(r.alarm_lost).toISOString(),
              }),
              ...(r.alarm_closed && {
                closedAt: new Date(r.alarm_closed).toISOString(),
              }),
            },
          }),
        },
      ]),
    );
  }

  async save(notices: ReadinessNotice[]): Promise<void> {
    for (let i = 0; i < notices.length; i += BATCH) {
      await this.db('recovery_readiness_notices')
        .insert(
          notices.slice(i, i + BATCH).map(n => ({
            entity_ref: n.entityRef,
            status: n.status,
            since: new Date(n.since),
            owners: n.owners ? JSON.stringify(n.owners) : null,
            users: n.users ? JSON.stringify(n.users) : null,
            absent_since: n.absentSince ? new Date(n.absentSince) : null,
            past_alarms: n.pastAlarms?.length
              ? JSON.stringify(n.pastAlarms)
              : null,
            loss_seen: n.lossSeen ? new Date(n.lossSeen) : null,
            alarm_lost: n.alarm?.lostAt ? new Date(n.alarm.lostAt) : null,
            alarm_scope: n.alarm?.scope ?? null,
            alarm_title: n.alarm?.title ?? null,
            alarm_sent: n.alarm ? new Date(n.alarm.sentAt) : null,
            alarm_closed: n.alarm?.closedAt ? new Date(n.alarm.closedAt) : null,
          })),
        )
        .onConflict('entity_ref')
        .merge();
    }
  }

  /**
   * How many entities the last sweep saw with each status, those it found missing from the
   * recoverable entities left out: one aggregate over one row an entity, for each metrics scrape.
   */
  async countByStatus(): Promise<Partial<Record<ReadinessStatus, number>>> {
    const rows: Array<{ status: ReadinessStatus; n: number | string }> =
      await this.db('recovery_readiness_notices')
        .whereNull('absent_since')
        .select('status')
        .count({ n: '*' })
        .groupBy('status');
    return Object.fromEntries(rows.map(r => [r.status, Number(r.n)]));
  }

  /** Forgets entities the catalog no longer holds (or no longer recovers). */
  async remove(entityRefs: string[]): Promise<void> {
    for (let i = 0; i < entityRefs.length; i += BATCH) {
      await this.db('recovery_readiness_notices')
        .whereIn('entity_ref', entityRefs.slice(i, i + BATCH))
        .delete();
    }
  }
}
