import type {
  Capture,
  CaptureDamage,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineRuntime } from '@backstage-recovery/plugin-recovery-node';
import { Knex } from 'knex';
import { ACTIVE_RUN_STATUSES } from '../run/runState';
import { CaptureClaimStore } from './CaptureClaimStore';
import { CaptureRequestStore } from './CaptureRequestStore';
import {
  type CaptureRow,
  chunks,
  iso,
  NEWEST_FIRST,
  olderThan,
  toCapture,
} from './rows';

/** A capture as stored: the API view plus what a restore needs. */
export interface StoredCapture extends Capture {
  artifact: string;
  runtime: MachineRuntime;
}

/** A machine's last failed capture: when it started, of which container, and why it failed. */
export interface CaptureFailure {
  machineRef: string;
  engine: string;
  container: string;
  failedAt: string;
  message: string;
}

/** Persistence of captures: their damage marks, failed captures and pruning. */
export class CaptureStore {
  /** The capture requests (POST /captures) callers poll, on the same database. */
  readonly requests: CaptureRequestStore;
  /** The captures under way across backend replicas, one per machine, on the same database. */
  readonly claims: CaptureClaimStore;

  constructor(
    private readonly db: Knex,
    options: {
      /** Told the id of each capture request a write changed, once committed (RecoverySignals). */
      onRequestChange?: (requestId: string) => void;
    } = {},
  ) {
    this.requests = new CaptureRequestStore(db, {
      onChange: options.onRequestChange,
    });
    this.claims = new CaptureClaimStore(db);
  }

  /** Records a capture; it clears its machine's failed capture started before it (recordCaptureFailure). */
  async insertCapture(capture: StoredCapture): Promise<void> {
    await this.db.transaction(async tx => {
      await this.insertCaptureRow(tx, capture);
      await tx('recovery_capture_failures')
        .where({ machine_ref: capture.machineRef })
        .where('failed_at', '<=', new Date(capture.createdAt))
        .delete();
    });
  }

  private async insertCaptureRow(
    tx: Knex,
    capture: StoredCapture,
  ): Promise<void> {
    await tx('recovery_captures').insert({
      id: capture.id,
      machine_ref: capture.machineRef,
      engine: capture.engine,
      container: capture.container,
      image_id: capture.imageId,
      size_bytes: capture.sizeBytes,
      checksum: capture.checksum,
      artifact: capture.artifact,
      runtime: JSON.stringify(capture.runtime),
      adaptations: JSON.stringify(capture.adaptations),
      duration_ms: capture.durationMs,
      paused_ms: capture.pausedMs ?? null,
      machine_state: capture.machineState
        ? JSON.stringify(capture.machineState)
        : null,
      pause_warning: capture.pauseWarning ?? null,
      restart_warning: capture.restartWarning ?? null,
      damaged_at: capture.damaged ? new Date(capture.damaged.at) : null,
      damaged_reason: capture.damaged?.reason ?? null,
      created_at: new Date(capture.createdAt),
    });
  }

  /**
   * Marks a capture damaged (its stored content no longer matches its checksums): kept, listed with
   * the mark, and never chosen for a run again (latestCaptures with `intact`). The first finding
   * stands: marked again, it keeps when and why it was first found so. False where no such capture
   * is kept (pruned meanwhile).
   */
  async markCaptureDamaged(
    captureId: string,
    damage: CaptureDamage,
  ): Promise<boolean> {
    await this.db('recovery_captures')
      .where({ id: captureId })
      .whereNull('damaged_at')
      .update({
        damaged_at: new Date(damage.at),
        damaged_reason: damage.reason,
      });
    return (
      (await this.db('recovery_captures')
        .where({ id: captureId })
        .first('id')) !== undefined
    );
  }

  /**
   * Whether the capture is still kept: pruning deletes its record before its files, so one whose
   * files vanished under a read and whose record is gone was pruned, not damaged.
   */
  async captureKept(captureId: string): Promise<boolean> {
    return (
      (await this.db('recovery_captures')
        .where({ id: captureId })
        .first('id')) !== undefined
    );
  }

  /**
   * Lifts a capture's damaged mark: verified again, it is intact (a later capture wrote anew the
   * layer it shares that had been damaged). Runs restore it again, and readiness no longer names
   * it. False where it was not marked, or is no longer kept.
   */
  async clearCaptureDamaged(captureId: string): Promise<boolean> {
    return (
      (await this.db('recovery_captures')
        .where({ id: captureId })
        .whereNotNull('damaged_at')
        .update({ damaged_at: null, damaged_reason: null })) > 0
    );
  }

