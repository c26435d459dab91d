import { formatSeconds, type ReadinessStatus, type ReadinessSummary } from '@backstage-recovery/plugin-recovery-common';
import type { AuthService, LoggerService } from '@backstage/backend-plugin-api';
import { type Entity, parseEntityRef, RELATION_HAS_MEMBER, RELATION_PARENT_OF, stringifyEntityRef } from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import type { NotificationPayload } from '@backstage/plugin-notifications-common';
import type { NotificationRecipients, NotificationService } from '@backstage/plugin-notifications-node';
import type { ReadinessNotice, ReadinessNoticeStore } from '../database/ReadinessNoticeStore';
import type { ReadinessService } from './ReadinessService';

/** The topic owners can filter recovery notices by in the notifications page. */
export const READINESS_TOPIC = 'recovery readiness';

/** Reasons a notice quotes; the entity's page lists them all. */
const MAX_REASONS = 3;

const STATUS_WORDS: Record<ReadinessStatus, string> = {
  ready: 'ready',
  'at-risk': 'at risk',
  unknown: 'not yet test-recovered',
  'not-recoverable': 'not recoverable',
};

/** The entity's Recovery tab, as the portal routes entity pages. */
export function recoveryTabLink(entityRef: string): string {
  const { kind, namespace, name } = parseEntityRef(entityRef);
  return `/catalog/${encodeURIComponent(namespace)}/${encodeURIComponent(kind.toLocaleLowerCase('en-US'))}/${encodeURIComponent(name)}/recovery`;
}

/** Topic and scope: a later notice of the entity replaces the earlier one in each inbox. */
function inScope(entityRef: string) {
  return { topic: READINESS_TOPIC, scope: `recovery-readiness:${entityRef}` };
}

/** How long it was not recoverable, then exactly when: `for 2.5 h, from <ISO> to <ISO>`. */
function lasted(since: string, until: string): string {
  return `for ${formatSeconds(Math.max(0, Date.parse(until) - Date.parse(since)) / 1000)}, from ${since} to ${until}`;
}

function quoted(reasons: string[]): string {
  const shown = reasons.slice(0, MAX_REASONS).join('; ');
  return reasons.length > MAX_REASONS ? `${shown}; and ${reasons.length - MAX_REASONS} more` : shown;
}

/**
 * What the owners of `now.entityRef` are told, if anything, given the status they were last told
 * of (`before`, absent for an entity not seen yet), and the notice to keep. Pure.
 *
 * An entity that becomes not recoverable (also when first seen so) is a high-severity notice; one
 * that stops being so is a low one in its place (same scope: the notifications plugin replaces
 * the first). Any other change (ready to at risk, say) is kept without a notice: the overview
 * and the entity's page show it.
 */
export function readinessNotice(
  before: ReadinessNotice | undefined,
  now: Pick<ReadinessSummary, 'entityRef' | 'status' | 'reasons'>,
  at: string,
): { notice: ReadinessNotice; payload?: NotificationPayload } {
  const notice = before?.status === now.status ? before : { entityRef: now.entityRef, status: now.status, since: at };
  const lost = now.status === 'not-recoverable' && before?.status !== 'not-recoverable';
  const regained = before?.status === 'not-recoverable' && now.status !== 'not-recoverable';
  if (!lost && !regained) return { notice };
  const common = {
    link: recoveryTabLink(now.entityRef),
    ...inScope(now.entityRef),
    metadata: { entityRef: now.entityRef, status: now.status },
  };
  if (lost) {
    return {
      notice,
      payload: {
        ...common,
        title: `${now.entityRef} is not recoverable`,
        description: quoted(now.reasons) || 'Its readiness says so without a reason',
        severity: 'high',
      },
    };
  }
  const words = STATUS_WORDS[now.status];
  return {
    notice,
    payload: {
      ...common,
      title: `${now.entityRef} is recoverable again (${words})`,
      description:
        `Not recoverable ${lasted(before!.since, at)}` + (now.reasons.length > 0 ? `; now ${words}: ${quoted(now.reasons)}` : ''),
      severity: 'low',
    },
  };
}

