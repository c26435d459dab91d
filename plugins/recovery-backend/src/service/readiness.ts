import type {
  BootPlan,
  DependencyDisagreements,
  EntityProblem,
  HiddenRun,
  MachineCaptureStatus,
  Readiness,
  ReadinessStatus,
  ReasonRun,
  RecoveryRun,
  RunMachine,
} from '@backstage-recovery/plugin-recovery-common';
import {
  downInFailover,
  downSince,
  isJobMachine,
  withoutNetworkSince,
} from '@backstage-recovery/plugin-recovery-common';
import { capturesKeptUnder } from '../run/errors';
import { learnedWaitsOf } from '../plan/inference';
import { MAPPING_ANNOTATIONS } from '../plan/entityMapping';
import {
  describeLearned,
  lowConfidenceWarning,
} from '@backstage-recovery/plugin-recovery-node';
import {
  ANNOTATION_JOB,
  ANNOTATION_PROBES,
  ANNOTATION_RPO,
  ANNOTATION_RTO,
  byRisk,
  CLOCK_AHEAD_TOLERANCE_SECONDS,
  droppedBindMounts,
  exitedWithZero,
  failedWithin,
  failureBeyondPlan,
  formatSeconds,
  formatSecondsAgainst,
  isFullRun,
  jobAnnotationHint,
  notServingWhenCaptured,
  planNotRecovered,
  runModeName,
} from '@backstage-recovery/plugin-recovery-common';

export interface ReadinessInput {
  entityRef: string;
  /** Machines the entity runs on itself (for its position in the plan). */
  ownMachines: string[];
  problems: EntityProblem[];
  objectives: { rpoSeconds: number; rtoSeconds: number };
  plan?: BootPlan;
  planError?: string;
  /** Where a dependency cycle makes no plan: the plan a run accepting cycles would boot. */
  cyclePlan?: BootPlan;
  /**
   * What keeps machines from being captured again (an engine no capture source serves): their
   * last capture still restores, so these put the entity at risk; one never captured blocks on
   * its own.
   */
  captureProblems?: EntityProblem[];
  /** Each `ageSeconds` as this backend's clock reads it: negative for a capture dated ahead of it. */
  captures: MachineCaptureStatus[];
  /**
   * Each machine's last failed capture since its last that succeeded (when it started, why it
   * failed): the last good capture still restores, but a capture is not being kept up (a container
   * gone, an engine refusing), which its age would hide until the RPO runs out.
   */
  captureFailures?: Map<string, { failedAt: string; message: string }>;
  /**
   * Of each machine whose latest capture was found damaged, its newest intact capture, which a
   * recovery restores instead; a machine not in it has none intact (every kept capture damaged).
   * Absent where not asked: a damaged latest capture then puts the entity at risk alone.
   */
  intactCaptures?: Map<
    string,
    { id: string; createdAt: string; ageSeconds: number }
  >;
  /**
   * Where the catalog says each machine runs now (its engine and container annotations), by
   * machine ref: a latest capture of another container is not of the machine the catalog names.
   */
  locators?: Map<string, { engine: string; container: string }>;
  /** In full, or as a HiddenRun when the caller may not see its entity. */
  lastRun?: RecoveryRun | HiddenRun;
  /** How long ago the last run finished (negative: dated ahead of this backend's clock). */
  lastRunAgeSeconds?: number;
  /**
   * What the last run restored on each of its machines, read from the run in full whatever the
   * caller may see of it (the verdict must not depend on who asks): a machine it restored from a
   * capture of another container than the catalog names now was replaced since, and the run does
   * not vouch for the machine it is now.
   */
  lastRunRestored?: Array<Pick<RunMachine, 'machineRef' | 'capturedFrom'>>;
  /**
   * Without a last run, the newest finished run that counts and recovered part of the entity's
   * plan (its own, or another's that booted its own machines), how long ago it finished, and what
   * the caller may see of it (`shown`): it recovered a plan the entity's has since outgrown (a
   * machine added, a probe added, say). `run` is read only against the entity's plan.
   */
  outgrownRun?: {
    run: RecoveryRun;
    shown: RecoveryRun | HiddenRun;
    ageSeconds: number;
  };
  /**
   * The newest finished run after the last run (or without one, any) that failed on a machine of
   * the entity's plan, gated there by nothing the plan does not gate it by (`failedWithin`),
   * whichever entity it was for, and what the caller may see of it (`shown`): a recovery of the
   * plan would boot that machine under what just failed.
   */
  failedRun?: { run: RecoveryRun; shown: RecoveryRun | HiddenRun };
  /**
   * The entity's own run since its last run (or with none) that failed as its hypervisor host
   * could not be reached (failedAtHost): the host's condition, so it covers no plan, but said.
   */
  hostUnreachableRun?: RecoveryRun;
  /** A last test recovery older than this is stale: the machines have changed since. */
  maxTestAgeSeconds: number;
  /**
   * The entity's own kept failovers (succeeded, not released) whose supervision could not bring a
   * machine back (RunSupervision.degraded): production runs on them, part of it down.
   */
  degradedFailovers?: RecoveryRun[];
  /**
   * Kept failovers of other entities running degraded (a system's, for its parts) with a machine
   * of the entity's plan down, and what the caller may see of each (`shown`): production of the
   * entity runs there, and part of what it needs is down.
   */
  downInFailovers?: Array<{ run: RecoveryRun; shown: RecoveryRun | HiddenRun }>;
  disagreements?: DependencyDisagreements;
  /**
   * Services the plan takes that resolve to no machine (none of their own, none through what they
   * depend on): no capture or run covers them. The entity itself among them is unknown; a part or a
   * dependency puts it at risk: a system is not ready while part of it is covered by nothing.
   */
  uncoveredServices?: string[];
  /**
   * Of each machine never captured, the captures of the same container on the same engine kept
   * under another machine ref (a machine renamed in the catalog): named, never restored instead.
   */
  keptElsewhere?: Map<
    string,
    Array<{
      machineRef: string;
      engine: string;
      container: string;
      captures: number;
      newestCaptureAt: string;
    }>
  >;
}

