import type {
  BackstageCredentials,
  PermissionsService,
} from '@backstage/backend-plugin-api';
import { NotAllowedError } from '@backstage/errors';
import {
  AuthorizeResult,
  type BasicPermission,
  type ResourcePermission,
} from '@backstage/plugin-permission-common';

/** A recovery permission on one catalog entity: the policy decides on that entity (the catalog applies conditions such as ownership). */
export type EntityPermission = ResourcePermission<'catalog-entity'>;

/**
 * The caller's grants, as the permission policy decides them. Runs, captures and analyses are of
 * one entity: the policy decides on that entity. A refusal is a NotAllowedError (403) naming the
 * permission and, for an entity's, the entity.
 */
export class RecoveryAuthorizer {
  constructor(
    private readonly permissions: Pick<PermissionsService, 'authorize'>,
  ) {}

  /** A permission on no entity (recovery.events.create). */
  async authorize(
    credentials: BackstageCredentials,
    permission: BasicPermission,
  ): Promise<void> {
    const [decision] = await this.permissions.authorize([{ permission }], {
      credentials,
    });
    if (decision.result !== AuthorizeResult.ALLOW) {
      throw new NotAllowedError(`Missing permission ${permission.name}`);
    }
  }

  /** Those of `entityRefs` the caller has `permission` on, in one call to the policy. */
  async permittedOn(
    credentials: BackstageCredentials,
    permission: EntityPermission,
    entityRefs: string[],
  ): Promise<string[]> {
    if (entityRefs.length === 0) return [];
    const allowed = await this.decide(
      credentials,
      entityRefs.map(resourceRef => ({ permission, resourceRef })),
    );
    return entityRefs.filter((_, i) => allowed[i]);
  }

  async authorizeOn(
    credentials: BackstageCredentials,
    permission: EntityPermission,
    entityRef: string,
  ): Promise<void> {
    if (
      (await this.permittedOn(credentials, permission, [entityRef])).length ===
      0
    ) {
      throw new NotAllowedError(
        `Missing permission ${permission.name} on ${entityRef}`,
      );
    }
  }

  /** Whether each request is allowed, in one call to the policy (its conditions applied to each entity by the catalog). */
  async decide(
    credentials: BackstageCredentials,
    requests: Array<{ permission: EntityPermission; resourceRef: string }>,
  ): Promise<boolean[]> {
    if (requests.length === 0) return [];
    const decisions = await this.permissions.authorize(requests, {
      credentials,
    });
    return decisions.map(decision => decision.result === AuthorizeResult.ALLOW);
  }
}

/**
 * The 403 for a permission lacking on some of the entities an action touches besides the one asked
 * for (`denied`): it names those the catalog shows the caller (`named`) and counts the others, so
 * a refusal tells of no entity hidden from them. `of` says whose they are, `why` why each needs it.
 */
export function missingOnEach(
  permission: EntityPermission,
  denied: string[],
  named: string[],
  of: string,
  why: string,
): NotAllowedError {
  return new NotAllowedError(
    `Missing permission ${permission.name} on ${entities(denied.length)} ${of}: ${namedAndHidden(named, denied.length)}. ${why}`,
  );
}

const entities = (n: number) => `${n} ${n === 1 ? 'entity' : 'entities'}`;

/**
 * `total` entities as a message to a caller lists them: those the catalog shows them (`named`),
 * then how many others it does not, so that it tells of no entity hidden from them.
 */
export function namedAndHidden(named: string[], total: number): string {
  const hidden = total - named.length;
  return [
    ...named,
    ...(hidden > 0
      ? [`${entities(hidden)} the catalog does not show you`]
      : []),
  ].join(', ');
}

/** Who asked: a user's entity ref, a service's subject, or an external caller's subject. */
export function principalName(principal: unknown): string | undefined {
  const p = principal as { userEntityRef?: string; subject?: string };
  return p?.userEntityRef ?? p?.subject;
}

/** The scheduler module calls as the recovery plugin itself: its runs' trigger is the schedule. */
export function isOwnScheduler(principal: unknown): boolean {
  const p = principal as { type?: string; subject?: string };
  return p?.type === 'service' && p.subject === 'plugin:recovery';
}