/**
 * What closes the notice of an entity the plugin no longer assesses (deleted from the catalog, or
 * no longer on a machine), if its owners were told it is not recoverable: else it would stay in
 * their inbox for ever. `at`: when it was first found missing. Pure.
 */
export function departureNotice(before: ReadinessNotice, at: string): NotificationPayload | undefined {
  if (before.status !== 'not-recoverable') return undefined;
  return {
    title: `${before.entityRef} is no longer assessed for recovery`,
    description: `It left the catalog, or runs on no machine now; it had been not recoverable ${lasted(before.since, at)}`,
    severity: 'low',
    ...inScope(before.entityRef),
    metadata: { entityRef: before.entityRef, status: 'not-assessed' },
  };
}

/** A notice as kept once its entity is listed again after a sweep found it missing: it never left. */
function listedAgain(notice: ReadinessNotice): ReadinessNotice {
  if (!notice.absentSince) return notice;
  const { absentSince: _, ...kept } = notice;
  return kept;
}

/** Refs compare in any case, as the catalog looks them up. */
const refKey = (ref: string) => ref.toLocaleLowerCase('en-US');

function isUserRef(ref: string): boolean {
  try {
    return parseEntityRef(ref).kind.toLocaleLowerCase('en-US') === 'user';
  } catch {
    return false;
  }
}

/**
 * Who gets an entity's notices: the entity, which the notifications plugin resolves to its owners
 * now, and those told it is not recoverable, so that a notice closing it reaches them also after
 * the entity changed owners or left the catalog: the owners kept with it, which the notifications
 * plugin resolves as they are now, and the users it reached, who may be in none of them any more
 * (their group removed from the catalog, say). Each once.
 */
export function noticeRecipients(entityRef: string, told?: ReadinessNotice): NotificationRecipients {
  const kept = told?.status === 'not-recoverable' ? [...(told.owners ?? []), ...(told.users ?? [])] : [];
  const refs = new Map<string, string>();
  for (const ref of [entityRef, ...kept]) if (!refs.has(refKey(ref))) refs.set(refKey(ref), ref);
  return { type: 'entity', entityRef: refs.size > 1 ? [...refs.values()] : entityRef };
}

/** The fields of a group that say who is in it. */
const GROUP_FIELDS = ['kind', 'metadata.namespace', 'metadata.name', 'relations'];

/**
 * The users a notice sent to `owners` reaches, as the notifications plugin's own `entity`
 * recipients resolve them: a user is itself (whether the catalog holds it or not), a group its
 * member users and those of the groups under it, however deep; a ref that is neither a user nor a
 * group of `groups` (a group removed from the catalog) reaches no one. `groups`: the catalog's
 * groups, by refKey. Pure.
 */
export function usersReached(owners: string[], groups: Map<string, Entity>): string[] {
  const users = new Map<string, string>();
  const seen = new Set(owners.map(refKey));
  const todo = [...owners];
  for (let ref = todo.pop(); ref !== undefined; ref = todo.pop()) {
    if (isUserRef(ref)) {
      if (!users.has(refKey(ref))) users.set(refKey(ref), ref);
      continue;
    }
    for (const { type, targetRef } of groups.get(refKey(ref))?.relations ?? []) {
      if (type === RELATION_HAS_MEMBER && isUserRef(targetRef)) {
        if (!users.has(refKey(targetRef))) users.set(refKey(targetRef), targetRef);
      } else if (type === RELATION_PARENT_OF && !seen.has(refKey(targetRef))) {
        seen.add(refKey(targetRef));
        todo.push(targetRef);
      }
    }
  }
  return [...users.values()].sort();
}

export interface NotifySummary {
  /** Entities assessed. */
  entities: number;
  /** Notices sent, and those that could not be (told at the next sweep). */
  sent: number;
  failed: number;
}

