import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { NotAllowedError, NotFoundError } from '@backstage/errors';
import {
  type BootPlan,
  failoverEntityRefs,
  type RecoveryRun,
  RUN_ID_LABEL,
  recoveryRunCreatePermission,
  recoveryRunFailoverPermission,
  recoveryRunReleasePermission,
} from '@backstage-recovery/plugin-recovery-common';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import type { PlanService } from '../service/PlanService';
import {
  type EntityPermission,
  isOwnScheduler,
  missingOnEach,
  principalName,
  type RecoveryAuthorizer,
} from '../service/RecoveryAuthorizer';
import { consolesSeenBy } from './consoleTails';
import type { RunService, StartRunRequest } from './RunService';
import { ACTIVE_RUN_STATUSES } from './runState';
import { isRunVisible } from './visibleRuns';

/** A run a caller asks for: who asks (the trigger, createdBy) and their grants come with their credentials. */
export type RunRequest = Pick<
  StartRunRequest,
  | 'entityRef'
  | 'mode'
  | 'options'
  | 'acceptMissingDependencies'
  | 'acceptCycles'
  | 'recoveryPoint'
>;

/**
 * Runs newest first: one entity's, or of any the caller may see; `after`: where the page before
 * ended (a run's time and id, the store's keyset), the page that follows it.
 */
export interface RunQuery {
  entityRef?: string;
  /** Only pending and running runs: what holds the hypervisor host. */
  active?: boolean;
  limit: number;
  after?: Pick<RecoveryRun, 'createdAt' | 'id'>;
}

/**
 * The runs as a caller may start, read and release them: RunService with the caller's grants and
 * view of the catalog (as Backstage's AuthorizedEntitiesCatalog is to the catalog). A run of an
 * entity the catalog hides from the caller does not exist for them (404, left out of lists); each
 * run is answered with its plan's warnings as that caller may read them (PlanService.runSeenBy),
 * and each of its console tails only with recovery.run.logs.read on that machine (consolesSeenBy).
 * A test recovery takes recovery.run.create on its entity; a failover, recovery.run.failover too,
 * on its entity and on each machine and service it boots (authorizeFailover); releasing one,
 * recovery.run.release on the same (a delete, granted apart from starting one).
 */
export class AuthorizedRunService {
  constructor(
    private readonly runs: Pick<
      RunService,
      'start' | 'getRun' | 'listRuns' | 'releaseFailover' | 'cancel'
    >,
    private readonly authorizer: Pick<
      RecoveryAuthorizer,
      'authorizeOn' | 'decide' | 'permittedOn'
    >,
    private readonly graphs: Pick<
      CatalogGraphLoader,
      'visibleTo' | 'heldRefs' | 'requireVisible'
    >,
    private readonly plans: Pick<PlanService, 'runSeenBy'>,
  ) {}

  /** Admits a run of an entity the caller may see (else a 404, as if absent) and starts it: RunService.start. */
  async start(
    credentials: BackstageCredentials,
    request: RunRequest,
  ): Promise<RecoveryRun> {
    const { entityRef, mode } = request;
    await this.graphs.requireVisible(entityRef, credentials);
    // A failover is not isolated from production: it needs its own grant, on the entity and on
    // all it boots, checked on the plan the run makes (the entity first, so a caller without the
    // grant learns nothing of its plan).
    if (mode === 'failover') {
      const permissionsOnEntity = [
        recoveryRunCreatePermission,
        recoveryRunFailoverPermission,
      ];
      await this.authorizeFailover(credentials, {
        entityRef,
        permissions: permissionsOnEntity,
      });
    } else {
      await this.authorizer.authorizeOn(
        credentials,
        recoveryRunCreatePermission,
        entityRef,
      );
    }
    const authorizePlan =
      mode === 'failover'
        ? (plan: BootPlan) =>
            this.authorizeFailover(credentials, undefined, {
              permission: recoveryRunFailoverPermission,
              refs: failoverEntityRefs(plan).filter(ref => ref !== entityRef),
              of: `of the boot plan of ${entityRef}`,
              why:
                "A failover boots live copies of them on production's subnets and keeps them: it needs that permission on each " +
                `machine and service it boots, not only on ${entityRef}. A test recovery (an isolated lab) needs ${recoveryRunCreatePermission.name} on ${entityRef} alone`,
            })
        : undefined;
    const run = await this.runs.start({
      ...request,
      trigger: isOwnScheduler(credentials.principal) ? 'schedule' : 'user',
      createdBy: principalName(credentials.principal),
      credentials,
      authorizePlan,
    });
    return this.seenBy(run, credentials);
  }

