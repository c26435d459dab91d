import type {
  ReadinessStatus,
  ReadinessSummary,
  RunSummary,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  AuthService,
  BackstageCredentials,
  LoggerService,
} from '@backstage/backend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import { toError } from '@backstage/errors';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import type { NotificationPayload } from '@backstage/plugin-notifications-common';
import type {
  NotificationRecipients,
  NotificationService,
} from '@backstage/plugin-notifications-node';
import type {
  ReadinessAlarm,
  ReadinessNotice,
  ReadinessNoticeStore,
} from '../database/ReadinessNoticeStore';
import { groupBy } from '../lib/groupBy';
import {
  byEntityRef,
  type Closing,
  closingNotice,
  type Loss,
  type LossCause,
  lossNotice,
  lostAt,
  noticeScope,
  resolvedAlarm,
} from './notices/noticeText';
import {
  alarmRecipients,
  closingRecipients,
  groupsOf,
  ownsAll,
  recipientsOf,
  refKey,
  setKey,
  usersReached,
  whyNoOneReached,
} from './notices/recipients';
import { lastRunFailed } from './readiness';
import type { ReadinessService } from './ReadinessService';

/**
 * How long an entity missing from the recoverable entities is remembered as it was last seen: one
 * back within it is compared with that, so a loss is told across a catalog glitch (an entity
 * provider's full refresh that left it out, a location that failed to read, a machine briefly
 * removed), which lasts as long as the catalog's own cycles (minutes to hours), not as long as two
 * sweeps. A day covers a provider refreshing nightly; past it the entity counts as new again. Its
 * alarm, if any, is closed at the second sweep all the same (closingsOf).
 */
export const ABSENCE_KEPT_MS = 24 * 60 * 60 * 1000;

/**
 * The change the owners of an entity are told of, given what was last seen of it (`before`) and
 * its status now. Notices are for changes, and an alarm for a loss:
 * - `lost`: seen recoverable (ready, at risk, or not yet test-recovered), now not recoverable;
 * - `regained`: not recoverable, and told so, now recoverable again.
 * An entity seen for the first time (a new entity, a backend started on an empty database, one
 * back after missing for ABSENCE_KEPT_MS) has nothing to compare with: recorded, nobody told. One
 * never seen recoverable (never captured, say) is no incident, so neither is its becoming
 * recoverable. Any other change (ready to at risk) is recorded untold: its page shows it.
 */
export function readinessChange(
  before: ReadinessNotice | undefined,
  status: ReadinessStatus,
): 'lost' | 'regained' | undefined {
  if (!before) return undefined;
  if (status === 'not-recoverable')
    return before.status === 'not-recoverable' ? undefined : 'lost';
  return before.status === 'not-recoverable' && isOpen(before.alarm)
    ? 'regained'
    : undefined;
}

/** An alarm this entity has not been told the end of. */
const isOpen = (alarm: ReadinessAlarm | undefined): alarm is ReadinessAlarm =>
  alarm !== undefined && !alarm.closedAt;

/**
 * What is kept of an entity seen with `status` at `at`: what was kept while its status holds; a
 * new status from `at`. An alarm that waits for other entities to be resolved stays, with whom it
 * went to.
 */
export function nextNotice(
  before: ReadinessNotice | undefined,
  entityRef: string,
  status: ReadinessStatus,
  at: string,
): ReadinessNotice {
  if (before?.status === status) return before;
  const notice: ReadinessNotice = {
    entityRef,
    status,
    since: at,
    ...(before?.pastAlarms && { pastAlarms: before.pastAlarms }),
  };
  if (!before?.alarm?.closedAt) return notice;
  return {
    ...notice,
    alarm: before.alarm,
    ...(before.owners && { owners: before.owners }),
    ...(before.users && { users: before.users }),
  };
}

/** A notice as kept once its entity is listed again after a sweep found it missing: it never left. */
function listedAgain(notice: ReadinessNotice): ReadinessNotice {
  if (!notice.absentSince) return notice;
  const { absentSince: _, ...kept } = notice;
  return kept;
}

