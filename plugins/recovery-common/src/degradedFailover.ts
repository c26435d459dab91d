import type { RecoveryRun } from './types';

/**
 * The machines a degraded failover has down: the one it could not bring back, then those waiting
 * for it (RunSupervision.degraded). None where it is not degraded.
 *
 * @public
 */
export function downInFailover(
  run: Pick<RecoveryRun, 'supervision'>,
): string[] {
  const degraded = run.supervision?.degraded;
  return degraded ? [degraded.machineRef, ...(degraded.notStarted ?? [])] : [];
}

/**
 * When a degraded failover's machines went down, in words, `at` its time as the caller writes it:
 * "down since" the time its host says the machine stopped, "noticed down at" the time supervision
 * found it stopped where the host told none (RunSupervision.degraded.sinceIs): it may have
 * stopped earlier. Failovers degraded before that was kept say "down since", as they did.
 *
 * @public
 */
export function downSince(
  degraded: Pick<
    NonNullable<NonNullable<RecoveryRun['supervision']>['degraded']>,
    'since' | 'sinceIs'
  >,
  at: string = degraded.since,
): string {
  return degraded.sinceIs === 'noticed'
    ? `noticed down at ${at}`
    : `down since ${at}`;
}
