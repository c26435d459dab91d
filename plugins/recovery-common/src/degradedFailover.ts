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
