import type { NightlyCheckEntityOutcome, NightlyCheckOutcome } from '@backstage-recovery/plugin-recovery-common';
import { ConflictError, InputError } from '@backstage/errors';
import { Knex } from 'knex';

/** A night's check as the scheduler records it: when it began, and what it did about each entity. */
export interface NightlyCheckRecord {
  checkedAt: string;
  outcomes: NightlyCheckEntityOutcome[];
  /**
   * The outcomes known so far of a night under way: they replace those entities' outcomes alone,
   * and every other entity keeps its own (last night's, until the check reaches it). Without it,
   * the night whole, as the check records it once it ends.
   */
  partial?: boolean;
}

const TABLE = 'recovery_nightly_checks';
/** When the night recorded began, and whether it ended (recorded whole), in one row (id 1). */
const NIGHT = 'recovery_nightly_check_night';
// SQLite caps bound variables per statement; a row binds 7.
const BATCH = 200;

/** The nightly check's latest outcome per entity, through knex: one row an entity. */
export class NightlyCheckStore {
  constructor(private readonly db: Knex) {}

  /**
   * Records a night's check. Whole (its end): its outcomes replace the last night's, whole, so an
   * entity it no longer checks (gone from the catalog, no longer recoverable) keeps no outcome of
   * an older night. Partial (while it goes on): each entity's outcome replaces that entity's alone,
   * dated tonight, and those the check has not reached yet keep last night's.
   *
   * A night older than the one recorded (a check that outlived the next one's start, its record
   * sent late) is a ConflictError: it would put last week's word over last night's. So is a partial
   * record of a night recorded whole already: its end said each entity's last word.
   */
  async record({ checkedAt, outcomes, partial }: NightlyCheckRecord): Promise<void> {
    const at = new Date(checkedAt);
    if (partial) {
      // One statement upserts each batch, which cannot take an entity twice on PostgreSQL.
      const refs = new Set<string>();
      for (const { entityRef } of outcomes) {
        if (refs.has(entityRef)) throw new InputError(`${entityRef} has two outcomes in one record of the nightly check of ${at.toISOString()}: one an entity`);
        refs.add(entityRef);
      }
    }
    await this.db.transaction(async tx => {
      // Moved on only to a night as new or newer (a partial record: newer, or the same still under
      // way), which locks the row until this record commits: a second record waits for it, then
      // finds its night.
      await tx(NIGHT).insert({ id: 1, checked_at: at, ended: !partial }).onConflict('id').ignore();
      const night = tx(NIGHT).where({ id: 1 });
      const moved = partial
        ? night.where(q => q.where('checked_at', '<', at).orWhere(same => same.where('checked_at', '=', at).where('ended', false)))
        : night.where('checked_at', '<=', at);
      if ((await moved.update({ checked_at: at, ended: !partial })) === 0) {
        const recorded = await tx(NIGHT).where({ id: 1 }).first();
        const recordedAt = new Date(recorded.checked_at).toISOString();
        throw new ConflictError(
          recordedAt === at.toISOString()
            ? `The nightly check of ${recordedAt} is recorded whole: its outcomes so far, sent late, are not`
            : `The nightly check of ${recordedAt} is recorded: that of ${at.toISOString()}, older, is not`,
        );
      }
      if (!partial) await tx(TABLE).delete();
      for (let i = 0; i < outcomes.length; i += BATCH) {
        const rows = outcomes.slice(i, i + BATCH).map(o => ({
          entity_ref: o.entityRef,
          checked_at: at,
          outcome: o.outcome,
          reason: o.reason ?? null,
          run_id: o.runId ?? null,
          run_entity_ref: o.runEntityRef ?? null,
          message: o.message,
        }));
        if (partial) await tx(TABLE).insert(rows).onConflict('entity_ref').merge();
        else await tx(TABLE).insert(rows);
      }
    });
  }

  /**
   * One entity's latest outcome, if any: tonight's once the check under way has reached it, else
   * the last night's that checked it (dated by its own `checkedAt`).
   */
  async outcomeOf(entityRef: string): Promise<NightlyCheckOutcome | undefined> {
    const row = await this.db(TABLE).where({ entity_ref: entityRef }).first();
    return row && fromRow(row);
  }

  /**
   * Each entity's latest outcome (as `outcomeOf`), by entity ref: in one statement, however many entities, as the
   * readiness overview asks (the table holds one row per entity the check covers).
   */
  async outcomes(): Promise<Map<string, NightlyCheckOutcome>> {
    const rows = await this.db(TABLE).select();
    return new Map(rows.map(r => [r.entity_ref, fromRow(r)]));
  }
}

function fromRow(r: Record<string, any>): NightlyCheckOutcome {
  return {
    checkedAt: new Date(r.checked_at).toISOString(),
    outcome: r.outcome,
    ...(r.reason && { reason: r.reason }),
    ...(r.run_id && { runId: r.run_id }),
    ...(r.run_entity_ref && { runEntityRef: r.run_entity_ref }),
    message: r.message,
  };
}
