import { LoggerService } from '@backstage/backend-plugin-api';
import { stringifyEntityRef, type Entity } from '@backstage/catalog-model';
import { toError } from '@backstage/errors';
import {
  ANNOTATION_NIGHTLY_CHECK,
  coversPlan,
  failedAtHost,
  formatUtcTime,
  hostBusy,
  interruptedRunWords,
  isHostBusy,
  isRunInterrupted,
  keptFailover,
  machinesNotCaptured,
  NIGHTLY_CHECK_MESSAGE_MAX_LENGTH,
  type BootPlan,
  type KeptFailover,
  type NightlyCheckEntityOutcome,
  type NightlyCheckRecord,
  type NightlyCheckRefusal,
  type ReadinessSummary,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  listed,
  messageOf,
  type RecoveryTasksApi,
} from '@backstage-recovery/plugin-recovery-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerStatus, type TaskReport, withFailures } from './tasks';

/** A run the nightly check plans: for `entityRef`, standing in for the runs of those it `covers`. */
export interface NightlyTarget {
  entityRef: string;
  plan: BootPlan;
  /** Entities whose plan this run covers, planned to need no run of their own. */
  covers: Array<{ entityRef: string; plan: BootPlan }>;
  /** Machines of its plan never captured: its run will be refused, so it covers nothing. */
  uncaptured: string[];
}

type Candidate = Omit<NightlyTarget, 'covers'>;

/** Chooses runs among `candidates` (largest plans first) so that each is run or covered by one. */
function chooseRuns(candidates: Candidate[]): NightlyTarget[] {
  const services = (plan: BootPlan) =>
    plan.machines.reduce((n, m) => n + m.services.length, 0);
  const sorted = [...candidates].sort(
    (a, b) =>
      b.plan.machines.length - a.plan.machines.length ||
      services(b.plan) - services(a.plan) ||
      (a.entityRef < b.entityRef ? -1 : a.entityRef > b.entityRef ? 1 : 0),
  );
  const chosen: NightlyTarget[] = [];
  for (const c of sorted) {
    // The chosen run, planned to succeed: whether it would count for `c` in readiness. One that
    // will be refused for a machine never captured counts for no one.
    const by = chosen.find(
      t =>
        t.uncaptured.length === 0 &&
        coversPlan(
          { entityRef: t.entityRef, status: 'succeeded', plan: t.plan },
          c.plan,
          c.entityRef,
        ),
    );
    if (by) by.covers.push({ entityRef: c.entityRef, plan: c.plan });
    else chosen.push({ ...c, covers: [] });
  }
  return chosen;
}

/**
 * What the nightly check recovers so that every recoverable entity is covered, with as few runs
 * as that takes. A run counts for an entity when readiness counts it (`coversPlan`): it boots
 * every machine of the entity's plan gated by the probes of the services the plan puts there, so
 * an entity needs no run of its own only if a chosen plan covers its plan that way; sharing its
 * machines is not enough. Larger plans (systems, mostly; then more services) are chosen first;
 * entities without machines, and those `optedOut`, none. A plan holding a machine never captured
 * (no latest capture in the readiness item) covers no one: its run is refused, and the entities
 * it would have covered are recovered on their own, so only those really missing a capture fail.
 */
export function nightlyTargets(
  items: Array<Pick<ReadinessSummary, 'entityRef' | 'plan' | 'captures'>>,
  optedOut: Set<string>,
): NightlyTarget[] {
  return chooseRuns(
    items.flatMap(r => {
      if (!r.plan || r.plan.machines.length === 0 || optedOut.has(r.entityRef))
        return [];
      const captured = new Set(
        r.captures.filter(c => c.latest).map(c => c.machineRef),
      );
      const uncaptured = r.plan.machines
        .map(m => m.machineRef)
        .filter(m => !captured.has(m));
      return [{ entityRef: r.entityRef, plan: r.plan, uncaptured }];
    }),
  );
}

/** Who the nightly check leaves out, as the catalog's nightly-check annotations say. */
export interface NightlyOptOuts {
  optedOut: Set<string>;
  /** Values neither false nor true, each saying which entity and what: those entities are checked. */
  unread: string[];
}

/**
 * Reads the nightly-check annotation of the entities that carry it: `false` (in any case, as the
 * catalog's own filters match it) leaves the entity out, `true` keeps it in. Any other value (`no`,
 * `off`, `0`) is checked all the same, as leaving an entity out on a guess would hide it from the
 * check, and is named so that it gets mended.
 */
export function nightlyOptOuts(entities: Entity[]): NightlyOptOuts {
  const optedOut = new Set<string>();
  const unread: string[] = [];
  for (const entity of entities) {
    const ref = stringifyEntityRef(entity);
    const value = entity.metadata.annotations?.[ANNOTATION_NIGHTLY_CHECK];
    if (value === undefined) continue;
    const said = value.trim().toLocaleLowerCase('en-US');
    if (said === 'false') optedOut.add(ref);
    else if (said !== 'true') {
      unread.push(
        `${ref}: ${ANNOTATION_NIGHTLY_CHECK} "${value}" is neither 'false' nor 'true', so it is checked; set it to 'false' to leave it out of the nightly check`,
      );
    }
  }
  return { optedOut, unread };
}

/** What the nightly check did: per entity, as readiness will count it; and each run, in order. */
export interface NightlyReport extends TaskReport {
  /**
   * One line per run (or run that could not be made): what it was for, how it ended, what it
   * covered; then one line per failover kept on the host that refused runs, naming whom it held up.
   */
  runs: string[];
  /** How many runs were started. */
  started: number;
  /** Nightly-check annotations it could not read (NightlyOptOuts.unread): their entities were checked. */
  unread?: string[];
  /**
   * Entities among `failed` that were not checked as their run was interrupted, started again and
   * interrupted again, or cancelled by someone: no recovery of theirs failed, none was proven either.
   */
  interrupted?: string[];
  /**
   * What it did about each entity, as the backend records it for the entity's page: its run
   * started, covered by another's, left out, or refused and why. One an entity, the last word.
   */
  outcomes: NightlyCheckEntityOutcome[];
  /**
   * The hypervisor host a run of the night failed at (`hostUnreachable`): from then on, `at`, the
   * check asked no more of it. `entities`, among `failed`, were not checked for it: that run's own
   * and those it was to cover (it tells nothing of their plans), and every one not reached yet.
   */
  hostUnreachable?: {
    host: string;
    at: string;
    runId: string;
    entityRef: string;
    entities: string[];
  };
}