/** A notice as kept while its entity is seen with `status`: a loss seen untold is dropped once it is recoverable again. */
function untilNow(
  notice: ReadinessNotice,
  status: ReadinessStatus,
): ReadinessNotice {
  if (!notice.lossSeen || status === 'not-recoverable') return notice;
  const { lossSeen: _, ...kept } = notice;
  return kept;
}

/**
 * What is kept of an entity told it is not recoverable in `alarm`, sent to `owners` and reaching
 * `users`. An earlier alarm it was told the end of, still waiting for others it named, is kept
 * apart, to be resolved with this entity in it, for those it went to.
 */
function withAlarm(
  notice: ReadinessNotice,
  alarm: ReadinessAlarm,
  owners: string[],
  users: string[],
): ReadinessNotice {
  const { owners: o, users: u, alarm: earlier, ...rest } = notice;
  const past = earlier?.closedAt
    ? [
        ...(rest.pastAlarms ?? []),
        {
          ...earlier,
          closedAt: earlier.closedAt,
          ...(o && { owners: o }),
          ...(u && { users: u }),
        },
      ]
    : rest.pastAlarms;
  return { ...rest, ...(past && { pastAlarms: past }), alarm, owners, users };
}

/**
 * What is kept of an entity once an alarm it was in (`scope`) is resolved: without it (and, for its
 * own alarm, whom that went to), other alarms it is in kept.
 */
function withoutAlarm(notice: ReadinessNotice, scope: string): ReadinessNotice {
  const { alarm, owners, users, pastAlarms, ...rest } = notice;
  const past = (pastAlarms ?? []).filter(p => p.scope !== scope);
  return {
    ...rest,
    ...(alarm &&
      alarm.scope !== scope && {
        alarm,
        ...(owners && { owners }),
        ...(users && { users }),
      }),
    ...(past.length > 0 && { pastAlarms: past }),
  };
}

/**
 * The run each reason of `item` is about (readiness's `reasonRuns`), by the reason's index: `null`
 * where readiness does not show that run (another entity's, to owners), none for a reason about no run.
 */
function runsByReason(
  item: Pick<ReadinessSummary, 'reasonRuns'>,
): Map<number, { id: string; entityRef: string } | null> {
  return new Map((item.reasonRuns ?? []).map(r => [r.reason, r.run ?? null]));
}

/** Whether readiness for owners withholds a run of another entity that a notice of `item` would quote. */
function withholdsRuns(item: ReadinessSummary): boolean {
  return (
    (item.lastRun?.status === 'failed' && !item.lastRun.id) ||
    [...runsByReason(item).values()].includes(null)
  );
}

type FailedRun = {
  run: RunSummary & { id: string; entityRef: string };
  message: string;
  reason: number;
};

/**
 * The failed last run an entity is not recoverable by, with its message and which of `item`'s
 * reasons says it (`reason`): its own run as readiness for owners gives it; another entity's as
 * the plugin sees it (`whole`), if it is the same run, said by the reason at the same place that
 * readiness for owners withholds the run of.
 */
function failedRunOf(
  item: ReadinessSummary,
  whole: ReadinessSummary | undefined,
): FailedRun | undefined {
  const last = item.lastRun;
  if (last?.status !== 'failed') return undefined;
  const seen = last.id ? item : whole;
  const run = seen?.lastRun;
  if (
    !run?.id ||
    !run.entityRef ||
    run.status !== 'failed' ||
    run.createdAt !== last.createdAt
  )
    return undefined;
  // Of a failed last run, readiness says its failure alone.
  const about = seen!.reasonRuns?.find(r => r.run?.id === run.id);
  if (
    !about ||
    (seen !== item && runsByReason(item).get(about.reason) !== null)
  )
    return undefined;
  const reason = seen!.reasons[about.reason];
  const prefix = lastRunFailed(run.mode);
  return {
    run: { ...run, id: run.id, entityRef: run.entityRef },
    message: reason.startsWith(prefix) ? reason.slice(prefix.length) : reason,
    reason: about.reason,
  };
}

/** One entity as a sweep finds it: readiness now, what was kept of it, and what changed. */
interface Assessed {
  item: ReadinessSummary;
  /** As the last sweep kept it. */
  before?: ReadinessNotice;
  /** The same, read for now: back in the list, a loss seen untold dropped once it is over. */
  seen?: ReadinessNotice;
  change?: 'lost' | 'regained';
  /** What is kept of it from now where nothing is told. */
  notice: ReadinessNotice;
}

