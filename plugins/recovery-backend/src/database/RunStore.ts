import type {
  BootPlan,
  RecoveryRun,
  RunMachine,
  RunStatus,
  RunStep,
  RunSupervision,
} from '@backstage-recovery/plugin-recovery-common';
import { ConflictError } from '@backstage/errors';
import { INTERRUPTED_PREFIX } from '@backstage-recovery/plugin-recovery-common';
import {
  CapturesDamagedError,
  MachinesNotCapturedError,
  RecoveryPointTooEarlyError,
} from '../run/errors';
import {
  ACTIVE_RUN_STATUSES,
  FINAL_MACHINE_PHASES,
  reachedStatus,
  unfinishedMachinePhase,
  waitsFor,
} from '../run/runState';
import type { CapturedNetwork } from '@backstage-recovery/plugin-recovery-node';
import { Knex } from 'knex';
import { createHash } from 'node:crypto';
import { CaptureStore, StoredCapture } from './CaptureStore';
import {
  chunks,
  dbNow,
  finished,
  heardBefore,
  iso,
  json,
  NEWEST_FIRST,
  olderThan,
  runsWithDetails,
  SQLITE_NOW_MS,
  toCapture,
} from './rows';

export interface RunOptions {
  /** Test-only hook: boot the waves in reverse, to prove verification is real. */
  reverseBootOrder?: boolean;
}

/**
 * The result a run reached before its teardown (setRunOutcome): what a backend that claims the run
 * mid-teardown finishes it with. `unfinishedReason`: why a machine still in progress stopped.
 */
export interface RunOutcome {
  status: 'succeeded' | 'failed' | 'interrupted';
  rtoSeconds?: number;
  error?: RecoveryRun['error'];
  unfinishedReason?: string;
}

/** Who asked to cancel a test run (a user or service's ref), and when (ISO). */
export interface CancelRequest {
  by: string;
  at: string;
}

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

const date = (value: string | undefined) =>
  value === undefined ? undefined : new Date(value);

/**
 * How many times admission chooses a machine's newest capture again when pruning deleted the one
 * it chose: each time a capture was taken meanwhile, so more in a row means captures keep coming.
 */
const ADMISSION_CHOICES = 3;

/** Runs pruneRuns deletes per transaction, each with its machines and steps (a hundred or so each). */
const PRUNE_BATCH = 100;

/** Oldest first; the id breaks ties, so runs of one instant come in the same order every time. */
const OLDEST_FIRST = [
  { column: 'created_at', order: 'asc' as const },
  { column: 'id', order: 'asc' as const },
];

/** A failover that finished on a hypervisor host, with what it restored there. */
export interface FinishedFailover {
  id: string;
  entityRef: string;
  status: RunStatus;
  finishedAt?: string;
  /** Its machines, each with the production networks it was captured on. */
  machines: Array<{ machineRef: string; networks: CapturedNetwork[] }>;
}

/** A test run's error where failover `failoverId` preempted it. */
const preemptedError = (failoverId: string) =>
  `${INTERRUPTED_PREFIX}preempted by failover ${failoverId}`;
/** How the step of a test run preempted in its teardown, its result kept, begins. */
const preemptedInTeardown = (failoverId: string) =>
  `Failover ${failoverId} preempted this run during its teardown`;
const PREEMPTED_BY = new RegExp(
  `^(?:${preemptedError('(\\S+)')}$|${preemptedInTeardown('(\\S+)')})`,
);

/**
 * The failover that preempted test run `run` (admitRun), as its record says: its error, or, caught
 * in its teardown, the step that says its result stands.
 */
export function preemptingFailover(
  run: Pick<RecoveryRun, 'error' | 'steps'>,
): string | undefined {
  for (const message of [
    run.error?.message,
    ...run.steps.map(s => s.message),
  ]) {
    const failover = message?.match(PREEMPTED_BY)?.slice(1).find(Boolean);
    if (failover) return failover;
  }
  return undefined;
}

/** How admitRun answered: the run holding the host, failovers finished meanwhile, or admitted. */
type RunAdmission =
  | { busyWith: RecoveryRun }
  | { finishedMeanwhile: string[] }
  | { captures: Map<string, StoredCapture>; preempted: RecoveryRun[] };

/**
 * Persistence of runs: their admission (one lab per host), their drivers' heartbeats, their
 * machines and steps as they go, their labs left on hosts and the failovers kept there.
 */
