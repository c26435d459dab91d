import { resolvePackagePath } from '@backstage/backend-plugin-api';
import type {
  BootPlan,
  Capture,
  CaptureDamage,
  CapturedMachineState,
  RecoveryRun,
  RunMachine,
  RunStatus,
  RunStep,
} from '@backstage-recovery/plugin-recovery-common';
import { ConflictError } from '@backstage/errors';
import { INTERRUPTED_PREFIX } from '@backstage-recovery/plugin-recovery-common';
import { groupBy } from '../lib/groupBy';
import {
  CapturesDamagedError,
  MachinesNotCapturedError,
  RecoveryPointTooEarlyError,
} from '../run/errors';
import {
  ACTIVE_RUN_STATUSES,
  FINAL_MACHINE_PHASES,
  waitsFor,
} from '../run/runState';
import type {
  CapturedNetwork,
  MachineRuntime,
} from '@backstage-recovery/plugin-recovery-node';
import { Knex } from 'knex';
import { createHash } from 'node:crypto';

const migrationsDir = resolvePackagePath(
  '@backstage-recovery/plugin-recovery-backend',
  'migrations',
);

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

export interface RunOptions {
  /** Test-only hook: boot the waves in reverse, to prove verification is real. */
  reverseBootOrder?: boolean;
}

/**
 * The result a run reached before its teardown (setRunOutcome): what a backend that claims the run
 * mid-teardown finishes it with. `unfinishedReason`: why a machine still in progress stopped.
 */
export interface RunOutcome {
  status: 'succeeded' | 'failed';
  rtoSeconds?: number;
  error?: RecoveryRun['error'];
  unfinishedReason?: string;
}

/** What a run's row says without its machines and steps. */
export type RunHead = Pick<
  RecoveryRun,
  'id' | 'entityRef' | 'status' | 'plan' | 'error'
>;

export interface NewRun {
  id: string;
  entityRef: string;
  mode: RecoveryRun['mode'];
  trigger: RecoveryRun['trigger'];
  createdBy?: string;
  hypervisorHost: string;
  plan: BootPlan;
  options: RunOptions;
  /** The time it recovers to: each machine restores its newest capture taken at or before it (admitRun). */
  recoveryPoint?: string;
  machines: Array<
    Pick<
      RunMachine,
      'machineRef' | 'wave' | 'captureId' | 'capturedFrom' | 'capturedAt'
    >
  >;
}

// Databases disagree on what a timestamp reads back as (Date, epoch number, string).
const iso = (value: unknown): string | undefined =>
  value === null || value === undefined
    ? undefined
    : new Date(value as string | number | Date).toISOString();

const date = (value: string | undefined) =>
  value === undefined ? undefined : new Date(value);

const json = <T>(value: unknown): T | undefined =>
  value === null || value === undefined ? undefined : JSON.parse(String(value));

// Runs that say nothing about recoverability: interrupted ones, test-hook runs that boot in
// reverse precisely to fail (matched in the stored JSON, which only this store writes), and runs to
// a recovery point, which prove that point boots, not the latest captures.
function countsForReadiness(q: Knex.QueryBuilder, table: string): void {
  q.whereNull(`${table}.recovery_point`)
    .where(w =>
      w
        .whereNull(`${table}.options`)
        .orWhere(`${table}.options`, 'not like', '%"reverseBootOrder":true%'),
    )
    .where(w =>
      w
        .whereNull(`${table}.error`)
        .orWhere(
          `${table}.error`,
          'not like',
          `%"message":"${INTERRUPTED_PREFIX}%`,
        ),
    );
}

/**
 * Finished runs. Said as "not active" rather than `status in (finished ones)`: given an IN on
 * the status index, SQLite walks it and sorts every finished run (plan and all) for the newest.
 */
function finished(q: Knex.QueryBuilder, table: string): void {
  q.whereNotIn(`${table}.status`, ACTIVE_RUN_STATUSES);
}

/** The largest page of runs lastFinishedRun reads at once (pages grow from the one asked for). */
const MAX_RUNS_PAGE = 500;

/**
 * How many times admission chooses a machine's newest capture again when pruning deleted the one
 * it chose: each time a capture was taken meanwhile, so more in a row means captures keep coming.
 */
