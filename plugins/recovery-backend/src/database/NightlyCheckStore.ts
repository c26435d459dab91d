import {
  NIGHTLY_CHECK_SILENCE_MS,
  type NightlyCheckOutcome,
  type NightlyCheckProgress,
  type NightlyCheckRecord,
} from '@backstage-recovery/plugin-recovery-common';
import { ConflictError, InputError } from '@backstage/errors';
import { Knex } from 'knex';

const TABLE = 'recovery_nightly_checks';
/**
 * When the night recorded began, whether it ended (recorded whole), when its check was last heard
 * from and how many entities it set out to check, in one row (id 1).
 */
const NIGHT = 'recovery_nightly_check_night';
// SQLite caps bound variables per statement; a row binds 7.
const BATCH = 200;

/** The nightly check's latest outcome per entity, through knex: one row an entity. */
export class NightlyCheckStore {
  constructor(
    private readonly db: Knex,
    private readonly options: {
      /** This backend's clock: when a record is heard, and whether a night under way went silent. */
      now?: () => number;
      /** How long a night under way may go unheard from before it is taken as interrupted. */
      silenceMs?: number;
    } = {},
  ) {}

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  /**
   * Records a night's check. Whole (its end): its outcomes replace the last night's, whole, so an
   * entity it no longer checks (gone from the catalog, no longer recoverable) keeps no outcome of
   * an older night. Partial (while it goes on): each entity's outcome replaces that entity's alone,
   * dated tonight, and those the check has not reached yet keep last night's.
   *
   * A night older than the one recorded (a check that outlived the next one's start, its record
   * sent late) is a ConflictError: it would put last week's word over last night's. So is a partial
   * record of a night recorded whole already: its end said each entity's last word.
   *
   * Each record says the check is still there (`heard_at`), an empty partial one too. A newer
   * night's first record closes an older night never ended (its check killed, or its end not
   * recorded) as interrupted: its outcome rows keep when it was last heard from and how many of how
   * many entities it had checked, while the new night replaces them one by one.
   */
  async record({
    checkedAt,
    outcomes,
    partial,
    entities,
  }: NightlyCheckRecord): Promise<void> {
    const at = new Date(checkedAt);
    if (partial) {
      // One statement upserts each batch, which cannot take an entity twice on PostgreSQL.
      const refs = new Set<string>();
      for (const { entityRef } of outcomes) {
        if (refs.has(entityRef))
          throw new InputError(
            `${entityRef} has two outcomes in one record of the nightly check of ${at.toISOString()}: one an entity`,
          );
        refs.add(entityRef);
      }
    }
    const heardAt = new Date(this.now());
    await this.db.transaction(async tx => {
      // Moved on only to a night as new or newer (a partial record: newer, or the same still under
      // way). The row is locked until this record commits: a second record waits for it, then
      // finds its night.
      await tx(NIGHT)
        .insert({
          id: 1,
          checked_at: at,
          ended: !partial,
          heard_at: heardAt,
          entities: entities ?? null,
        })
        .onConflict('id')
        .ignore();
      const recorded = await tx(NIGHT).where({ id: 1 }).forUpdate().first();
      const recordedAt = new Date(recorded.checked_at);
      const same = recordedAt.getTime() === at.getTime();
      const moves = partial
        ? recordedAt < at || (same && !recorded.ended)
        : recordedAt <= at;
      if (!moves) {
        throw new ConflictError(
          same
            ? `The nightly check of ${recordedAt.toISOString()} is recorded whole: its outcomes so far, sent late, are not`
            : `The nightly check of ${recordedAt.toISOString()} is recorded: that of ${at.toISOString()}, older, is not`,
        );
      }
      if (partial && !same && !recorded.ended) {
        // A night never ended, which this newer one leaves behind: interrupted, and said so on the
        // rows it recorded, which keep their outcomes until this night reaches their entities.
        const [{ n }] = await tx(TABLE)
          .where('checked_at', recordedAt)
          .count({ n: '*' });
        await tx(TABLE)
          .where('checked_at', recordedAt)
          .update({
            interrupted_at: recorded.heard_at ?? recordedAt,
            night_checked: Number(n),
            night_entities: recorded.entities ?? null,
          });
      }
      await tx(NIGHT)
        .where({ id: 1 })
        .update({
          checked_at: at,
          ended: !partial,
          heard_at: heardAt,
          entities: entities ?? (same ? recorded.entities : null) ?? null,
        });
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
          // A row of an interrupted night that tonight's replaces is no longer marked as one.
          ...(partial && {
            interrupted_at: null,
            night_checked: null,
            night_entities: null,
          }),
        }));
        if (partial)
          await tx(TABLE).insert(rows).onConflict('entity_ref').merge();
        else await tx(TABLE).insert(rows);
      }
    });
  }

  /**
   * One entity's latest outcome, if any: tonight's once the check under way has reached it, else
   * the last night's that checked it (dated by its own `checkedAt`); with its night's progress
   * where that night did not end (`night`), and a newer night's that has not reached it (`newer`).
   */
  async outcomeOf(entityRef: string): Promise<NightlyCheckOutcome | undefined> {
    const row = await this.withNight()
      .select({
        // How many the night recorded has reached (its own rows: no newer night has replaced them).
        latest_checked: this.db(`${TABLE} as c`)
          .count('*')
          .where('c.checked_at', this.db.ref('n.checked_at')),
      })
      .where('t.entity_ref', entityRef)
      .first();
    return (
      row && this.fromRow(row, nightOf(row), Number(row.latest_checked ?? 0))
    );
  }

  /**
   * Each entity's latest outcome (as `outcomeOf`), by entity ref: in one statement, however many entities, as the
   * readiness overview asks (the table holds one row per entity the check covers).
   */
  async outcomes(): Promise<Map<string, NightlyCheckOutcome>> {
    const rows = await this.withNight();
    const night = rows.length > 0 ? nightOf(rows[0]) : undefined;
    const checked = night
      ? rows.filter(
          r => new Date(r.checked_at).getTime() === night.checkedAt.getTime(),
        ).length
      : 0;
    return new Map(
      rows.map(r => [r.entity_ref, this.fromRow(r, night, checked)]),
    );
  }

  /** The outcome rows, each with the night recorded (`latest_*`), in one statement. */
  private withNight() {
    return this.db(`${TABLE} as t`)
      .leftJoin(`${NIGHT} as n`, 'n.id', this.db.raw('?', [1]))
      .select('t.*', {
        latest_checked_at: 'n.checked_at',
        latest_ended: 'n.ended',
        latest_heard_at: 'n.heard_at',
        latest_entities: 'n.entities',
      });
  }

  /** The night recorded, not ended, with `checked` entities reached: under way, or interrupted once silent. */
  private progress(night: Night, checked: number): NightlyCheckProgress {
    const silent =
      this.now() - night.heardAt.getTime() >
      (this.options.silenceMs ?? NIGHTLY_CHECK_SILENCE_MS);
    return {
      checkedAt: night.checkedAt.toISOString(),
      state: silent ? 'interrupted' : 'under-way',
      heardAt: night.heardAt.toISOString(),
      checked,
      ...(night.entities !== undefined && { entities: night.entities }),
    };
  }

  private fromRow(
    r: Record<string, any>,
    night: Night | undefined,
    checked: number,
  ): NightlyCheckOutcome {
    const checkedAt = new Date(r.checked_at);
    let progress: Pick<NightlyCheckOutcome, 'night' | 'newer'> = {};
    if (r.interrupted_at) {
      // Closed by a newer night (whole ones replace every row: this one is not).
      const entities = r.night_entities ?? undefined;
      progress = {
        night: {
          checkedAt: checkedAt.toISOString(),
          state: 'interrupted',
          heardAt: new Date(r.interrupted_at).toISOString(),
          checked: Number(r.night_checked ?? 0),
          ...(entities !== undefined && { entities: Number(entities) }),
        },
      };
    }
    if (night && !night.ended) {
      if (checkedAt.getTime() === night.checkedAt.getTime())
        progress = { night: this.progress(night, checked) };
      else progress = { ...progress, newer: this.progress(night, checked) };
    }
    return {
      checkedAt: checkedAt.toISOString(),
      outcome: r.outcome,
      ...(r.reason && { reason: r.reason }),
      ...(r.run_id && { runId: r.run_id }),
      ...(r.run_entity_ref && { runEntityRef: r.run_entity_ref }),
      message: r.message,
      ...progress,
    };
  }
}

/** The night recorded (row id 1). */
interface Night {
  checkedAt: Date;
  ended: boolean;
  heardAt: Date;
  entities?: number;
}

/** The night recorded, as joined to an outcome row; none before any. */
function nightOf(row: Record<string, any>): Night | undefined {
  if (row.latest_checked_at === null || row.latest_checked_at === undefined)
    return undefined;
  const checkedAt = new Date(row.latest_checked_at);
  return {
    checkedAt,
    // SQLite gives booleans as 0 and 1.
    ended: !!row.latest_ended,
    heardAt: row.latest_heard_at ? new Date(row.latest_heard_at) : checkedAt,
    ...(row.latest_entities !== null &&
      row.latest_entities !== undefined && {
        entities: Number(row.latest_entities),
      }),
  };
}
