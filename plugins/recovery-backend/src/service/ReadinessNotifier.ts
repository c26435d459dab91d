import { formatSeconds, type ReadinessStatus, type ReadinessSummary, type RunSummary } from '@backstage-recovery/plugin-recovery-common';
import type { AuthService, LoggerService } from '@backstage/backend-plugin-api';
import { type Entity, parseEntityRef, RELATION_HAS_MEMBER, RELATION_PARENT_OF, stringifyEntityRef } from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import type { NotificationPayload } from '@backstage/plugin-notifications-common';
import type { NotificationRecipients, NotificationService } from '@backstage/plugin-notifications-node';
import { createHash } from 'node:crypto';
import type { PastAlarm, ReadinessAlarm, ReadinessNotice, ReadinessNoticeStore } from '../database/ReadinessNoticeStore';
import { OTHER_ENTITYS_RUN, runNamedIn } from './readiness';
import type { ReadinessService } from './ReadinessService';

/** The topic owners can filter recovery notices by in the notifications page. */
export const READINESS_TOPIC = 'recovery readiness';

/** Reasons a notice quotes; the entity's page lists them all. */
const MAX_REASONS = 3;
/** Entities a title names; the rest are counted. */
const TITLE_NAMES = 3;
/** Entities a description names; the rest are counted. */
const LISTED_NAMES = 20;
/** The notifications backend keeps a title in 255 characters (`string` columns on PostgreSQL). */
const MAX_TITLE = 255;
/**
 * How long an entity missing from the recoverable entities is remembered as it was last seen: one
 * back within it is compared with that, so a loss is told across a catalog glitch (an entity
 * provider's full refresh that left it out, a location that failed to read, a machine briefly
 * removed), which lasts as long as the catalog's own cycles (providers' schedules, processing
 * and orphan clean-up: minutes to hours), not as long as two sweeps (two minutes in the demo).
 * A day covers a provider refreshing nightly; past it the entity counts as new again. Its
 * alarm, if any, is closed at the second sweep all the same: see sweep.
 */
export const ABSENCE_KEPT_MS = 24 * 60 * 60 * 1000;

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

/** A time as the plugin writes times, to the second and saying it is UTC: `2026-12-05 23:56:05 UTC`. */
export function utcTime(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const utc = new Date(ms).toISOString();
  return `${utc.slice(0, 10)} ${utc.slice(11, 19)} UTC`;
}

/**
 * An entity as notices name it: a Component of the default namespace by its name (`web`), any
 * other with its kind (`system demo-site`) and a namespace other than the default
 * (`component team-b/api`).
 */
export function entityName(entityRef: string): string {
  try {
    const { kind, namespace, name } = parseEntityRef(entityRef);
    const inDefault = namespace.toLocaleLowerCase('en-US') === 'default';
    const k = kind.toLocaleLowerCase('en-US');
    if (k === 'component' && inDefault) return name;
    return `${k} ${inDefault ? name : `${namespace}/${name}`}`;
  } catch {
    return entityRef;
  }
}