function assessed(
  item: ReadinessSummary,
  before: ReadinessNotice | undefined,
  at: string,
): Assessed {
  const seen = before && untilNow(listedAgain(before), item.status);
  return {
    item,
    before,
    seen,
    change: readinessChange(seen, item.status),
    notice: nextNotice(seen, item.entityRef, item.status, at),
  };
}

/** What a sweep found, and when. */
interface Sweep {
  at: string;
  credentials: BackstageCredentials;
  /** The entities assessed now. */
  listed: Set<string>;
  /** What was kept of each entity, as the last sweep left it. */
  told: Map<string, ReadinessNotice>;
  entities: Assessed[];
  losses: Assessed[];
  regained: Assessed[];
  /** Entities with an alarm told before owners were kept: kept with their owners now. */
  unowned: string[];
}

/**
 * What the notices of a sweep quote beyond readiness for owners, read once for all of them:
 * other entities' runs as the plugin sees them (`whole`), and owners.
 */
class NoticeFacts {
  constructor(
    readonly whole: Map<string, ReadinessSummary>,
    private readonly failedRuns: Map<string, FailedRun | undefined>,
    private readonly owners: Map<string, string[]>,
  ) {}

  ownersOf(entityRef: string): string[] {
    return this.owners.get(entityRef) ?? [];
  }

  /**
   * Whether the owners `told` a notice of `entityRef` may be told which run of `runEntityRef` it
   * is: whoever may see that entity may. The plugin cannot ask the catalog as each recipient;
   * those who own that entity are told of it by its own notices, so it is named where the
   * owners told all own it (or it is the entity's own), else withheld.
   */
  nameable(runEntityRef: string, entityRef: string, told: string[]): boolean {
    return (
      refKey(runEntityRef) === refKey(entityRef) ||
      ownsAll(this.ownersOf(runEntityRef), told)
    );
  }

  /**
   * The reasons of `item` as a notice to owners `told` quotes them: each about a run that readiness
   * for owners withholds, as the plugin words it (naming the run, with its message) where they may
   * be told that run (read from `reasonRuns`, not from the words), else withheld. Readiness was
   * read twice, a moment apart: where the two disagree (another run ended between), withheld.
   */
  toldReasons(item: ReadinessSummary, told: string[]): string[] {
    const plain = this.whole.get(item.entityRef);
    if (
      !plain ||
      plain.status !== item.status ||
      plain.reasons.length !== item.reasons.length
    )
      return item.reasons;
    const [withheldRuns, plainRuns] = [runsByReason(item), runsByReason(plain)];
    return item.reasons.map((reason, i) => {
      const run = plainRuns.get(i);
      if (withheldRuns.get(i) !== null || !run) return reason;
      return this.nameable(run.entityRef, item.entityRef, told)
        ? plain.reasons[i]
        : reason;
    });
  }

  /** An entity lost, as its owners are told: by its failed last run where it has one, else by its reasons. */
  lossOf(item: ReadinessSummary): Loss {
    const ref = item.entityRef;
    const reasons = this.toldReasons(item, this.ownersOf(ref));
    const failed = this.failedRuns.get(ref);
    if (!failed) return { entityRef: ref, reasons };
    const { run, message } = failed;
    const named = this.nameable(run.entityRef, ref, this.ownersOf(ref));
    const cause: LossCause = {
      runId: run.id,
      runEntityRef: run.entityRef,
      mode: run.mode,
      at: run.finishedAt ?? run.createdAt,
      ...(run.failedAt && { failedAt: run.failedAt }),
      named,
      ...(named && { message }),
    };
    return {
      entityRef: ref,
      reasons: reasons.filter((_, i) => i !== failed.reason),
      cause,
    };
  }
}

/**
 * How long sweeps send nothing once a notice found the notifications backend not installed: it
 * would answer every notice of every sweep alike. Tried again after it, for one installed later in
 * a backend of its own; one installed in this backend restarts it, which tries at once.
 */
export const ABSENT_NOTIFICATIONS_RETRY_MS = 24 * 60 * 60 * 1000;