/** Why a service of the plan that resolves to no machine leaves it uncovered. */
export const runsOnNoMachine = (serviceRef: string) =>
  `${serviceRef} runs on no machine Resource: no capture or run covers it; add dependsOn to the machine it runs on`;

/** `run` as readiness shows it to a caller who may not see its entity. */
export function hiddenRun(run: RecoveryRun): HiddenRun {
  const { mode, status, createdAt, startedAt, finishedAt, rtoSeconds, error } =
    run;
  return {
    mode,
    status,
    createdAt,
    startedAt,
    finishedAt,
    rtoSeconds,
    // Not its message: that may name other machines of the run, their addresses, or probes of
    // services the caller may not see.
    error: error && {
      machineRef: error.machineRef,
      message: `${error.machineRef ?? 'the run'} failed (in a run of an entity the catalog does not show you: its details are left out)`,
    },
  };
}

/**
 * Problems of annotations that leave the plan whole: a probe or an objective that does not parse
 * (left out, or the site's default used). The entity recovers all the same, so they put it at
 * risk, not out of reach; else one service's typo would make every entity whose plan holds it
 * not recoverable (and alarm their owners). What stops a recovery (a machine that cannot be
 * captured, a declared dependency the catalog does not hold) is blocking.
 */
const PLAN_WHOLE = new Set([
  ANNOTATION_PROBES,
  ANNOTATION_RPO,
  ANNOTATION_RTO,
  // Not read, the machine boots as one that must keep running.
  ANNOTATION_JOB,
]);
/**
 * Annotations read on a machine alone. Missing or bad on a machine of the plan, nothing captures
 * it: blocking. Put on another entity (a Component), they are ignored and named: the plan is whole.
 */
const MACHINE_ONLY = MAPPING_ANNOTATIONS;

/** Orders readiness by risk, as every reader of `GET /readiness` orders it. */
export { byRisk };

/**
 * Can the entity be recovered now, within its objectives? Pure: every fact comes in.
 * Reasons are listed most severe first.
 */
export function assessReadiness(input: ReadinessInput): Readiness {
  const findings = new Findings();
  // Machines no capture source serves: their problem says why their last capture is the one restored.
  const uncapturable = new Set(
    (input.captureProblems ?? []).map(p => p.entityRef),
  );
  judgeConfiguration(input, findings);
  judgeLearnedWaits(input, findings);
  for (const status of input.captures)
    judgeCapture(status, input, uncapturable, findings);
  judgeLastRun(input, uncapturable, findings);
  judgeFailureSince(input, findings);
  judgeHostUnreachable(input, findings);
  judgeDegradedFailovers(input, findings);
  judgeDownInFailovers(input, findings);

  return {
    entityRef: input.entityRef,
    status: findings.status(),
    ...findings.reasons(),
    problems: [...input.problems, ...(input.captureProblems ?? [])],
    objectives: input.objectives,
    plan: input.plan,
    ...(input.cyclePlan && { cyclePlan: input.cyclePlan }),
    position: positionInPlan(input),
    // An age ahead of the clock is none yet (the reasons say why).
    captures: input.captures.map(c =>
      c.ageSeconds !== undefined && c.ageSeconds < 0
        ? { ...c, ageSeconds: 0 }
        : c,
    ),
    lastRun: input.lastRun,
    disagreements: input.disagreements,
  };
}

/**
 * The reasons of a verdict by weight (what blocks a recovery, what puts it at risk, what leaves it
 * unknown), and which run each reason about a run is about.
 */
