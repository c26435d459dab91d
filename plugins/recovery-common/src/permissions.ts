import { RESOURCE_TYPE_CATALOG_ENTITY } from '@backstage/plugin-catalog-common/alpha';
import { createPermission } from '@backstage/plugin-permission-common';
import type { BootPlan } from './types';

// Runs and captures are of one entity: checked against it (resourceRef), so a policy can grant
// them by the catalog's own rules (an entity's owners, say) as it grants reading it.

/**
 * Start a recovery run (test or failover) of an entity.
 *
 * @public
 */
export const recoveryRunCreatePermission = createPermission({
  name: 'recovery.run.create',
  attributes: { action: 'create' },
  resourceType: RESOURCE_TYPE_CATALOG_ENTITY,
});

/**
 * Start a failover besides: its machines boot with production's addresses on a network that is
 * not isolated, so it is granted apart from test recoveries. Needed on the entity failed over and
 * on each entity its boot plan boots (failoverEntityRefs).
 *
 * @public
 */
export const recoveryRunFailoverPermission = createPermission({
  name: 'recovery.run.failover',
  attributes: { action: 'create' },
  resourceType: RESOURCE_TYPE_CATALOG_ENTITY,
});

/**
 * Release a finished failover: remove, for good, the live copies it keeps of production's
 * machines. Destructive, so a `delete` apart from starting one (a policy that denies deletes
 * denies this and not a failover). Needed on the entity failed over and on each entity it booted
 * (failoverEntityRefs) that the catalog still holds.
 *
 * @public
 */
export const recoveryRunReleasePermission = createPermission({
  name: 'recovery.run.release',
  attributes: { action: 'delete' },
  resourceType: RESOURCE_TYPE_CATALOG_ENTITY,
});

/**
 * Read a run's console tails (each machine's last console lines, kept as evidence when it failed):
 * they may hold what a machine prints at boot, secrets included, so seeing the entity (and its
 * runs) does not grant them. Checked on each machine (its Resource entity), not on the run's
 * entity: a failover boots machines of other teams, and a console is its machine's. Where it is
 * not granted, that machine's tail is left out and the machine marked `logTailWithheld`.
 *
 * @public
 */
export const recoveryRunLogsReadPermission = createPermission({
  name: 'recovery.run.logs.read',
  attributes: { action: 'read' },
  resourceType: RESOURCE_TYPE_CATALOG_ENTITY,
});

/**
 * Take a capture of an entity's primary machines on demand (each pauses briefly in production).
 *
 * @public
 */
export const recoveryCaptureCreatePermission = createPermission({
  name: 'recovery.capture.create',
  attributes: { action: 'create' },
  resourceType: RESOURCE_TYPE_CATALOG_ENTITY,
});

/**
 * Run a system's dependency analysis on demand: checked on the system, so the sweep of every
 * system analyses only those the policy grants it on.
 *
 * @public
 */
export const recoveryAnalysisCreatePermission = createPermission({
  name: 'recovery.analysis.create',
  attributes: { action: 'create' },
  resourceType: RESOURCE_TYPE_CATALOG_ENTITY,
});

/**
 * Push initialization events into the event store.
 *
 * @public
 */
export const recoveryEventsCreatePermission = createPermission({
  name: 'recovery.events.create',
  attributes: { action: 'create' },
});

/**
 * The catalog entities a failover of this plan boots, each of which it needs
 * recovery.run.failover on (and recovery.run.release, to release it): every machine, and every
 * service the plan puts on one. A failover keeps live copies of them on production's subnets,
 * whoever owns them; the entity failed over (a system, say) is checked apart, with
 * recovery.run.create too.
 *
 * @public
 */
export function failoverEntityRefs(plan: Pick<BootPlan, 'machines'>): string[] {
  return [
    ...new Set(plan.machines.flatMap(m => [m.machineRef, ...m.services])),
  ];
}

/**
 * Every permission of the recovery plugin, as the backend registers them.
 *
 * @public
 */
export const recoveryPermissions = [
  recoveryRunCreatePermission,
  recoveryRunFailoverPermission,
  recoveryRunReleasePermission,
  recoveryRunLogsReadPermission,
  recoveryCaptureCreatePermission,
  recoveryAnalysisCreatePermission,
  recoveryEventsCreatePermission,
];
