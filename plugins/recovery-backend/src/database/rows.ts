import type {
  BootPlan,
  CapturedMachineState,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { Knex } from 'knex';
import { ACTIVE_RUN_STATUSES } from '../run/runState';
import type { StoredCapture } from './CaptureStore';

// How the stores read the recovery tables' rows back, and page through them.

// Databases disagree on what a timestamp reads back as (Date, epoch number, string).
export const iso = (value: unknown): string | undefined =>
  value === null || value === undefined
    ? undefined
    : new Date(value as string | number | Date).toISOString();

export const json = <T>(value: unknown): T | undefined =>
  value === null || value === undefined ? undefined : JSON.parse(String(value));

/**
 * Finished runs. Said as "not active" rather than `status in (finished ones)`: given an IN on
 * the status index, SQLite walks it and sorts every finished run (plan and all) for the newest.
 */
export function finished(q: Knex.QueryBuilder, table: string): void {
  q.whereNotIn(`${table}.status`, ACTIVE_RUN_STATUSES);
}

/** The largest page of runs lastFinishedRun reads at once (pages grow from the one asked for). */
export const MAX_RUNS_PAGE = 500;

/** Newest first; the id breaks ties between rows written in the same instant. */
export const NEWEST_FIRST = [
  { column: 'created_at', order: 'desc' as const },
  { column: 'id', order: 'desc' as const },
];

/** The runs after (`at`, `id`) in NEWEST_FIRST order: the keyset of the page that follows it. */
export function olderThan(q: Knex.QueryBuilder, at: unknown, id: string): void {
  q.where(w =>
    w
      .where('created_at', '<', at as Date)
      .orWhere(tie =>
        tie.where('created_at', '=', at as Date).where('id', '<', id),
      ),
  );
}

/** Lists of ids or refs in pieces a statement's parameters hold on SQLite and PostgreSQL alike. */
export function chunks<T>(items: T[], size = MAX_RUNS_PAGE): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) =>
    items.slice(i * size, (i + 1) * size),
  );
}

/** A row of recovery_captures as it reads back. */
export interface CaptureRow {
  id: string;
  machine_ref: string;
  engine: string;
  container: string;
  image_id: string;
  /** A bigint: PostgreSQL reads it back as a string. */
  size_bytes: number | string;
  checksum: string;
  artifact: string;
  /** JSON: MachineRuntime. */
  runtime: string;
  /** JSON: the adaptations made. */
  adaptations: string;
  duration_ms: number;
  paused_ms: number | null;
  /** JSON: CapturedMachineState. */
  machine_state: string | null;
  pause_warning: string | null;
  restart_warning?: string | null;
  /** Timestamps: a Date, epoch milliseconds or a string, by database (see iso). */
  damaged_at: unknown;
  damaged_reason: string | null;
  created_at: unknown;
}

export function toCapture(row: CaptureRow): StoredCapture {
  return {
    id: row.id,
    machineRef: row.machine_ref,
    engine: row.engine,
    container: row.container,
    imageId: row.image_id,
    sizeBytes: Number(row.size_bytes),
    checksum: row.checksum,
    artifact: row.artifact,
    runtime: JSON.parse(row.runtime),
    adaptations: JSON.parse(row.adaptations),
    durationMs: Number(row.duration_ms),
    ...(row.paused_ms !== null &&
      row.paused_ms !== undefined && { pausedMs: Number(row.paused_ms) }),
    ...(row.machine_state !== null &&
      row.machine_state !== undefined && {
        machineState: json<CapturedMachineState>(row.machine_state)!,
      }),
    ...(row.pause_warning !== null &&
      row.pause_warning !== undefined && { pauseWarning: row.pause_warning }),
    ...(row.restart_warning !== null &&
      row.restart_warning !== undefined && {
        restartWarning: row.restart_warning,
      }),
    ...(row.damaged_at !== null &&
      row.damaged_at !== undefined && {
        damaged: { at: iso(row.damaged_at)!, reason: row.damaged_reason ?? '' },
      }),
    createdAt: iso(row.created_at)!,
  };
}

