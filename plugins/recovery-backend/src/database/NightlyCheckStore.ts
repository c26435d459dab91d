import type { NightlyCheckEntityOutcome, NightlyCheckOutcome } from '@backstage-recovery/plugin-recovery-common';
import { ConflictError } from '@backstage/errors';
import { Knex } from 'knex';

/** A night's check as the scheduler records it: when it began, and what it did about each entity. */
export interface NightlyCheckRecord {
  checkedAt: string;
  outcomes: NightlyCheckEntityOutcome[];
}

const TABLE = 'recovery_nightly_checks';
/** When the night recorded began, in one row (id 1). */
const NIGHT = 'recovery_nightly_check_night';
// SQLite caps bound variables per statement; a row binds 7.
const BATCH = 200;

/** The latest nightly check's outcome per entity, through knex: one row an entity. */
export class NightlyCheckStore {
  constructor(private readonly db: Knex) {}

  /**
   * Records a night's check: its outcomes replace the last night's, whole, so an entity it no
   * longer checks (gone from the catalog, no longer recoverable) keeps no outcome of an older night.
   * A night older than the one recorded (a check that outlived the next one's start, its record
   * sent late) is a ConflictError: it would put last week's word over last night's.
   */
  async record({ checkedAt, outcomes }: NightlyCheckRecord): Promise<void> {
    const at = new Date(checkedAt);
    await this.db.transaction(async tx => {
      // Moved on only to a night as new or newer, which locks the row until this record commits:
      // a second record waits for it, then finds its night.
      await tx(NIGHT).insert({ id: 1, checked_at: at }).onConflict('id').ignore();
      if ((await tx(NIGHT).where({ id: 1 }).where('checked_at', '<=', at).update({ checked_at: at })) === 0) {
        const recorded = await tx(NIGHT).where({ id: 1 }).first();
        throw new ConflictError(
          `The nightly check of ${new Date(recorded.checked_at).toISOString()} is recorded: that of ${at.toISOString()}, older, is not`,
        );
      }
      await tx(TABLE).delete();
      for (let i = 0; i < outcomes.length; i += BATCH) {
        await tx(TABLE).insert(
          outcomes.slice(i, i + BATCH).map(o => ({
            entity_ref: o.entityRef,
            checked_at: at,
            outcome: o.outcome,
            reason: o.reason ?? null,
            run_id: o.runId ?? null,
            run_entity_ref: o.runEntityRef ?? null,
            message: o.message,
          })),
        );
      }
    });
  }

  /** The latest night's outcome for one entity, if that night checked it. */
  async outcomeOf(entityRef: string): Promise<NightlyCheckOutcome | undefined> {
    const row = await this.db(TABLE).where({ entity_ref: entityRef }).first();
    return row && fromRow(row);
  }

  /**
   * The latest night's outcomes, by entity ref: in one statement, however many entities, as the
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