  /** A run the caller may see; else a 404, as one that does not exist: its console tails and plan are not theirs to read. */
  async get(
    runId: string,
    credentials: BackstageCredentials,
  ): Promise<RecoveryRun> {
    const run = await this.visibleRun(runId, credentials);
    return this.seenBy(run, credentials);
  }

  /**
   * A page of runs, newest first, and the last run of it where a next page holds any (`next`).
   * An `entityRef` the caller may not see is the 404 of its other answers. Runs of any entity
   * are only those of entities the caller may see in the catalog (console tails and plans tell
   * about them), a page of `limit` of them (listVisibleRuns): so the active runs are those the
   * caller may see, and a hidden one may hold the host all the same. `after` is only a place in
   * the order: a position no run of the caller's holds reveals nothing.
   */
  async list(
    query: RunQuery,
    credentials: BackstageCredentials,
  ): Promise<{ items: RecoveryRun[]; next?: RecoveryRun }> {
    const { after, limit } = query;
    const entityRef =
      query.entityRef === undefined
        ? undefined
        : await this.graphs.requireVisible(query.entityRef, credentials);
    // What holds the hypervisor host: the entity card checks it before offering a run.
    const status = query.active ? ACTIVE_RUN_STATUSES : undefined;
    // One more than asked tells whether a next page holds any.
    const read = entityRef
      ? await this.runs.listRuns({ entityRef, status, after }, limit + 1)
      : await this.runs.listRuns({ status, after }, limit + 1, refs =>
          this.graphs.visibleTo(refs, credentials),
        );
    // Console tails: one policy call for the machines of the whole page, not one per run.
    const items = await consolesSeenBy(
      await Promise.all(
        read.slice(0, limit).map(run => this.plans.runSeenBy(run, credentials)),
      ),
      credentials,
      this.authorizer,
    );
    return { items, ...(read.length > limit && { next: items.at(-1) }) };
  }

  /**
   * Ends a finished failover's tenure on its host (failback done): RunService.releaseFailover,
   * named as released by the caller. What a failover booted serves production: removing it takes
   * recovery.run.release (a delete: a policy may grant starting failovers and not this) on what
   * its record names (its entity, its machines and their services) that the catalog still holds.
   * Its entity may have left the catalog since (production is gone): then its machines and
   * services decide, and the run is the caller's to release if the catalog shows them one. None
   * of them held any more: a 403 naming the label to remove by hand, as no grant can cover it.
   */
  async release(
    runId: string,
    credentials: BackstageCredentials,
  ): Promise<RecoveryRun> {
    const run = await this.runs.getRun(runId);
    if (!run) throw new NotFoundError(`Run ${runId} not found`);
    const booted = failoverEntityRefs(run.plan);
    const held = await this.graphs.heldRefs([run.entityRef, ...booted]);
    const entityHeld = held.includes(run.entityRef);
    // As GET /runs/:id: a run of an entity the caller may not see does not exist for them.
    const visible = entityHeld
      ? await this.isVisible(run, credentials)
      : held.length === 0 ||
        (await this.graphs.visibleTo(held, credentials)).length > 0;
    if (!visible) throw new NotFoundError(`Run ${runId} not found`);
    if (held.length === 0) {
      // No entity left to ask the policy about: no grant can cover it.
      throw new NotAllowedError(
        `Run ${run.id} cannot be released through the API: neither its entity nor any machine or service it booted is in the ` +
          `catalog any more, so no one's ${recoveryRunReleasePermission.name} can be checked on them. Remove what it kept on ` +
          `hypervisor host '${run.hypervisorHost}' by hand: everything labelled ${RUN_ID_LABEL}=${run.id}`,
      );
    }
    await this.authorizeFailover(
      credentials,
      entityHeld
        ? {
            entityRef: run.entityRef,
            permissions: [recoveryRunReleasePermission],
          }
        : undefined,
      {
        permission: recoveryRunReleasePermission,
        refs: booted.filter(ref => held.includes(ref)),
        of: `that failover ${run.id} booted`,
        why: `Releasing it removes their live copies from production: it needs that permission on each of them still in the catalog`,
      },
    );
    const released = await this.runs.releaseFailover(
      run.id,
      principalName(credentials.principal),
    );
    return this.seenBy(released, credentials);
  }