/**
 * Whether a notice's failure says no notifications backend is installed: the notifications
 * service's request answered 404 (as the default service words it), or discovery knows no such
 * plugin.
 */
function notificationsAbsent(error: unknown): boolean {
  const e = toError(error);
  return e.name === 'NotFoundError' || /\bstatus 404\b/.test(e.message);
}

/**
 * Sends a sweep's notices and keeps what each told as soon as it is sent: a sweep stopped past it
 * (a restart, a timeout) must not send it again, which would reset the owners' read state and
 * repeat it through any email processor.
 */
class Outbox {
  sent = 0;
  /** The notices the notifications service refused: whom each was about, and its error. */
  readonly failures: Array<{ entityRefs: string[]; error: unknown }> = [];
  /** The error that found the notifications backend not installed, in this sweep. */
  absent?: Error;
  /** Notices not sent as no notifications backend is installed (sent at a later sweep). */
  held = 0;
  /** What is kept of each entity as the sweep goes: the alarms to resolve are read from it at its end. */
  readonly kept: Map<string, ReadinessNotice>;

  constructor(
    private readonly notifications: NotificationService,
    private readonly store: ReadinessNoticeStore,
    told: Map<string, ReadinessNotice>,
    /** Aborted at the task's timeout, when another replica may start a sweep: no more is sent. */
    private readonly signal?: AbortSignal,
    /** Known not installed (ABSENT_NOTIFICATIONS_RETRY_MS): nothing is sent. */
    private readonly holding = false,
  ) {
    this.kept = new Map(told);
  }

  /** Sends one notice about `about`; false if the notifications service refused it (sent at the next sweep). */
  async send(
    about: string[],
    recipients: NotificationRecipients,
    payload: NotificationPayload,
  ): Promise<boolean> {
    this.signal?.throwIfAborted();
    if (this.holding || this.absent) {
      this.held += 1;
      return false;
    }
    try {
      await this.notifications.send({ recipients, payload });
      this.sent += 1;
      return true;
    } catch (error) {
      if (notificationsAbsent(error)) {
        this.absent = toError(error);
        this.held += 1;
      } else this.failures.push({ entityRefs: about, error });
      return false;
    }
  }

  async save(notices: ReadinessNotice[]): Promise<void> {
    await this.store.save(notices);
    for (const n of notices) this.kept.set(n.entityRef, n);
  }

  async forget(entityRefs: string[]): Promise<void> {
    await this.store.remove(entityRefs);
    entityRefs.forEach(ref => this.kept.delete(ref));
  }
}

/** A notice closing an alarm, grouped by `key` with the others that go out as one, and what is kept once it is sent. */
type ClosingTold = Closing & { key: string; after: ReadinessNotice };

/**
 * The alarm of an entity told it is not recoverable that is recoverable again, closed to those it
 * reached: its reasons name another entity's run only while the owners it went to still reach
 * every user it reached (they may have moved to a team that may not see that run's entity).
 */
function regainedClosing(
  { item, seen, notice }: Assessed,
  facts: NoticeFacts,
  groups: Map<string, Entity>,
  at: string,
): ClosingTold {
  const before = seen as Closing['before'];
  // The owners the alarm went to: those kept with it, and for one that went to the entity (told
  // before users were kept), its owners now.
  const told = [
    ...(before.owners ?? []),
    ...(before.users ? [] : facts.ownersOf(item.entityRef)),
  ];
  const reached = new Set(
    usersReached(before.owners ?? [], groups).map(refKey),
  );
  const covered = (before.users ?? []).every(u => reached.has(refKey(u)));
  // Recoverable again since the run that proved it ended, where one did after the loss: the sweep
  // only saw it later.
  const run = item.lastRun;
  const recoveredAt =
    run?.status === 'succeeded' &&
    run.finishedAt &&
    Date.parse(run.finishedAt) > Date.parse(lostAt(before.alarm)) &&
    Date.parse(run.finishedAt) <= Date.parse(at)
      ? run.finishedAt
      : undefined;
  return {
    before,
    now: {
      status: item.status,
      reasons: covered ? facts.toldReasons(item, told) : item.reasons,
    },
    ...(recoveredAt && { recoveredAt }),
    key: JSON.stringify([
      'regained',
      before.alarm.scope,
      setKey(alarmRecipients(before)),
    ]),
    after: {
      ...notice,
      alarm: { ...before.alarm, closedAt: recoveredAt ?? at },
      ...(before.owners && { owners: before.owners }),
      ...(before.users && { users: before.users }),
    },
  };
}