/**
 * Tells entities' owners, through Backstage notifications, when an entity stops being
 * recoverable and when it is again. Each sweep assesses every recoverable entity as the plugin
 * sees it and compares with what was last told; a notice is recorded as soon as it is sent, one
 * that cannot be sent is not, so the next sweep sends it.
 */
export class ReadinessNotifier {
  constructor(
    private readonly notices: ReadinessNoticeStore,
    private readonly readiness: Pick<ReadinessService, 'readinessOf'>,
    private readonly catalog: {
      /** The entities readiness is assessed for (those the overview lists). */
      recoverableEntities(): Promise<string[]>;
      ownersOf(entityRefs: string[]): Promise<Map<string, string[]>>;
    },
    /** Read for the groups owners are, to know whom a loss reaches (see usersReached). */
    private readonly directory: Pick<CatalogService, 'getEntitiesByRefs'>,
    private readonly notifications: NotificationService,
    private readonly auth: Pick<AuthService, 'getOwnServiceCredentials'>,
    private readonly logger: LoggerService,
  ) {}

  /**
   * `signal` is the scheduler's: aborted at the task's timeout, when another replica may start a
   * sweep of its own, this one sends no more (what it sent is recorded).
   */
  async sweep(signal?: AbortSignal): Promise<NotifySummary> {
    const [refs, told] = await Promise.all([this.catalog.recoverableEntities(), this.notices.all()]);
    // Assessed as the plugin sees the catalog, but told to owners: a run of another entity (a
    // system they may not see) is quoted without its message, console or machines.
    const items = await this.readiness.readinessOf(refs, await this.auth.getOwnServiceCredentials(), { ownRunsOnly: true });
    const at = new Date().toISOString();
    const decided = items.map(item => {
      const before = told.get(item.entityRef);
      return { before, ...readinessNotice(before && listedAgain(before), item, at) };
    });
    // Those told an entity is not recoverable are kept with it, while the catalog still names
    // them: the notice closing it must reach them once it no longer does. A loss is a new notice
    // without owners; one told before owners were kept (migration 20261208000000) has none either.
    const unowned = decided.filter(d => d.notice.status === 'not-recoverable' && !d.notice.owners).map(d => d.notice.entityRef);
    const owners = await this.catalog.ownersOf(unowned);
    // A loss is kept with the users it reaches besides: a group removed from the catalog by the
    // time it is closed resolves to no one, its former members still have the alarm. Read for
    // every loss of the sweep at once; an alarm told before they were kept (migration
    // 20261210000600) has none, and is closed to its owners alone.
    const losses = decided.filter(d => d.payload && d.notice.status === 'not-recoverable').map(d => d.notice.entityRef);
    const groups = await this.groupsOf(losses.flatMap(ref => owners.get(ref) ?? []));
    const reached = new Map(losses.map(ref => [ref, usersReached(owners.get(ref) ?? [], groups)]));
    const owned = (notice: ReadinessNotice): ReadinessNotice => {
      if (!owners.has(notice.entityRef)) return notice;
      const users = reached.get(notice.entityRef);
      return { ...notice, owners: owners.get(notice.entityRef)!, ...(users && { users }) };
    };
    const changed: ReadinessNotice[] = [];
    /** Losses told, with the owners they went to. */
    const lost: ReadinessNotice[] = [];
    const failures: string[] = [];
    let sent = 0;
    /** Sends one notice; false if the notifications service refused it (kept for the next sweep). */
    const send = async (entityRef: string, recipients: NotificationRecipients, payload: NotificationPayload) => {
      signal?.throwIfAborted();
      try {
        await this.notifications.send({ recipients, payload });
        sent += 1;
        return true;
      } catch (error) {
        failures.push(`${entityRef}: ${error instanceof Error ? error.message : String(error)}`);
        return false;
      }
    };
    for (const { before, notice, payload } of decided) {
      const kept = owned(notice);
      if (!payload) {
        if (kept !== before) changed.push(kept);
        continue;
      }
      // Kept at once: a sweep stopped past here (a restart, a timeout) must not send it again,
      // which resets the owners' read state and repeats it through any email processor.
      if (await send(notice.entityRef, noticeRecipients(notice.entityRef, before), payload)) {
        await this.notices.save([kept]);
        if (kept.status === 'not-recoverable') lost.push(kept);
      }
    }
    await this.notices.save(changed);
    this.warnUntold(lost, groups);
    const listed = new Set(refs);
    const forgotten: string[] = [];
    const absent: ReadinessNotice[] = [];
    for (const before of told.values()) {
      if (listed.has(before.entityRef)) continue;
      const payload = departureNotice(before, before.absentSince ?? at);
      if (!payload) forgotten.push(before.entityRef);
      // A list without it may have been read while the catalog was being rebuilt: an alarm
      // is closed only if it is still missing at the next sweep.
      else if (!before.absentSince) absent.push({ ...before, absentSince: at });
      // Forgotten at once, as a notice is kept at once above: else a sweep stopped past here
      // would close it again.
      else if (await send(before.entityRef, noticeRecipients(before.entityRef, before), payload)) await this.notices.remove([before.entityRef]);
    }
    await this.notices.save(absent);
    await this.notices.remove(forgotten);
    if (sent > 0) this.logger.info(`Readiness notices: told the owners of ${sent} entities of a change`);
    if (failures.length > 0) {
      this.logger.warn(
        `Readiness notices: could not notify the owners of ${failures.length} entities, retried at the next sweep ` +
          `(is @backstage/plugin-notifications-backend installed? recovery.notifications.enabled: false turns notices off); first: ${failures[0]}`,
      );
    }
    return { entities: items.length, sent, failed: failures.length };
  }