  /**
   * The machine's kept captures not marked damaged (taken at or before `atOrBefore`, where given),
   * newest first in the order runs choose: what a run whose capture is found damaged verifies in
   * its place, one after another.
   */
  async intactCaptures(
    machineRef: string,
    atOrBefore?: string,
  ): Promise<StoredCapture[]> {
    const rows = await this.db('recovery_captures')
      .where({ machine_ref: machineRef })
      .whereNull('damaged_at')
      .modify(q => {
        if (atOrBefore !== undefined)
          q.where('created_at', '<=', new Date(atOrBefore));
      })
      .orderBy(NEWEST_FIRST);
    return rows.map(toCapture);
  }

  /**
   * Records `capture` as what the run's machine restores, in place of the one it was admitted
   * with (found damaged): its capture, where it was taken from and when, as admission records
   * them. The capture is locked first (PostgreSQL), as admission locks those it chooses: pruning
   * either deleted it already (false: the run takes another) or waits, then sees it in use by the
   * run and keeps it. False too where the run's machine is not there.
   */
  async restoreInstead(
    runId: string,
    machineRef: string,
    capture: StoredCapture,
  ): Promise<boolean> {
    return this.db.transaction(async tx => {
      const kept = tx('recovery_captures').where({ id: capture.id });
      const row = await (
        tx.client.dialect === 'postgresql' ? kept.forShare() : kept
      ).first('id');
      if (!row) return false;
      const updated = await tx('recovery_run_machines')
        .where({ run_id: runId, machine_ref: machineRef })
        .update({
          capture_id: capture.id,
          capture_engine: capture.engine,
          capture_container: capture.container,
          capture_created_at: new Date(capture.createdAt),
        });
      return updated > 0;
    });
  }

  /**
   * The damaged captures of each machine given (taken at or before `atOrBefore`, where given),
   * newest first: why a machine with no intact capture there cannot be restored.
   */
  async damagedCaptures(
    machineRefs: string[],
    atOrBefore?: string,
  ): Promise<Map<string, StoredCapture[]>> {
    const result = new Map<string, StoredCapture[]>();
    for (const chunk of chunks([...new Set(machineRefs)])) {
      const rows = await this.db('recovery_captures')
        .whereIn('machine_ref', chunk)
        .whereNotNull('damaged_at')
        .modify(q => {
          if (atOrBefore !== undefined)
            q.where('created_at', '<=', new Date(atOrBefore));
        })
        .orderBy(NEWEST_FIRST);
      for (const row of rows) {
        if (!result.has(row.machine_ref)) result.set(row.machine_ref, []);
        result.get(row.machine_ref)!.push(toCapture(row));
      }
    }
    return result;
  }

  /**
   * Records that a capture of the machine started at `failedAt` failed, replacing the failure
   * recorded before: readiness names the last one until a capture of the machine succeeds. A
   * failure older than the one recorded (two replicas) does not replace it.
   */
  async recordCaptureFailure(failure: CaptureFailure): Promise<void> {
    const row = {
      machine_ref: failure.machineRef,
      engine: failure.engine,
      container: failure.container,
      failed_at: new Date(failure.failedAt),
      message: failure.message,
    };
    await this.db.transaction(async tx => {
      // Not after a capture that succeeded since it started (another replica's).
      const since = await tx('recovery_captures')
        .where({ machine_ref: failure.machineRef })
        .where('created_at', '>=', row.failed_at)
        .first('id');
      if (since) return;
      await tx('recovery_capture_failures')
        .insert(row)
        .onConflict('machine_ref')
        .merge()
        .where('recovery_capture_failures.failed_at', '<=', row.failed_at);
    });
  }

  /** The failed capture recorded of each machine given (since its last capture that succeeded). */
  async captureFailures(
    machineRefs: string[],
  ): Promise<Map<string, CaptureFailure>> {
    const result = new Map<string, CaptureFailure>();
    for (const chunk of chunks([...new Set(machineRefs)])) {
      for (const r of await this.db('recovery_capture_failures').whereIn(
        'machine_ref',
        chunk,
      )) {
        result.set(r.machine_ref, {
          machineRef: r.machine_ref,
          engine: r.engine,
          container: r.container,
          failedAt: iso(r.failed_at)!,
          message: r.message,
        });
      }
    }
    return result;
  }

