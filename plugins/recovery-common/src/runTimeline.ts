import type { RecoveryRun, RunStep } from './types';

/**
 * Whether a run is still under way (pending or running): the portal follows it, the CLI waits for it.
 *
 * @public
 */
export function isRunActive(
  run: Pick<RecoveryRun, 'status'> | undefined,
): boolean {
  return !!run && (run.status === 'pending' || run.status === 'running');
}

/**
 * A run's timeline as people read it, each thing said once, where it belongs. Every view says a
 * finished run's outcome besides its timeline (the portal's alert above it, the CLI's last line),
 * and the backend records a failure in the timeline and as the run's error in the same words:
 * - a machine's failure fails the run: recorded for the machine (a failover's again for the run,
 *   with what it keeps; runs recorded before that was fixed have it twice); it is said on the
 *   machine's line (and by the outcome);
 * - a run that failed as a whole (its lab, its host, an interruption) has it said by its outcome:
 *   the run's step with its error's words is left out once the run has ended with that error.
 *   While the run is still under way (tearing its lab down) that step is the only place it is
 *   said, and shows.
 *
 * `appendOnly`, for a view that cannot take a line back once shown (the CLI prints each step as
 * it comes): while the run is under way, the timeline stops before its first run-wide error, held
 * back with the steps after it until the run's end tells whether the outcome says it. Such errors
 * come at a run's end only (its failure, a failed teardown), so little is held, and not for long.
 *
 * @public
 */
export function timelineSteps(
  run: Pick<RecoveryRun, 'status' | 'steps' | 'error'>,
  { appendOnly = false }: { appendOnly?: boolean } = {},
): RunStep[] {
  const { steps } = run;
  const active = isRunActive(run);
  const outcome = active ? undefined : run.error?.message;
  const machineErrors = new Set(
    steps.filter(s => s.level === 'error' && s.machineRef).map(s => s.message),
  );
  const runError = (s: RunStep) => !s.machineRef && s.level === 'error';
  const kept = steps.filter(
    s =>
      !runError(s) || !(machineErrors.has(s.message) || s.message === outcome),
  );
  if (!active || !appendOnly) return kept;
  const held = kept.findIndex(runError);
  return held < 0 ? kept : kept.slice(0, held);
}
