import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import {
  type Capture,
  type RecoveryRun,
  recoveryRunLogsReadPermission,
  withoutHealthOutput,
} from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryAuthorizer } from '../service/RecoveryAuthorizer';

/**
 * Runs as a caller may read their console tails: a machine's console may print secrets at boot,
 * so seeing a run's entity is not enough; recovery.run.logs.read is needed, decided per machine
 * on the machine's own Resource entity. Where it is not granted, that tail is left out and its
 * machine marked `logTailWithheld` (hidden, not none). One call to the policy for the machines of
 * all the runs that kept a tail, none when no run did.
 *
 * Why the machine and not the run's entity: a console is the machine's, and what it prints (its
 * services' secrets) is its owners', whatever run booted it. A conditional policy (ownership,
 * say) decides on the resource asked about: asked on the run's entity, the owners of `web` would
 * read the console of another team's database machine their failover booted; asked on both, a
 * team would lose its own machine's console in another team's run. A machine the catalog no
 * longer holds has no owner to apply a condition to, so only an unconditional grant shows it.
 */
export async function consolesSeenBy<R extends Pick<RecoveryRun, 'machines'>>(
  stored: R[],
  credentials: BackstageCredentials,
  authorizer: Pick<RecoveryAuthorizer, 'permittedOn'>,
): Promise<R[]> {
  const runs = stored.map(withoutBlankTails);
  const machineRefs = [
    ...new Set(
      runs.flatMap(run =>
        run.machines
          .filter(m => m.logTail !== undefined)
          .map(m => m.machineRef),
      ),
    ),
  ];
  if (machineRefs.length === 0) return runs;
  const readable = await logsReadableOn(machineRefs, credentials, authorizer);
  const withheld = (m: R['machines'][number]) =>
    m.logTail !== undefined && !readable.has(m.machineRef);
  return runs.map(run =>
    !run.machines.some(withheld)
      ? run
      : {
          ...run,
          machines: run.machines.map(machine => {
            if (!withheld(machine)) return machine;
            const { logTail, ...rest } = machine;
            return { ...rest, logTailWithheld: true as const };
          }),
        },
  );
}

/**
 * Captures as a caller may read them: what a machine's last failed health check said when it was
 * captured (`machineState.healthOutput`) may carry secrets as its console may, so it is left out
 * unless the caller has recovery.run.logs.read on that machine, as consolesSeenBy decides. One call
 * to the policy for the machines of all the captures that kept one, none when none did.
 */
export async function healthOutputsSeenBy<
  C extends Pick<Capture, 'machineRef' | 'machineState'>,
>(
  captures: C[],
  credentials: BackstageCredentials,
  authorizer: Pick<RecoveryAuthorizer, 'permittedOn'>,
): Promise<C[]> {
  const machineRefs = [
    ...new Set(
      captures
        .filter(c => c.machineState?.healthOutput !== undefined)
        .map(c => c.machineRef),
    ),
  ];
  if (machineRefs.length === 0) return captures;
  const readable = await logsReadableOn(machineRefs, credentials, authorizer);
  return captures.map(c =>
    c.machineState?.healthOutput === undefined || readable.has(c.machineRef)
      ? c
      : { ...c, machineState: withoutHealthOutput(c.machineState) },
  );
}

/**
 * Whether a console printed anything: a blank tail is no evidence, and one a caller may not read
 * must not be reported as withheld when there was nothing to withhold.
 */
export function isConsoleTail(logTail: string | undefined): logTail is string {
  return logTail !== undefined && logTail.trim() !== '';
}

/** Blank tails as none (runs recorded before the recorder skipped them kept them as ''). */
function withoutBlankTails<R extends Pick<RecoveryRun, 'machines'>>(run: R): R {
  if (
    run.machines.every(m => m.logTail === undefined || isConsoleTail(m.logTail))
  )
    return run;
  return {
    ...run,
    machines: run.machines.map(({ logTail, ...machine }) =>
      isConsoleTail(logTail) ? { ...machine, logTail } : machine,
    ),
  };
}

/** Of `machineRefs`, those whose logs (console, health-check output) the caller may read. */
async function logsReadableOn(
  machineRefs: string[],
  credentials: BackstageCredentials,
  authorizer: Pick<RecoveryAuthorizer, 'permittedOn'>,
): Promise<Set<string>> {
  return new Set(
    await authorizer.permittedOn(
      credentials,
      recoveryRunLogsReadPermission,
      machineRefs,
    ),
  );
}