  /** The capture recorded under `captureId`, undefined where none is (not recorded, or pruned). */
  async getCapture(captureId: string): Promise<StoredCapture | undefined> {
    const row = await this.db('recovery_captures')
      .where({ id: captureId })
      .first();
    return row ? toCapture(row) : undefined;
  }

  /**
   * A machine's captures, newest first. With `after` (the last capture of a previous page), those
   * that follow it in that order: the next page, without reading the earlier ones again.
   */
  async listCaptures(
    machineRef: string,
    limit = 20,
    after?: Pick<StoredCapture, 'createdAt' | 'id'>,
  ): Promise<StoredCapture[]> {
    const q = this.db('recovery_captures')
      .where({ machine_ref: machineRef })
      .orderBy(NEWEST_FIRST)
      .limit(limit);
    // Keyset on NEWEST_FIRST. created_at is written from a Date (ms), so its ISO form is exact.
    if (after) q.modify(olderThan, new Date(after.createdAt), after.id);
    return (await q).map(toCapture);
  }

  /** How many captures of a machine are kept: every page of listCaptures together. */
  async countCaptures(machineRef: string): Promise<number> {
    const [{ count }] = await this.db('recovery_captures')
      .where({ machine_ref: machineRef })
      .count({ count: '*' });
    return Number(count);
  }

  /**
   * The newest capture of each machine given; with `atOrBefore` (an ISO time), its newest taken at
   * or before it; with `intact`, its newest not found damaged (what a run restores).
   */
  async latestCaptures(
    machineRefs: string[],
    atOrBefore?: string,
    { intact = false }: { intact?: boolean } = {},
  ): Promise<Map<string, StoredCapture>> {
    const result = new Map<string, StoredCapture>();
    // The readiness overview asks for every machine of the site at once.
    for (const chunk of chunks([...new Set(machineRefs)])) {
      const newest = this.db('recovery_captures')
        .select('machine_ref')
        .max({ created_at: 'created_at' })
        .whereIn('machine_ref', chunk)
        .modify(q => {
          if (atOrBefore !== undefined)
            q.where('created_at', '<=', new Date(atOrBefore));
          if (intact) q.whereNull('damaged_at');
        })
        .groupBy('machine_ref')
        .as('newest');
      const rows = await this.db('recovery_captures as c')
        .join(newest, join =>
          join
            .on('c.machine_ref', '=', 'newest.machine_ref')
            .andOn('c.created_at', '=', 'newest.created_at'),
        )
        .modify(q => {
          // One damaged of the same instant as the newest intact one is not it.
          if (intact) q.whereNull('c.damaged_at');
        })
        .select('c.*')
        .orderBy('c.id');
      // Captures of one instant all join their machine's newest time: the last set, the highest
      // id, is the one NEWEST_FIRST puts first (as listCaptures and pruneCaptures choose).
      for (const row of rows) result.set(row.machine_ref, toCapture(row));
    }
    return result;
  }

  /**
   * Keeps a machine's newest `keep` intact captures: deletes every capture older than the
   * `keep`-th newest one not marked damaged, except those an active run restores (it chose them
   * when admitted, and a capture taken meanwhile must not pull them from under it: a later capture
   * prunes them); returns what was deleted.
   */
  async pruneCaptures(
    machineRef: string,
    keep: number,
  ): Promise<StoredCapture[]> {
    return this.db.transaction(async tx => {
      // keepLast counts intact captures: a damaged one restores nothing, and counted it would push
      // out an intact one. It goes, as any other, once `keep` intact ones are newer (until then it
      // may be mended, clearCaptureDamaged, and readiness names it).
      const oldest: Pick<CaptureRow, 'id' | 'created_at'> | undefined =
        keep > 0
          ? await tx('recovery_captures')
              .where({ machine_ref: machineRef })
              .whereNull('damaged_at')
              .orderBy(NEWEST_FIRST)
              .offset(keep - 1)
              .first('id', 'created_at')
          : undefined;
      if (keep > 0 && !oldest) return [];
      // Locked first (PostgreSQL), so a run being admitted either has them already (and they are
      // in use below) or waits and chooses among those left.
      const oldQuery = tx('recovery_captures')
        .where({ machine_ref: machineRef })
        .modify(q => {
          if (oldest) olderThan(q, oldest.created_at, oldest.id);
        })
        .orderBy(NEWEST_FIRST);
      const old: CaptureRow[] = await (tx.client.dialect === 'postgresql'
        ? oldQuery.forUpdate()
        : oldQuery);
      if (old.length === 0) return [];
      const inUse: Array<{ capture_id: string }> = await tx(
        'recovery_run_machines as rm',
      )
        .join('recovery_runs as r', 'r.id', 'rm.run_id')
        .whereIn('r.status', ACTIVE_RUN_STATUSES)
        .whereIn(
          'rm.capture_id',
          old.map(r => r.id),
        )
        .distinct('rm.capture_id');
      const used = new Set(inUse.map(r => r.capture_id));
      const deleted = old.filter(r => !used.has(r.id));
      if (deleted.length > 0) {
        await tx('recovery_captures')
          .whereIn(
            'id',
            deleted.map(r => r.id),
          )
          .delete();
      }
      return deleted.map(toCapture);
    });
  }

