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
