import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import {
  type RecoveryRun,
  recoveryRunLogsReadPermission,
} from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryAuthorizer } from '../service/RecoveryAuthorizer';

/**
 * Runs as a caller may read their console tails: a machine's console may print secrets at boot,
 * so seeing a run's entity is not enough; recovery.run.logs.read on it is. Where it is not
 * granted, each tail is left out and its machine marked `logTailWithheld` (hidden, not none). One
 * call to the policy for the entities of all the runs that kept a tail, none when no run did.
 */
export async function consolesSeenBy<
  R extends Pick<RecoveryRun, 'entityRef' | 'machines'>,
>(
  stored: R[],
  credentials: BackstageCredentials,
  authorizer: Pick<RecoveryAuthorizer, 'permittedOn'>,
): Promise<R[]> {
  const runs = stored.map(withoutBlankTails);
  const kept = (run: R) => run.machines.some(m => m.logTail !== undefined);
  const entityRefs = [...new Set(runs.filter(kept).map(r => r.entityRef))];
  if (entityRefs.length === 0) return runs;
  const readable = new Set(
    await authorizer.permittedOn(
      credentials,
      recoveryRunLogsReadPermission,
      entityRefs,
    ),
  );
  return runs.map(run =>
    !kept(run) || readable.has(run.entityRef)
      ? run
      : {
          ...run,
          machines: run.machines.map(({ logTail, ...machine }) =>
            logTail === undefined
              ? machine
              : { ...machine, logTailWithheld: true as const },
          ),
        },
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
