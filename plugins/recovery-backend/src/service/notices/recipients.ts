import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import {
  type Entity,
  parseEntityRef,
  RELATION_HAS_MEMBER,
  RELATION_PARENT_OF,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import type { NotificationRecipients } from '@backstage/plugin-notifications-node';

// Whom readiness notices reach. The notifications plugin resolves `entity` recipients to users as
// the catalog is when it sends; an alarm's end must reach those the alarm reached, whoever the
// owners are by then, so the notifier resolves them as the plugin does and keeps them.

/** Refs compare in any case, as the catalog looks them up. */
export const refKey = (ref: string) => ref.toLocaleLowerCase('en-US');

/** A set of refs as a key: in any case, in any order. */
export const setKey = (refs: string[]) =>
  JSON.stringify([...new Set(refs.map(refKey))].sort());

export function isUserRef(ref: string): boolean {
  try {
    return parseEntityRef(ref).kind.toLocaleLowerCase('en-US') === 'user';
  } catch {
    return false;
  }
}

/** `refs` as recipients, each once (refs in any case), in their order. */
export function recipientsOf(refs: string[]): NotificationRecipients {
  const unique = new Map<string, string>();
  for (const ref of refs)
    if (!unique.has(refKey(ref))) unique.set(refKey(ref), ref);
  return {
    type: 'entity',
    entityRef: unique.size > 1 ? [...unique.values()] : refs[0],
  };
}

/**
 * Those an alarm went to, for the notices that close it ("recoverable again", "no longer assessed")
 * and its rewrite in place: the owners kept with it, which the notifications plugin resolves as
 * they are now, and the users it reached, who may be in none of them any more (their group removed
 * from the catalog, say). Not the entity: owners it has now that the alarm did not reach were not
 * told it was lost, and may not be allowed to see the run it named. An alarm told before users
 * were kept went to the entity, whose owners were not all kept: the entity too (its title names
 * that entity alone).
 */
export function alarmRecipients(told: {
  entityRef: string;
  owners?: string[];
  users?: string[];
}): string[] {
  return told.users
    ? [...(told.owners ?? []), ...told.users]
    : [told.entityRef, ...(told.owners ?? [])];
}

/** The notices closing the alarms of `told` go to those each alarm reached, each once, in their order. */
export function closingRecipients(
  told: Array<{ entityRef: string; owners?: string[]; users?: string[] }>,
): NotificationRecipients {
  return recipientsOf(told.flatMap(alarmRecipients));
}

/** Whether every one of `owners` owns `runOwners`' entity too: they are told of that entity by its own notices. */
export function ownsAll(runOwners: string[], owners: string[]): boolean {
  const theirs = new Set(runOwners.map(refKey));
  return owners.length > 0 && owners.every(o => theirs.has(refKey(o)));
}

/** The fields of a group that say who is in it. */
const GROUP_FIELDS = [
  'kind',
  'metadata.namespace',
  'metadata.name',
  'relations',
];

/**
 * The groups among `owners` and those under them, by refKey: a request a level of nesting, asking
 * only for the groups needed (a catalog's groups may be many); none when no owner is a group.
 */
export async function groupsOf(
  owners: string[],
  directory: Pick<CatalogService, 'getEntitiesByRefs'>,
  credentials: BackstageCredentials,
): Promise<Map<string, Entity>> {
  const groups = new Map<string, Entity>();
  const asked = new Set<string>();
  let level = [...new Set(owners.filter(ref => !isUserRef(ref)).map(refKey))];
  while (level.length > 0) {
    level.forEach(ref => asked.add(ref));
    const { items } = await directory.getEntitiesByRefs(
      { entityRefs: level, fields: GROUP_FIELDS },
      { credentials },
    );
    const found = items.filter(
      (e): e is Entity => e?.kind.toLocaleLowerCase('en-US') === 'group',
    );
    for (const group of found)
      groups.set(refKey(stringifyEntityRef(group)), group);
    const below = found.flatMap(g =>
      (g.relations ?? [])
        .filter(r => r.type === RELATION_PARENT_OF)
        .map(r => refKey(r.targetRef)),
    );
    level = [...new Set(below)].filter(ref => !asked.has(ref));
  }
  return groups;
}

/**
 * The users a notice sent to `owners` reaches, as the notifications plugin's own `entity`
 * recipients resolve them: a user is itself (whether the catalog holds it or not), a group its
 * member users and those of the groups under it, however deep; a ref that is neither a user nor a
 * group of `groups` (a group removed from the catalog) reaches no one. `groups`: the catalog's
 * groups, by refKey (groupsOf).
 */
export function usersReached(
  owners: string[],
  groups: Map<string, Entity>,
): string[] {
  const users = new Map<string, string>();
  const seen = new Set(owners.map(refKey));
  const todo = [...owners];
  for (let ref = todo.pop(); ref !== undefined; ref = todo.pop()) {
    if (isUserRef(ref)) {
      if (!users.has(refKey(ref))) users.set(refKey(ref), ref);
      continue;
    }
    for (const { type, targetRef } of groups.get(refKey(ref))?.relations ??
      []) {
      if (type === RELATION_HAS_MEMBER && isUserRef(targetRef)) {
        if (!users.has(refKey(targetRef)))
          users.set(refKey(targetRef), targetRef);
      } else if (type === RELATION_PARENT_OF && !seen.has(refKey(targetRef))) {
        seen.add(refKey(targetRef));
        todo.push(targetRef);
      }
    }
  }
  return [...users.values()].sort();
}

/** Why `owner` reaches no user, for the log that says a loss was told to no one. */
export function whyNoOneReached(
  owner: string,
  groups: Map<string, Entity>,
): string {
  if (groups.has(refKey(owner))) return `${owner} with no members`;
  return parseEntityRef(owner).kind.toLocaleLowerCase('en-US') === 'group'
    ? `${owner} not in the catalog`
    : `${owner} neither a user nor a group`;
}