/**
 * What becomes of the entities kept that are no longer listed. A list without one may have been
 * read while the catalog was being rebuilt: its alarm is closed only if it is still missing at the
 * next sweep (`closings`; `absent` marks it missing), and it is forgotten only once missing for
 * ABSENCE_KEPT_MS (else one back not recoverable after a longer glitch would be seen anew, and its
 * loss never told).
 */
function goneFromList(sweep: Sweep): {
  closings: ClosingTold[];
  absent: ReadinessNotice[];
  forgotten: string[];
} {
  const closings: ClosingTold[] = [];
  const absent: ReadinessNotice[] = [];
  const forgotten: string[] = [];
  for (const before of [...sweep.told.values()].sort(byEntityRef)) {
    if (sweep.listed.has(before.entityRef)) continue;
    // Told it is gone already, or in an earlier alarm: that alarm waits for the others it named.
    if (before.alarm?.closedAt) continue;
    if (!isOpen(before.alarm) && before.pastAlarms?.length) continue;
    if (!before.absentSince) absent.push({ ...before, absentSince: sweep.at });
    else if (before.status !== 'not-recoverable' || !before.alarm) {
      if (
        Date.parse(sweep.at) - Date.parse(before.absentSince) >=
        ABSENCE_KEPT_MS
      )
        forgotten.push(before.entityRef);
    } else {
      const alarmed = before as Closing['before'];
      closings.push({
        before: alarmed,
        key: JSON.stringify([
          'gone',
          alarmed.alarm.scope,
          setKey(alarmRecipients(alarmed)),
        ]),
        after: {
          ...alarmed,
          alarm: { ...alarmed.alarm, closedAt: before.absentSince },
        },
      });
    }
  }
  return { closings, absent, forgotten };
}

/**
 * The alarms every entity of which has been told the end of, each with its members, oldest first.
 * An entity is in its alarm and in the earlier ones it was lost again from.
 */
function closedAlarms(kept: Map<string, ReadinessNotice>) {
  const memberships = [...kept.values()].flatMap(n => [
    ...(n.alarm
      ? [{ entityRef: n.entityRef, alarm: n.alarm, told: alarmRecipients(n) }]
      : []),
    ...(n.pastAlarms ?? []).map(p => ({
      entityRef: n.entityRef,
      alarm: p as ReadinessAlarm,
      told: alarmRecipients({ ...p, entityRef: n.entityRef }),
    })),
  ]);
  const alarms = groupBy(
    memberships.sort(
      (a, b) =>
        a.alarm.sentAt.localeCompare(b.alarm.sentAt) || byEntityRef(a, b),
    ),
    m => m.alarm.scope,
  );
  return [...alarms.values()].filter(members =>
    members.every(m => m.alarm.closedAt),
  );
}

export interface NotifySummary {
  /** Entities assessed. */
  entities: number;
  /**
   * Notices sent (alarms, notices that close them, alarms resolved in place), and those that could
   * not be (sent at a later sweep: the next, or, where no notifications backend is installed, one
   * past ABSENT_NOTIFICATIONS_RETRY_MS).
   */
  sent: number;
  failed: number;
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

  /** When a notice last found no notifications backend installed (see ABSENT_NOTIFICATIONS_RETRY_MS). */
  private absentAt?: number;

  /**
   * `signal` is the scheduler's: aborted at the task's timeout, when another replica may start a
   * sweep of its own, this one sends no more (what it sent is recorded).
   */
  async sweep(signal?: AbortSignal): Promise<NotifySummary> {
    // What changed, and what the notices about it quote.
    const sweep = await this.assess();
    const facts = await this.readFacts(sweep);
    // Whom they reach.
    const groups = await this.ownerGroups(sweep, facts);
    // Sent, each kept as it is sent: losses, then the ends of alarms (recoverable again, or gone).
    const outbox = new Outbox(
      this.notifications,
      this.notices,
      sweep.told,
      signal,
      this.absentAt !== undefined &&
        Date.now() - this.absentAt < ABSENT_NOTIFICATIONS_RETRY_MS,
    );
    const lost = await this.tellLosses(sweep, facts, groups, outbox);
    const gone = goneFromList(sweep);
    await this.tellClosings(
      [
        ...sweep.regained.map(d => regainedClosing(d, facts, groups, sweep.at)),
        ...gone.closings,
      ],
      sweep.at,
      outbox,
    );
    // The rest kept untold; alarms whose every entity was told the end of, resolved.
    await this.keepUntold(sweep, facts, gone, outbox);
    await this.resolveAlarms(sweep, outbox);
    return this.report(sweep, lost, groups, outbox);
  }