class Findings {
  readonly blocking: string[] = [];
  readonly risks: string[] = [];
  readonly unknowns: string[] = [];
  /** Reasons about a run, where each was pushed (its list, its index there): see `reasons`. */
  private readonly aboutRuns: Array<{
    list: string[];
    at: number;
    run: RecoveryRun | HiddenRun;
  }> = [];

  /** Pushes `reasons` to `list`, each about `run` (as the caller may see it). */
  aboutRun(
    list: string[],
    run: RecoveryRun | HiddenRun,
    ...reasons: string[]
  ): void {
    for (const reason of reasons)
      this.aboutRuns.push({ list, at: list.push(reason) - 1, run });
  }

  /** The most severe weight any reason has; ready with none. */
  status(): ReadinessStatus {
    if (this.blocking.length > 0) return 'not-recoverable';
    if (this.risks.length > 0) return 'at-risk';
    if (this.unknowns.length > 0) return 'unknown';
    return 'ready';
  }

  /** Every reason, most severe first, and the run each about a run is about, by its index there. */
  reasons(): Pick<Readiness, 'reasons' | 'reasonRuns'> {
    const { blocking, risks, unknowns } = this;
    // Where each list starts in `reasons`.
    const start = new Map([
      [blocking, 0],
      [risks, blocking.length],
      [unknowns, blocking.length + risks.length],
    ]);
    const reasonRuns: ReasonRun[] = this.aboutRuns
      .map(({ list, at, run }) => ({
        reason: start.get(list)! + at,
        ...(isFullRun(run) && {
          run: { id: run.id, entityRef: run.entityRef },
        }),
      }))
      .sort((a, b) => a.reason - b.reason);
    return {
      reasons: [...blocking, ...risks, ...unknowns],
      ...(reasonRuns.length > 0 && { reasonRuns }),
    };
  }
}

/**
 * What the catalog's configuration says: annotation problems (blocking, or a risk where the plan
 * stays whole), machines no capture source serves, no plan, services of the plan that run on no
 * machine, a plan without machines.
 */
function judgeConfiguration(input: ReadinessInput, findings: Findings): void {
  const { blocking, risks, unknowns } = findings;
  const machines = new Set(input.captures.map(c => c.machineRef));
  const leavesPlanWhole = ({ annotation, entityRef }: EntityProblem) =>
    annotation !== undefined &&
    (PLAN_WHOLE.has(annotation) ||
      (MACHINE_ONLY.has(annotation) && !machines.has(entityRef)));
  for (const problem of input.problems)
    (leavesPlanWhole(problem) ? risks : blocking).push(problem.message);
  for (const problem of input.captureProblems ?? [])
    risks.push(problem.message);
  if (input.planError) blocking.push(input.planError);
  const uncovered = input.uncoveredServices ?? [];
  for (const ref of uncovered)
    (ref === input.entityRef ? unknowns : risks).push(runsOnNoMachine(ref));
  // An entity that is such a service itself is named so: the reason says what to add.
  if (
    input.plan &&
    input.plan.machines.length === 0 &&
    !uncovered.includes(input.entityRef)
  ) {
    unknowns.push(
      'No machines in the boot plan: add dependsOn relations to machine Resources',
    );
  }
}

/**
 * Learned dependencies of low confidence the plan's waves wait on: seen in fewer boots than the
 * analysis trusts, such a wait may be wrong (the order of a boot or two by chance, or reversed),
 * so the order a recovery boots rests on thin evidence until it is declared or more boots back it.
 */
function judgeLearnedWaits(input: ReadinessInput, findings: Findings): void {
  if (!input.plan) return;
  const low = [
    ...new Set(
      learnedWaitsOf(input.plan).flatMap(w =>
        w.dependencies.filter(d => d.confidence === 'low'),
      ),
    ),
  ];
  const warning = lowConfidenceWarning(low);
  if (!warning) return;
  findings.risks.push(
    `The boot plan waits on ${low.map(describeLearned).join(', ')}: ${warning}`,
  );
}

/**
 * What a machine's latest capture says of what a recovery would restore: damaged, a capture since
 * that failed, a machine not serving when captured, and whether it restores the machine as it is
 * now, within the RPO.
 */