/**
 * Why an entity of the nightly check did not recover: its run failed, or was interrupted twice
 * or cancelled by someone, or no run was made (refused), or its plan has no machine.
 */
export type NightlyFailure =
  | 'run-failed'
  | 'run-interrupted'
  | 'refused'
  | 'no-machine'
  | 'host-unreachable';

/**
 * How many entities the nightly check checked, how many recovered, and of the others, how many
 * for each reason (every reason, 0 where none): the summary's figures and the metrics'.
 */
export function nightlyCounts(report: NightlyReport): {
  checked: number;
  recovered: number;
  failed: Record<NightlyFailure, number>;
} {
  // Entities no run was made for (a machine never captured, no plan, a failover kept on the host)
  // are said apart from those whose recovery failed, and those whose plan has no machine apart
  // again (nothing says where they run: no run could be made): the task's failures count all.
  // Those not checked as the hypervisor host could not be reached are said apart too: the host's
  // failure, not theirs.
  const atHost = new Set(report.hostUnreachable?.entities ?? []);
  const refs = (noMachine: boolean) =>
    new Set(
      report.outcomes
        .filter(
          o =>
            o.outcome === 'refused' &&
            !atHost.has(o.entityRef) &&
            (o.reason === 'no-machine') === noMachine,
        )
        .map(o => o.entityRef),
    );
  const [notRun, onNoMachine] = [refs(false), refs(true)];
  const refused = report.failed.filter(f => notRun.has(f.entityRef)).length;
  const noMachine = report.failed.filter(f =>
    onNoMachine.has(f.entityRef),
  ).length;
  const unreachable = report.failed.filter(f => atHost.has(f.entityRef)).length;
  // Those whose run was interrupted twice are among the failed, though no recovery of theirs failed.
  const interrupted = report.interrupted?.length ?? 0;
  return {
    checked: report.succeeded.length + report.failed.length,
    recovered: report.succeeded.length,
    failed: {
      'run-failed':
        report.failed.length - refused - noMachine - interrupted - unreachable,
      'run-interrupted': interrupted,
      refused,
      'no-machine': noMachine,
      'host-unreachable': unreachable,
    },
  };
}

/**
 * The nightly check's summary for the task's log: how many entities it checked and by how many
 * runs (a run covers every entity whose plan it holds), how many of them recovered and why the
 * others did not, then what each run was for, how it ended and what it covered (or why it was an
 * entity's own).
 */
export function nightlySummary(report: NightlyReport): string {
  const { checked: entities, recovered, failed: not } = nightlyCounts(report);
  const runs =
    report.started === 0
      ? 'no run'
      : `${report.started} run${report.started === 1 ? '' : 's'}`;
  const why = [
    ...(not['run-failed'] > 0
      ? [`${not['run-failed']} in a run that failed`]
      : []),
    ...(not['run-interrupted'] > 0
      ? [`${not['run-interrupted']} not checked: their run was interrupted`]
      : []),
    ...(not.refused > 0 ? [`${not.refused} refused: no run`] : []),
    ...(not['no-machine'] > 0
      ? [`${not['no-machine']} not checked: no machine`]
      : []),
    ...(not['host-unreachable'] > 0
      ? [`${not['host-unreachable']} not checked: hypervisor host unreachable`]
      : []),
  ];
  const notRecovered = report.failed.length
    ? `, ${report.failed.length} not (${why.join('; ')})`
    : '';
  const down = report.hostUnreachable;
  return [
    `Nightly readiness check: ${entities} ${entities === 1 ? 'entity' : 'entities'} checked by ${runs}: ${recovered} recovered${notRecovered}`,
    // Once, beneath: the host's failure, which is no entity's.
    ...(down
      ? [
          `  hypervisor host ${down.host} unreachable from ${formatUtcTime(down.at, { clock: true })}: ${down.entities.length} ${down.entities.length === 1 ? 'entity' : 'entities'} not checked (run ${down.runId} of ${down.entityRef} failed there; no run was asked of it after)`,
        ]
      : []),
    ...report.runs.map(r => `  ${r}`),
    ...(report.unread ?? []).map(u => `  ${u}`),
  ].join('\n');
}

/**
 * Ends the nightly check with its summary: at info where every entity recovered, else at warn,
 * naming each that did not and why. An entity that does not recover is what the check is there to
 * find, not a failure of the check: only a check that could not go on (it threw) fails its task,
 * at error.
 */
export function finishNightlyCheck(
  report: NightlyReport,
  logger: LoggerService,
): void {
  const summary = nightlySummary(report);
  if (report.failed.length === 0) logger.info(summary);
  else logger.warn(withFailures(summary, report.failed));
}

/**
 * The nightly readiness check: the test recoveries that cover every recoverable entity
 * (`nightlyTargets`), one after the other. An entity without a boot plan (a dependency cycle, a
 * broken reference), or whose plan has no machine (a service on none, or whose machines left the
 * catalog: nothing says where it runs), gets no run, and is not recoverable: it fails the check,
 * saying why in readiness's words, as one whose run failed does. Those opted out are left out;
 * annotations it could not read are named in its report.
 *
 * What it did about each entity is recorded in the backend as soon as it is known (those left out
 * or without a plan at once, a run once started, a refusal once it came), so each entity's page
 * says tonight's while the night goes on; one not reached yet keeps last night's. At its end, the
 * night is recorded whole, which drops the outcomes of entities it did not check. Meanwhile it
 * says it is still there every minute: a check killed mid-night (its backend SIGKILLed or
 * restarted) goes silent, and its pages say it was interrupted, how far it got and when.
 */