const ADMISSION_CHOICES = 3;

/** Newest first; the id breaks ties between rows written in the same instant. */
export const NEWEST_FIRST = [
  { column: 'created_at', order: 'desc' as const },
  { column: 'id', order: 'desc' as const },
];

/** Oldest first; the id breaks ties, so runs of one instant come in the same order every time. */
const OLDEST_FIRST = [
  { column: 'created_at', order: 'asc' as const },
  { column: 'id', order: 'asc' as const },
];

/** The runs after (`at`, `id`) in NEWEST_FIRST order: the keyset of the page that follows it. */
function olderThan(q: Knex.QueryBuilder, at: unknown, id: string): void {
  q.where(w =>
    w
      .where('created_at', '<', at as Date)
      .orWhere(tie =>
        tie.where('created_at', '=', at as Date).where('id', '<', id),
      ),
  );
}

/** A failover that finished on a hypervisor host, with what it restored there. */
export interface FinishedFailover {
  id: string;
  entityRef: string;
  status: RunStatus;
  finishedAt?: string;
  /** Its machines, each with the production networks it was captured on. */
  machines: Array<{ machineRef: string; networks: CapturedNetwork[] }>;
}

/** Persistence of captures and runs, through knex (SQLite or PostgreSQL). */
export class RecoveryStore {
  /** Where the knex migrations of every recovery table ship, in this package. */
  static readonly migrationsDirectory = migrationsDir;

  /** Brings the schema of every recovery table up to date (captures, runs, events, analyses). */
  static async migrate(client: Knex): Promise<void> {
    await client.migrate.latest({ directory: migrationsDir });
  }

  constructor(private readonly db: Knex) {}

  // Captures

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

