import type { ReadinessStatus } from '@backstage-recovery/plugin-recovery-common';
import { Knex } from 'knex';

/** The readiness status an entity's owners were last told of, and since when it has held. */
export interface ReadinessNotice {
  entityRef: string;
  status: ReadinessStatus;
  /** ISO time the entity was first seen with this status. */
  since: string;
  /** Who was told it is not recoverable: its owners (refs) at the time. */
  owners?: string[];
  /**
   * The users that notice reached (user refs): the owners resolved as the notifications plugin
   * resolves them, a group to its members. Absent for one told before they were kept.
   */
  users?: string[];
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
          ...(r.absent_since && { absentSince: new Date(r.absent_since).toISOString() }),
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
          })),
        )
        .onConflict('entity_ref')
        .merge();
    }
  }

  /** Forgets entities the catalog no longer holds (or no longer recovers). */
  async remove(entityRefs: string[]): Promise<void> {
    for (let i = 0; i < entityRefs.length; i += BATCH) {
      await this.db('recovery_readiness_notices').whereIn('entity_ref', entityRefs.slice(i, i + BATCH)).delete();
    }
  }
}