function judgeCapture(
  c: MachineCaptureStatus,
  input: ReadinessInput,
  uncapturable: Set<string>,
  findings: Findings,
): void {
  const failure = failureSinceLatest(c, input);
  if (c.latest) {
    judgeDamage(c.latest, c.machineRef, input, findings);
    if (failure) {
      findings.risks.push(
        `Last capture of ${c.machineRef} failed at ${failure.failedAt}: ${failure.message}; none has succeeded since, so a recovery would restore its capture of ${c.latest.createdAt}`,
      );
    }
    // Kept (a stopped machine's disk is the best copy there is), but a recovery from it, or a test
    // recovery that passes on it, proves a state production was not in: at risk until the machine
    // is captured while it runs and is not unhealthy.
    const completed = exitedWithZero(c.latest.machineState);
    const job = isJobMachine(input.plan, c.machineRef);
    // A job done is its state between runs, not a machine that stopped serving.
    const notServing = !(job && completed) && notServingWhenCaptured(c.latest);
    if (notServing) {
      findings.risks.push(
        `${notServing}; a recovery would restore it so, until a capture of it is taken while it runs and is not unhealthy${completed ? `; ${jobAnnotationHint(c.machineRef)}` : ''}`,
      );
    }
  }
  judgeCaptureAge(c, input, uncapturable, failure, findings);
  judgeCaptureWarnings(c, input, uncapturable, findings);
  judgeBindMounts(c, findings);
}

/**
 * Host paths the machine's latest capture dropped (bind mounts): what they hold is the host's, so
 * no capture carries it and every recovery restores the machine with its mount points empty. A
 * risk, not a failure: the machine boots, without that data (or config).
 */
function judgeBindMounts(c: MachineCaptureStatus, findings: Findings): void {
  const mounts = droppedBindMounts(c.latest?.adaptations ?? []);
  if (mounts.length === 0) return;
  const one = mounts.length === 1;
  findings.risks.push(
    `Latest capture of ${c.machineRef} (capture ${c.latest!.id} of ${c.latest!.createdAt}) holds nothing of host path${one ? '' : 's'} ${mounts.map(m => `${m.hostPath} bind-mounted at ${m.mountPoint}`).join(', ')}: a bind mount is the host's, so every recovery restores ${c.machineRef} with ${mounts.map(m => m.mountPoint).join(', ')} empty. Move what it keeps there to a Docker volume (captures carry volumes) and capture it again`,
  );
}

/** The machine's last failed capture, if it started after its latest capture: one before it is no news. */
function failureSinceLatest(
  c: MachineCaptureStatus,
  input: ReadinessInput,
): { failedAt: string; message: string } | undefined {
  const lastFailure = input.captureFailures?.get(c.machineRef);
  return lastFailure &&
    (!c.latest ||
      Date.parse(lastFailure.failedAt) >= Date.parse(c.latest.createdAt))
    ? lastFailure
    : undefined;
}

/**
 * A latest capture found damaged (its content no longer matches its checksums): no run restores
 * it, so a recovery restores the machine's newest intact capture, or, with none, cannot restore it.
 */
function judgeDamage(
  latest: NonNullable<MachineCaptureStatus['latest']>,
  machineRef: string,
  input: ReadinessInput,
  findings: Findings,
): void {
  const damaged = latest.damaged;
  if (!damaged) return;
  const { rpoSeconds } = input.objectives;
  const instead = input.intactCaptures?.get(machineRef);
  if (input.intactCaptures && !instead) {
    findings.blocking.push(
      `Every kept capture of ${machineRef} is damaged, the latest (capture ${latest.id} of ${latest.createdAt}) found so at ${damaged.at}: ${damaged.reason}; capture it anew`,
    );
    return;
  }
  findings.risks.push(
    `Latest capture of ${machineRef} (capture ${latest.id} of ${latest.createdAt}) is damaged, found so at ${damaged.at}: ${damaged.reason}; ${
      instead
        ? `a recovery would restore its capture of ${instead.createdAt}, the newest intact one${
            instead.ageSeconds > rpoSeconds
              ? ` (${formatSecondsAgainst(instead.ageSeconds, rpoSeconds)} old, over the RPO of ${formatSeconds(rpoSeconds)})`
              : ''
          },`
        : 'a recovery would restore an older intact capture'
    } until a capture of it is taken`,
  );
}

/**
 * Whether the machine's latest capture is one of the machine as the catalog names it now, and
 * recent enough: never captured blocks (naming captures of its container kept under another
 * machine ref); replaced since, dated ahead of the clock, or older than the RPO puts it at risk.
 */