  /**
   * The machines given, each with its oldest kept intact capture's time (how far back a recovery
   * point can go: a damaged one restores nothing), none where never captured: why those with none
   * at or before a point refuse a run.
   */
  async oldestCaptures(
    machineRefs: string[],
  ): Promise<Array<{ machineRef: string; oldestCaptureAt?: string }>> {
    const oldest = new Map<string, string>();
    for (const chunk of chunks(machineRefs)) {
      const rows: Array<{ machine_ref: string; oldest: unknown }> =
        await this.db('recovery_captures')
          .whereIn('machine_ref', chunk)
          .whereNull('damaged_at')
          .groupBy('machine_ref')
          .select('machine_ref')
          .min({ oldest: 'created_at' });
      for (const row of rows) oldest.set(row.machine_ref, iso(row.oldest)!);
    }
    return machineRefs.map(machineRef => ({
      machineRef,
      oldestCaptureAt: oldest.get(machineRef),
    }));
  }

  /**
   * Of each machine given (by the engine and container the catalog names for it), the intact
   * captures of that same container on that engine kept under other machine refs: a machine renamed
   * in the catalog leaves its captures under the ref it had. Each other ref with how many it keeps
   * and its newest, newest first; a machine with none is left out. Never restored under the new
   * name: only named, for people to decide.
   */
  async capturesKeptElsewhere(
    machines: Array<{ machineRef: string; engine: string; container: string }>,
  ): Promise<Map<string, CapturesKeptElsewhere[]>> {
    const result = new Map<string, CapturesKeptElsewhere[]>();
    const byLocator = new Map<string, string[]>();
    for (const m of machines) {
      const key = `${m.engine}\u0000${m.container}`;
      byLocator.set(key, [...(byLocator.get(key) ?? []), m.machineRef]);
    }
    for (const chunk of chunks(machines)) {
      const rows: Array<{
        machine_ref: string;
        engine: string;
        container: string;
        newest: unknown;
        count: unknown;
      }> = await this.db('recovery_captures')
        .whereNull('damaged_at')
        .where(q => {
          for (const { engine, container } of chunk)
            q.orWhere(w => w.where({ engine, container }));
        })
        .groupBy('machine_ref', 'engine', 'container')
        .select('machine_ref', 'engine', 'container')
        .max({ newest: 'created_at' })
        .count({ count: '*' });
      for (const row of rows) {
        const key = `${row.engine}\u0000${row.container}`;
        for (const machineRef of byLocator.get(key) ?? []) {
          if (row.machine_ref === machineRef) continue;
          result.set(machineRef, [
            ...(result.get(machineRef) ?? []),
            {
              machineRef: row.machine_ref,
              engine: row.engine,
              container: row.container,
              captures: Number(row.count),
              newestCaptureAt: iso(row.newest)!,
            },
          ]);
        }
      }
    }
    for (const kept of result.values())
      kept.sort(
        (a, b) =>
          b.newestCaptureAt.localeCompare(a.newestCaptureAt) ||
          a.machineRef.localeCompare(b.machineRef),
      );
    return result;
  }
}

/** Captures of a machine's container kept under another machine ref (CaptureStore.capturesKeptElsewhere). */
export interface CapturesKeptElsewhere {
  /** The machine ref they are kept under. */
  machineRef: string;
  engine: string;
  container: string;
  /** How many intact captures it keeps. */
  captures: number;
  newestCaptureAt: string;
}