export class RunStore {
  /** The captures runs restore, read on the same connection (an admission's transaction). */
  private readonly captures: CaptureStore;
  private readonly changed: (runId: string) => void;

  constructor(
    private readonly db: Knex,
    options: {
      /**
       * Told the id of each run whose API view a write changed, once committed (RecoverySignals).
       * Not for a store over a transaction: it would tell before the commit.
       */
      onChange?: (runId: string) => void;
    } = {},
  ) {
    this.captures = new CaptureStore(db);
    this.changed = options.onChange ?? (() => {});
  }

  /**
   * Inserts the run unless its hypervisor host already has an active run (one lab per host):
   * the check and the insert commit in one transaction that holds a per-host lock, so two
   * requests, or two replicas, cannot both see the host free. Each machine restores its newest
   * capture, chosen in the same transaction: one chosen before it could be pruned by a capture
   * taken meanwhile. Returns the run holding the host when refused, else the captures chosen; a
   * machine without a capture, or whose chosen capture keeps being pruned, is a ConflictError.
   *
   * A failover does not wait for a test recovery (production is gone; the test can run again): it
   * preempts the test run holding the host, ended `interrupted` in the same transaction with its
   * lab recorded as left, so that the failover's driver removes it before building its own; the
   * test run's driver learns at its next heartbeat that it lost the run. `preempted` names it. A
   * test run preempted in its teardown, its result already kept (setRunOutcome), keeps that result.
   *
   * `keptChecked`: the failovers finished on the host that the caller's check of what they keep
   * saw (Failovers.refuseBesideKept, made before this lock). One that finished since (it was still
   * active then, so neither checked nor holding the host now) is answered `finishedMeanwhile`,
   * admitting nothing: the caller checks again.
   */
  async admitRun(
    run: NewRun,
    at: Date,
    { keptChecked }: { keptChecked?: string[] } = {},
  ): Promise<RunAdmission> {
    const admission = await this.db.transaction<RunAdmission>(async tx => {
      await lockHost(tx, run.hypervisorHost);
      const inTx = new RunStore(tx); // insertRun nests as a savepoint
      const active = await inTx.activeRuns({
        hypervisorHost: run.hypervisorHost,
      });
      const holder = active.find(a => waitsFor(run.mode, a.mode));
      if (holder) return { busyWith: holder };
      // Read after the active runs: a failover active then holds the host (above), and one that
      // finished by now is found here, so none slips between the two reads.
      if (keptChecked) {
        const checked = new Set(keptChecked);
        const finishedMeanwhile = (
          await inTx.finishedFailoverIds(run.hypervisorHost)
        ).filter(id => !checked.has(id));
        if (finishedMeanwhile.length > 0) return { finishedMeanwhile };
      }
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
        uncaptured.length > 0
          ? await inTx.captures.oldestCaptures(uncaptured)
          : [];
      const noneIntact = oldest
        .filter(m => !m.oldestCaptureAt)
        .map(m => m.machineRef);
      const damaged =
        noneIntact.length > 0
          ? await inTx.captures.damagedCaptures(noneIntact)
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
        const message = preemptedError(run.id);
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
        const ended = endedWith(outcome, { message });
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
                message: `${preemptedInTeardown(run.id)}, after the run had ${reachedStatus(outcome.status)}: that result stands; its lab is removed before the failover's is built`,
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
    if ('captures' in admission) {
      this.changed(run.id);
      for (const test of admission.preempted) this.changed(test.id);
    }
    return admission;
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
      const captures = await this.captures.latestCaptures(
        machineRefs,
        atOrBefore,
        {
          intact: true,
        },
      );
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
        // Its own column, for readiness to leave such runs out (countsForReadiness).
        reverse_boot_order: run.options.reverseBootOrder === true,
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
    this.changed(run.id);
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
    if (updated > 0) this.changed(runId);
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
   * Records that `request.by` asked to cancel the active run: the replica driving it reads it at
   * its next heartbeat (cancelRequest). The first request stands, and is returned; undefined where
   * the run is no longer active, or has reached its result already (setRunOutcome: only its teardown
   * is left, which a cancel would not change; reachedOutcome says which).
   */
  async requestCancel(
    runId: string,
    request: CancelRequest,
  ): Promise<CancelRequest | undefined> {
    const recorded = await this.db('recovery_runs')
      .where({ id: runId })
      .whereIn('status', ACTIVE_RUN_STATUSES)
      .whereNull('cancel_request')
      .whereNull('outcome')
      .update({ cancel_request: JSON.stringify(request) });
    if (recorded > 0) this.changed(runId);
    return this.cancelRequest(runId);
  }

  /** The result an active run reached before its teardown (setRunOutcome); undefined where it has reached none, or has finished. */
  async reachedOutcome(runId: string): Promise<RunOutcome | undefined> {
    const row = await this.db('recovery_runs')
      .where({ id: runId })
      .whereIn('status', ACTIVE_RUN_STATUSES)
      .first('outcome');
    return json<RunOutcome>(row?.outcome);
  }

  /** Who asked to cancel the active run, and when; undefined where no one did, or it has finished. */
  async cancelRequest(runId: string): Promise<CancelRequest | undefined> {
    const row = await this.db('recovery_runs')
      .where({ id: runId })
      .whereIn('status', ACTIVE_RUN_STATUSES)
      .first('cancel_request');
    return json<CancelRequest>(row?.cancel_request);
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
   * Ends `interrupted` an active run whose heartbeat is older than `staleForMs`, by the database's
   * clock, and settles its unfinished machines with `message`; returns the claim where this call made it
   * (undefined where it did not). One statement
   * checks and fails it, so of the replicas that find it orphaned only one claims it, none claims
   * a run whose driver beat meanwhile, and a driver that was alive after all sees it lost the run
   * (its heartbeat and updates change nothing) before anything of the run is torn down.
   * `labLeft`: its lab is recorded as left on the host in the same statement, so that no run
   * admitted once the failure frees the host can miss it (see runsWithLabLeft).
   * A run whose driver stopped during its teardown, after it reached its result (setRunOutcome),
   * is finished with that result instead: succeeded with its RTO, or failed (or interrupted) with its own error;
   * the claim gives it as `outcome`, so the claimant knows it has only a teardown to finish.
   * One someone asked to cancel (requestCancel) that reached no result ends as cancelled by them:
   * with `cancelled`'s message and `cancelledBy`, the request given as `cancel`.
   */
  async claimStaleRun(
    runId: string,
    staleForMs: number,
    message: string,
    at: Date,
    {
      labLeft,
      cancelled,
    }: { labLeft: boolean; cancelled?: (request: CancelRequest) => string },
  ): Promise<{ outcome?: RunOutcome; cancel?: CancelRequest } | undefined> {
    const claim = await this.db.transaction(async tx => {
      const stale = () =>
        tx('recovery_runs')
          .where({ id: runId })
          .whereIn('status', ACTIVE_RUN_STATUSES)
          .modify(heardBefore, 'heartbeat_at', staleForMs);
      const row = await stale().first('outcome', 'cancel_request');
      if (!row) return undefined;
      // Written with a heartbeat: one written after this read leaves the run fresh, and unclaimed below.
      const outcome = json<RunOutcome>(row.outcome);
      // Its driver gone before it saw the request: the cancel is its end all the same.
      const cancel = outcome
        ? undefined
        : json<CancelRequest>(row.cancel_request);
      const ended = endedWith(
        outcome,
        cancel && cancelled
          ? { message: cancelled(cancel), cancelledBy: cancel.by }
          : { message },
      );
      const updated = await stale().update({
        finished_at: at,
        ...ended.columns,
        ...(labLeft ? { lab_left: true } : {}),
      });
      if (updated === 0) return undefined;
      await new RunStore(tx).settleUnfinishedMachines(
        runId,
        ended.unfinished,
        at,
      );
      return { outcome, ...(cancel && cancelled && { cancel }) };
    });
    if (claim) this.changed(runId);
    return claim;
  }

  /**
   * Rewrites the error of a failed or interrupted run: only for whoever ended it, to add what it
   * found after.
   */
  async setFailedRunError(
    runId: string,
    error: NonNullable<RecoveryRun['error']>,
  ): Promise<void> {
    await this.db('recovery_runs')
      .where({ id: runId })
      .whereIn('status', ['failed', 'interrupted'] satisfies RunStatus[])
      .update({ error: JSON.stringify(error) });
    this.changed(runId);
  }

  /**
   * Ends the machines of a run ended from outside its driver with `status`, as the driver would
   * (RunRecorder.settleUnfinished): one never started is skipped, one in progress ends as the run
   * did, with `message`.
   */
  async settleUnfinishedMachines(
    runId: string,
    { status, message }: { status: RunStatus; message: string },
    at: Date,
  ): Promise<void> {
    await this.db.transaction(async tx => {
      await tx('recovery_run_machines')
        .where({ run_id: runId, phase: 'waiting' })
        .update({ phase: 'skipped' });
      await tx('recovery_run_machines')
        .where({ run_id: runId })
        .whereNotIn('phase', FINAL_MACHINE_PHASES)
        .update({
          phase: unfinishedMachinePhase(status),
          message,
          finished_at: at,
        });
    });
    this.changed(runId);
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
    const updated = await this.db('recovery_run_machines')
      .where({ run_id: runId, machine_ref: machineRef })
      .whereIn(
        'run_id',
        this.db('recovery_runs')
          .select('id')
          .where({ id: runId })
          .whereIn('status', ACTIVE_RUN_STATUSES),
      )
      .update(row);
    if (updated > 0) this.changed(runId);
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

  /** The ids of the failovers that finished on `hypervisorHost` (see finishedFailovers). */
  private async finishedFailoverIds(hypervisorHost: string): Promise<string[]> {
    const rows: Array<{ id: string }> = await this.db('recovery_runs')
      .where({ hypervisor_host: hypervisorHost, mode: 'failover' })
      .modify(finished, 'recovery_runs')
      .select('id');
    return rows.map(r => r.id);
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
        ? await this.captures.latestCaptures(pruned)
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
    this.changed(runId);
  }

  /** Records how a succeeded failover's supervision keeps it running (FailoverSupervision). */
  async setSupervision(
    runId: string,
    supervision: RunSupervision,
  ): Promise<void> {
    const updated = await this.db('recovery_runs')
      .where({ id: runId, mode: 'failover', status: 'succeeded' })
      .update({ supervision: JSON.stringify(supervision) });
    if (updated > 0) this.changed(runId);
  }

  /**
   * Claims succeeded failover `runId` for a pass of supervision (FailoverSupervision) under `claim`,
   * a token of the pass, where no other pass holds it: unclaimed, or its claim older than `leaseMs`
   * by the database's clock (its replica crashed mid-pass). One statement checks and claims, so of
   * the replicas that heard the same stop only one runs the pass. Claiming again under the same
   * token renews it. False where another pass holds it, or it is no such failover.
   */
  async claimSupervision(
    runId: string,
    claim: string,
    leaseMs: number,
  ): Promise<boolean> {
    const updated = await this.db('recovery_runs')
      .where({ id: runId, mode: 'failover', status: 'succeeded' })
      .where(free =>
        free
          .whereNull('supervision_claim')
          .orWhere('supervision_claim', claim)
          .orWhere(q =>
            q.modify(heardBefore, 'supervision_claimed_at', leaseMs),
          ),
      )
      .update({
        supervision_claim: claim,
        supervision_claimed_at: dbNow(this.db),
      });
    return updated > 0;
  }

  /** Ends the claim `claim` made (claimSupervision); one taken over meanwhile stays its taker's. */
  async releaseSupervision(runId: string, claim: string): Promise<void> {
    await this.db('recovery_runs')
      .where({ id: runId, supervision_claim: claim })
      .update({ supervision_claim: null, supervision_claimed_at: null });
  }

  /** The entity a run recovers, undefined where there is no such run. */
  async entityRefOf(runId: string): Promise<string | undefined> {
    const row = await this.db('recovery_runs')
      .where({ id: runId })
      .first('entity_ref');
    return row?.entity_ref;
  }

  async getRun(runId: string): Promise<RecoveryRun | undefined> {
    // No run has one (ids are UUIDs), and PostgreSQL refuses to compare text that holds a NUL: an
    // id from a request (`/runs/%00`) is no run, not a database error.
    if (runId.includes('\0')) return undefined;
    const row = await this.db('recovery_runs').where({ id: runId }).first();
    if (!row) return undefined;
    const [run] = await runsWithDetails(this.db, [row]);
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
    return runsWithDetails(this.db, await q);
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
      for (const run of await runsWithDetails(
        this.db,
        await this.db('recovery_runs').whereIn('id', chunk),
      ))
        byId.set(run.id, run);
    }
    return ids.flatMap(id => byId.get(id) ?? []);
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
      q.modify(heardBefore, 'heartbeat_at', filter.staleForMs);
    return runsWithDetails(this.db, await q.orderBy(OLDEST_FIRST));
  }

  /**
   * Deletes the finished runs created before `before`, with their machines and steps, oldest first,
   * `batchSize` runs per transaction; returns how many. Never deleted, however old: a run still
   * active; a failover (what it booted may still serve production on its host, and only the host
   * knows whether it does); a run whose lab is left on its host (the clean-up finds it by its run);
   * each entity's newest finished run (its last result, whatever readiness makes of it); and those
   * `keep` names (the runs readiness rests on, ReadinessService.runsRestedOn). `deletedIds` gets the
   * ids deleted as each batch commits: what a failure left deleted is known too.
   */
  async pruneRuns(
    before: Date,
    keep: ReadonlySet<string>,
    deletedIds: string[] = [],
    batchSize = PRUNE_BATCH,
  ): Promise<number> {
    const prunable = (q: Knex.QueryBuilder) =>
      q
        .where('r.created_at', '<', before)
        .modify(finished, 'r')
        .whereNot('r.mode', 'failover' satisfies RecoveryRun['mode'])
        .where('r.lab_left', false)
        // A newer finished run of its entity: not its newest.
        .whereExists(newer =>
          newer
            .select(this.db.raw('1'))
            .from('recovery_runs as n')
            .whereRaw('n.entity_ref = r.entity_ref')
            .modify(finished, 'n')
            .where(w =>
              w
                .whereRaw('n.created_at > r.created_at')
                .orWhereRaw('n.created_at = r.created_at and n.id > r.id'),
            ),
        );
    let deleted = 0;
    let after: { id: string; created_at: unknown } | undefined;
    for (;;) {
      // Oldest first, by keyset: the kept ones stay behind it, not read again.
      const q = this.db('recovery_runs as r')
        .modify(prunable)
        .orderBy([
          { column: 'r.created_at', order: 'asc' },
          { column: 'r.id', order: 'asc' },
        ])
        .limit(batchSize)
        .select('r.id', 'r.created_at');
      if (after) {
        const { id, created_at: at } = after;
        q.where(w =>
          w
            .where('r.created_at', '>', at as Date)
            .orWhere(tie =>
              tie.where('r.created_at', '=', at as Date).where('r.id', '>', id),
            ),
        );
      }
      const page: Array<{ id: string; created_at: unknown }> = await q;
      if (page.length === 0) return deleted;
      after = page[page.length - 1];
      const ids = page.map(r => r.id).filter(id => !keep.has(id));
      if (ids.length > 0) {
        // Children first, in the run's transaction: no reliance on SQLite's foreign_keys pragma
        // for the cascade. The run is checked again: its lab may have been left meanwhile.
        const gone = await this.db.transaction<string[]>(async tx => {
          const runs: string[] = await tx('recovery_runs as r')
            .whereIn('r.id', ids)
            .modify(prunable)
            .pluck('r.id');
          if (runs.length === 0) return [];
          await tx('recovery_run_steps').whereIn('run_id', runs).delete();
          await tx('recovery_run_machines').whereIn('run_id', runs).delete();
          await tx('recovery_runs').whereIn('id', runs).delete();
          return runs;
        });
        deleted += gone.length;
        deletedIds.push(...gone);
      }
      if (page.length < batchSize) return deleted;
    }
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
}

/**
 * How a run ended by another than its driver (claimed, preempted) is finished: with the result it
 * kept before its teardown (RunOutcome), else interrupted with `error` (it reached none);
 * `unfinished`, how its machines still in progress end (settleUnfinishedMachines).
 */
function endedWith(
  outcome: RunOutcome | undefined,
  error: { message: string; cancelledBy?: string },
): {
  columns: Record<string, unknown>;
  unfinished: { status: RunStatus; message: string };
} {
  return outcome
    ? {
        columns: {
          status: outcome.status,
          error: outcome.error ? JSON.stringify(outcome.error) : null,
          rto_seconds: outcome.rtoSeconds ?? null,
        },
        unfinished: {
          status: outcome.status,
          message: outcome.unfinishedReason ?? error.message,
        },
      }
    : {
        columns: {
          status: 'interrupted' satisfies RunStatus,
          error: JSON.stringify(error),
        },
        unfinished: { status: 'interrupted', message: error.message },
      };
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