export async function nightlyCheck(
  api: RecoveryTasksApi,
  { optedOut, unread }: NightlyOptOuts,
  logger: LoggerService,
  options: {
    pollIntervalMs: number;
    deadline?: number;
    signal?: AbortSignal;
    /** How often it says it is still there while it waits (NIGHTLY_HEARTBEAT_MS). */
    heartbeatMs?: number;
  },
): Promise<NightlyReport> {
  const checkedAt = new Date().toISOString();
  for (const line of unread) logger.warn(`Nightly check: ${line}`);
  const items = await api.listReadiness({ signal: options.signal });
  const unplanned = withoutRun(items, optedOut, logger);
  const targets = nightlyTargets(items, optedOut);
  const covered = targets.reduce((n, t) => n + t.covers.length, 0);
  logPlannedRuns(targets, covered, optedOut, logger);
  const known = knownOutcomes(items, optedOut, unplanned);
  // The night opens at once, saying how many entities it checks: should it be killed, its pages
  // say how far it got.
  const recordSoFar = nightlyRecorder(api, checkedAt, logger, options.signal, {
    entities: known.length + targets.length + covered,
    heartbeatMs: options.heartbeatMs,
  });
  await recordSoFar(known);
  const report = await runNightlyCheck(api, targets, logger, {
    ...options,
    record: recordSoFar,
  });
  const outcomes = [...known, ...report.outcomes];
  // The night whole: the last word on each entity (also those whose outcome so far was not
  // recorded), and none for an entity it did not check.
  await recordNightlyCheck(api, { checkedAt, outcomes }, logger);
  return {
    ...report,
    outcomes,
    failed: [
      ...unplanned.map(({ entityRef, message }) => ({ entityRef, message })),
      ...report.failed,
    ],
    ...(unread.length > 0 && { unread }),
  };
}

/** An entity no run can be made for, whatever the host: failed, saying why. */
type Unplanned = TaskReport['failed'][number] & {
  reason: Extract<NightlyCheckRefusal, 'no-plan' | 'no-machine'>;
};

/**
 * Entities with no boot plan (a dependency cycle, a broken reference), or with one that has no
 * machine (nothing says where it runs): no run, and failed, saying why as readiness does.
 */
function withoutRun(
  items: ReadinessSummary[],
  optedOut: Set<string>,
  logger: LoggerService,
): Unplanned[] {
  const unplanned = items.flatMap((r): Unplanned[] => {
    if (optedOut.has(r.entityRef) || (r.plan && r.plan.machines.length > 0))
      return [];
    const why = r.reasons.join('; ') || r.status;
    return [
      r.plan
        ? {
            entityRef: r.entityRef,
            reason: 'no-machine',
            message: `no machine in its boot plan, so no test recovery: ${why}`,
          }
        : {
            entityRef: r.entityRef,
            reason: 'no-plan',
            message: `no boot plan, so no test recovery: ${why}`,
          },
    ];
  });
  // Not recoverable is what the check finds, not its own failure: at warn.
  for (const { entityRef, message } of unplanned)
    logger.warn(`Nightly check: ${message}`, { entityRef });
  return unplanned;
}

/** The night's plan, for the task's log: how many runs, whom each covers, which will be refused. */
function logPlannedRuns(
  targets: NightlyTarget[],
  covered: number,
  optedOut: Set<string>,
  logger: LoggerService,
) {
  logger.info(
    `Nightly check: ${targets.length} runs planned for ${targets.length + covered} entities${
      optedOut.size > 0 ? ` (${optedOut.size} opted out)` : ''
    }`,
    optedOut.size > 0 ? { optedOut: [...optedOut] } : undefined,
  );
  for (const t of targets) {
    if (t.covers.length > 0)
      logger.info(
        `Nightly check: its run covers ${t.covers.length} more ${t.covers.length === 1 ? 'entity' : 'entities'}`,
        { entityRef: t.entityRef, covers: t.covers.map(c => c.entityRef) },
      );
    if (t.uncaptured.length > 0) {
      logger.warn(
        'Nightly check: machines never captured, so its run will be refused and covers no one',
        { entityRef: t.entityRef, machineRefs: t.uncaptured },
      );
    }
  }
}

/** Outcomes known before any run (left out, no plan, no machine): said at once, as every outcome is once known. */
function knownOutcomes(
  items: ReadinessSummary[],
  optedOut: Set<string>,
  unplanned: Unplanned[],
): NightlyCheckEntityOutcome[] {
  return [
    ...items
      .filter(r => optedOut.has(r.entityRef))
      .map(r => ({
        entityRef: r.entityRef,
        outcome: 'excluded' as const,
        message: `left out: its ${ANNOTATION_NIGHTLY_CHECK} annotation is 'false'`,
      })),
    ...unplanned.map(({ entityRef, reason, message }) => ({
      entityRef,
      outcome: 'refused' as const,
      reason,
      message: clip(message),
    })),
  ];
}

/** How long recording a night's outcomes may take, whatever the task's signal: a stopped check still records what it did. */
const RECORD_TIMEOUT_MS = 20_000;

/**
 * How often the check under way says it is still there, when it has nothing new to record: well
 * within the silence after which the backend takes a night as interrupted (NIGHTLY_CHECK_SILENCE_MS).
 */
export const NIGHTLY_HEARTBEAT_MS = 60_000;

/**
 * Records the outcomes of the night under way as the check learns them (`partial`), so that each
 * entity's page says tonight's once the check has reached it; one not reached yet keeps last
 * night's, dated then. A failure is logged once and fails nothing: the outcomes not recorded are
 * sent again with the next, and the night's whole record at its end carries them all. Once the
 * backend holds a newer night (this check outlived the next one's start), it sends no more.
 *
 * Its first call records at once (the night under way, `entities` to check), outcomes or none; a
 * call without anything new sends an empty record once `heartbeatMs` passed since the last: the
 * check is still there, so the night is not taken as interrupted while it waits for a long run.
 */
export function nightlyRecorder(
  api: Pick<RecoveryTasksApi, 'recordNightlyCheck'>,
  checkedAt: string,
  logger: LoggerService,
  signal?: AbortSignal,
  options: { entities?: number; heartbeatMs?: number } = {},
): (outcomes: NightlyCheckEntityOutcome[]) => Promise<void> {
  const heartbeatMs = options.heartbeatMs ?? NIGHTLY_HEARTBEAT_MS;
  /** Decided, not yet recorded: each entity's last word. */
  let unsent = new Map<string, NightlyCheckEntityOutcome>();
  let superseded = false;
  let failing = false;
  /** When a record was last sent, whatever its answer; none yet. */
  let sentAt: number | undefined;
  return async outcomes => {
    for (const o of outcomes) {
      unsent.delete(o.entityRef);
      unsent.set(o.entityRef, o);
    }
    // Stopped: the whole record, sent next, says it all.
    if (superseded || signal?.aborted) return;
    // Nothing new (those a failed record left are sent again with the next, or with a heartbeat).
    if (
      outcomes.length === 0 &&
      sentAt !== undefined &&
      Date.now() - sentAt < heartbeatMs
    )
      return;
    const batch = unsent;
    unsent = new Map();
    sentAt = Date.now();
    const timeout = AbortSignal.timeout(RECORD_TIMEOUT_MS);
    try {
      await api.recordNightlyCheck(
        {
          checkedAt,
          outcomes: [...batch.values()],
          partial: true,
          ...(options.entities !== undefined && { entities: options.entities }),
        },
        { signal: signal ? AbortSignal.any([signal, timeout]) : timeout },
      );
      failing = false;
    } catch (error) {
      if (answerStatus(error) === 409) {
        superseded = true;
        logger.warn(
          "Nightly check: a newer night's outcomes are recorded, so this one's are not",
          toError(error),
        );
        return;
      }
      // Again with the next, unless decided anew since.
      for (const [ref, o] of batch) if (!unsent.has(ref)) unsent.set(ref, o);
      if (!failing) {
        logger.warn(
          "Nightly check: could not record its outcomes so far, so the pages of the entities it reached still show the last night's until it records them",
          toError(error),
        );
      }
      failing = true;
    }
  };
}