  /**
   * The groups among `owners` and those under them, by refKey: one request a level of nesting,
   * for every loss of the sweep at once, asking only for the groups needed (a catalog's groups
   * may be many); none when no owner is a group (nor for a sweep without a loss).
   */
  private async groupsOf(owners: string[]): Promise<Map<string, Entity>> {
    const groups = new Map<string, Entity>();
    const asked = new Set<string>();
    let level = [...new Set(owners.filter(ref => !isUserRef(ref)).map(refKey))];
    const credentials = level.length > 0 ? await this.auth.getOwnServiceCredentials() : undefined;
    while (level.length > 0) {
      level.forEach(ref => asked.add(ref));
      const { items } = await this.directory.getEntitiesByRefs({ entityRefs: level, fields: GROUP_FIELDS }, { credentials: credentials! });
      const found = items.filter((e): e is Entity => e?.kind.toLocaleLowerCase('en-US') === 'group');
      for (const group of found) groups.set(refKey(stringifyEntityRef(group)), group);
      const below = found.flatMap(g => (g.relations ?? []).filter(r => r.type === RELATION_PARENT_OF).map(r => refKey(r.targetRef)));
      level = [...new Set(below)].filter(ref => !asked.has(ref));
    }
    return groups;
  }

  /**
   * The notifications plugin resolves an owner the catalog no longer holds (a group removed from
   * it), or a group without members, to no one, and says nothing: a loss that reached no user
   * reached no one, which only this log can say.
   */
  private warnUntold(lost: ReadinessNotice[], groups: Map<string, Entity>): void {
    const untold = lost.filter(n => n.users?.length === 0);
    if (untold.length === 0) return;
    const why = (owner: string) => {
      if (groups.has(refKey(owner))) return `${owner} with no members`;
      return parseEntityRef(owner).kind.toLocaleLowerCase('en-US') === 'group' ? `${owner} not in the catalog` : `${owner} neither a user nor a group`;
    };
    const whose = untold.map(n => `${n.entityRef} (${n.owners?.length ? `owned by ${n.owners.map(why).join(', ')}` : 'owned by no one'})`);
    this.logger.warn(
      `Readiness notices: told no one that ${untold.length} ${untold.length === 1 ? 'entity is' : 'entities are'} not recoverable, ` +
        `as no owner of theirs resolves to a user: ${whose.join('; ')}; give them an owner the catalog holds, with members`,
    );
  }
}