  /** Every recoverable entity's readiness now, against what was kept of it. */
  private async assess(): Promise<Sweep> {
    const [refs, told] = await Promise.all([
      this.catalog.recoverableEntities(),
      this.notices.all(),
    ]);
    const credentials = await this.auth.getOwnServiceCredentials();
    // Assessed as the plugin sees the catalog, but told to owners: a run of another entity (a
    // system they may not see) is quoted without its message, console or machines.
    const items = await this.readiness.readinessOf(refs, credentials, {
      ownRunsOnly: true,
    });
    const at = new Date().toISOString();
    const entities = items.map(item =>
      assessed(item, told.get(item.entityRef), at),
    );
    return {
      at,
      credentials,
      listed: new Set(refs),
      told,
      entities,
      losses: entities.filter(d => d.change === 'lost'),
      regained: entities.filter(d => d.change === 'regained'),
      unowned: entities
        .filter(d => !d.change && d.notice.alarm && !d.notice.owners)
        .map(d => d.item.entityRef),
    };
  }

  /**
   * What readiness for owners withholds of other entities' runs that a notice quotes (a failed
   * last run; a failure since on a machine of the plan; the run a grown plan was last recovered
   * by), as the plugin sees it, for those entities alone; and owners, of each entity told (kept
   * with its alarm, whose end must reach them once the catalog no longer names them), of each alarm
   * kept without them, and of the entity of each run a notice quotes (whether its owners may be
   * told which run it was). One request each.
   */
  private async readFacts({
    losses,
    regained,
    unowned,
    credentials,
  }: Sweep): Promise<NoticeFacts> {
    const withheld = [...losses, ...regained]
      .filter(d => withholdsRuns(d.item))
      .map(d => d.item.entityRef);
    const whole = new Map(
      withheld.length > 0
        ? (await this.readiness.readinessOf(withheld, credentials)).map(i => [
            i.entityRef,
            i,
          ])
        : [],
    );
    const failedRuns = new Map(
      losses.map(
        d =>
          [
            d.item.entityRef,
            failedRunOf(d.item, whole.get(d.item.entityRef)),
          ] as const,
      ),
    );
    const runEntities = [
      ...[...failedRuns.values()].flatMap(f => (f ? [f.run.entityRef] : [])),
      ...[...whole.values()].flatMap(w =>
        [...runsByReason(w).values()].flatMap(run =>
          run ? [run.entityRef] : [],
        ),
      ),
    ];
    const told = [...losses, ...regained].map(d => d.item.entityRef);
    const owners = await this.catalog.ownersOf([
      ...new Set([...told, ...unowned, ...runEntities]),
    ]);
    return new NoticeFacts(whole, failedRuns, owners);
  }

  /**
   * The groups among the owners told, to know whom each notice reaches: of each loss, kept with its
   * alarm (a group removed from the catalog by the time the alarm is closed resolves to no one,
   * while its former members still have the alarm); of each alarm closed now whose reasons may name
   * another entity's run (whether the users it reached are still among their members).
   */
  private async ownerGroups(
    { losses, regained, credentials }: Sweep,
    facts: NoticeFacts,
  ): Promise<Map<string, Entity>> {
    const closingOwners = regained
      .filter(d => facts.whole.has(d.item.entityRef) && d.seen?.users)
      .flatMap(d => d.seen!.owners ?? []);
    return groupsOf(
      [
        ...losses.flatMap(d => facts.ownersOf(d.item.entityRef)),
        ...closingOwners,
      ],
      this.directory,
      credentials,
    );
  }