/**
 * Records a night's outcomes in the backend, whole, once the check ends, in one call. A failure
 * is logged, and fails nothing: the check itself is done, and the pages keep what was recorded.
 */
async function recordNightlyCheck(
  api: RecoveryTasksApi,
  night: NightlyCheckRecord,
  logger: LoggerService,
) {
  try {
    await api.recordNightlyCheck(night, {
      signal: AbortSignal.timeout(RECORD_TIMEOUT_MS),
    });
  } catch (error) {
    logger.warn(
      `Nightly check: could not record its outcomes for ${night.outcomes.length} entities, so their pages still show the last outcomes recorded`,
      toError(error),
    );
  }
}

/** A message as the backend keeps it: at most NIGHTLY_CHECK_MESSAGE_MAX_LENGTH characters, no NUL. */
function clip(message: string): string {
  const chars = [...message.replace(/\0/g, '')];
  return chars.length <= NIGHTLY_CHECK_MESSAGE_MAX_LENGTH
    ? chars.join('')
    : `${chars.slice(0, NIGHTLY_CHECK_MESSAGE_MAX_LENGTH - 1).join('')}…`;
}
/**
 * Whether reading a run's state may succeed if tried again: no answer (the wait aborted), a server
 * error (the database, say), or a timeout / rate limit. A 404 or an auth error will not change.
 */
function isTransientPollError(error: unknown): boolean {
  const status = answerStatus(error);
  return (
    status === undefined || status >= 500 || status === 408 || status === 429
  );
}

/**
 * A start refused because a finished failover keeps its machines on the hypervisor host, serving
 * production on subnets the run's plan needs (the backend's check beside a kept failover). It holds
 * for as long as the failover stays, so waiting is pointless: its parts, to say it once.
 */
interface KeptFailoverRefusal extends Omit<
  KeptFailover,
  'runId' | 'entityRef'
> {
  /** The failover's id and entity, where the backend names them: none where it names none. */
  run: { runId?: string; runEntityRef?: string };
}

function keptFailoverRefusal(error: unknown): KeptFailoverRefusal | undefined {
  const kept = keptFailover(error);
  if (!kept) return undefined;
  const { runId, entityRef, ...parts } = kept;
  return { ...parts, run: namedRun({ runId, entityRef }) };
}

/**
 * The run a refusal names (`runId` and `entityRef` of its body: the failover kept on the host, the
 * run holding it), for the entities' pages to link; none where the backend names none.
 */
function namedRun(named: { runId?: string; entityRef?: string } | undefined): {
  runId?: string;
  runEntityRef?: string;
} {
  const { runId, entityRef } = named ?? {};
  return runId !== undefined && entityRef !== undefined
    ? { runId, runEntityRef: entityRef }
    : {};
}

/** How one nightly run ended, as what it tells about the entities it was to cover. */
type RunOutcome =
  | { kind: 'finished'; run: RecoveryRun }
  /**
   * Refused, or lost: no run tells about anyone. `keptFailover`: refused beside a failover kept on
   * the host; `uncaptured`: for a machine never captured; `runId`: the run started, then was lost.
   */
  | {
      kind: 'not run';
      message: string;
      keptFailover?: KeptFailoverRefusal;
      uncaptured?: boolean;
      runId?: string;
    }
  /**
   * The time budget ran out before it started or while it ran; or the task was stopped. `runId`:
   * the run started (it goes on), `covered` what it is to those it covers (readiness counts it for
   * them once it ends); `busy`: the host was still busy, with that run where named.
   */
  | {
      kind: 'out of time';
      message: string;
      covering: string;
      covered?: string;
      runId?: string;
      busy?: { runId?: string; runEntityRef?: string };
    }
  | {
      kind: 'stopped';
      message: string;
      covering: string;
      covered?: string;
      runId?: string;
    };

// The scheduler aborts the task's signal at its timeout, or when the backend shuts down.
const STOPPED =
  'the task was stopped (its timeout ran out, or the backend shut down)';

/**
 * The nightly readiness check: a test recovery of each target, one after the other (a
 * hypervisor host runs one lab at a time), each stored like any run.
 *
 * A host busy with another run (a 409 named HypervisorHostBusyError) and transient errors
 * while polling are retried every `pollIntervalMs` until `deadline` (the task's time budget,
 * epoch ms): giving up early would leave the host busy and fail every following entity as busy
 * too. Any other refusal, such as a machine never captured, is that entity's failure at once. A
 * refusal beside a failover kept on the host is said once, in a line of its own naming whom it held
 * up, and a later plan holding every machine of one it refused is not started (`refusedWithin`).
 *
 * A target's run stands in for those it `covers` only where readiness will count it for them
 * (`coversPlan`): a run that failed on a machine outside one's plan, failed as a whole (no room on
 * the host for all it boots, its engine gone), or could not start, tells nothing about it, so it
 * then gets its own run, later within the budget. A run a failover
 * interrupted counts for no one (readiness skips it): it is started once more. One a person
 * cancelled is not: it and those it was to cover are not checked that night, said cancelled by them.
 */