/** `web`, `web and database`, `web, database and dns`; past `max`, the rest counted: `web, database, dns and 3 more`. */
export function entityNames(entityRefs: string[], max = TITLE_NAMES): string {
  const names = entityRefs.map(entityName);
  if (names.length > max) return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/** A title the notifications backend can store. */
function clipped(title: string): string {
  return title.length <= MAX_TITLE ? title : `${title.slice(0, MAX_TITLE - 1)}…`;
}

/**
 * A scope of its own for each notice: the notifications plugin replaces a notice sent in a scope it
 * already holds in place, keeping when the first was created, which the notifications page shows
 * (and orders by). Made of what the notice is about, so that one sent again after a sweep stopped
 * replaces itself rather than adding a copy.
 */
export function noticeScope(...parts: string[]): string {
  return `recovery-readiness:${createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32)}`;
}

/** How long it was not recoverable, then exactly when: `for 2.5 h, from 2026-12-05 23:56:05 UTC to 2026-12-06 02:26:05 UTC`. */
function lasted(since: string, until: string): string {
  return `for ${formatSeconds(Math.max(0, Date.parse(until) - Date.parse(since)) / 1000)}, from ${utcTime(since)} to ${utcTime(until)}`;
}

function quoted(reasons: string[]): string {
  const shown = reasons.slice(0, MAX_REASONS).join('; ');
  return reasons.length > MAX_REASONS ? `${shown}; and ${reasons.length - MAX_REASONS} more` : shown;
}

/** What a notice says of a run: a failover counts as a test recovery does, but is no test. */
const runKind = (mode: RunSummary['mode']) => (mode === 'failover' ? 'failover' : 'test recovery');

/**
 * The change the owners of an entity are told of, given what was last seen of it (`before`) and
 * its status now. Notices are for changes, and an alarm for a loss:
 * - `lost`: seen recoverable (ready, at risk, or not yet test-recovered), now not recoverable;
 * - `regained`: not recoverable, and told so, now recoverable again.
 * An entity seen for the first time (a new entity, a backend started on an empty database, one
 * back after missing for ABSENCE_KEPT_MS) has no earlier state to compare: whatever its status, it is recorded and nobody is told; one never seen
 * recoverable (never captured, say) is not an incident, so neither is its becoming recoverable.
 * Any other change (ready to at risk, say) is recorded untold: the overview and its page show it.
 */
export function readinessChange(before: ReadinessNotice | undefined, status: ReadinessStatus): 'lost' | 'regained' | undefined {
  if (!before) return undefined;
  if (status === 'not-recoverable') return before.status === 'not-recoverable' ? undefined : 'lost';
  return before.status === 'not-recoverable' && isOpen(before.alarm) ? 'regained' : undefined;
}

/** When the loss an alarm told was first seen: when it was sent, for one sent before that was kept. */
const lostAt = (alarm: ReadinessAlarm) => alarm.lostAt ?? alarm.sentAt;

/** An alarm this entity has not been told the end of. */
const isOpen = (alarm: ReadinessAlarm | undefined): alarm is ReadinessAlarm => alarm !== undefined && !alarm.closedAt;

/**
 * What is kept of an entity seen with `status` at `at`: what was kept while its status holds; a
 * new status from `at`. An alarm that waits for other entities to be resolved stays, with whom it
 * went to.
 */
export function nextNotice(before: ReadinessNotice | undefined, entityRef: string, status: ReadinessStatus, at: string): ReadinessNotice {
  if (before?.status === status) return before;
  const notice: ReadinessNotice = { entityRef, status, since: at, ...(before?.pastAlarms && { pastAlarms: before.pastAlarms }) };
  if (!before?.alarm?.closedAt) return notice;
  return { ...notice, alarm: before.alarm, ...(before.owners && { owners: before.owners }), ...(before.users && { users: before.users }) };
}

/** A failed run an entity is not recoverable by (its last run), as its owners are told of it. */
export interface LossCause {
  runId: string;
  runEntityRef: string;
  mode: RunSummary['mode'];
  /** ISO time it ended. */
  at: string;
  /** The machine it failed at; none when it failed as a whole. */
  failedAt?: string;
  /** Whether the owners told may be shown which run, its entity and its message: see ReadinessNotifier. */
  named: boolean;
  /** Its message (only where named). */
  message?: string;
}

/** An entity that became not recoverable, as its alarm tells it. */
export interface Loss {
  entityRef: string;
  /** Its reasons as its owners may read them, less the failure of `cause`, which the notice words itself. */
  reasons: string[];
  cause?: LossCause;
}

/**
 * The alarm telling the owners of `losses` that they are not recoverable: one notice for the
 * entities one cause (one failed run, or the same reasons) made not recoverable, sent to the same
 * owners, in a scope of its own. High severity. Pure.
 */
export function lossNotice(told: Loss[], scope: string): NotificationPayload {
  // The entity of the run that failed first, where it is one of them.
  const ran = (l: Loss) => (l.cause && refKey(l.cause.runEntityRef) === refKey(l.entityRef) ? 0 : 1);
  const losses = [...told].sort((a, b) => ran(a) - ran(b));
  const refs = losses.map(l => l.entityRef);
  const [first] = losses;
  const are = refs.length === 1 ? 'is' : 'are';
  const listed = entityNames(refs, LISTED_NAMES);
  const common = { severity: 'high' as const, topic: READINESS_TOPIC, scope, metadata: { entityRefs: refs, status: 'not-recoverable' } };
  const cause = first.cause;
  if (!cause) {
    const reasons = quoted(first.reasons) || 'its readiness says so without a reason';
    return {
      ...common,
      title: clipped(`${entityNames(refs)} ${are} not recoverable`),
      description: refs.length === 1 ? reasons : `For each of ${listed}: ${reasons}`,
      link: recoveryTabLink(first.entityRef),
    };
  }
  const kind = runKind(cause.mode);
  const own = refs.length === 1 && refKey(cause.runEntityRef) === refKey(first.entityRef);
  const more = losses.filter(l => l.reasons.length > 0);
  const besides =
    more.length === 0
      ? ''
      : refs.length === 1
        ? `. Also: ${quoted(first.reasons)}`
        : `. ${entityNames(more.map(l => l.entityRef), LISTED_NAMES)} ${more.length === 1 ? 'is' : 'are'} not recoverable for more reasons too: see ${more.length === 1 ? 'its' : 'their'} Recovery tab`;
  const lastOf = own ? '' : `; it was the last ${kind} of ${listed}, not recoverable until one succeeds`;
  if (cause.named) {
    const whose = own ? 'its' : `${entityName(cause.runEntityRef)}'s`;
    return {
      ...common,
      metadata: { ...common.metadata, runId: cause.runId, runEntityRef: cause.runEntityRef },
      title: clipped(`${entityNames(refs)} ${are} not recoverable: ${whose} ${kind} failed`),
      description:
        `${own ? 'Its' : `${entityName(cause.runEntityRef)}'s`} ${kind} (run ${cause.runId}) failed at ${utcTime(cause.at)}: ` +
        `${cause.message ?? 'unknown error'}${lastOf}${besides}`,
      link: recoveryTabLink(cause.runEntityRef),
    };
  }
  // Not all of them may see the entity the run was of: not named, nor its message.
  const where = cause.failedAt ? `on ${cause.failedAt}` : 'as a whole';
  return {
    ...common,
    title: clipped(`${entityNames(refs)} ${are} not recoverable: a ${kind} of another entity failed`),
    description:
      `A ${kind} of another entity failed ${where} at ${utcTime(cause.at)}${lastOf}. Which run it was and why it failed are on ` +
      `${refs.length === 1 ? 'its Recovery tab' : 'their Recovery tabs'}, for those the catalog shows that entity (not named here: not all of you own it)${besides}`,
    link: recoveryTabLink(first.entityRef),
  };
}

/** An entity told it is not recoverable that no longer is (`now`), or is no longer assessed (none). */
export interface Closing {
  before: ReadinessNotice & { alarm: ReadinessAlarm };
  now?: Pick<ReadinessSummary, 'status' | 'reasons'>;
}

/**
 * What tells the owners of entities they were told are not recoverable that they are recoverable
 * again, or are no longer assessed (deleted from the catalog, or no longer on a machine: else the
 * alarm would stay in their inbox for ever), as of `at` (for those gone, when each was first found
 * missing). A notice of its own, low severity, in a scope of its own: the notifications page shows
 * it as new; the alarm is resolved in place besides (resolvedAlarm). Pure.
 */
export function closingNotice(closings: Closing[], at: string, scope: string): NotificationPayload {
  const refs = closings.map(c => c.before.entityRef);
  const [first] = closings;
  const since = closings.map(c => lostAt(c.before.alarm)).sort()[0];
  const common = { severity: 'low' as const, topic: READINESS_TOPIC, scope, link: recoveryTabLink(first.before.entityRef) };
  if (!first.now) {
    const until = closings.map(c => c.before.absentSince ?? at).sort().at(-1)!;
    const one = refs.length === 1;
    return {
      ...common,
      metadata: { entityRefs: refs, status: 'not-assessed' },
      title: clipped(`${entityNames(refs)} ${one ? 'is' : 'are'} no longer assessed for recovery`),
      description:
        `${one ? 'It' : `${entityNames(refs, LISTED_NAMES)}`} left the catalog, or ${one ? 'runs' : 'run'} on no machine now; ` +
        `${one ? 'it' : 'they'} had been not recoverable ${lasted(since, until)}`,
    };
  }
  if (refs.length === 1) {
    const words = STATUS_WORDS[first.now.status];
    return {
      ...common,
      metadata: { entityRefs: refs, status: first.now.status },
      title: clipped(`${entityNames(refs)} is recoverable again (${words})`),
      description: `Not recoverable ${lasted(since, at)}` + (first.now.reasons.length > 0 ? `; now ${words}: ${quoted(first.now.reasons)}` : ''),
    };
  }
  const statuses = (['ready', 'at-risk', 'unknown'] as const).flatMap(status => {
    const those = closings.filter(c => c.now!.status === status).map(c => c.before.entityRef);
    return those.length > 0 ? [`${STATUS_WORDS[status]}: ${entityNames(those, LISTED_NAMES)}`] : [];
  });
  return {
    ...common,
    metadata: { entityRefs: refs, status: 'recoverable' },
    title: clipped(`${entityNames(refs)} are recoverable again`),
    description:
      `Not recoverable ${lasted(since, at)}; now ${statuses.join('; ')}` +
      (closings.some(c => c.now!.status !== 'ready') ? ' (their Recovery tabs say why)' : ''),
  };
}

/**
 * The alarm, rewritten in place (its scope) once every entity it named has been told it is
 * recoverable again or gone (the last at `until`): it no longer reads as an outage under way,
 * and the newer notices say what became of them. Low severity. Pure.
 */
export function resolvedAlarm(alarm: ReadinessAlarm, entityRefs: string[], until: string): NotificationPayload {
  const one = entityRefs.length === 1;
  return {
    title: clipped(`Resolved: ${alarm.title}`),
    description:
      `${one ? 'It was' : 'They were'} not recoverable ${lasted(lostAt(alarm), until)}. ` +
      `The newer notice${one ? '' : 's'} about ${entityNames(entityRefs, LISTED_NAMES)} say${one ? 's' : ''} what became of ${one ? 'it' : 'them'}`,
    severity: 'low',
    topic: READINESS_TOPIC,
    scope: alarm.scope,
    link: recoveryTabLink(entityRefs[0]),
    metadata: { entityRefs, status: 'resolved' },
  };
}

/** A notice as kept once its entity is listed again after a sweep found it missing: it never left. */
function listedAgain(notice: ReadinessNotice): ReadinessNotice {
  if (!notice.absentSince) return notice;
  const { absentSince: _, ...kept } = notice;
  return kept;
}

/** A notice as kept while its entity is seen with `status`: a loss seen untold is dropped once it is recoverable again. */
function untilNow(notice: ReadinessNotice, status: ReadinessStatus): ReadinessNotice {
  if (!notice.lossSeen || status === 'not-recoverable') return notice;
  const { lossSeen: _, ...kept } = notice;
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
 * Those an alarm went to, for the notices that close it ("recoverable again", "no longer assessed")
 * and its rewrite in place: the owners kept with it, which the notifications plugin resolves as
 * they are now, and the users it reached, who may be in none of them any more (their group removed
 * from the catalog, say). Not the entity: owners it has now that the alarm did not reach were not
 * told it was lost, and may not be allowed to see the run it named. An alarm told before users
 * were kept (migration 20261210000600) went to the entity, whose owners were not all kept: the
 * entity too (its title names that entity alone).
 */
function alarmRecipients(told: { entityRef: string; owners?: string[]; users?: string[] }): string[] {
  return told.users ? [...(told.owners ?? []), ...told.users] : [told.entityRef, ...(told.owners ?? [])];
}

/** The notices closing the alarms of `told` go to those each alarm reached, each once, in their order. */
export function closingRecipients(told: Array<{ entityRef: string; owners?: string[]; users?: string[] }>): NotificationRecipients {
  return recipientsOf(told.flatMap(alarmRecipients));
}

/** `refs` as recipients, each once (refs in any case), in their order. */
function recipientsOf(refs: string[]): NotificationRecipients {
  const unique = new Map<string, string>();
  for (const ref of refs) if (!unique.has(refKey(ref))) unique.set(refKey(ref), ref);
  return { type: 'entity', entityRef: unique.size > 1 ? [...unique.values()] : refs[0] };
}

/** A set of refs as a key: in any case, in any order. */
const setKey = (refs: string[]) => JSON.stringify([...new Set(refs.map(refKey))].sort());

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
  /**
   * Notices sent (alarms, notices that close them, alarms resolved in place), and those that could
   * not be (sent at the next sweep).
   */
  sent: number;
  failed: number;
}

/** How readiness words a failed last run, before its message. */
const failurePrefix = (mode: RunSummary['mode']) => `Last ${runKind(mode)} failed: `;

/**
 * The failed last run an entity is not recoverable by, with its message: its own run as readiness
 * for owners gives it; another entity's as the plugin sees it (`whole`), if it is the same run.
 */
function failedRunOf(
  item: ReadinessSummary,
  whole: ReadinessSummary | undefined,
): { run: RunSummary & { id: string; entityRef: string }; message: string } | undefined {
  const last = item.lastRun;
  if (last?.status !== 'failed') return undefined;
  const seen = last.id ? item : whole;
  const run = seen?.lastRun;
  if (!run?.id || !run.entityRef || run.status !== 'failed' || run.createdAt !== last.createdAt) return undefined;
  const prefix = failurePrefix(run.mode);
  const reason = seen!.reasons.find(r => r.startsWith(prefix));
  if (reason === undefined) return undefined;
  return { run: { ...run, id: run.id, entityRef: run.entityRef }, message: reason.slice(prefix.length) };
}

/**
 * The entity of the run a reason of `plain` (readiness as the plugin sees it) is tied to: its last
 * run's, for the failure of that run; else the run the reason names (runNamedIn).
 */
function runEntityOf(plain: ReadinessSummary, reason: string): string | undefined {
  const last = plain.lastRun;
  if (last?.entityRef && last.status === 'failed' && reason.startsWith(failurePrefix(last.mode))) return last.entityRef;
  return runNamedIn(reason)?.entityRef;
}

/** Whether every owner of an entity owns `runOwners`' entity too: they are told of that entity by its own notices. */
function ownsAll(runOwners: string[], owners: string[]): boolean {
  const theirs = new Set(runOwners.map(refKey));
  return owners.length > 0 && owners.every(o => theirs.has(refKey(o)));
}

/** `items` in groups of the same key, in the order each key first came. */
function groupBy<T>(items: T[], key: (item: T) => string): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(item);
  }
  return [...groups.values()];
}

