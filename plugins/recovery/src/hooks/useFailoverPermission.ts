import { useApi } from '@backstage/frontend-plugin-api';
import { catalogApiRef } from '@backstage/plugin-catalog-react';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { permissionApiRef } from '@backstage/plugin-permission-react';
import type { ResourcePermission } from '@backstage/plugin-permission-common';
import {
  failoverEntityRefs,
  recoveryRunFailoverPermission,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { errorMessage } from '../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from '../utils/answerWithin';
import { formatCount } from '../utils/format';

/** Why a failover's start or release would be refused, as far as the permission framework says. */
type FailoverDenial = {
  /** The permission is lacking on the run's entity itself (then nothing else is said). */
  entityDenied?: boolean;
  /**
   * The machines and services it booted that lack the grant: those the catalog shows the caller
   * by ref, the others counted. `unnamedWhy` when the catalog could not be asked which they are.
   */
  lacking?: { named: string[]; unnamed: number; unnamedWhy?: Error };
};

/**
 * Whether the caller may start a failover of a plan, or release a finished one: each needs its
 * permission on the same entities. With `error` the check itself failed,
 * which says nothing of the caller's grants; `retry` asks again (a network error passes).
 */
export type FailoverPermission =
  | { loading: true; allowed: false }
  | { loading: false; allowed: true }
  | ({
      loading: false;
      allowed: false;
      error?: Error;
      retry?: () => void;
    } & FailoverDenial);

const isAllowed = (decision: { result: AuthorizeResult }) =>
  decision.result === AuthorizeResult.ALLOW;

/**
 * Asks what POST /runs (a failover: recovery.run.failover) or POST /runs/:id/release
 * (recovery.run.release, `permission`) ask (AuthorizedRunService in the backend): the permission
 * on the entity and on each machine and service of its plan (failoverEntityRefs), so the portal
 * does not offer what the backend refuses.
 * The backend leaves out what has left the catalog since; the portal cannot tell that from what
 * the catalog hides, so such an entity, denied, keeps the button off (counted as not shown).
 */
export function useFailoverPermission(
  run: Pick<RecoveryRun, 'entityRef' | 'plan'>,
  permission: ResourcePermission<'catalog-entity'> = recoveryRunFailoverPermission,
): FailoverPermission {
  const permissionApi = useApi(permissionApiRef);
  const catalogApi = useApi(catalogApiRef);
  const booted = failoverEntityRefs(run.plan).filter(
    ref => ref !== run.entityRef,
  );
  // The refs as one string: a run re-rendered with a new object (polling) is not asked again.
  const key = [run.entityRef, ...booted].join('\n');
  const state = useAsyncRetry(async (): Promise<FailoverDenial> => {
    const [entityRef, ...others] = key.split('\n');
    // One request per entity, all at once: the app's permission API (IdentityPermissionApi)
    // batches those made together into one call to the permission backend, as the router's
    // single authorize call does.
    // Unanswered, the check fails (and is offered again): the button would stay off, saying nothing.
    const decisions = await answerWithin(
      Promise.all(
        [entityRef, ...others].map(resourceRef =>
          permissionApi.authorize({ permission, resourceRef }),
        ),
      ),
      answerTimeoutMs(),
    );
    if (!isAllowed(decisions[0])) return { entityDenied: true };
    const denied = others.filter((_, i) => !isAllowed(decisions[i + 1]));
    if (denied.length === 0) return {};
    // Named only where the catalog shows them to the caller, as the backend's refusal names them.
    try {
      const { items } = await answerWithin(
        catalogApi.getEntitiesByRefs({
          entityRefs: denied,
          fields: ['kind', 'metadata.namespace', 'metadata.name'],
        }),
        answerTimeoutMs(),
      );
      const named = denied.filter(
        (_, i) => items[i] !== undefined && items[i] !== null,
      );
      return { lacking: { named, unnamed: denied.length - named.length } };
    } catch (error) {
      return {
        lacking: {
          named: [],
          unnamed: denied.length,
          unnamedWhy: error as Error,
        },
      };
    }
  }, [permissionApi, catalogApi, key, permission]);

  if (state.loading) return { loading: true, allowed: false };
  if (state.error)
    return {
      loading: false,
      allowed: false,
      error: state.error,
      retry: state.retry,
    };
  const { entityDenied, lacking } = state.value ?? {};
  if (entityDenied || lacking)
    return { loading: false, allowed: false, entityDenied, lacking };
  return { loading: false, allowed: true };
}

/**
 * The entities a denial lacks the grant on, as a list to read: those named (through `name`), then
 * a count of those the catalog could not name or does not show.
 */
export function lackingEntities(
  lacking: NonNullable<FailoverDenial['lacking']>,
  name: (ref: string) => string = ref => ref,
): { total: number; list: string } {
  const { named, unnamed, unnamedWhy } = lacking;
  const rest =
    unnamed === 0
      ? []
      : unnamedWhy
        ? [
            `${formatCount(unnamed, 'entity', 'entities')} the catalog could not name (${errorMessage(unnamedWhy)})`,
          ]
        : [
            `${formatCount(unnamed, 'entity', 'entities')} the catalog does not show you`,
          ];
  return {
    total: named.length + unnamed,
    list: [...named.map(name), ...rest].join(', '),
  };
}
