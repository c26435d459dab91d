import { INTERRUPTED_PREFIX, type RunStatus } from './types';

/**
 * Whether a finished run was interrupted (its backend stopped, a failover preempted it) rather
 * than failed: its status says so. It reached no result, says nothing about recoverability and
 * never counts for readiness, so it must not read as a failed recovery.
 *
 * @public
 */
export function isRunInterrupted(run: { status: RunStatus }): boolean {
  return run.status === 'interrupted';
}

/**
 * Why an interrupted run stopped, in the backend's words without the prefix: `the backend is
 * shutting down`, `preempted by failover run-7`; `interrupted` where it says nothing more.
 *
 * @public
 */
export function interruptionCause(run: {
  error?: { message: string };
}): string {
  const message = run.error?.message ?? '';
  return (
    (message.startsWith(INTERRUPTED_PREFIX)
      ? message.slice(INTERRUPTED_PREFIX.length)
      : message
    ).trim() || 'interrupted'
  );
}

/**
 * An interrupted run's end as a person reads it: `cancelled by user:default/dr` where someone
 * cancelled it (its error's `cancelledBy`: POST /runs/{id}/cancel, whether its driver or the
 * sweep of a driver gone ended it), else `interrupted: ` and its cause (interruptionCause), or
 * `interrupted` where it says none.
 *
 * @public
 */
export function interruptedRunWords(run: {
  error?: { message: string; cancelledBy?: string };
}): string {
  const by = run.error?.cancelledBy;
  if (by) return `cancelled by ${by}`;
  const cause = interruptionCause(run);
  return cause === 'interrupted' ? cause : `interrupted: ${cause}`;
}

/**
 * Who words made by {@link interruptedRunWords} say cancelled the run (`user:default/dr` in
 * `run r9 cancelled by user:default/dr (…)`), the ref as written; undefined where they name no one.
 *
 * @public
 */
export function cancellerIn(words: string): string | undefined {
  return /\bcancelled by ([a-zA-Z][\w-]*:[\w./-]*[\w-])/.exec(words)?.[1];
}
