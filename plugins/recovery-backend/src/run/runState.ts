import type {
  MachinePhase,
  RunMode,
  RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import type { FinishedStatus } from '../service/RecoveryMetrics';

/**
 * Whether a new run of `mode` must wait for an active run of `activeMode` on the host: always, but
 * a failover does not wait for a test recovery (production is gone; the test can run again), it
 * preempts it.
 */
export function waitsFor(mode: RunMode, activeMode: RunMode): boolean {
  return mode !== 'failover' || activeMode !== 'test';
}

// The legal moves of a run and of each machine in it. Anything else is a bug in the
// orchestrator, caught before it reaches the store. Interrupted: cut off before a result (its
// backend stopped, a failover preempted it), which is no failed recovery.
const RUN_TRANSITIONS: Record<RunStatus, RunStatus[]> = {
  pending: ['running', 'failed', 'interrupted'],
  running: ['succeeded', 'failed', 'interrupted'],
  succeeded: [],
  failed: [],
  interrupted: [],
};

/** A finished status, as a run's timeline says what it had reached: `failed`, `been interrupted`. */
export function reachedStatus(status: RunStatus): string {
  return status === 'interrupted' ? 'been interrupted' : status;
}

const MACHINE_TRANSITIONS: Record<MachinePhase, MachinePhase[]> = {
  // Skipped: the run finished (failed or interrupted) before it got to the machine. Interrupted:
  // the run was, while the machine was in progress.
  waiting: ['restoring', 'failed', 'skipped'],
  restoring: ['starting', 'failed', 'interrupted'],
  starting: ['verifying', 'failed', 'interrupted'],
  verifying: ['ready', 'failed', 'interrupted'],
  ready: [],
  failed: [],
  skipped: [],
  interrupted: [],
};

/**
 * The phase a machine still in progress ends in when its run ends with `status`: interrupted with
 * an interrupted run (no failure of its own), else failed.
 */
export function unfinishedMachinePhase(
  status: RunStatus,
): Extract<MachinePhase, 'failed' | 'interrupted'> {
  return status === 'interrupted' ? 'interrupted' : 'failed';
}

export function isTerminalRunStatus(
  status: RunStatus,
): status is FinishedStatus {
  return RUN_TRANSITIONS[status].length === 0;
}

export function isFinalMachinePhase(phase: MachinePhase): boolean {
  return MACHINE_TRANSITIONS[phase].length === 0;
}

/**
 * The statuses a run holds its hypervisor host in, and the phases a machine ends in, for queries
 * over them.
 */
export const ACTIVE_RUN_STATUSES = (
  Object.keys(RUN_TRANSITIONS) as RunStatus[]
).filter(s => !isTerminalRunStatus(s));
export const FINAL_MACHINE_PHASES = (
  Object.keys(MACHINE_TRANSITIONS) as MachinePhase[]
).filter(isFinalMachinePhase);

export function assertRunTransition(from: RunStatus, to: RunStatus): void {
  if (!RUN_TRANSITIONS[from].includes(to)) {
    throw new Error(`A run cannot go from ${from} to ${to}`);
  }
}

export function assertMachineTransition(
  machineRef: string,
  from: MachinePhase,
  to: MachinePhase,
  /**
   * The run's final check found the machine fell over after it was ready: the one move out of
   * `ready`, which otherwise stays final (a run's clean-up never fails a ready machine).
   */
  finalCheck = false,
): void {
  if (finalCheck && from === 'ready' && to === 'failed') return;
  if (!MACHINE_TRANSITIONS[from].includes(to)) {
    throw new Error(`Machine ${machineRef} cannot go from ${from} to ${to}`);
  }
}

/**
 * Measured recovery time: from the lab's creation (`labStartedAt`: a recovery needs its network
 * too), or the first restore where that came earlier (a run resumed after a restart of the
 * backend), to the last machine verified. Undefined until every machine is ready. The run's
 * final check, after that, is outside it.
 */
export function measuredRtoSeconds(
  machines: Array<{ restoreStartedAt?: string; readyAt?: string }>,
  labStartedAt?: string,
): number | undefined {
  if (machines.length === 0) return undefined;
  if (machines.some(m => !m.restoreStartedAt || !m.readyAt)) return undefined;
  const starts = [
    ...machines.map(m => m.restoreStartedAt!),
    ...(labStartedAt ? [labStartedAt] : []),
  ];
  const first = Math.min(...starts.map(Date.parse));
  const last = Math.max(...machines.map(m => Date.parse(m.readyAt!)));
  return Math.round(last - first) / 1000;
}