export async function runNightlyCheck(
  api: RecoveryTasksApi,
  targets: Array<
    | string
    | (Pick<NightlyTarget, 'entityRef' | 'covers'> &
        Partial<Pick<NightlyTarget, 'plan'>>)
  >,
  logger: LoggerService,
  options: {
    pollIntervalMs: number;
    deadline?: number;
    signal?: AbortSignal;
    /**
     * Records outcomes as they are decided (`nightlyRecorder`): each run once started, each refusal
     * once it came; called with none while it waits, to say the check is still there.
     */
    record?: (outcomes: NightlyCheckEntityOutcome[]) => Promise<void>;
  },
): Promise<NightlyReport> {
  const night = new NightlyRuns(api, targets, logger, options);
  // The queue changes as it goes: runs of their own, a run started again, the rest dropped once stopped.
  for (let index = 0; index < night.queue.length; index++) {
    // What the last target came to, before this one waits for the host or its run.
    await night.outcomes.flush();
    const turn = night.turn(index);
    const alike = night.keptFailovers.refusedWithin(turn.plan);
    if (alike) night.refuseAlike(turn, alike);
    else night.tell(turn, await night.recover(turn));
  }
  return night.end();
}

type NightlyRunOptions = Parameters<typeof runNightlyCheck>[3];

/**
 * What the night decided about each entity: the last word counts (one covered by a run that could
 * not start gets its own), recorded as it goes (`record`).
 */
class NightOutcomes {
  private readonly byEntity = new Map<string, NightlyCheckEntityOutcome>();
  /** Those decided since they were last recorded. */
  private readonly fresh = new Set<string>();
  private readonly record: NightlyRunOptions['record'];

  constructor(record: NightlyRunOptions['record']) {
    this.record = record;
  }

  decide(
    entityRef: string,
    outcome: Omit<NightlyCheckEntityOutcome, 'entityRef'>,
  ) {
    this.byEntity.set(entityRef, {
      entityRef,
      ...outcome,
      message: clip(outcome.message),
    });
    this.fresh.add(entityRef);
  }

  /** Its own run, started: the entity's page shows that run as its last. */
  startedFor(entityRef: string, runId: string, message: string) {
    this.decide(entityRef, {
      outcome: 'started',
      runId,
      runEntityRef: entityRef,
      message,
    });
  }

  /**
   * Records what was decided since last time, before the check waits on anything again; with
   * nothing new, says the check is still there (the recorder sends that once a minute at most).
   */
  async flush() {
    if (!this.record) return;
    const decided = [...this.fresh].map(ref => this.byEntity.get(ref)!);
    this.fresh.clear();
    await this.record(decided);
  }

  all(): NightlyCheckEntityOutcome[] {
    return [...this.byEntity.values()];
  }
}

/** A failover kept on the host: its refusal's words once, the plans it refused, whom it held up. */
interface HeldBy {
  refusal: KeptFailoverRefusal;
  refused: Array<{ entityRef: string; machines: string[] }>;
  entities: string[];
}

/** Failovers kept on the host that refused runs, by the refusal's naming of them and the host. */
class KeptFailovers {
  private readonly held = new Map<string, HeldBy>();

  holding(refusal: KeptFailoverRefusal): HeldBy {
    const key = `${refusal.failover}\u0000${refusal.host}`;
    if (!this.held.has(key))
      this.held.set(key, { refusal, refused: [], entities: [] });
    return this.held.get(key)!;
  }

  /**
   * A refused plan whose every machine this plan holds: this one needs every subnet that one does
   * (the same latest captures), some of which the failover holds, so its run would be refused too.
   * Sharing only some machines is not enough: the failover may hold none of theirs.
   */
  refusedWithin(
    plan: BootPlan | undefined,
  ): { held: HeldBy; as: string } | undefined {
    if (!plan) return undefined;
    const machines = new Set(plan.machines.map(m => m.machineRef));
    for (const held of this.held.values()) {
      const as = held.refused.find(
        r => r.machines.length > 0 && r.machines.every(m => machines.has(m)),
      );
      if (as) return { held, as: as.entityRef };
    }
    return undefined;
  }

  /** One line per failover for the summary, naming whom it held up and how to free the host. */
  lines(): string[] {
    return [...this.held.values()].map(
      ({ refusal, entities }) =>
        `no run for ${entities.length} ${entities.length === 1 ? 'entity' : 'entities'} beside ${refusal.failover}, which keeps ${refusal.keeps} on ${refusal.host} ` +
        `(${listed(entities)}): ${refusal.remedy}`,
    );
  }
}

type Queued = Pick<NightlyTarget, 'entityRef' | 'covers'> &
  Partial<Pick<NightlyTarget, 'plan'>> & { why?: string; again?: boolean };

/** A target's turn: its place in the queue, its log lines' label, and why it is its own run. */
type Turn = Queued & { index: number; label: string; own: string };

type Unfinished = Extract<RunOutcome, { kind: 'out of time' | 'stopped' }>;

/** The night's runs, one after the other, and what each tells about the entities it was for. */
class NightlyRuns {
  readonly report: NightlyReport = {
    succeeded: [],
    failed: [],
    runs: [],
    started: 0,
    outcomes: [],
  };
  readonly queue: Queued[];
  readonly outcomes: NightOutcomes;
  readonly keptFailovers = new KeptFailovers();
  private readonly api: RecoveryTasksApi;
  private readonly logger: LoggerService;
  private readonly options: NightlyRunOptions;
  private readonly deadline: number;

  constructor(
    api: RecoveryTasksApi,
    targets: Parameters<typeof runNightlyCheck>[1],
    logger: LoggerService,
    options: NightlyRunOptions,
  ) {
    this.api = api;
    this.logger = logger;
    this.options = options;
    this.deadline = options.deadline ?? Infinity;
    this.outcomes = new NightOutcomes(options.record);
    this.queue = targets.map(t =>
      typeof t === 'string' ? { entityRef: t, covers: [] } : { ...t },
    );
  }

  turn(index: number): Turn {
    const target = this.queue[index];
    return {
      ...target,
      index,
      label: `Nightly check ${index + 1}/${this.queue.length}`,
      own: target.why ? ` (its own: ${target.why})` : '',
    };
  }