/** Runs as read from their rows, with their machines and steps. */
export async function runsWithDetails(
  db: Knex,
  rows: any[],
): Promise<RecoveryRun[]> {
  if (rows.length === 0) return [];
  const ids = rows.map(r => r.id);
  const [machineRows, stepRows] = await Promise.all([
    db('recovery_run_machines')
      .whereIn('run_id', ids)
      .orderBy([{ column: 'wave' }, { column: 'machine_ref' }]),
    db('recovery_run_steps').whereIn('run_id', ids).orderBy('id'),
  ]);
  return rows.map(row => ({
    id: row.id,
    entityRef: row.entity_ref,
    mode: row.mode,
    status: row.status,
    trigger: row.trigger,
    createdBy: row.created_by ?? undefined,
    hypervisorHost: row.hypervisor_host,
    createdAt: iso(row.created_at)!,
    recoveryPoint: iso(row.recovery_point),
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    rtoSeconds:
      row.rto_seconds === null || row.rto_seconds === undefined
        ? undefined
        : Number(row.rto_seconds),
    error: json(row.error),
    plan: json<BootPlan>(row.plan)!,
    ...(row.supervision ? { supervision: json(row.supervision) } : {}),
    machines: machineRows
      .filter(m => m.run_id === row.id)
      .map(m => ({
        machineRef: m.machine_ref,
        wave: m.wave,
        phase: m.phase,
        captureId: m.capture_id ?? undefined,
        // Both or neither: null on runs recorded before they were kept.
        ...(typeof m.capture_engine === 'string' &&
          typeof m.capture_container === 'string' && {
            capturedFrom: {
              engine: m.capture_engine,
              container: m.capture_container,
            },
          }),
        capturedAt: iso(m.capture_created_at),
        restoreStartedAt: iso(m.restore_started_at),
        restoredAt: iso(m.restored_at),
        startedAt: iso(m.started_at),
        readyAt: iso(m.ready_at),
        finishedAt: iso(m.finished_at),
        message: m.message ?? undefined,
        probe: m.probe ?? undefined,
        logTail: m.log_tail ?? undefined,
      })),
    steps: stepRows
      .filter(s => s.run_id === row.id)
      .map(s => ({
        at: iso(s.at)!,
        machineRef: s.machine_ref ?? undefined,
        level: s.level,
        message: s.message,
      })),
  }));
}

/*
 * Heartbeats (runs', capture requests') are written and judged by the database's clock alone:
 * replicas' clocks may disagree, and one whose clock ran ahead would take a live run or request
 * for orphaned. SQLite stores a timestamp as epoch milliseconds (as knex writes a Date there),
 * PostgreSQL as timestamptz.
 */
export const SQLITE_NOW_MS =
  "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";

/** The database's time now, to write into a heartbeat column. */
export function dbNow(db: Knex): Knex.Raw {
  return db.client.dialect === 'postgresql'
    ? db.raw('clock_timestamp()')
    : db.raw(SQLITE_NOW_MS);
}

/** Keeps the rows whose `column` (a heartbeat) is older than `ms` by the database's clock. */
export function heardBefore(
  q: Knex.QueryBuilder,
  column: string,
  ms: number,
): void {
  q.whereRaw(heardBeforeSql(q.client.dialect), [column, ms]);
}

/**
 * Whether `column` (a heartbeat) is older than `ms` by the database's clock, selected as `as`
 * (truthy where so: 1 on SQLite, true on PostgreSQL): heardBefore as a column, where the row is
 * read whether stale or not.
 */
export function heardBeforeColumn(
  db: Knex,
  column: string,
  ms: number,
  as: string,
): Knex.Raw {
  return db.raw(`(${heardBeforeSql(db.client.dialect)}) as ??`, [
    column,
    ms,
    as,
  ]);
}

function heardBeforeSql(dialect: string): string {
  return dialect === 'postgresql'
    ? `?? < clock_timestamp() - ?::float8 * interval '1 millisecond'`
    : `?? < ${SQLITE_NOW_MS} - ?`;
}