  /** One alarm per cause and owners, sent to the entities; what each reached is kept with it. */
  private async tellLosses(
    { losses, at }: Sweep,
    facts: NoticeFacts,
    groups: Map<string, Entity>,
    outbox: Outbox,
  ): Promise<ReadinessNotice[]> {
    const told = losses.map(d => ({ d, loss: facts.lossOf(d.item) }));
    const byCause = groupBy(told, ({ loss }) =>
      JSON.stringify([
        setKey(facts.ownersOf(loss.entityRef)),
        loss.cause
          ? ['run', loss.cause.runId, loss.cause.named]
          : ['reasons', loss.reasons],
      ]),
    );
    // Counted from when each was first seen lost, at a sweep that could not send it.
    const seenLost = (d: Assessed) => d.seen!.lossSeen ?? at;
    // A loss a failed run made began when that run ended, which the sweep saw later; not before
    // the status it ended began.
    const began = ({ d, loss }: { d: Assessed; loss: Loss }) => {
      const ended = loss.cause && Date.parse(loss.cause.at);
      return ended &&
        ended <= Date.parse(seenLost(d)) &&
        ended >= Date.parse(d.seen!.since)
        ? new Date(ended).toISOString()
        : seenLost(d);
    };
    const lost: ReadinessNotice[] = [];
    for (const group of byCause.values()) {
      const refs = group.map(g => g.loss.entityRef);
      const scope = noticeScope(
        'lost',
        ...group.flatMap(({ d }) => [d.item.entityRef, d.seen!.since]),
      );
      const payload = lossNotice(
        group.map(g => g.loss),
        scope,
      );
      if (await outbox.send(refs, recipientsOf(refs), payload)) {
        const alarm: ReadinessAlarm = {
          scope,
          title: payload.title,
          sentAt: at,
          lostAt: group.map(began).sort()[0],
        };
        const saved = group.map(({ d }) => {
          const owners = facts.ownersOf(d.item.entityRef);
          return withAlarm(
            { ...d.notice, since: seenLost(d) },
            alarm,
            owners,
            usersReached(owners, groups),
          );
        });
        await outbox.save(saved);
        lost.push(...saved);
      } else {
        await outbox.save(
          group
            .filter(({ d }) => !d.seen!.lossSeen)
            .map(({ d }) => ({ ...d.seen!, lossSeen: at })),
        );
      }
    }
    return lost;
  }

  /** One notice per alarm closed and those it reached, to them alone (alarmRecipients). */
  private async tellClosings(
    closings: ClosingTold[],
    at: string,
    outbox: Outbox,
  ): Promise<void> {
    for (const group of groupBy(closings, c => c.key).values()) {
      const refs = group.map(c => c.before.entityRef);
      const scope = noticeScope(
        group[0].now ? 'regained' : 'gone',
        group[0].before.alarm.scope,
        ...refs,
      );
      if (
        await outbox.send(
          refs,
          closingRecipients(group.map(c => c.before)),
          closingNotice(group, at, scope),
        )
      )
        await outbox.save(group.map(c => c.after));
    }
  }

  /** What changed untold, entities found missing, and alarms kept without owners, with their owners now. */
  private async keepUntold(
    { entities, unowned }: Sweep,
    facts: NoticeFacts,
    { absent, forgotten }: { absent: ReadinessNotice[]; forgotten: string[] },
    outbox: Outbox,
  ): Promise<void> {
    const legacy = new Set(unowned);
    const changed = entities.flatMap(({ before, change, notice, item }) => {
      if (change) return [];
      if (legacy.has(item.entityRef))
        return [{ ...notice, owners: facts.ownersOf(item.entityRef) }];
      return notice === before ? [] : [notice];
    });
    await outbox.save([...changed, ...absent]);
    await outbox.forget(forgotten);
  }

