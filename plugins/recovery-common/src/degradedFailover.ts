import type {
  MachineWithoutNetwork,
  RecoveryRun,
  RunSupervision,
} from './types';

/**
 * The machines a degraded failover has down: the one it could not bring back, then those waiting
 * for it, then those left running without network (RunSupervision.degraded): they serve nothing
 * either. None where it is not degraded.
 *
 * @public
 */
export function downInFailover(
  run: Pick<RecoveryRun, 'supervision'>,
): string[] {
  const degraded = run.supervision?.degraded;
  return degraded
    ? [
        degraded.machineRef,
        ...(degraded.notStarted ?? []),
        ...(degraded.withoutNetwork ?? []).map(s => s.machineRef),
      ]
    : [];
}

/**
 * A machine a degraded failover left running without network (RunSupervision.degraded.withoutNetwork),
 * in words, `at` its `since` as the caller writes it, `name` how the caller names a machine: its
 * namespace's owner stopped, was restarted outside supervision, or runs without network itself (a
 * sharer of a sharer).
 *
 * @public
 */
export function withoutNetworkSince(
  sharer: MachineWithoutNetwork,
  degraded: Pick<NonNullable<RunSupervision['degraded']>, 'withoutNetwork'>,
  at: string = sharer.since,
  name: (machineRef: string) => string = ref => ref,
): string {
  const ownerToo = (degraded.withoutNetwork ?? []).some(
    s => s.machineRef === sharer.of,
  );
  const owner = ownerToo
    ? 'without network too'
    : sharer.ownerRestarted
      ? 'was restarted outside supervision'
      : 'stopped';
  return `${name(sharer.machineRef)} running without network since ${at}, its namespace's owner ${name(sharer.of)} ${owner}`;
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