function judgeCaptureAge(
  c: MachineCaptureStatus,
  input: ReadinessInput,
  uncapturable: Set<string>,
  failure: { failedAt: string; message: string } | undefined,
  { blocking, risks }: Findings,
): void {
  const { rpoSeconds } = input.objectives;
  const now = input.locators?.get(c.machineRef);
  if (!c.latest)
    blocking.push(
      [
        `${c.machineRef} has never been captured${failure ? ` (its capture at ${failure.failedAt} failed: ${failure.message})` : ''}`,
        ...(input.keptElsewhere?.get(c.machineRef) ?? []).map(
          ({ machineRef: keptUnder, ...kept }) =>
            capturesKeptUnder({
              machineRef: c.machineRef,
              keptUnder,
              ...kept,
            }),
        ),
      ].join('; '),
    );
  else if (now && replacedSinceCapture(c, input, uncapturable)) {
    // The machine was replaced (or moved): its age says nothing of the machine it is now, and a
    // recovery would restore the one before.
    risks.push(
      `Last capture of ${c.machineRef} is of container ${c.latest.container} on engine ${c.latest.engine}, but the catalog now names ${now.container} on ${now.engine}: it has not been captured since, so a recovery would restore that earlier container`,
    );
  } else if ((c.ageSeconds ?? 0) < -CLOCK_AHEAD_TOLERANCE_SECONDS) {
    // Read as fresh until the clocks meet, it would hide an RPO missed meanwhile.
    risks.push(
      `Last capture of ${c.machineRef} is dated ${formatSeconds(-c.ageSeconds!)} ahead of the backend's clock: one of their clocks is wrong, so its age against the RPO cannot be told`,
    );
  } else if ((c.ageSeconds ?? 0) > rpoSeconds) {
    risks.push(
      `Last capture of ${c.machineRef} is ${formatSecondsAgainst(c.ageSeconds!, rpoSeconds)} old, over the RPO of ${formatSeconds(rpoSeconds)}`,
    );
  }
}

/**
 * Whether the catalog now names another container (or engine) for the machine than its latest
 * capture is of: replaced (or moved) since. A machine no capture source serves keeps restoring
 * its last capture, which its problem says.
 */
function replacedSinceCapture(
  c: MachineCaptureStatus,
  input: ReadinessInput,
  uncapturable: Set<string>,
): boolean {
  const now = input.locators?.get(c.machineRef);
  return (
    c.latest !== undefined &&
    now !== undefined &&
    !uncapturable.has(c.machineRef) &&
    (now.engine !== c.latest.engine || now.container !== c.latest.container)
  );
}

/**
 * What a latest capture warns of, each a risk, not a failure (the capture itself restores):
 *
 * - its machine restarted over and over by its restart policy since its previous capture
 *   (`restartWarning`): a crash loop, whose capture may hold the machine between two crashes, as
 *   a recovery restores it whatever comes next;
 * - its pause took over half the pause limit (its capture source's `pauseWarning`, which names the
 *   pause and the limit): production was nearly paused too long, so the next capture may be
 *   refused (and the RPO run out unseen until then) or pause production past what the site
 *   allows. Only of a machine a capture source still serves, as the catalog names it: for one
 *   replaced since or captured no more, no next capture of that container is coming.
 */
function judgeCaptureWarnings(
  c: MachineCaptureStatus,
  input: ReadinessInput,
  uncapturable: Set<string>,
  findings: Findings,
): void {
  if (c.latest?.restartWarning)
    findings.risks.push(
      `Latest capture of ${c.machineRef} (capture ${c.latest.id} of ${c.latest.createdAt}): the machine was ${c.latest.restartWarning}`,
    );
  const warning = c.latest?.pauseWarning;
  if (
    !warning ||
    uncapturable.has(c.machineRef) ||
    replacedSinceCapture(c, input, uncapturable)
  )
    return;
  findings.risks.push(
    `Latest capture of ${c.machineRef} (capture ${c.latest!.id} of ${c.latest!.createdAt}) paused production near the pause limit: ${warning}`,
  );
}

/**
 * What the last run that recovered the entity's plan says: failed, over the RTO, of machines
 * replaced since, or too old to vouch for it; without one, the run that recovered part of a plan
 * since outgrown, or none ever. Only a succeeded run is judged as a success.
 */
function judgeLastRun(
  input: ReadinessInput,
  uncapturable: Set<string>,
  findings: Findings,
): void {
  const { blocking, risks, unknowns } = findings;
  const { rtoSeconds } = input.objectives;
  const run = input.lastRun;
  if (!run && input.outgrownRun) judgeOutgrownRun(input, findings);
  else if (!run) unknowns.push('Never test-recovered');
  else if (run.status === 'failed') {
    findings.aboutRun(
      blocking,
      run,
      `${lastRunFailed(run.mode)}${run.error?.message ?? 'unknown error'}`,
    );
  } else if (run.status !== 'succeeded') {
    // The store hands over finished runs that count; one interrupted or under way reached no
    // result, so it vouches for nothing (coversPlan takes it for no plan's run).
    findings.aboutRun(
      unknowns,
      run,
      `Last ${runKind(run)} reached no result (${run.status}): it tells nothing of whether the entity recovers`,
    );
  } else {
    if (run.rtoSeconds !== undefined && run.rtoSeconds > rtoSeconds) {
      findings.aboutRun(
        risks,
        run,
        `Last measured RTO ${formatSecondsAgainst(run.rtoSeconds, rtoSeconds)} exceeds the objective of ${formatSeconds(rtoSeconds)}`,
      );
    }
    findings.aboutRun(risks, run, ...restoredBefore(run, input, uncapturable));
    const age = input.lastRunAgeSeconds ?? 0;
    if (age < -CLOCK_AHEAD_TOLERANCE_SECONDS) {
      findings.aboutRun(
        risks,
        run,
        `Last ${runKind(run)} is dated ${formatSeconds(-age)} ahead of the backend's clock: one of their clocks is wrong, so how long it vouches for the entity cannot be told`,
      );
    } else if (age > input.maxTestAgeSeconds) {
      findings.aboutRun(
        risks,
        run,
        `Last ${runKind(run)} is ${formatSecondsAgainst(age, input.maxTestAgeSeconds)} old, over the ${formatSeconds(input.maxTestAgeSeconds)} within which one must have succeeded`,
      );
    }
  }
}

