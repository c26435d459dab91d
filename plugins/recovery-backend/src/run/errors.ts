import {
  ConflictError,
  CustomErrorBase,
  ServiceUnavailableError,
} from '@backstage/errors';
import type { RunMode } from '@backstage-recovery/plugin-recovery-common';
import {
  earliestRecoveryPoint,
  HOST_BUSY_ERROR_NAME,
  KEPT_FAILOVER_ERROR_NAME,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
  MISSING_DEPENDENCIES_ERROR_NAME,
  DEPENDENCY_CYCLE_ERROR_NAME,
  RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
  CAPTURES_DAMAGED_ERROR_NAME,
  type DamagedCapture,
  INTERRUPTED_PREFIX,
  MACHINE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import {
  type HostCondition,
  type HypervisorHost,
  messageOf,
} from '@backstage-recovery/plugin-recovery-node';
import type { PlannedRecovery } from '../service/PlanService';

/**
 * Why a machine failed, with the probe that failed it if one did, and what its last failed health
 * check said: evidence kept with its console tail (gated as that is), not in the message.
 */
export class MachineFailure extends Error {
  constructor(
    message: string,
    readonly probe?: string,
    readonly healthOutput?: string,
  ) {
    super(message);
  }
}

/**
 * Why a test run's driver was aborted where someone cancelled it (POST /runs/:id/cancel): it ends
 * `interrupted`, as at a shutdown, its error naming who cancelled it and when.
 */
export class RunCancelled extends Error {
  constructor(
    readonly by: string,
    readonly at: string,
  ) {
    super(`${INTERRUPTED_PREFIX}cancelled by ${by} at ${at}`);
  }
}

/**
 * The run's failure at a machine, as its timeline said it already at that machine (LabBoot): the
 * run's end says it no more, or the timeline would say the one failure twice.
 */
export class MachineFailed extends Error {
  constructor(
    message: string,
    readonly machineRef: string,
    readonly probe?: string,
  ) {
    super(message);
  }
}

/** The run was finished elsewhere (another replica failed it): this driver must stop. */
export class RunSuperseded extends Error {}

/**
 * The run failed because its hypervisor host could not be reached, or stopped answering: the
 * host's failure, not a machine's. Its message says so first, then the host's own words.
 */
export class HostUnreachable extends Error {}

/**
 * The run's failure at a host whose engine cannot be reached (or, `stoppedWhile` something went on,
 * stopped answering), with `cause`, the host's own words.
 */
export function hostUnreachable(
  host: Pick<HypervisorHost, 'id'>,
  cause: unknown,
  stoppedWhile?: string,
): HostUnreachable {
  const what = stoppedWhile
    ? `stopped answering while ${stoppedWhile}`
    : 'cannot be reached';
  return new HostUnreachable(
    `hypervisor host ${host.id} ${what}: ${messageOf(cause)}`,
  );
}

/**
 * The run failed on its hypervisor host's condition (hostCondition) while it restored or booted a
 * machine: the host ran out of something (its disk, its memory), or something of the host holds a
 * port the machine publishes. The host's failure, not the machine's, which a host with room, or the
 * port free, would have booted; its message says so first, then the host's own words.
 */
export class HostConditionFailure extends Error {}

/**
 * The run's failure at a host in `condition` while `doing` something to `machineRef` (`restoring
 * resource:default/db-01`), with `cause`, the host's own words: what ran out, or which port of the
 * host the machine wanted, as production published it, and how to free it.
 */
export function hostConditionFailure(
  host: Pick<HypervisorHost, 'id'>,
  condition: HostCondition,
  machineRef: string,
  doing: string,
  cause: unknown,
): HostConditionFailure {
  if (condition.kind === 'exhausted')
    return new HostConditionFailure(
      `hypervisor host ${host.id} ran out of ${condition.resource} while ${doing}: ${messageOf(cause)}`,
    );
  const port =
    condition.hostPort === undefined
      ? 'a host port'
      : `host port ${condition.hostPort}`;
  return new HostConditionFailure(
    `hypervisor host ${host.id} has ${port}, which ${machineRef} publishes as production did, held by something else: ${messageOf(cause)}. ` +
      'Free the port there, or fail over onto another hypervisor host',
  );
}

/**
 * Whether the host's engine could not be reached, or did not answer in time: a ServiceUnavailableError
 * (503), as a provider's EngineUnreachableError is.
 */
export const isHostUnreachable = (
  error: unknown,
): error is ServiceUnavailableError => error instanceof ServiceUnavailableError;

export { messageOf };

/**
 * What a run that failed says of it: the error as an Error (a host may reject with anything: a
 * string, nothing), naming the machine and probe where one failed it; the reason, the backend's
 * shutdown where that interrupted it; and whether its host was out of reach.
 */
export function runFailure(
  error: unknown,
  /** Set where the run was interrupted: why (a RunCancelled where someone cancelled it). */
  interrupted: false | { reason: unknown },
): {
  failure: Error & { machineRef?: string; probe?: string };
  reason: string;
  hostDown: boolean;
} {
  const failure = (
    error instanceof Error ? error : new Error(messageOf(error))
  ) as Error & { machineRef?: string; probe?: string };
  const interruption = interrupted && interrupted.reason;
  return {
    failure,
    reason: interrupted
      ? interruption instanceof RunCancelled
        ? interruption.message
        : `${INTERRUPTED_PREFIX}the backend is shutting down`
      : failure.message,
    // The teardown, which cannot reach the host either, then need not say why again.
    hostDown: !interrupted && failure instanceof HostUnreachable,
  };
}

/**
 * A run refused for a conflict a client tells apart by the error's name (HOST_BUSY_ERROR_NAME, …,
 * recovery-common's errors.ts, which reads them): a 409, which Backstage's error handler takes from
 * `statusCode`, as it knows no status by these names.
 */
export abstract class RunConflictError extends CustomErrorBase {
  readonly statusCode = 409;
}

/**
 * The hypervisor host runs another lab: worth trying again later, unlike the other conflicts
 * (a machine never captured).
 */
export class HypervisorHostBusyError extends RunConflictError {
  name = HOST_BUSY_ERROR_NAME;

  /**
   * The run holding the host and its entity, serialized into the error body for clients to
   * follow; absent when the caller may not see that run.
   */
  readonly runId?: string;
  readonly entityRef?: string;

  constructor(hostId: string, holder?: { runId: string; entityRef: string }) {
    super(
      `Hypervisor host '${hostId}' is busy with ${holder ? `run ${holder.runId} of ${holder.entityRef}` : 'another run'}`,
    );
    this.runId = holder?.runId;
    this.entityRef = holder?.entityRef;
  }
}

/**
 * The catalog names dependencies the plan cannot include: the run would not test the recovery
 * production needs, so it is refused unless the caller accepts recovering without them.
 * `missing` lists them for clients to show.
 */
export class MissingDependenciesError extends RunConflictError {
  name = MISSING_DEPENDENCIES_ERROR_NAME;
  readonly missing: string[];

  constructor(entityRef: string, missing: string[]) {
    super(
      `${entityRef} cannot be recovered as the catalog declares it: ${missing.join('; ')}. ` +
        'Fix the catalog, or start the run accepting missing dependencies (acceptMissingDependencies: true) to recover without them',
    );
    this.missing = missing;
  }
}

/**
 * The entity (or a part of it) runs on no machine the catalog holds, and declares dependencies it
 * does not hold: one of them is likely the machine it ran on. Refused even when the caller accepts
 * missing dependencies, which a plan can leave out: the run would boot none of the entity's own
 * machines, so its success would say nothing of the entity. A 409, as MissingDependenciesError.
 */
export class EntityMachinesMissingError extends ConflictError {
  constructor(unhoused: Array<{ entityRef: string; missing: string[] }>) {
    super(
      `${unhoused
        .map(
          ({ entityRef, missing }) =>
            `${entityRef} runs on no machine the catalog holds (${missing.join('; ')})`,
        )
        .join('; ')}. ` +
        'Accepting missing dependencies recovers without them, not without the machines the entity runs on: a run would boot none of them. ' +
        'Put the machine back in the catalog, or point the dependsOn at the machine the entity runs on now',
    );
  }
}

/**
 * The catalog declares a dependency cycle among what the plan boots: no plan (GET /plan), and a
 * run refused unless the caller accepts breaking it (acceptCycles). A 409: the catalog's state
 * conflicts, the request is fine. `cycle` and `wouldDrop` ride in the body for clients to offer that.
 */
export class DependencyCycleError extends CustomErrorBase {
  name = DEPENDENCY_CYCLE_ERROR_NAME;
  readonly statusCode = 409;
  readonly cycle: string;
  readonly wouldDrop: Array<{ from: string; waitsFor: string }>;

  constructor(
    /** The plan's error: the cycle, what to change, and how to go ahead (cycleOverride). */
    message: string,
    /** The cycle and what to change, as BootPlanCycleError says it. */
    cycle: string,
    wouldDrop: Array<{ from: string; waitsFor: string }>,
  ) {
    super(message);
    this.cycle = cycle;
    this.wouldDrop = wouldDrop.map(({ from, waitsFor }) => ({
      from,
      waitsFor,
    }));
  }
}

/**
 * Why `planned` has no plan, as GET /plan and POST /runs both refuse it: a DependencyCycleError
 * where a cycle the catalog declares stops it (the only way PlanService makes none), else a
 * conflict in its own words.
 */
export function noPlanError(
  planned: Pick<PlannedRecovery, 'planError' | 'cycle'>,
): Error {
  const { planError, cycle } = planned;
  return cycle
    ? new DependencyCycleError(
        planError ?? cycle.error.message,
        cycle.error.message,
        cycle.wouldDrop,
      )
    : new ConflictError(planError);
}

/**
 * A finished failover keeps machines on the host that serve production on what this run needs:
 * refused for as long as it stays, not busy. Its parts ride in the error body, so a client (the
 * nightly check) can say it once for every run it holds up.
 */
export class KeptFailoverError extends RunConflictError {
  name = KEPT_FAILOVER_ERROR_NAME;

  constructor(
    entityRef: string,
    mode: RunMode,
    /** The failover as the caller may see it. */
    readonly failover: string,
    readonly host: string,
    /** What it keeps on the host (`3 containers and 1 network`). */
    readonly keeps: string,
    /** What of this run's plan it holds (machines, production's subnets). */
    readonly holding: string,
    /** Why that refuses the run, and how to free the host. */
    readonly remedy: string,
    /** The failover's id and entity, for clients to link; absent when the caller may not see it. */
    shown?: { runId: string; entityRef: string },
  ) {
    super(
      `${entityRef} cannot be ${mode === 'test' ? 'test-recovered' : 'failed over'} on ${host} now: ${failover} keeps ${keeps} there, ` +
        `serving production with ${holding}; ${remedy}`,
    );
    this.runId = shown?.runId;
    this.entityRef = shown?.entityRef;
  }

  readonly runId?: string;
  readonly entityRef?: string;
}

/**
 * Machines of the plan have no capture kept: nothing to restore them from (a client that checks
 * every entity, the nightly check, says why it did not run), `neverCaptured` naming them (as a
 * RecoveryPointTooEarlyError names its own).
 */
export class MachinesNotCapturedError extends RunConflictError {
  name = MACHINES_NOT_CAPTURED_ERROR_NAME;
  /**
   * Of the machines never captured, captures of the same container on the same engine kept under
   * another machine ref (a machine renamed in the catalog): named, never restored in their stead.
   */
  readonly keptElsewhere?: Array<{
    machineRef: string;
    keptUnder: string;
    engine: string;
    container: string;
    captures: number;
    newestCaptureAt: string;
  }>;

  constructor(
    readonly neverCaptured: string[],
    keptElsewhere: NonNullable<MachinesNotCapturedError['keptElsewhere']> = [],
  ) {
    super(
      [
        `No capture of ${neverCaptured.join(', ')} yet: capture first (POST /captures)`,
        ...keptElsewhere.map(capturesKeptUnder),
      ].join('; '),
    );
    if (keptElsewhere.length > 0) this.keptElsewhere = keptElsewhere;
  }
}

/**
 * Why a machine never captured may have captures all the same: those of its container kept under
 * the ref it had before a rename. Said, not acted on: only people can tell a rename from two
 * machines that share a container name. Captured under the new ref, its container must say so on an
 * engine that captures only containers labelled as their machine (the default): it still carries
 * the old ref there, and starting it again does not change that.
 */
export function capturesKeptUnder(kept: {
  machineRef: string;
  keptUnder: string;
  engine: string;
  container: string;
  captures: number;
  newestCaptureAt: string;
}): string {
  const { machineRef, keptUnder, engine, container, captures } = kept;
  return `captures of the same container (${container}) on engine ${engine} are kept under ${keptUnder} (${captures === 1 ? '1 capture' : `${captures} captures`}, newest ${kept.newestCaptureAt}): rename ${machineRef} back to ${keptUnder} in the catalog to restore them, or capture ${machineRef}, its container labelled ${MACHINE_LABEL}=${machineRef} first where its engine captures only containers labelled as their machine (requireMachineLabel, on by default)`;
}

/**
 * Machines of the plan have no capture kept taken at or before the recovery point asked: its body
 * names each with its oldest kept capture's time (how far back the caller can go), those never
 * captured apart, and the earliest point every machine allows.
 */
export class RecoveryPointTooEarlyError extends RunConflictError {
  name = RECOVERY_POINT_TOO_EARLY_ERROR_NAME;
  readonly machines: Array<{ machineRef: string; oldestCaptureAt: string }>;
  readonly neverCaptured: string[];
  readonly earliestRecoveryPoint?: string;

  /** `machines` in boot order, each with its oldest kept capture's time, or none if never captured. */
  constructor(
    readonly recoveryPoint: string,
    machines: Array<{ machineRef: string; oldestCaptureAt?: string }>,
  ) {
    const captured = machines.flatMap(({ machineRef, oldestCaptureAt }) =>
      oldestCaptureAt ? [{ machineRef, oldestCaptureAt }] : [],
    );
    const neverCaptured = machines
      .filter(m => !m.oldestCaptureAt)
      .map(m => m.machineRef);
    const earliest =
      neverCaptured.length === 0 ? earliestRecoveryPoint(captured) : undefined;
    const each = machines.map(m =>
      m.oldestCaptureAt
        ? `${m.machineRef} (its oldest kept is of ${m.oldestCaptureAt})`
        : `${m.machineRef} (never captured)`,
    );
    super(
      `No capture kept at or before the recovery point ${recoveryPoint} of ${each.join(', ')}: ${
        earliest
          ? `choose a later point, ${earliest} at the earliest (recovery.captureStore.keepLast sets how many captures of a machine are kept), or none to restore the latest captures`
          : `capture ${neverCaptured.join(', ')} first (POST /captures): no point, nor the latest captures, can restore ${neverCaptured.length === 1 ? 'it' : 'them'} until then`
      }`,
    );
    this.machines = captured;
    this.neverCaptured = neverCaptured;
    if (earliest) this.earliestRecoveryPoint = earliest;
  }
}

/**
 * Machines of the plan whose kept captures were all found damaged: nothing intact to restore them
 * from, at any recovery point. `damaged` names each such capture (its machine, id, time and why), in
 * boot order, newest first per machine; `neverCaptured` the machines of the plan with no capture at
 * all beside them.
 */
export class CapturesDamagedError extends RunConflictError {
  name = CAPTURES_DAMAGED_ERROR_NAME;

  constructor(
    readonly damaged: DamagedCapture[],
    readonly neverCaptured: string[] = [],
  ) {
    const machines = [...new Set(damaged.map(d => d.machineRef))];
    const each = damaged.map(
      d =>
        `${d.machineRef}: capture ${d.captureId} of ${d.createdAt} is damaged (${d.reason})`,
    );
    const never =
      neverCaptured.length > 0
        ? `; ${neverCaptured.join(', ')} never captured`
        : '';
    super(
      `No intact capture of ${machines.join(', ')} to restore: ${each.join('; ')}${never}. Capture ${[...machines, ...neverCaptured].join(', ')} anew (POST /captures)`,
    );
  }
}