  async listCaptures(machineRef: string, limit = 20): Promise<StoredCapture[]> {
    const rows = await this.db('recovery_captures')
      .where({ machine_ref: machineRef })
      .orderBy(NEWEST_FIRST)
      .limit(limit);
    return rows.map(toCapture);
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
   * Deletes all but the newest `keep` captures of a machine, except those an active run restores
   * (it chose them when admitted, and a capture taken meanwhile must not pull them from under it:
   * a later capture prunes them); returns what was deleted.
   */
  async pruneCaptures(
    machineRef: string,
    keep: number,
  ): Promise<StoredCapture[]> {
    return this.db.transaction(async tx => {
      // Locked first (PostgreSQL), so a run being admitted either has them already (and they are
      // in use below) or waits and chooses among those left.
      const oldQuery = tx('recovery_captures')
        .where({ machine_ref: machineRef })
        .orderBy(NEWEST_FIRST)
        .offset(keep)
        .limit(1_000_000);
      const old = await (tx.client.dialect === 'postgresql'
        ? oldQuery.forUpdate()
        : oldQuery);
      if (old.length === 0) return [];
      const inUse = await tx('recovery_run_machines as rm')
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

  // Runs

  /**
   * Inserts the run unless its hypervisor host already has an active run (one lab per host):
   * the check and the insert commit in one transaction that holds a per-host lock, so two
   * requests, or two replicas, cannot both see the host free. Each machine restores its newest
   * capture, chosen in the same transaction: one chosen before it could be pruned by a capture
   * taken meanwhile. Returns the run holding the host when refused, else the captures chosen; a
   * machine without a capture, or whose chosen capture keeps being pruned, is a ConflictError.
   *
   * A failover does not wait for a test recovery (production is gone; the test can run again): it
   * preempts the test run holding the host, failed as interrupted in the same transaction with its
   * lab recorded as left, so that the failover's driver removes it before building its own; the
   * test run's driver learns at its next heartbeat that it lost the run. `preempted` names it. A
   * test run preempted in its teardown, its result already kept (setRunOutcome), keeps that result.
   */
  async admitRun(
    run: NewRun,
    at: Date,
  ): Promise<
    | { busyWith: RecoveryRun }
    | { captures: Map<string, StoredCapture>; preempted: RecoveryRun[] }
  > {
    return this.db.transaction(async tx => {
      await lockHost(tx, run.hypervisorHost);
      const inTx = new RecoveryStore(tx); // insertRun nests as a savepoint
      const active = await inTx.activeRuns({
        hypervisorHost: run.hypervisorHost,
      });
      const holder = active.find(a => waitsFor(run.mode, a.mode));
      if (holder) return { busyWith: holder };
      const captures = await inTx.latestCapturesKept(
        run.machines.map(m => m.machineRef),
        run.recoveryPoint,
      );
      const uncaptured = run.machines
        .filter(m => !captures.has(m.machineRef))
        .map(m => m.machineRef);
      // Captures found damaged are passed over: a machine with none intact left, only damaged ones,
      // is refused naming them, not taken for one never captured (nor any recovery point offered).
      const oldest =
        uncaptured.length > 0 ? await inTx.oldestCaptures(uncaptured) : [];
      const noneIntact = oldest
        .filter(m => !m.oldestCaptureAt)
        .map(m => m.machineRef);
      const damaged =
        noneIntact.length > 0
          ? await inTx.damagedCaptures(noneIntact)
          : new Map<string, StoredCapture[]>();
      if (damaged.size > 0) {
        throw new CapturesDamagedError(
          noneIntact.flatMap(m =>
            (damaged.get(m) ?? []).map(c => ({
              machineRef: m,
              captureId: c.id,
              createdAt: c.createdAt,
              reason: c.damaged!.reason,
            })),
          ),
          noneIntact.filter(m => !damaged.has(m)),
        );
      }
      if (uncaptured.length > 0 && run.recoveryPoint !== undefined) {
        throw new RecoveryPointTooEarlyError(run.recoveryPoint, oldest);
      }
      if (uncaptured.length > 0) {
        throw new MachinesNotCapturedError(uncaptured);
      }
      const preempted: RecoveryRun[] = [];
      for (const test of active) {
        // Not naming its entity: the test run's readers may be shown none the catalog hides.
        const message = `${INTERRUPTED_PREFIX}preempted by failover ${run.id}`;
        const stillActive = () =>
          tx('recovery_runs')
            .where({ id: test.id })
            .whereIn('status', ACTIVE_RUN_STATUSES);
        // Unless its driver finished it meanwhile (its lab then already torn down). Locked until the
        // admission commits: a result its driver keeps after this read would be lost (setRunOutcome
        // then finds the run finished).
        const row = await stillActive().forUpdate().first('outcome');
        if (!row) continue;
        // Preempted in its teardown, its result already kept: finished with it, as a claim would
        // (claimStaleRun). The failover only takes over removing its lab.
        const outcome = json<RunOutcome>(row.outcome);
        const ended = endedWith(outcome, message);
        await stillActive().update({
          finished_at: at,
          ...ended.columns,
          lab_left: true,
        });
        await inTx.settleUnfinishedMachines(test.id, ended.unfinished, at);
        await inTx.appendStep(
          test.id,
          outcome
            ? {
                at: at.toISOString(),
                level: 'warning',
                message: `Failover ${run.id} preempted this run during its teardown, after the run had ${outcome.status}: that result stands; its lab is removed before the failover's is built`,
              }
            : { at: at.toISOString(), level: 'error', message },
        );
        preempted.push(test);
      }
      // What each machine restores, kept with the run: retention may prune the capture later, and
      // readiness must still tell which container the run vouches for.
      const machines = run.machines.map(m => {
        const { id, engine, container, createdAt } = captures.get(
          m.machineRef,
        )!;
        return {
          ...m,
          captureId: id,
          capturedFrom: { engine, container },
          capturedAt: createdAt,
        };
      });
      await inTx.insertRun({ ...run, machines }, at);
      return { captures, preempted };
    });
  }

  /**
   * The newest capture of each machine, locked until the transaction ends (PostgreSQL: pruning
   * locks the captures it deletes first, so it waits, then sees them in use). A capture deleted
   * meanwhile (pruning locked it first) is chosen again among those left, up to
   * ADMISSION_CHOICES times; captures pruned under every choice are a conflict: a run admitted
   * with one would restore a capture that is gone.
   */
  private async latestCapturesKept(
    machineRefs: string[],
    atOrBefore?: string,
  ): Promise<Map<string, StoredCapture>> {
    let pruned: string[] = [];
    for (let attempt = 1; attempt <= ADMISSION_CHOICES; attempt++) {
      const captures = await this.latestCaptures(machineRefs, atOrBefore, {
        intact: true,
      });
      if (this.db.client.dialect !== 'postgresql' || captures.size === 0)
        return captures;
      const ids = [...captures.values()].map(c => c.id);
      const locked = new Set(
        (
          await this.db('recovery_captures')
            .whereIn('id', ids)
            .forShare()
            .select('id')
        ).map(r => r.id),
      );
      pruned = [...captures.values()]
        .filter(c => !locked.has(c.id))
        .map(c => c.machineRef)
        .sort();
      if (pruned.length === 0) return captures;
    }
    throw new ConflictError(
      `The capture chosen for ${pruned.join(', ')} was pruned while the run was admitted, ${ADMISSION_CHOICES} times in a row (captures taken meanwhile): try again`,
    );
  }

  /**
   * The machines given, each with its oldest kept intact capture's time (how far back a recovery
   * point can go: a damaged one restores nothing), none where never captured: why those with none
   * at or before a point refuse a run.
   */
  private async oldestCaptures(
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

  async insertRun(run: NewRun, at: Date): Promise<void> {
    await this.db.transaction(async tx => {
      await tx('recovery_runs').insert({
        id: run.id,
        entity_ref: run.entityRef,
        mode: run.mode,
        status: 'pending',
        trigger: run.trigger,
        created_by: run.createdBy ?? null,
        hypervisor_host: run.hypervisorHost,
        plan: JSON.stringify(run.plan),
        options: JSON.stringify(run.options),
        recovery_point:
          run.recoveryPoint === undefined ? null : new Date(run.recoveryPoint),
        created_at: at,
        heartbeat_at: dbNow(tx),
      });
      if (run.machines.length > 0) {
        await tx('recovery_run_machines').insert(
          run.machines.map(m => ({
            run_id: run.id,
            machine_ref: m.machineRef,
            wave: m.wave,
            phase: 'waiting',
            capture_id: m.captureId ?? null,
            capture_engine: m.capturedFrom?.engine ?? null,
            capture_container: m.capturedFrom?.container ?? null,
            capture_created_at:
              m.capturedAt === undefined ? null : new Date(m.capturedAt),
          })),
        );
      }
    });
  }

  /**
   * Updates a run that is still pending or running; returns false, changing nothing, when it
   * has already finished: a terminal status is final, so a driver that lost its run to another
   * replica's clean-up cannot overwrite the failure with its own outcome.
   */
  async updateRun(
    runId: string,
    patch: Partial<
      Pick<
        RecoveryRun,
        'status' | 'startedAt' | 'finishedAt' | 'rtoSeconds' | 'error'
      >
    >,
  ): Promise<boolean> {
    const row: Record<string, unknown> = { heartbeat_at: dbNow(this.db) };
    if (patch.status) row.status = patch.status;
    if (patch.startedAt) row.started_at = date(patch.startedAt);
    if (patch.finishedAt) row.finished_at = date(patch.finishedAt);
    if (patch.rtoSeconds !== undefined) row.rto_seconds = patch.rtoSeconds;
    if (patch.error) row.error = JSON.stringify(patch.error);
    const updated = await this.db('recovery_runs')
      .where({ id: runId })
      .whereIn('status', ACTIVE_RUN_STATUSES)
      .update(row);
    return updated > 0;
  }

  /** Returns false when the run is no longer active: its driver should stop. */
  async heartbeat(runId: string): Promise<boolean> {
    const updated = await this.db('recovery_runs')
      .where({ id: runId })
      .whereIn('status', ACTIVE_RUN_STATUSES)
      .update({ heartbeat_at: dbNow(this.db) });
    return updated > 0;
  }

  /**
   * Keeps with an active run the result it reached, before its teardown (see RunOutcome); refreshes
   * its heartbeat too, so that no claim applies an older one. False when the run is no longer active.
   */
  async setRunOutcome(runId: string, outcome: RunOutcome): Promise<boolean> {
    const updated = await this.db('recovery_runs')
      .where({ id: runId })
      .whereIn('status', ACTIVE_RUN_STATUSES)
      .update({
        outcome: JSON.stringify(outcome),
        heartbeat_at: dbNow(this.db),
      });
    return updated > 0;
  }

  /**
   * Fails an active run whose heartbeat is older than `staleForMs`, by the database's clock, and
   * settles its unfinished machines with `message`; returns the claim where this call made it
   * (undefined where it did not). One statement
   * checks and fails it, so of the replicas that find it orphaned only one claims it, none claims
   * a run whose driver beat meanwhile, and a driver that was alive after all sees it lost the run
   * (its heartbeat and updates change nothing) before anything of the run is torn down.
   * `labLeft`: its lab is recorded as left on the host in the same statement, so that no run
   * admitted once the failure frees the host can miss it (see runsWithLabLeft).
   * A run whose driver stopped during its teardown, after it reached its result (setRunOutcome),
   * is finished with that result instead: succeeded with its RTO, or failed with its own error;
   * the claim gives it as `outcome`, so the claimant knows it has only a teardown to finish.
   */
  async claimStaleRun(
    runId: string,
    staleForMs: number,
    message: string,
    at: Date,
    { labLeft }: { labLeft: boolean },
  ): Promise<{ outcome?: RunOutcome } | undefined> {
    return this.db.transaction(async tx => {
      const stale = () =>
        tx('recovery_runs')
          .where({ id: runId })
          .whereIn('status', ACTIVE_RUN_STATUSES)
          .modify(heartbeatStaleFor, staleForMs);
      const row = await stale().first('outcome');
      if (!row) return undefined;
      // Written with a heartbeat: one written after this read leaves the run fresh, and unclaimed below.
      const outcome = json<RunOutcome>(row.outcome);
      const ended = endedWith(outcome, message);
      const updated = await stale().update({
        finished_at: at,
        ...ended.columns,
        ...(labLeft ? { lab_left: true } : {}),
      });
      if (updated === 0) return undefined;
      await new RecoveryStore(tx).settleUnfinishedMachines(
        runId,
        ended.unfinished,
        at,
      );
      return { outcome };
    });
  }

  /** Rewrites the error of a failed run: only for whoever failed it, to add what it found after. */
  async setFailedRunError(
    runId: string,
    error: NonNullable<RecoveryRun['error']>,
  ): Promise<void> {
    await this.db('recovery_runs')
      .where({ id: runId, status: 'failed' })
      .update({ error: JSON.stringify(error) });
  }

  /**
   * Ends the machines of a run failed from outside its driver, as the driver would: one never
   * started is skipped, one in progress failed with `message`.
   */
  async settleUnfinishedMachines(
    runId: string,
    message: string,
    at: Date,
  ): Promise<void> {
    await this.db.transaction(async tx => {
      await tx('recovery_run_machines')
        .where({ run_id: runId, phase: 'waiting' })
        .update({ phase: 'skipped' });
      await tx('recovery_run_machines')
        .where({ run_id: runId })
        .whereNotIn('phase', FINAL_MACHINE_PHASES)
        .update({ phase: 'failed', message, finished_at: at });
    });
  }

  async updateRunMachine(
    runId: string,
    machineRef: string,
    patch: Partial<Omit<RunMachine, 'machineRef' | 'wave'>>,
  ): Promise<void> {
    const row: Record<string, unknown> = {};
    if (patch.phase) row.phase = patch.phase;
    if (patch.captureId) row.capture_id = patch.captureId;
    for (const [field, column] of [
      ['restoreStartedAt', 'restore_started_at'],
      ['restoredAt', 'restored_at'],
      ['startedAt', 'started_at'],
      ['readyAt', 'ready_at'],
      ['finishedAt', 'finished_at'],
    ] as const) {
      if (patch[field]) row[column] = date(patch[field]);
    }
    if (patch.message !== undefined) row.message = patch.message;
    if (patch.probe !== undefined) row.probe = patch.probe;
    if (patch.logTail !== undefined) row.log_tail = patch.logTail;
    // Like the run's status, a finished run's machines are final (see updateRun).
    await this.db('recovery_run_machines')
      .where({ run_id: runId, machine_ref: machineRef })
      .whereIn(
        'run_id',
        this.db('recovery_runs')
          .select('id')
          .where({ id: runId })
          .whereIn('status', ACTIVE_RUN_STATUSES),
      )
      .update(row);
  }

  /**
   * Records whether a run's lab is still on its host: its teardown failed, or a later one removed
   * it. True if this changed it: of two removals at once (the cleanup task and a run admitted on
   * the host), one says so.
   */
  async setLabLeft(runId: string, left: boolean): Promise<boolean> {
    const changed = await this.db('recovery_runs')
      .where({ id: runId })
      .whereNot({ lab_left: left })
      .update({ lab_left: left });
    return changed > 0;
  }

  /**
   * The failovers that finished on `hypervisorHost`, newest first: each keeps what it booted there,
   * serving production, until an engineer removes it (only the host says whether it still does).
   * Each machine's networks are those of the capture it restored, or of its newest capture where
   * retention pruned that one.
   */
  async finishedFailovers(hypervisorHost: string): Promise<FinishedFailover[]> {
    const runs: Array<{
      id: string;
      entity_ref: string;
      status: RunStatus;
      finished_at: unknown;
    }> = await this.db('recovery_runs')
      .where({ hypervisor_host: hypervisorHost, mode: 'failover' })
      .modify(finished, 'recovery_runs')
      .orderBy(NEWEST_FIRST)
      .select('id', 'entity_ref', 'status', 'finished_at');
    if (runs.length === 0) return [];
    const machines: Array<{
      run_id: string;
      machine_ref: string;
      capture_id: string | null;
    }> = [];
    for (const chunk of chunks(runs.map(r => r.id))) {
      machines.push(
        ...(await this.db('recovery_run_machines')
          .whereIn('run_id', chunk)
          .select('run_id', 'machine_ref', 'capture_id')),
      );
    }
    const restored = new Map<string, StoredCapture>();
    for (const chunk of chunks([
      ...new Set(machines.flatMap(m => (m.capture_id ? [m.capture_id] : []))),
    ])) {
      for (const row of await this.db('recovery_captures').whereIn('id', chunk))
        restored.set(row.id, toCapture(row));
    }
    const pruned = machines
      .filter(m => !m.capture_id || !restored.has(m.capture_id))
      .map(m => m.machine_ref);
    const newest =
      pruned.length > 0
        ? await this.latestCaptures(pruned)
        : new Map<string, StoredCapture>();
    return runs.map(r => ({
      id: r.id,
      entityRef: r.entity_ref,
      status: r.status,
      finishedAt: iso(r.finished_at),
      machines: machines
        .filter(m => m.run_id === r.id)
        .map(m => ({
          machineRef: m.machine_ref,
          networks:
            (
              (m.capture_id && restored.get(m.capture_id)) ||
              newest.get(m.machine_ref)
            )?.runtime.networks ?? [],
        })),
    }));
  }

  /** Runs whose lab is still on their host (on `hypervisorHost`, or on any), oldest first. */
  async runsWithLabLeft(
    hypervisorHost?: string,
  ): Promise<Array<{ id: string; hypervisorHost: string }>> {
    const query = this.db('recovery_runs').where({ lab_left: true });
    if (hypervisorHost) query.where({ hypervisor_host: hypervisorHost });
    const rows = await query
      .select('id', 'hypervisor_host')
      .orderBy(OLDEST_FIRST);
    return rows.map(r => ({ id: r.id, hypervisorHost: r.hypervisor_host }));
  }

  async appendStep(runId: string, step: RunStep): Promise<void> {
    await this.db('recovery_run_steps').insert({
      run_id: runId,
      at: date(step.at),
      machine_ref: step.machineRef ?? null,
      level: step.level,
      message: step.message,
    });
  }

  async getRun(runId: string): Promise<RecoveryRun | undefined> {
    // No run has one (ids are UUIDs), and PostgreSQL refuses to compare text that holds a NUL: an
    // id from a request (`/runs/%00`) is no run, not a database error.
    if (runId.includes('\0')) return undefined;
    const row = await this.db('recovery_runs').where({ id: runId }).first();
    if (!row) return undefined;
    const [run] = await this.withDetails([row]);
    return run;
  }

  /**
   * Runs, newest first. With `after` (the last run of a previous page), the runs that follow it
   * in that order: a next page without reading the earlier ones again.
   */
  async listRuns(query: {
    entityRef?: string;
    status?: RunStatus[];
    limit?: number;
    after?: Pick<RecoveryRun, 'createdAt' | 'id'>;
  }): Promise<RecoveryRun[]> {
    const q = this.db('recovery_runs')
      .orderBy(NEWEST_FIRST)
      .limit(query.limit ?? 20);
    if (query.entityRef) q.where({ entity_ref: query.entityRef });
    if (query.status) q.whereIn('status', query.status);
    if (query.after) {
      // Keyset on NEWEST_FIRST. created_at is written from a Date (ms), so its ISO form is exact.
      const { id } = query.after;
      const at = new Date(query.after.createdAt);
      q.modify(olderThan, at, id);
    }
    return this.withDetails(await q);
  }

  /**
   * listRuns without the runs' details: ids, times and entities, read along
   * recovery_runs_created_idx, so that GET /runs can walk past many runs the caller may not see
   * without reading their plans and timelines (see listVisibleRuns).
   */
  async listRunKeys(query: {
    entityRef?: string;
    status?: RunStatus[];
    limit: number;
    after?: Pick<RecoveryRun, 'createdAt' | 'id'>;
  }): Promise<Array<Pick<RecoveryRun, 'id' | 'createdAt' | 'entityRef'>>> {
    const q = this.db('recovery_runs')
      .orderBy(NEWEST_FIRST)
      .limit(query.limit)
      .select('id', 'created_at', 'entity_ref');
    if (query.entityRef) q.where({ entity_ref: query.entityRef });
    if (query.status) q.whereIn('status', query.status);
    if (query.after)
      q.modify(olderThan, new Date(query.after.createdAt), query.after.id);
    return (await q).map((r: any) => ({
      id: r.id,
      createdAt: iso(r.created_at)!,
      entityRef: r.entity_ref,
    }));
  }

  /** The runs of these ids, with their details, in the order given; those that do not exist left out. */
  async getRuns(ids: string[]): Promise<RecoveryRun[]> {
    const byId = new Map<string, RecoveryRun>();
    for (const chunk of chunks(ids)) {
      for (const run of await this.withDetails(
        await this.db('recovery_runs').whereIn('id', chunk),
      ))
        byId.set(run.id, run);
    }
    return ids.flatMap(id => byId.get(id) ?? []);
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
        if (row) return (await this.withDetails([row]))[0];
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
        if (row) return (await this.withDetails([row]))[0];
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
          const id = ids.find(id => {
            const counted = rows.get(id);
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
      for (const run of await this.withDetails(
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
            id => heads.has(id) && p.accept(heads.get(id)!.head),
          );
          if (id !== undefined) found[p.index] = heads.get(id)!.row;
        }
      }
      if (page.length < pageSize) break;
      before = page[page.length - 1];
      const at = Date.parse(iso(before.created_at)!);
      // Answered, or the walk has reached its `after`: nothing older tells it more.
      pending = pending.filter(
        p => found[p.index] === undefined && since(p, at, before!.id),
      );
    }
    const rows = [
      ...new Map(
        found.filter(row => row !== undefined).map(row => [row.id, row]),
      ).values(),
    ];
    const runs = new Map<string, RecoveryRun>();
    for (const chunk of chunks(rows))
      for (const run of await this.withDetails(chunk)) runs.set(run.id, run);
    return found.map(row => (row === undefined ? undefined : runs.get(row.id)));
  }

  /**
   * Active runs on a host, or active runs whose driver has not beaten for `staleForMs`, by the
   * database's clock (see claimStaleRun); oldest first.
   */
  async activeRuns(filter: {
    hypervisorHost?: string;
    staleForMs?: number;
  }): Promise<RecoveryRun[]> {
    const q = this.db('recovery_runs').whereIn('status', ACTIVE_RUN_STATUSES);
    if (filter.hypervisorHost)
      q.where({ hypervisor_host: filter.hypervisorHost });
    if (filter.staleForMs !== undefined)
      q.modify(heartbeatStaleFor, filter.staleForMs);
    return this.withDetails(await q.orderBy(OLDEST_FIRST));
  }

  /**
   * How long ago the driver of each active run last beat, by the database's clock (see
   * claimStaleRun): when the oldest turns stale is the staleness threshold minus its age.
   */
  async heartbeatAges(): Promise<Array<{ id: string; ageMs: number }>> {
    const age =
      this.db.client.dialect === 'postgresql'
        ? this.db.raw(
            'extract(epoch from clock_timestamp() - heartbeat_at) * 1000 as age_ms',
          )
        : this.db.raw(`${SQLITE_NOW_MS} - heartbeat_at as age_ms`);
    const rows: Array<{ id: string; age_ms: unknown }> = await this.db(
      'recovery_runs',
    )
      .whereIn('status', ACTIVE_RUN_STATUSES)
      .whereNotNull('heartbeat_at')
      .select('id', age);
    return rows.map(row => ({ id: row.id, ageMs: Number(row.age_ms) }));
  }

  private async withDetails(rows: any[]): Promise<RecoveryRun[]> {
    if (rows.length === 0) return [];
    const ids = rows.map(r => r.id);
    const [machineRows, stepRows] = await Promise.all([
      this.db('recovery_run_machines')
        .whereIn('run_id', ids)
        .orderBy([{ column: 'wave' }, { column: 'machine_ref' }]),
      this.db('recovery_run_steps').whereIn('run_id', ids).orderBy('id'),
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
}

/** Lists of ids or refs in pieces a statement's parameters hold on SQLite and PostgreSQL alike. */
function chunks<T>(items: T[], size = MAX_RUNS_PAGE): T[][] {
  return Array.from({ length: Math.ceil(items.length / size) }, (_, i) =>
    items.slice(i * size, (i + 1) * size),
  );
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

function toCapture(row: any): StoredCapture {
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
    ...(row.damaged_at !== null &&
      row.damaged_at !== undefined && {
        damaged: { at: iso(row.damaged_at)!, reason: row.damaged_reason ?? '' },
      }),
    createdAt: iso(row.created_at)!,
  };
}

/*
 * Heartbeats are written and judged by the database's clock alone: replicas' clocks may disagree,
 * and one whose clock ran ahead would take a live run for orphaned. SQLite stores a timestamp as
 * epoch milliseconds (as knex writes a Date there), PostgreSQL as timestamptz.
 */
const SQLITE_NOW_MS =
  "CAST(ROUND((julianday('now') - 2440587.5) * 86400000) AS INTEGER)";

function dbNow(db: Knex): Knex.Raw {
  return db.client.dialect === 'postgresql'
    ? db.raw('clock_timestamp()')
    : db.raw(SQLITE_NOW_MS);
}

/**
 * How a run ended by another than its driver (claimed, preempted) is finished: with the result it
 * kept before its teardown (RunOutcome), else failed with `message`; `unfinished`, why its machines
 * still in progress stopped.
 */
function endedWith(outcome: RunOutcome | undefined, message: string) {
  return outcome
    ? {
        columns: {
          status: outcome.status,
          error: outcome.error ? JSON.stringify(outcome.error) : null,
          rto_seconds: outcome.rtoSeconds ?? null,
        },
        unfinished: outcome.unfinishedReason ?? message,
      }
    : {
        columns: { status: 'failed', error: JSON.stringify({ message }) },
        unfinished: message,
      };
}

/** Keeps the runs whose heartbeat is older than `ms` by the database's clock. */
function heartbeatStaleFor(q: Knex.QueryBuilder, ms: number): void {
  if (q.client.dialect === 'postgresql') {
    q.whereRaw(
      `heartbeat_at < clock_timestamp() - ?::float8 * interval '1 millisecond'`,
      [ms],
    );
  } else {
    q.whereRaw(`heartbeat_at < ${SQLITE_NOW_MS} - ?`, [ms]);
  }
}

/**
 * Serialises admissions to one host until the transaction ends. PostgreSQL: a transaction-scoped
 * advisory lock, since a row lock cannot guard the absence of an active run. SQLite: writers are
 * already serialised (one connection, one database-wide write lock).
 */
async function lockHost(
  tx: Knex.Transaction,
  hypervisorHost: string,
): Promise<void> {
  if (tx.client.dialect !== 'postgresql') return;
  // A stable 64-bit key per host; a collision only serialises two hosts' admissions.
  const key = createHash('sha256')
    .update(`recovery-run-admission:${hypervisorHost}`)
    .digest()
    .readBigInt64BE(0);
  await tx.raw('select pg_advisory_xact_lock(?::bigint)', [key.toString()]);
}