  /**
   * Its run failed at the hypervisor host (`hostUnreachable`): the host's failure, which tells
   * nothing of the plan, nor of those it was to cover. The check asks no more of that host tonight
   * (every run goes to the one host, recovery.hypervisorHost): no run after this one is started,
   * and those they were for are not checked, their outcome naming this run. Not even one more run
   * to confirm it: the run that failed there was refused by the host's engine, or it stopped
   * answering and was asked again before the run failed (boot.ts, hostSilence), so another run
   * would most likely only find the same, at the cost of a run each (a hung engine keeps one until
   * its step's deadline) and of a false failure on each page; readiness keeps each entity's last
   * result, so a night not checked costs less than that. The next night tries the host again.
   */
  private hostDown(turn: Turn, run: RecoveryRun) {
    const { entityRef, covers } = turn;
    const host = run.hypervisorHost || '(unnamed)';
    const at = run.finishedAt ?? new Date().toISOString();
    const reason = run.error?.message ?? 'it could not be reached';
    const found = { runId: run.id, runEntityRef: entityRef };
    const rest = this.queue.splice(turn.index + 1);
    const notChecked = [
      ...new Set([
        ...covers.map(c => c.entityRef),
        ...rest.flatMap(r => [r.entityRef, ...r.covers.map(c => c.entityRef)]),
      ]),
    ].filter(ref => ref !== entityRef);
    this.report.hostUnreachable = {
      host,
      at,
      runId: run.id,
      entityRef,
      entities: [entityRef, ...notChecked],
    };
    // Its own: failed, not at a machine of its plan, none of which it blames.
    const own = `run ${run.id} failed at hypervisor host ${host}, not at a machine of its plan, so it tells nothing of it: ${reason}`;
    this.fail(turn, entityRef, own);
    this.outcomes.startedFor(entityRef, run.id, own);
    const said = `not checked: hypervisor host ${host} unreachable from ${formatUtcTime(at, { clock: true })}; run ${run.id} of ${entityRef} failed there, and no run was asked of it after (${reason})`;
    for (const ref of notChecked) {
      // Said once in the log, below, rather than once an entity: the host's failure, not theirs.
      this.report.failed.push({ entityRef: ref, message: said });
      this.outcomes.decide(ref, {
        outcome: 'refused',
        reason: 'host-unreachable',
        ...found,
        message: said,
      });
    }
    this.logger.warn(
      `${turn.label}: hypervisor host ${host} unreachable, so the check asks no more of it tonight: ${notChecked.length} more ${notChecked.length === 1 ? 'entity' : 'entities'} not checked`,
      { entityRef, runId: run.id, notChecked },
    );
    this.report.runs.push(
      `${entityRef}: run ${run.id} failed at hypervisor host ${host}, unreachable (no machine of its plan tested)${turn.own}`,
    );
  }

  /** The night's report: each run, then each failover kept on the host and whom it held up. */
  end(): NightlyReport {
    this.report.runs.push(...this.keptFailovers.lines());
    this.report.outcomes = this.outcomes.all();
    return this.report;
  }

  private fail(turn: Turn, ref: string, message: string) {
    this.report.failed.push({ entityRef: ref, message });
    // An entity that did not recover is what the check finds, not its own failure: at warn.
    this.logger.warn(`${turn.label}: ${message}`, {
      entityRef: ref,
      // One it was to cover: the run it waited for.
      ...(ref !== turn.entityRef && { runEntityRef: turn.entityRef }),
    });
  }

  /** Those it was to cover get their own runs, after the planned ones. */
  private runOnTheirOwn(turn: Turn, left: Queued['covers'], reason: string) {
    if (left.length === 0) return;
    this.logger.warn(
      `${turn.label}: runs of their own for those it was to cover: ${reason}`,
      {
        entityRef: turn.entityRef,
        covers: left.map(c => c.entityRef),
      },
    );
    this.queue.push(
      ...chooseRuns(left.map(c => ({ ...c, uncaptured: [] }))).map(t => ({
        ...t,
        why: reason,
      })),
    );
  }

  /** Waits before a retry; false when the wait would end past the deadline. */
  private async waitForRetry(): Promise<boolean> {
    if (Date.now() + this.options.pollIntervalMs > this.deadline) return false;
    // A run may take an hour, a busy host longer: the night is still under way meanwhile.
    await this.outcomes.flush();
    await sleep(this.options.pollIntervalMs, undefined, {
      signal: this.options.signal,
    });
    return true;
  }

  /** The target's test recovery: started once the host is free, then followed to its end. */
  async recover(turn: Turn): Promise<RunOutcome> {
    if (Date.now() + this.options.pollIntervalMs > this.deadline) {
      // Starting a run that cannot be waited for would only keep the host busy.
      return {
        kind: 'out of time',
        message: "not started: the task's time budget ran out",
        covering: `the run of ${turn.entityRef}, which was to cover it, was not started before the task's time budget ran out`,
      };
    }
    const start = await this.start(turn);
    return 'kind' in start ? start : this.follow(turn, start.run);
  }