/** Without a last run, the run that recovered part of a plan since outgrown: failed on it, and outgrown. */
function judgeOutgrownRun(input: ReadinessInput, findings: Findings): void {
  const { run: partial, shown } = input.outgrownRun!;
  // A plan that changed since does not make the machine it failed on come up.
  const own = partial.entityRef === input.entityRef;
  // Another entity's run is named where the caller sees it, as `outgrown` names it.
  const which = !own && isFullRun(shown) ? `, ${runNamed(partial)},` : '';
  if (failsPlan(partial, input.plan, own))
    findings.aboutRun(
      findings.blocking,
      shown,
      `Last ${runKind(shown)}${which} failed: ${shown.error?.message ?? 'unknown error'}`,
    );
  findings.aboutRun(
    findings.risks,
    shown,
    outgrown(input.entityRef, input.outgrownRun!, input.plan),
  );
}

/**
 * A run since the last covering one (or with none) that failed on a machine of the plan, gated
 * there as the plan gates it: a recovery of the plan boots that machine under what failed, so no
 * older success vouches for it. The outgrown run's own failure is said by judgeOutgrownRun.
 */
function judgeFailureSince(input: ReadinessInput, findings: Findings): void {
  const failure = input.failedRun;
  if (failure && failure.run.id !== input.outgrownRun?.run.id)
    findings.aboutRun(
      findings.blocking,
      failure.shown,
      failedSince(input.entityRef, failure, input.lastRun !== undefined),
    );
}

/**
 * The entity's own last run could not reach its host: a risk, not its failure (the host's
 * condition says nothing of whether the plan recovers); the run before it keeps its verdict.
 */
function judgeHostUnreachable(input: ReadinessInput, findings: Findings): void {
  const run = input.hostUnreachableRun;
  if (run)
    findings.aboutRun(
      findings.risks,
      run,
      `The last ${runKind(run)} could not reach the recovery host ${run.hypervisorHost} at ${run.createdAt} (${run.error?.message ?? 'unknown error'}): it tells nothing of whether the entity recovers, so the run before it stands`,
    );
}

/**
 * A kept failover of the entity running degraded: production runs there, and a machine of it (with
 * what waits for it) is down. A risk: what runs serves, and the supervision keeps trying; but it
 * takes someone to look at why the machine does not come back.
 */
function judgeDegradedFailovers(
  input: ReadinessInput,
  findings: Findings,
): void {
  for (const run of input.degradedFailovers ?? []) {
    const degraded = run.supervision?.degraded;
    if (!degraded) continue;
    const down = downInFailover(run);
    const waiting =
      degraded.notStarted && degraded.notStarted.length > 0
        ? `, and ${degraded.notStarted.join(', ')} left stopped as ${degraded.notStarted.length === 1 ? 'it waits' : 'they wait'} for it`
        : '';
    // Running, so no stop says it: they serve nothing all the same.
    const cutOff = (degraded.withoutNetwork ?? [])
      .map(s => `; ${withoutNetworkSince(s, degraded)}`)
      .join('');
    const retry = run.supervision?.retry
      ? `; it is tried again at ${run.supervision.retry.nextAt}`
      : '';
    findings.aboutRun(
      findings.risks,
      run,
      `Failover ${run.id} runs degraded (${downSince(degraded)}): ${degraded.machineRef} stopped on ${run.hypervisorHost} and could not be brought back (${degraded.message})${waiting}${cutOff}${retry}. Look at why ${down.length === 1 ? 'it does' : 'they do'} not come back on ${run.hypervisorHost} (the run's timeline, the machine's log) and start ${down.length === 1 ? 'it' : 'them'} there, or release the failover once production runs on its primary machines again`,
    );
  }
}

/**
 * A machine of the entity's plan down in another entity's kept failover running degraded (its
 * system's): production of the entity runs there, part of what it needs down. A risk, as for the
 * failover's own entity; the failover named where the caller may see it, its message left out
 * where not (as hiddenRun leaves out a run's).
 */
