import {
  formatSeconds,
  formatUtcTime,
  READINESS_STATUS_LABELS,
  runModeName,
  type ReadinessStatus,
  type ReadinessSummary,
  type RunSummary,
} from '@backstage-recovery/plugin-recovery-common';
import { parseEntityRef } from '@backstage/catalog-model';
import type { NotificationPayload } from '@backstage/plugin-notifications-common';
import { createHash } from 'node:crypto';
import type {
  ReadinessAlarm,
  ReadinessNotice,
} from '../../database/ReadinessNoticeStore';
import { refKey } from './recipients';

// What the readiness notices say. Pure: the notifier decides what to tell and to whom.

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
 * A status as a notice words it: as everywhere, but an owner reading "recoverable again" learns
 * more from "not yet test-recovered" than from "unknown".
 */
const STATUS_WORDS: Record<ReadinessStatus, string> = {
  ...READINESS_STATUS_LABELS,
  unknown: 'not yet test-recovered',
};

/** The entity's Recovery tab, as the portal routes entity pages. */
export function recoveryTabLink(entityRef: string): string {
  const { kind, namespace, name } = parseEntityRef(entityRef);
  return `/catalog/${encodeURIComponent(namespace)}/${encodeURIComponent(kind.toLocaleLowerCase('en-US'))}/${encodeURIComponent(name)}/recovery`;
}

/**
 * A run's page, as the portal routes it (the plugin's pages at `/recovery`): where its owners
 * read why it failed, and follow it live. Relative, as notifications' links are.
 */
export function runPageLink(runId: string): string {
  return `/recovery/runs/${encodeURIComponent(runId)}`;
}