  /**
   * Cancels a pending or running test recovery of an entity the caller may see (else a 404, as
   * GET /runs/:id): RunService.cancel, named as cancelled by the caller. It takes what starting
   * one takes, recovery.run.create on the run's entity.
   */
  async cancel(
    runId: string,
    credentials: BackstageCredentials,
  ): Promise<RecoveryRun> {
    const run = await this.visibleRun(runId, credentials);
    await this.authorizer.authorizeOn(
      credentials,
      recoveryRunCreatePermission,
      run.entityRef,
    );
    const cancelled = await this.runs.cancel(
      run.id,
      principalName(credentials.principal) ?? 'an unnamed caller',
    );
    return this.seenBy(cancelled, credentials);
  }

  /** A run as the caller may read it: its plan's warnings (runSeenBy) and its console tails (consolesSeenBy). */
  private async seenBy(
    run: RecoveryRun,
    credentials: BackstageCredentials,
  ): Promise<RecoveryRun> {
    const [seen] = await consolesSeenBy(
      [await this.plans.runSeenBy(run, credentials)],
      credentials,
      this.authorizer,
    );
    return seen;
  }

  /** The run, where the caller may see it; else a 404, as one that does not exist. */
  private async visibleRun(
    runId: string,
    credentials: BackstageCredentials,
  ): Promise<RecoveryRun> {
    const run = await this.runs.getRun(runId);
    if (!run || !(await this.isVisible(run, credentials))) {
      throw new NotFoundError(`Run ${runId} not found`);
    }
    return run;
  }

  private isVisible(
    run: RecoveryRun,
    credentials: BackstageCredentials,
  ): Promise<boolean> {
    return isRunVisible(run, refs => this.graphs.visibleTo(refs, credentials));
  }

  /**
   * A failover boots live copies of its plan's machines on production's subnets and keeps them:
   * starting one takes recovery.run.failover, releasing it recovery.run.release, on each entity
   * it boots (failoverEntityRefs), not on the entity asked for alone, or a service's owners could
   * bring up (or tear down) a live copy of another team's database machine. One batched call, so
   * a policy's conditions (ownership, say) are applied by the catalog to each entity. Lacking a
   * permission on the entity itself, the caller is told that alone; else the refusal names each
   * booted entity it lacks that permission on that the catalog shows them, and counts the others.
   */
  private async authorizeFailover(
    credentials: BackstageCredentials,
    /** The entity failed over and what it needs there; none once it has left the catalog. */
    root: { entityRef: string; permissions: EntityPermission[] } | undefined,
    /** What it boots besides and what each needs there (to start it, or to release it); none to check the entity alone. */
    booted?: {
      permission: EntityPermission;
      refs: string[];
      of: string;
      why: string;
    },
  ): Promise<void> {
    const own = root
      ? root.permissions.map(permission => ({
          permission,
          resourceRef: root.entityRef,
        }))
      : [];
    const others = booted?.refs.filter(ref => ref !== root?.entityRef) ?? [];
    if (own.length + others.length === 0) return;
    const allowed = await this.authorizer.decide(credentials, [
      ...own,
      ...others.map(resourceRef => ({
        permission: booted!.permission,
        resourceRef,
      })),
    ]);
    const ownDenied = own.filter((_, index) => !allowed[index]);
    if (ownDenied.length > 0) {
      throw new NotAllowedError(
        `Missing permission ${ownDenied.map(c => c.permission.name).join(' and ')} on ${root!.entityRef}`,
      );
    }
    const denied = others.filter((_, index) => !allowed[own.length + index]);
    if (denied.length === 0) return;
    throw missingOnEach(
      booted!.permission,
      denied,
      await this.graphs.visibleTo(denied, credentials),
      booted!.of,
      booted!.why,
    );
  }
}
