import type { RecoveryRun, RunStep } from './types';

/** Whether a run is still under way (pending or running): the portal follows it, the CLI waits for it. */
export function isRunActive(run: Pick<RecoveryRun, 'status'> | undefined): boolean {
  return !!run && (run.status === 'pending' || run.status === 'running');
}

/**
 * A run's timeline as people read it. A machine's failure fails the run: the backend records it
 * for the machine, then for the run in the same words; it is said once, on the machine's line.
 */
export function timelineSteps(steps: RunStep[]): RunStep[] {
  const machineErrors = new Set(steps.filter(s => s.level === 'error' && s.machineRef).map(s => s.message));
  return steps.filter(s => s.machineRef || s.level !== 'error' || !machineErrors.has(s.message));
}