function judgeDownInFailovers(input: ReadinessInput, findings: Findings): void {
  const planned = new Set(input.captures.map(c => c.machineRef));
  for (const { run, shown } of input.downInFailovers ?? []) {
    const degraded = run.supervision?.degraded;
    const mine = downInFailover(run).filter(m => planned.has(m));
    if (!degraded || mine.length === 0 || run.entityRef === input.entityRef)
      continue;
    const named = isFullRun(shown);
    const which = named
      ? `failover ${run.id} of ${run.entityRef}`
      : // Hidden from the caller, or withheld from owners (who may or may not see it): not named.
        'a failover of another entity';
    // The machine that failed, named where it is of the plan or the caller sees the failover.
    const failed = named || mine.includes(degraded.machineRef);
    const why = [
      ...(mine.includes(degraded.machineRef)
        ? [
            `${degraded.machineRef} could not be brought back${named ? ` on ${run.hypervisorHost} (${degraded.message})` : ''}`,
          ]
        : []),
      ...mine
        .filter(m => m !== degraded.machineRef)
        .map(m => {
          const sharer = degraded.withoutNetwork?.find(s => s.machineRef === m);
          if (!sharer)
            return `${m} is left stopped as it waits for ${failed ? degraded.machineRef : 'a machine that could not be brought back'}`;
          // Its namespace's owner named as the failed machine is: where the caller sees it, or of the plan.
          return named || mine.includes(sharer.of)
            ? withoutNetworkSince(sharer, degraded)
            : `${m} running without network since ${sharer.since}, its namespace's owner down`;
        }),
    ];
    const retry = run.supervision?.retry
      ? `; the supervision tries again at ${run.supervision.retry.nextAt}`
      : '';
    findings.aboutRun(
      findings.risks,
      shown,
      `Its machine${mine.length === 1 ? '' : 's'} ${mine.join(', ')} ${mine.length === 1 ? 'is' : 'are'} down in ${which} (${downSince(degraded)}): ${why.join('; ')}${retry}. Production runs on that failover${named ? `: look at its timeline, or ask the owners of ${run.entityRef}` : ''}`,
    );
  }
}

/** Where the entity's own machines sit in its plan: their last wave, and what they wait for beyond them. */
function positionInPlan(input: ReadinessInput): Readiness['position'] {
  const own = new Set(input.ownMachines);
  const mine = input.plan?.machines.filter(m => own.has(m.machineRef)) ?? [];
  if (mine.length === 0) return undefined;
  return {
    wave: Math.max(...mine.map(m => m.wave)),
    machines: mine.map(m => m.machineRef),
    waitsFor: [...new Set(mine.flatMap(m => m.waitsFor))]
      .filter(m => !own.has(m))
      .sort(),
  };
}

/**
 * The machines of the plan the last run restored from a capture of another container (or engine)
 * than the catalog names now: replaced since, they are not what the run proved recovers, whatever
 * was captured since. A newer run that restores the container named now is the last run then, and
 * vouches for it again.
 */
function restoredBefore(
  run: Pick<RecoveryRun, 'mode'>,
  input: ReadinessInput,
  uncapturable: Set<string>,
): string[] {
  const restored = new Map(
    (input.lastRunRestored ?? []).map(m => [m.machineRef, m.capturedFrom]),
  );
  return input.captures.flatMap(({ machineRef }) => {
    const from = restored.get(machineRef);
    const now = input.locators?.get(machineRef);
    // A run recorded before runs kept what they restored (and whose capture was pruned before the
    // migration could fill it in) is judged as it was before: nothing left tells which container it
    // restored (reading captures here would cost the overview a statement per entity, and retention
    // has pruned most), and taking each such run for one of a replaced machine would put every
    // entity at risk after an upgrade until its next run. A machine no capture source serves keeps
    // restoring its last capture: its problem says so, as for its captures above.
    if (!from || !now || uncapturable.has(machineRef)) return [];
    if (from.engine === now.engine && from.container === now.container)
      return [];
    return [
      `Last ${runKind(run)} restored ${machineRef} from a capture of container ${from.container} on engine ${from.engine}, but the catalog now names ${now.container} on ${now.engine}: it does not vouch for the machine as it is now, until a run restores that container`,
    ];
  });
}

/**
 * Another entity's run as a reason names it where the caller may see it, for people to read:
 * which run a reason is about is in `reasonRuns`.
 */
function runNamed(run: Pick<RecoveryRun, 'id' | 'entityRef'>): string {
  return `run ${run.id} of ${run.entityRef}`;
}

const runKind = (run: Pick<RecoveryRun, 'mode'>) => runModeName(run.mode);

/**
 * How the reason about the entity's failed last run begins, before the run's message: a notice
 * that tells the failure in its own words quotes the message alone (ReadinessNotifier).
 */
export const lastRunFailed = (mode: RecoveryRun['mode']) =>
  `Last ${runKind({ mode })} failed: `;