/** Entities in the order of their refs, for notices in an order that does not depend on the database's. */
const byRef = (a: { entityRef: string }, b: { entityRef: string }) => (a.entityRef < b.entityRef ? -1 : a.entityRef > b.entityRef ? 1 : 0);

/**
 * What is kept of an entity once an alarm it was in (`scope`) is resolved: without it (and, for its
 * own alarm, whom that went to), other alarms it is in kept.
 */
function withoutAlarm(notice: ReadinessNotice, scope: string): ReadinessNotice {
  const { alarm, owners, users, pastAlarms, ...rest } = notice;
  const past = (pastAlarms ?? []).filter(p => p.scope !== scope);
  return {
    ...rest,
    ...(alarm && alarm.scope !== scope && { alarm, ...(owners && { owners }), ...(users && { users }) }),
    ...(past.length > 0 && { pastAlarms: past }),
  };
}

/**
 * Tells entities' owners, through Backstage notifications, when an entity stops being
 * recoverable and when it is again. Each sweep assesses every recoverable entity as the plugin
 * sees it and compares with what was last seen (readinessChange); a notice is recorded as soon as
 * it is sent, one that cannot be sent is not, so the next sweep sends it.
 *
 * Every notice is a new one (a scope of its own): the notifications page shows when it was
 * created, and a notice sent again in a scope it holds keeps the time of the first. Entities that
 * one cause makes not recoverable in a sweep (one failed run, or the same reasons), owned by the
 * same owners, are told in one alarm; once each entity it named has been told it is recoverable
 * again (or gone), the alarm is resolved in place, so that none is left reading as an outage
 * under way.
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
    const credentials = await this.auth.getOwnServiceCredentials();
    // Assessed as the plugin sees the catalog, but told to owners: a run of another entity (a
    // system they may not see) is quoted without its message, console or machines.
    const items = await this.readiness.readinessOf(refs, credentials, { ownRunsOnly: true });
    const at = new Date().toISOString();
    /** What is kept of each entity as the sweep goes: the alarms to resolve are read from it at its end. */
    const kept = new Map(told);
    const decided = items.map(item => {
      const before = told.get(item.entityRef);
      const seen = before && untilNow(listedAgain(before), item.status);
      return { item, before, seen, change: readinessChange(seen, item.status), notice: nextNotice(seen, item.entityRef, item.status, at) };
    });
    const losses = decided.filter(d => d.change === 'lost');
    const regained = decided.filter(d => d.change === 'regained');
    // What readiness for owners withholds of other entities' runs that a notice quotes (a failed
    // last run; a failure since on a machine of the plan; the run a grown plan was last recovered
    // by), as the plugin sees it: for those entities alone, in one request.
    const withholds = ({ item }: (typeof decided)[number]) =>
      (item.lastRun?.status === 'failed' && !item.lastRun.id) || item.reasons.some(r => r.includes(OTHER_ENTITYS_RUN));
    const withheld = [...losses, ...regained].filter(withholds).map(d => d.item.entityRef);
    const whole = new Map(withheld.length > 0 ? (await this.readiness.readinessOf(withheld, credentials)).map(i => [i.entityRef, i]) : []);
    const failedRuns = new Map(losses.map(d => [d.item.entityRef, failedRunOf(d.item, whole.get(d.item.entityRef))] as const));
    // Owners, in one request: of each loss, kept with its alarm (the notice closing it must reach
    // them once the catalog no longer names them); of each alarm told before owners were kept
    // (migration 20261208000000); of the entity of each run a notice is told by, to know whether
    // its owners may be told which it was; of each entity told it is recoverable again, whose alarm
    // went to the entity if it was told before users were kept.
    const unowned = decided.filter(d => !d.change && d.notice.alarm && !d.notice.owners).map(d => d.item.entityRef);
    const runEntities = [
      ...[...failedRuns.values()].flatMap(f => (f ? [f.run.entityRef] : [])),
      ...[...whole.values()].flatMap(w => w.reasons.flatMap(r => runEntityOf(w, r) ?? [])),
    ];
    const asked = [...losses, ...regained].map(d => d.item.entityRef);
    const owners = await this.catalog.ownersOf([...new Set([...asked, ...unowned, ...runEntities])]);
    const ownersOf = (ref: string) => owners.get(ref) ?? [];
    /**
     * Whether the owners `told` a notice of `entityRef` may be told which run of `runEntityRef` it
     * is: whoever may see that entity may. The plugin cannot ask the catalog as each recipient;
     * those who own that entity are told of it by its own notices, so it is named where the
     * owners told all own it (or it is the entity's own), else withheld.
     */
    const nameable = (runEntityRef: string, entityRef: string, told: string[]) =>
      refKey(runEntityRef) === refKey(entityRef) || ownsAll(ownersOf(runEntityRef), told);
    /**
     * The reasons of `item` as a notice to owners `told` quotes them: each that readiness for owners
     * withholds a run in, as the plugin words it (naming the run, with its message) where they may
     * be told that run, else withheld. Readiness was read twice, a moment apart: where the two
     * disagree on more than the wording of runs (another run ended between), withheld.
     */
    const toldReasons = (item: ReadinessSummary, told: string[]): string[] => {
      const plain = whole.get(item.entityRef);
      if (!plain || plain.status !== item.status || plain.reasons.length !== item.reasons.length) return item.reasons;
      return item.reasons.map((reason, i) => {
        if (reason === plain.reasons[i] || !reason.includes(OTHER_ENTITYS_RUN)) return reason;
        const runEntity = runEntityOf(plain, plain.reasons[i]);
        return runEntity !== undefined && nameable(runEntity, item.entityRef, told) ? plain.reasons[i] : reason;
      });
    };
    // A loss is kept with the users it reaches besides: a group removed from the catalog by the
    // time it is closed resolves to no one, its former members still have the alarm. Read for
    // every loss of the sweep at once; an alarm told before they were kept (migration
    // 20261210000600) has none, and is closed to its owners alone.
    // Read too for the owners kept with each alarm closed now whose reasons may name another
    // entity's run: to know whether the users it reached are still among their members.
    const closingOwners = regained.filter(d => whole.has(d.item.entityRef) && d.seen?.users).flatMap(d => d.seen!.owners ?? []);
    const groups = await this.groupsOf([...losses.flatMap(d => ownersOf(d.item.entityRef)), ...closingOwners]);

    const failures: string[] = [];
    let sent = 0;
    /** Sends one notice; false if the notifications service refused it (kept for the next sweep). */
    const send = async (about: string[], recipients: NotificationRecipients, payload: NotificationPayload) => {
      signal?.throwIfAborted();
      try {
        await this.notifications.send({ recipients, payload });
        sent += 1;
        return true;
      } catch (error) {
        failures.push(`${about.join(', ')}: ${error instanceof Error ? error.message : String(error)}`);
        return false;
      }
    };
    // Kept at once, each notice as it is sent: a sweep stopped past it (a restart, a timeout)
    // must not send it again, which resets the owners' read state and repeats it through any
    // email processor.
    const save = async (notices: ReadinessNotice[]) => {
      await this.notices.save(notices);
      for (const n of notices) kept.set(n.entityRef, n);
    };

    // Losses: one alarm per cause and owners.
    const lossesTold: Array<{ d: (typeof losses)[number]; loss: Loss }> = losses.map(d => {
      const ref = d.item.entityRef;
      const failed = failedRuns.get(ref);
      const reasons = toldReasons(d.item, ownersOf(ref));
      if (!failed) return { d, loss: { entityRef: ref, reasons } };
      const { run, message } = failed;
      const named = nameable(run.entityRef, ref, ownersOf(ref));
      const cause: LossCause = {
        runId: run.id,
        runEntityRef: run.entityRef,
        mode: run.mode,
        at: run.finishedAt ?? run.createdAt,
        ...(run.failedAt && { failedAt: run.failedAt }),
        named,
        ...(named && { message }),
      };
      return { d, loss: { entityRef: ref, reasons: reasons.filter(r => !r.startsWith(failurePrefix(run.mode))), cause } };
    });
    const byCause = groupBy(lossesTold, ({ loss }) =>
      JSON.stringify([setKey(ownersOf(loss.entityRef)), loss.cause ? ['run', loss.cause.runId, loss.cause.named] : ['reasons', loss.reasons]]),
    );
    /** Losses told, with the owners they went to. */
    const lost: ReadinessNotice[] = [];
    for (const group of byCause) {
      const lostRefs = group.map(g => g.loss.entityRef);
      const scope = noticeScope('lost', ...group.flatMap(({ d }) => [d.item.entityRef, d.seen!.since]));
      const payload = lossNotice(
        group.map(g => g.loss),
        scope,
      );
      // Counted from when each was first seen lost, at a sweep that could not send it.
      const seenLost = (d: (typeof losses)[number]) => d.seen!.lossSeen ?? at;
      if (await send(lostRefs, recipientsOf(lostRefs), payload)) {
        const alarm: ReadinessAlarm = { scope, title: payload.title, sentAt: at, lostAt: group.map(({ d }) => seenLost(d)).sort()[0] };
        const saved = group.map(({ d }) => {
          const { owners: o, users: u, alarm: earlier, ...notice } = { ...d.notice, since: seenLost(d) };
          const ref = d.item.entityRef;
          // An alarm it was told the end of, still waiting for others it named: kept apart, to
          // be resolved with this entity in it, for those it went to.
          const past: PastAlarm[] | undefined = earlier?.closedAt
            ? [...(notice.pastAlarms ?? []), { ...earlier, closedAt: earlier.closedAt, ...(o && { owners: o }), ...(u && { users: u }) }]
            : notice.pastAlarms;
          return { ...notice, ...(past && { pastAlarms: past }), alarm, owners: ownersOf(ref), users: usersReached(ownersOf(ref), groups) };
        });
        await save(saved);
        lost.push(...saved);
      } else {
        await save(group.filter(({ d }) => !d.seen!.lossSeen).map(({ d }) => ({ ...d.seen!, lossSeen: at })));
      }
    }

    // Entities told they are not recoverable that no longer are, or are no longer assessed: one
    // notice per alarm and those it reached, to them alone (alarmRecipients).
    const listed = new Set(refs);
    const closings: Array<Closing & { key: string; after: ReadinessNotice }> = [];
    for (const { item, seen, notice } of regained) {
      const before = seen as Closing['before'];
      // The owners the alarm went to: those kept with it, and for one that went to the entity
      // (told before users were kept), its owners now.
      const told = [...(before.owners ?? []), ...(before.users ? [] : ownersOf(item.entityRef))];
      // It goes to the users the alarm reached too, who may have left those owners since (moved
      // to a team that may not see the run's entity): the owners check covers them only while the
      // owners still reach them all, else the run is withheld.
      const reached = new Set(usersReached(before.owners ?? [], groups).map(refKey));
      const covered = (before.users ?? []).every(u => reached.has(refKey(u)));
      closings.push({
        before,
        now: { status: item.status, reasons: covered ? toldReasons(item, told) : item.reasons },
        key: JSON.stringify(['regained', before.alarm.scope, setKey(alarmRecipients(before))]),
        after: {
          ...notice,
          alarm: { ...before.alarm, closedAt: at },
          ...(before.owners && { owners: before.owners }),
          ...(before.users && { users: before.users }),
        },
      });
    }
    const forgotten: string[] = [];
    const absent: ReadinessNotice[] = [];
    for (const before of [...told.values()].sort(byRef)) {
      if (listed.has(before.entityRef)) continue;
      // Told it is gone already: its alarm waits for the others it named (resolved below); so
      // does an earlier alarm it was in.
      if (before.alarm?.closedAt) continue;
      if (!isOpen(before.alarm) && before.pastAlarms?.length) continue;
      // A list without it may have been read while the catalog was being rebuilt: its alarm is
      // closed only if it is still missing at the next sweep; it is forgotten only once missing
      // for ABSENCE_KEPT_MS (else one back not recoverable after a longer glitch would be seen
      // anew, and its loss never told).
      if (!before.absentSince) absent.push({ ...before, absentSince: at });
      else if (before.status !== 'not-recoverable' || !before.alarm) {
        if (Date.parse(at) - Date.parse(before.absentSince) >= ABSENCE_KEPT_MS) forgotten.push(before.entityRef);
      } else {
        const alarmed = before as Closing['before'];
        closings.push({
          before: alarmed,
          key: JSON.stringify(['gone', alarmed.alarm.scope, setKey(alarmRecipients(alarmed))]),
          after: { ...alarmed, alarm: { ...alarmed.alarm, closedAt: before.absentSince } },
        });
      }
    }
    for (const group of groupBy(closings, c => c.key)) {
      const closedRefs = group.map(c => c.before.entityRef);
      const scope = noticeScope(group[0].now ? 'regained' : 'gone', group[0].before.alarm.scope, ...closedRefs);
      if (await send(closedRefs, closingRecipients(group.map(c => c.before)), closingNotice(group, at, scope))) await save(group.map(c => c.after));
    }

    // What changed untold; alarms told before owners were kept, with them now.
    const legacy = new Set(unowned);
    const changed = decided.flatMap(({ before, change, notice, item }) => {
      if (change) return [];
      if (legacy.has(item.entityRef)) return [{ ...notice, owners: ownersOf(item.entityRef) }];
      return notice === before ? [] : [notice];
    });
    await save([...changed, ...absent]);
    await this.notices.remove(forgotten);
    forgotten.forEach(ref => kept.delete(ref));

    // Alarms whose every entity has been told the end of it: resolved in place. An entity is in
    // its alarm and in the earlier ones it was lost again from.
    const memberships = [...kept.values()].flatMap(n => [
      ...(n.alarm ? [{ entityRef: n.entityRef, alarm: n.alarm, told: alarmRecipients(n) }] : []),
      ...(n.pastAlarms ?? []).map(p => ({ entityRef: n.entityRef, alarm: p as ReadinessAlarm, told: alarmRecipients({ ...p, entityRef: n.entityRef }) })),
    ]);
    const alarms = groupBy(
      memberships.sort((a, b) => a.alarm.sentAt.localeCompare(b.alarm.sentAt) || byRef(a, b)),
      m => m.alarm.scope,
    );
    for (const members of alarms) {
      if (members.some(m => !m.alarm.closedAt)) continue;
      const { scope } = members[0].alarm;
      const memberRefs = members.map(m => m.entityRef);
      const until = members.map(m => m.alarm.closedAt!).sort().at(-1)!;
      // Rewritten in place for those who have it alone: the notifications backend gives anyone
      // else a new notice with the alarm's title, which may name another entity's run to owners the
      // naming rule kept it from (an entity's owners now, changed since).
      const told = [...new Set(members.flatMap(m => m.told))];
      if (told.length > 0 && !(await send(memberRefs, recipientsOf(told), resolvedAlarm(members[0].alarm, memberRefs, until)))) continue;
      // Kept without the alarm, unless missing and in no other alarm: then forgotten if it was
      // told it is gone (missing at two sweeps: only such a member has absentSince); else it went
      // missing while the alarm waited for the others, and is kept as last seen from now, as any
      // missing entity is (ABSENCE_KEPT_MS).
      const after = members.map(m => withoutAlarm(kept.get(m.entityRef)!, scope));
      const unlisted = (n: ReadinessNotice) => !listed.has(n.entityRef) && !n.alarm && !n.pastAlarms;
      const gone = after.filter(n => unlisted(n) && n.absentSince).map(n => n.entityRef);
      await save(after.filter(n => !gone.includes(n.entityRef)).map(n => (unlisted(n) ? { ...n, absentSince: at } : n)));
      await this.notices.remove(gone);
      gone.forEach(ref => kept.delete(ref));
    }

    this.warnUntold(lost, groups);
    if (sent > 0) this.logger.info(`Readiness notices: sent ${sent} to owners (entities no longer recoverable, recoverable again or gone; alarms resolved)`);
    if (failures.length > 0) {
      this.logger.warn(
        `Readiness notices: could not send ${failures.length} ${failures.length === 1 ? 'notice' : 'notices'}, retried at the next sweep ` +
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