/** A time as the portal writes times, to the second and saying it is UTC: `2026-12-05 23:56:05 UTC`. */
export function utcTime(iso: string): string {
  return formatUtcTime(iso);
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

/**
 * `web`, `web and database`, `web, database and dns`; past `max`, the rest counted: `web, database,
 * dns and 3 more`. One past `max` is named rather than counted: `and 1 more` hides a name in as
 * many words.
 */
export function entityNames(entityRefs: string[], max = TITLE_NAMES): string {
  const names = entityRefs.map(entityName);
  if (names.length > max + 1)
    return `${names.slice(0, max).join(', ')} and ${names.length - max} more`;
  return names.length === 1
    ? names[0]
    : `${names.slice(0, -1).join(', ')} and ${names.at(-1)}`;
}

/**
 * The order notices name entities in, by ref: an alarm and the notices that close it name them
 * alike, whatever order the catalog listed them in at each sweep.
 */
export const byEntityRef = (
  a: { entityRef: string },
  b: { entityRef: string },
) => (a.entityRef < b.entityRef ? -1 : a.entityRef > b.entityRef ? 1 : 0);

/** A title the notifications backend can store. */
export function clipped(title: string): string {
  return title.length <= MAX_TITLE
    ? title
    : `${title.slice(0, MAX_TITLE - 1)}…`;
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
export function lasted(since: string, until: string): string {
  return `for ${formatSeconds(Math.max(0, Date.parse(until) - Date.parse(since)) / 1000)}, from ${utcTime(since)} to ${utcTime(until)}`;
}

/** The first reasons, the rest counted: `a; b; c; and 2 more`. */
export function quoted(reasons: string[]): string {
  const shown = reasons.slice(0, MAX_REASONS).join('; ');
  return reasons.length > MAX_REASONS
    ? `${shown}; and ${reasons.length - MAX_REASONS} more`
    : shown;
}

/** When the loss an alarm told began: when it was sent, for one sent before that was kept. */
export const lostAt = (alarm: ReadinessAlarm) => alarm.lostAt ?? alarm.sentAt;

/** A failed run an entity is not recoverable by (its last run), as its owners are told of it. */
export interface LossCause {
  runId: string;
  runEntityRef: string;
  mode: RunSummary['mode'];
  /** ISO time it ended. */
  at: string;
  /** The machine it failed at; none when it failed as a whole. */
  failedAt?: string;
  /** Whether the owners told may be shown which run, its entity and its message (see `nameable` in ReadinessNotifier). */
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
 * owners, in a scope of its own. High severity.
 */
export function lossNotice(told: Loss[], scope: string): NotificationPayload {
  // In the order the notices that close it name them (the run's entity is named in the title).
  const losses = [...told].sort(byEntityRef);
  const refs = losses.map(l => l.entityRef);
  const [first] = losses;
  const are = refs.length === 1 ? 'is' : 'are';
  const listed = entityNames(refs, LISTED_NAMES);
  const common = {
    severity: 'high' as const,
    topic: READINESS_TOPIC,
    scope,
    metadata: { entityRefs: refs, status: 'not-recoverable' },
  };
  const cause = first.cause;
  if (!cause) {
    const reasons =
      quoted(first.reasons) || 'its readiness says so without a reason';
    return {
      ...common,
      title: clipped(`${entityNames(refs)} ${are} not recoverable`),
      description:
        refs.length === 1 ? reasons : `For each of ${listed}: ${reasons}`,
      link: recoveryTabLink(first.entityRef),
    };
  }
  const kind = runModeName(cause.mode);
  const own =
    refs.length === 1 && refKey(cause.runEntityRef) === refKey(first.entityRef);
  const more = losses.filter(l => l.reasons.length > 0);
  const besides =
    more.length === 0
      ? ''
      : refs.length === 1
        ? `. Also: ${quoted(first.reasons)}`
        : `. ${entityNames(
            more.map(l => l.entityRef),
            LISTED_NAMES,
          )} ${more.length === 1 ? 'is' : 'are'} not recoverable for more reasons too: see ${more.length === 1 ? 'its' : 'their'} Recovery tab`;
  const lastOf = own
    ? ''
    : `; it was the last ${kind} of ${listed}, not recoverable until one succeeds`;
  if (cause.named) {
    const whose = own ? 'its' : `${entityName(cause.runEntityRef)}'s`;
    return {
      ...common,
      metadata: {
        ...common.metadata,
        runId: cause.runId,
        runEntityRef: cause.runEntityRef,
      },
      title: clipped(
        `${entityNames(refs)} ${are} not recoverable: ${whose} ${kind} failed`,
      ),
      description:
        `${own ? 'Its' : `${entityName(cause.runEntityRef)}'s`} ${kind} (run ${cause.runId}) failed at ${utcTime(cause.at)}: ` +
        `${cause.message ?? 'unknown error'}${lastOf}${besides}`,
      link: runPageLink(cause.runId),
    };
  }
  // Not all of them may see the entity the run was of: not named, nor its message.
  const where = cause.failedAt ? `on ${cause.failedAt}` : 'as a whole';
  return {
    ...common,
    title: clipped(
      `${entityNames(refs)} ${are} not recoverable: a ${kind} of another entity failed`,
    ),
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
  /** ISO time it became recoverable again where a run says so: the end of the run that proved it. */
  recoveredAt?: string;
}

/**
 * What tells the owners of entities they were told are not recoverable that they are recoverable
 * again, or are no longer assessed (deleted from the catalog, or no longer on a machine: else the
 * alarm would stay in their inbox for ever), as of `at` (for those gone, when each was first found
 * missing). A notice of its own, low severity, in a scope of its own: the notifications page shows
 * it as new; the alarm is resolved in place besides (resolvedAlarm).
 */
export function closingNotice(
  told: Closing[],
  at: string,
  scope: string,
): NotificationPayload {
  // In the order the alarm named them.
  const closings = [...told].sort((a, b) => byEntityRef(a.before, b.before));
  const refs = closings.map(c => c.before.entityRef);
  const [first] = closings;
  const since = closings.map(c => lostAt(c.before.alarm)).sort()[0];
  const common = {
    severity: 'low' as const,
    topic: READINESS_TOPIC,
    scope,
    link: recoveryTabLink(first.before.entityRef),
  };
  if (!first.now) {
    const until = closings
      .map(c => c.before.absentSince ?? at)
      .sort()
      .at(-1)!;
    const one = refs.length === 1;
    return {
      ...common,
      metadata: { entityRefs: refs, status: 'not-assessed' },
      title: clipped(
        `${entityNames(refs)} ${one ? 'is' : 'are'} no longer assessed for recovery`,
      ),
      description:
        `${one ? 'It' : `${entityNames(refs, LISTED_NAMES)}`} left the catalog, or ${one ? 'runs' : 'run'} on no machine now; ` +
        `${one ? 'it' : 'they'} had been not recoverable ${lasted(since, until)}`,
    };
  }
  // Until the run that proved them recoverable ended, where one did; else until this sweep saw it.
  const until = closings
    .map(c => c.recoveredAt ?? at)
    .sort()
    .at(-1)!;
  if (refs.length === 1) {
    const words = STATUS_WORDS[first.now.status];
    return {
      ...common,
      metadata: { entityRefs: refs, status: first.now.status },
      title: clipped(`${entityNames(refs)} is recoverable again (${words})`),
      description: `Not recoverable ${lasted(since, until)}${
        first.now.reasons.length > 0
          ? `; now ${words}: ${quoted(first.now.reasons)}`
          : ''
      }`,
    };
  }
  // The good news first.
  const statuses = (['ready', 'at-risk', 'unknown'] as const).flatMap(
    status => {
      const those = closings
        .filter(c => c.now!.status === status)
        .map(c => c.before.entityRef);
      return those.length > 0
        ? [`${STATUS_WORDS[status]}: ${entityNames(those, LISTED_NAMES)}`]
        : [];
    },
  );
  return {
    ...common,
    metadata: { entityRefs: refs, status: 'recoverable' },
    title: clipped(`${entityNames(refs)} are recoverable again`),
    description: `Not recoverable ${lasted(since, until)}; now ${statuses.join('; ')}${
      closings.some(c => c.now!.status !== 'ready')
        ? ' (their Recovery tabs say why)'
        : ''
    }`,
  };
}

/**
 * The alarm, rewritten in place (its scope) once every entity it named has been told it is
 * recoverable again or gone (the last at `until`): it no longer reads as an outage under way,
 * and the newer notices say what became of them. Low severity.
 */
export function resolvedAlarm(
  alarm: ReadinessAlarm,
  entityRefs: string[],
  until: string,
): NotificationPayload {
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