/**
 * Whether a failed run that did not recover the whole plan fails it all the same: it failed on a
 * machine the plan holds, gated there by nothing the plan does not gate it by (a recovery of the
 * plan runs what failed), or, the entity's own run, as a whole (its lab, the host's room: a plan
 * grown since needs them too). Failed on a machine gated by another service's probes, it says
 * nothing of the plan's.
 */
function failsPlan(
  run: RecoveryRun,
  plan: BootPlan | undefined,
  own: boolean,
): boolean {
  if (run.status !== 'failed') return false;
  if (run.error?.machineRef === undefined) return own;
  return plan !== undefined && failedWithin(run, plan);
}

/**
 * The failure of a run newer than the entity's last covering run (`afterLast`; else there is
 * none) on a machine of its plan, gated there as the plan gates it: the run named as the caller
 * may see it, as `outgrown` names it.
 */
function failedSince(
  entityRef: string,
  { run, shown }: NonNullable<ReadinessInput['failedRun']>,
  afterLast: boolean,
): string {
  const which =
    run.entityRef === entityRef
      ? ` (its run ${run.id})`
      : isFullRun(shown)
        ? ` (${runNamed(run)})`
        : // Its message says it was a run of another entity, and no more.
          '';
  const when = afterLast ? ' after the last that recovered its plan' : '';
  const since = afterLast ? '' : ', and none has recovered its plan since';
  return `A ${runKind(run)}${when} failed on ${run.error?.machineRef}, gated there by nothing its plan does not gate it by${since}${which}: ${shown.error?.message ?? 'unknown error'}`;
}

/**
 * Why the last run that recovered part of the entity's plan no longer tells about it: its plan
 * has what the run did not recover (a machine it did not boot, a service whose probes or a probe
 * it did not run), or the run failed on a machine the plan does not hold (any more).
 */
function outgrown(
  entityRef: string,
  { run, shown, ageSeconds }: NonNullable<ReadinessInput['outgrownRun']>,
  plan: BootPlan | undefined,
): string {
  const missed = planNotRecovered(run, plan ?? { machines: [] });
  const own = run.entityRef === entityRef;
  const failedOn = run.status === 'failed' ? run.error?.machineRef : undefined;
  const held =
    failedOn !== undefined &&
    (plan?.machines ?? []).some(m => m.machineRef === failedOn);
  // A failure that fails the plan is a reason of its own (failsPlan); the others say why not.
  const failure =
    run.status !== 'failed' || failsPlan(run, plan, own)
      ? undefined
      : failedOn === undefined
        ? 'failed as a whole'
        : held
          ? failedBeyondPlan(failedOn, run, plan!)
          : // Of a hidden run, only a machine of the caller's plan may be named.
            own
            ? `failed on ${failedOn}, which the plan no longer holds`
            : isFullRun(shown)
              ? `failed on ${failedOn}, which the plan does not hold`
              : 'failed on a machine the plan does not hold';
  const why = [
    ...(missed.machines.length > 0
      ? [`did not boot ${missed.machines.join(', ')}`]
      : []),
    ...(missed.services.length > 0
      ? [`did not probe ${missed.services.join(', ')}`]
      : []),
    ...(missed.probes.length > 0
      ? [`did not run probe ${missed.probes.join(', ')}`]
      : []),
    ...(failure ? [failure] : []),
  ];
  const which = own
    ? `its last ${runKind(run)}`
    : isFullRun(shown)
      ? `its last ${runKind(run)}, ${runNamed(run)}`
      : // Hidden from the caller, or withheld from owners (who may or may not see it): not named.
        `its last ${runKind(run)}, in a run of another entity`;
  const ago = `${formatSeconds(Math.max(0, ageSeconds))} ago`;
  // Another entity's run that recovered all of this plan and failed beyond it: the plan did not change.
  if (!own && why.length === 1 && failure !== undefined && !held) {
    // Failed as a whole (no room on the host for all it boots, its engine gone): nothing recovered.
    if (failedOn === undefined)
      return `Its whole boot plan was in ${which} (${ago}), which failed as a whole, on no machine: that tells nothing of its plan, and no run that succeeded has recovered it since`;
    return `Its boot plan was recovered whole by ${which} (${ago}), which then ${failure}: no run that succeeded has recovered its plan since`;
  }
  return `Its boot plan changed since ${which} (${ago}), which ${why.join(' and ')}: none has recovered the plan it has now`;
}

/** How a run failed on a machine the plan holds without telling about the plan (failureBeyondPlan). */
function failedBeyondPlan(
  failedOn: string,
  run: RecoveryRun,
  plan: BootPlan,
): string {
  const bootedWithout = failureBeyondPlan(run, plan)?.bootedWithout ?? [];
  return bootedWithout.length > 0
    ? `failed on ${failedOn}, which the plan now boots after ${bootedWithout.join(', ')}`
    : `failed on ${failedOn}, gated there by more than the plan gates it by`;
}