  private async start(turn: Turn): Promise<{ run: RecoveryRun } | RunOutcome> {
    const { entityRef, label } = turn;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return {
            run: await this.api.startRun(entityRef, {
              signal: this.options.signal,
            }),
          };
        } catch (error) {
          // Only "host busy" is worth waiting for; after a lost answer the run may exist already.
          if (!isHostBusy(error)) throw error;
          if (attempt === 1)
            this.logger
              .child({ entityRef })
              .info(
                `${label}: hypervisor host busy, waiting for it`,
                toError(error),
              );
          if (!(await this.waitForRetry())) {
            return {
              kind: 'out of time',
              message: `not started: the hypervisor host was still busy after ${attempt} attempts when the task's time budget ran out (${messageOf(error)})`,
              covering: `the run of ${entityRef}, which was to cover it, was not started: the hypervisor host was still busy when the task's time budget ran out`,
              busy: namedRun(hostBusy(error)),
            };
          }
        }
      }
    } catch (error) {
      return this.lost(turn, error);
    }
  }

  /** Its run, started: said at once, then polled until it ends or the time budget does. */
  private async follow(turn: Turn, started: RecoveryRun): Promise<RunOutcome> {
    const { entityRef, label } = turn;
    let run = started;
    try {
      this.report.started++;
      this.logger.info(`${label}: run started`, { entityRef, runId: run.id });
      // Tonight's word on the entity from now on: its run is under way (its end will say how it went).
      this.outcomes.startedFor(
        entityRef,
        run.id,
        `run ${run.id} started; readiness counts it once it ends`,
      );
      await this.outcomes.flush();
      let pollError: unknown;
      while (run.status === 'pending' || run.status === 'running') {
        if (!(await this.waitForRetry())) break;
        try {
          run = await this.api.getRun(run.id, { signal: this.options.signal });
          pollError = undefined;
        } catch (error) {
          if (!isTransientPollError(error)) throw error;
          pollError = error;
          this.logger
            .child({ entityRef, runId: run.id })
            .warn(`${label}: could not read the run, retrying`, toError(error));
        }
      }
      if (run.status === 'pending' || run.status === 'running') {
        return {
          kind: 'out of time',
          message: `run ${run.id} was still ${run.status} when the task's time budget ran out${
            pollError ? ` (last poll failed: ${messageOf(pollError)})` : ''
          }; it goes on, and readiness counts it once it ends`,
          covering: `run ${run.id} of ${entityRef}, which was to cover it, was still ${run.status} when the task's time budget ran out`,
          covered: `run ${run.id} of ${entityRef}, covering it, was still ${run.status} when the task's time budget ran out; it goes on, and readiness counts it for this entity once it ends`,
          runId: run.id,
        };
      }
      return { kind: 'finished', run };
    } catch (error) {
      return this.lost(turn, error, run);
    }
  }

  /** A start or a poll that failed: the task stopped, or the run refused or lost. */
  private lost(turn: Turn, error: unknown, run?: RecoveryRun): RunOutcome {
    const { entityRef } = turn;
    if (this.options.signal?.aborted) {
      // Reported rather than thrown, so the summary of what was checked is still logged.
      return run
        ? {
            kind: 'stopped',
            message: `${STOPPED} while waiting for run ${run.id}; it goes on, and readiness counts it once it ends`,
            covering: `run ${run.id} of ${entityRef}, which was to cover it, was not waited for: ${STOPPED}`,
            covered: `run ${run.id} of ${entityRef}, covering it, was not waited for (${STOPPED}); it goes on, and readiness counts it for this entity once it ends`,
            runId: run.id,
          }
        : {
            kind: 'stopped',
            message: `not started: ${STOPPED}`,
            covering: `the run of ${entityRef}, which was to cover it, was not started: ${STOPPED}`,
          };
    }
    return {
      kind: 'not run',
      message: messageOf(error),
      keptFailover: keptFailoverRefusal(error),
      uncaptured: machinesNotCaptured(error) !== undefined,
      runId: run?.id,
    };
  }

  /** What the target's run came to, for it and for those it was to cover. */
  tell(turn: Turn, outcome: RunOutcome) {
    switch (outcome.kind) {
      case 'out of time':
      case 'stopped':
        this.unfinished(turn, outcome);
        return;
      case 'not run':
        if (outcome.keptFailover)
          this.refusedBesideFailover(turn, outcome.keptFailover);
        else this.notRun(turn, outcome);
        return;
      case 'finished':
        this.finished(turn, outcome.run);
        return;
      // no default
    }
  }

  /** Not started, as a plan it holds was refused beside a failover kept on the host. */
  refuseAlike(turn: Turn, { held, as }: { held: HeldBy; as: string }) {
    const { entityRef, covers } = turn;
    const { failover, keeps, host } = held.refusal;
    held.entities.push(entityRef);
    const message = `not started: its plan holds every machine of ${as}'s, whose run was refused: ${failover} keeps ${keeps} on ${host}, serving production on subnets they need`;
    this.fail(turn, entityRef, message);
    this.outcomes.decide(entityRef, {
      outcome: 'refused',
      reason: 'kept-failover',
      ...held.refusal.run,
      message: `${message}; ${held.refusal.remedy}`,
    });
    this.runOnTheirOwn(turn, covers, `the run of ${entityRef} could not start`);
  }

  private unfinished(turn: Turn, outcome: Unfinished) {
    const { entityRef, covers } = turn;
    this.fail(turn, entityRef, outcome.message);
    for (const c of covers)
      this.fail(turn, c.entityRef, `not checked: ${outcome.covering}`);
    this.report.runs.push(`${entityRef}: ${outcome.message}${turn.own}`);
    if (outcome.runId) this.goesOn(turn, outcome, outcome.runId);
    else this.notStarted(turn, outcome);
    if (outcome.kind === 'stopped') this.stopTheRest(turn);
  }

  /** It goes on: readiness counts it, for them too, once it ends. */
  private goesOn(turn: Turn, outcome: Unfinished, runId: string) {
    const { entityRef, covers } = turn;
    this.outcomes.startedFor(entityRef, runId, outcome.message);
    // Covered, as readiness will count it: in words that say so, not "not checked".
    for (const c of covers)
      this.outcomes.decide(c.entityRef, {
        outcome: 'covered',
        runId,
        runEntityRef: entityRef,
        message: outcome.covered ?? `not checked: ${outcome.covering}`,
      });
  }

  private notStarted(turn: Turn, outcome: Unfinished) {
    const { entityRef, covers } = turn;
    const busy = outcome.kind === 'out of time' ? outcome.busy : undefined;
    const refusal = busy
      ? { reason: 'host-busy' as const, ...busy }
      : { reason: 'out-of-time' as const };
    this.outcomes.decide(entityRef, {
      outcome: 'refused',
      ...refusal,
      message: outcome.message,
    });
    for (const c of covers) {
      this.outcomes.decide(c.entityRef, {
        outcome: 'refused',
        ...(busy ? refusal : { ...refusal, runEntityRef: entityRef }),
        message: `not checked: ${outcome.covering}`,
      });
    }
  }

  /** The task was stopped: every target after this one, and those it covers, is not checked. */
  private stopTheRest(turn: Turn) {
    for (const rest of this.queue.splice(turn.index + 1)) {
      for (const ref of [
        rest.entityRef,
        ...rest.covers.map(c => c.entityRef),
      ]) {
        this.fail(turn, ref, `not checked: ${STOPPED}`);
        this.outcomes.decide(ref, {
          outcome: 'refused',
          reason: 'out-of-time',
          message: `not checked: ${STOPPED}`,
        });
      }
    }
  }

  private refusedBesideFailover(turn: Turn, refusal: KeptFailoverRefusal) {
    const { entityRef, covers, plan } = turn;
    // Said once, in the summary: how to free the host is the same for every run it refuses.
    const { failover, keeps, host, holding: needed } = refusal;
    const held = this.keptFailovers.holding(refusal);
    held.entities.push(entityRef);
    if (plan)
      held.refused.push({
        entityRef,
        machines: plan.machines.map(m => m.machineRef),
      });
    const message = `refused: ${failover} keeps ${keeps} on ${host}, serving production with ${needed}`;
    this.fail(turn, entityRef, message);
    this.outcomes.decide(entityRef, {
      outcome: 'refused',
      reason: 'kept-failover',
      ...refusal.run,
      message: `${message}; ${refusal.remedy}`,
    });
    this.runOnTheirOwn(turn, covers, `the run of ${entityRef} could not start`);
  }

  private notRun(
    turn: Turn,
    outcome: Extract<RunOutcome, { kind: 'not run' }>,
  ) {
    const { entityRef, covers } = turn;
    this.fail(turn, entityRef, outcome.message);
    this.report.runs.push(
      `${entityRef}: no run (its failure is below)${turn.own}`,
    );
    if (outcome.runId)
      this.outcomes.startedFor(entityRef, outcome.runId, outcome.message);
    else {
      this.outcomes.decide(entityRef, {
        outcome: 'refused',
        reason: outcome.uncaptured ? 'uncaptured' : 'error',
        message: outcome.message,
      });
    }
    this.runOnTheirOwn(turn, covers, `the run of ${entityRef} could not start`);
  }

  private finished(turn: Turn, run: RecoveryRun) {
    if (isRunInterrupted(run)) {
      // Someone cancelled it (it held the host, say): not started again over their word.
      if (turn.again || run.error?.cancelledBy) this.notChecked(turn, run);
      else this.startAgain(turn, run);
      return;
    }
    if (failedAtHost(run)) {
      this.hostDown(turn, run);
      return;
    }
    // Whom this run tells about as readiness counts it; the others get their own.
    const told = turn.covers.filter(c => coversPlan(run, c.plan, c.entityRef));
    const untold = turn.covers.filter(c => !told.includes(c));
    if (run.status === 'succeeded') this.succeeded(turn, run, told, untold);
    else this.failed(turn, run, told, untold);
  }

  /**
   * Readiness counts an interrupted run for no one; the host is likely busy with the failover
   * that preempted it, which the next start waits for.
   */
  private startAgain(turn: Turn, run: RecoveryRun) {
    const { entityRef, label } = turn;
    const message = interruptedRunWords(run);
    this.logger.warn(
      `${label}: run ${message}; it counts for no one, so it is started again`,
      { entityRef, runId: run.id },
    );
    this.outcomes.startedFor(
      entityRef,
      run.id,
      `run ${run.id} ${message}; it counts for no one, so it is started again`,
    );
    this.report.runs.push(
      `${entityRef}: run ${run.id} interrupted, started again${turn.own}`,
    );
    this.queue.splice(turn.index + 1, 0, {
      ...this.queue[turn.index],
      again: true,
    });
  }

  /** Interrupted again, or cancelled by someone: the run and those it was to cover are not checked. */
  private notChecked(turn: Turn, run: RecoveryRun) {
    const { entityRef, covers } = turn;
    const cancelled = run.error?.cancelledBy !== undefined;
    const message = interruptedRunWords(run);
    const why = cancelled
      ? 'not started again; a cancelled run counts for no one'
      : 'its second run; an interrupted run counts for no one';
    // Not checked, which is no failed recovery: the summary tells them apart.
    (this.report.interrupted ??= []).push(
      entityRef,
      ...covers.map(c => c.entityRef),
    );
    this.fail(turn, entityRef, `${message} (${why})`);
    this.outcomes.startedFor(
      entityRef,
      run.id,
      `run ${run.id} ${message} (${why})`,
    );
    for (const c of covers) {
      const said = `not checked: run ${run.id} of ${entityRef}, which was to cover it, was ${cancelled ? message : 'interrupted too'}`;
      this.fail(turn, c.entityRef, said);
      this.outcomes.decide(c.entityRef, {
        outcome: 'covered',
        runId: run.id,
        runEntityRef: entityRef,
        message: said,
      });
    }
    this.report.runs.push(
      `${entityRef}: run ${run.id} ${cancelled ? message : 'interrupted again'}${turn.own}`,
    );
  }

  private succeeded(
    turn: Turn,
    run: RecoveryRun,
    told: Queued['covers'],
    untold: Queued['covers'],
  ) {
    const { entityRef, label } = turn;
    this.outcomes.startedFor(
      entityRef,
      run.id,
      `run ${run.id} succeeded in ${run.rtoSeconds} s`,
    );
    for (const c of told) {
      this.outcomes.decide(c.entityRef, {
        outcome: 'covered',
        runId: run.id,
        runEntityRef: entityRef,
        message: `run ${run.id} of ${entityRef} succeeded in ${run.rtoSeconds} s`,
      });
    }
    this.report.succeeded.push(entityRef, ...told.map(c => c.entityRef));
    this.logger.info(`${label}: run recovered in ${run.rtoSeconds} s`, {
      entityRef,
      runId: run.id,
      ...(told.length > 0 && { covers: told.map(c => c.entityRef) }),
    });
    this.report.runs.push(
      `${entityRef}: run ${run.id} succeeded in ${run.rtoSeconds} s${covering(told)}${turn.own}`,
    );
    // Its plan changed since readiness was read, and no longer covers theirs.
    this.runOnTheirOwn(
      turn,
      untold,
      `run ${run.id} of ${entityRef} did not cover its plan`,
    );
  }

  private failed(
    turn: Turn,
    run: RecoveryRun,
    told: Queued['covers'],
    untold: Queued['covers'],
  ) {
    const { entityRef } = turn;
    const message = run.error?.message ?? 'failed';
    const failedOn = run.error?.machineRef;
    this.fail(turn, entityRef, message);
    this.outcomes.startedFor(
      entityRef,
      run.id,
      `run ${run.id} failed${failedOn ? ` on ${failedOn}` : ''}: ${message}`,
    );
    for (const c of told) {
      const where = failedOn ? ` on ${failedOn}, which its plan holds` : '';
      this.fail(
        turn,
        c.entityRef,
        `run ${run.id} of ${entityRef} failed${where}: ${message}`,
      );
      this.outcomes.decide(c.entityRef, {
        outcome: 'covered',
        runId: run.id,
        runEntityRef: entityRef,
        message: `run ${run.id} of ${entityRef} failed${where}: ${message}`,
      });
    }
    this.report.runs.push(
      `${entityRef}: run ${run.id} failed${failedOn ? ` on ${failedOn}` : ''}${covering(told)}${turn.own}`,
    );
    this.runOnTheirOwn(
      turn,
      untold,
      `run ${run.id} of ${entityRef} failed${failedOn ? ` on ${failedOn}, outside its plan` : ' as a whole, on no machine of its plan'}`,
    );
  }
}

/** Those a run stood in for, as its log and summary lines end. */
function covering(told: Queued['covers']): string {
  return told.length > 0
    ? `, covering ${told.map(c => c.entityRef).join(', ')}`
    : '';
}