  /** Alarms whose every entity has been told the end of it: resolved in place. */
  private async resolveAlarms(
    { listed, at }: Sweep,
    outbox: Outbox,
  ): Promise<void> {
    for (const members of closedAlarms(outbox.kept)) {
      const { scope } = members[0].alarm;
      const refs = members.map(m => m.entityRef);
      const until = members
        .map(m => m.alarm.closedAt!)
        .sort()
        .at(-1)!;
      // For those who have it alone: the notifications backend gives anyone else a new notice with
      // the alarm's title, which may name another entity's run to owners the naming rule kept it
      // from (an entity's owners now, changed since).
      const told = [...new Set(members.flatMap(m => m.told))];
      if (
        told.length > 0 &&
        !(await outbox.send(
          refs,
          recipientsOf(told),
          resolvedAlarm(members[0].alarm, refs, until),
        ))
      )
        continue;
      // Kept without the alarm, unless missing and in no other alarm: then forgotten if it was told
      // it is gone (missing at two sweeps: only such a member has absentSince); else it went
      // missing while the alarm waited for the others, and is kept as last seen from now, as any
      // missing entity is (ABSENCE_KEPT_MS).
      const after = members.map(m =>
        withoutAlarm(outbox.kept.get(m.entityRef)!, scope),
      );
      const unlisted = (n: ReadinessNotice) =>
        !listed.has(n.entityRef) && !n.alarm && !n.pastAlarms;
      const gone = after
        .filter(n => unlisted(n) && n.absentSince)
        .map(n => n.entityRef);
      await outbox.save(
        after
          .filter(n => !gone.includes(n.entityRef))
          .map(n => (unlisted(n) ? { ...n, absentSince: at } : n)),
      );
      await outbox.forget(gone);
    }
  }

  private report(
    { entities }: Sweep,
    lost: ReadinessNotice[],
    groups: Map<string, Entity>,
    outbox: Outbox,
  ): NotifySummary {
    const { sent, failures, held } = outbox;
    this.warnUntold(lost, groups);
    this.reportAbsence(outbox);
    if (sent > 0)
      this.logger.info(
        `Readiness notices: sent ${sent} to owners (entities no longer recoverable, recoverable again or gone; alarms resolved)`,
      );
    if (failures.length > 0) {
      const [first] = failures;
      this.logger
        .child({ entityRefs: first.entityRefs })
        .warn(
          `Readiness notices: could not send ${failures.length} ${failures.length === 1 ? 'notice' : 'notices'}, retried at the next sweep ` +
            '(is @backstage/plugin-notifications-backend installed? recovery.notifications.enabled: false turns notices off); the first failed with',
          toError(first.error),
        );
    }
    return {
      entities: entities.length,
      sent,
      failed: failures.length + held,
    };
  }

  /**
   * A notifications backend not installed is said once, with what to do, not at every sweep: the
   * sweeps after hold their notices for ABSENT_NOTIFICATIONS_RETRY_MS. Said again only after
   * notices got through since.
   */
  private reportAbsence({ absent, held, sent }: Outbox): void {
    if (!absent) {
      if (sent > 0) this.absentAt = undefined;
      return;
    }
    const log =
      this.absentAt === undefined
        ? this.logger.warn.bind(this.logger)
        : this.logger.debug.bind(this.logger);
    this.absentAt = Date.now();
    log(
      `Readiness notices: no notifications backend is installed (a notice was answered 404 Not Found): install @backstage/plugin-notifications-backend, ` +
        `or set recovery.notifications.enabled: false to turn notices off. ${held} ${held === 1 ? 'notice waits' : 'notices wait'}, ` +
        'tried again in a day or once the backend restarts; the first failed with',
      absent,
    );
  }

  /**
   * The notifications plugin resolves an owner the catalog no longer holds (a group removed from
   * it), or a group without members, to no one, and says nothing: a loss that reached no user
   * reached no one, which only this log can say.
   */
  private warnUntold(
    lost: ReadinessNotice[],
    groups: Map<string, Entity>,
  ): void {
    const untold = lost.filter(n => n.users?.length === 0);
    if (untold.length === 0) return;
    this.logger.warn(
      `Readiness notices: told no one that ${untold.length} ${untold.length === 1 ? 'entity is' : 'entities are'} not recoverable, ` +
        'as no owner of theirs resolves to a user; give them an owner the catalog holds, with members',
      {
        entityRefs: untold.map(n => n.entityRef),
        // Each entity's, in the same order.
        owners: untold.map(n =>
          n.owners?.length
            ? `owned by ${n.owners.map(o => whyNoOneReached(o, groups)).join(', ')}`
            : 'owned by no one',
        ),
      },
    );
  }
}
