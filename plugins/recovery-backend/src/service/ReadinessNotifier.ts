import { formatSeconds, type ReadinessStatus, type ReadinessSummary } from '@backstage-recovery/plugin-recovery-common';
import type { AuthService, LoggerService } from '@backstage/backend-plugin-api';
import { parseEntityRef } from '@backstage/catalog-model';
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

/**
 * Who gets an entity's notices: the entity, which the notifications plugin resolves to its owners
 * now, and those told it is not recoverable, so that a notice closing it reaches them also after
 * the entity changed owners or left the catalog.
 */
export function noticeRecipients(entityRef: string, told?: ReadinessNotice): NotificationRecipients {
  const owners = told?.status === 'not-recoverable' ? (told.owners ?? []) : [];
  return { type: 'entity', entityRef: owners.length > 0 ? [entityRef, ...owners] : entityRef };
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
      /** Those of `refs` the catalog holds. */
      heldRefs(refs: string[]): Promise<string[]>;
    },
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
    const owned = (notice: ReadinessNotice) => (owners.has(notice.entityRef) ? { ...notice, owners: owners.get(notice.entityRef)! } : notice);
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
    await this.warnUntold(lost);
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
   * The notifications plugin resolves an owner the catalog no longer holds (a group removed from
   * it) to no one, and says nothing: a loss told only to such owners reached no one, which only
   * this log can say.
   */
  private async warnUntold(lost: ReadinessNotice[]): Promise<void> {
    const owners = [...new Set(lost.flatMap(n => n.owners ?? []))];
    // A catalog that does not answer says nothing of the owners: the notices were sent all the same.
    const answer = owners.length > 0 ? await this.catalog.heldRefs(owners).catch(() => undefined) : [];
    if (!answer) return;
    const held = new Set(answer);
    const untold = lost.filter(n => !(n.owners ?? []).some(owner => held.has(owner)));
    if (untold.length === 0) return;
    const whose = untold.map(n => `${n.entityRef} (${n.owners?.length ? `owned by ${n.owners.join(', ')}, not in the catalog` : 'owned by no one'})`);
    this.logger.warn(
      `Readiness notices: told no one that ${untold.length} ${untold.length === 1 ? 'entity is' : 'entities are'} not recoverable, ` +
        `as no owner of theirs is in the catalog: ${whose.join('; ')}; give them an owner the catalog holds`,
    );
  }
}
