import type {
  BootPlan,
  DependencyDisagreements,
  EntityProblem,
  HiddenRun,
  MachineCaptureStatus,
  Readiness,
  ReadinessStatus,
  RecoveryRun,
  RunMachine,
} from '@backstage-recovery/plugin-recovery-common';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  ANNOTATION_PROBES,
  ANNOTATION_RPO,
  ANNOTATION_RTO,
  failedWithin,
  formatSeconds,
  formatSecondsAgainst,
  isFullRun,
  planNotRecovered,
} from '@backstage-recovery/plugin-recovery-common';

export interface ReadinessInput {
  entityRef: string;
  /** Machines the entity runs on itself (for its position in the plan). */
  ownMachines: string[];
  problems: EntityProblem[];
  objectives: { rpoSeconds: number; rtoSeconds: number };
  plan?: BootPlan;
  planError?: string;
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
  outgrownRun?: { run: RecoveryRun; shown: RecoveryRun | HiddenRun; ageSeconds: number };
  /**
   * The newest finished run after the last run (or without one, any) that failed on a machine of
   * the entity's plan, gated there by nothing the plan does not gate it by (`failedWithin`),
   * whichever entity it was for, and what the caller may see of it (`shown`): a recovery of the
   * plan would boot that machine under what just failed.
   */
  failedRun?: { run: RecoveryRun; shown: RecoveryRun | HiddenRun };
  /** A last test recovery older than this is stale: the machines have changed since. */
  maxTestAgeSeconds: number;
  disagreements?: DependencyDisagreements;
}

/** `run` as readiness shows it to a caller who may not see its entity. */
export function hiddenRun(run: RecoveryRun): HiddenRun {
  const { mode, status, createdAt, startedAt, finishedAt, rtoSeconds, error } = run;
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
const PLAN_WHOLE = new Set([ANNOTATION_PROBES, ANNOTATION_RPO, ANNOTATION_RTO]);
/**
 * Annotations read on a machine alone. Missing or bad on a machine of the plan, nothing captures
 * it: blocking. Put on another entity (a Component), they are ignored and named: the plan is whole.
 */
const MACHINE_ONLY = new Set([ANNOTATION_ENGINE, ANNOTATION_CONTAINER]);

/** How far ahead of this backend's clock a capture or run may be dated before its age is doubted: replicas' clocks differ a little. */
const CLOCK_TOLERANCE_SECONDS = 300;

const RANK: Record<ReadinessStatus, number> = {
  'not-recoverable': 0,
  'at-risk': 1,
  unknown: 2,
  ready: 3,
};

/** Orders readiness by risk: not recoverable first, then at risk, unknown, ready. */
export function byRisk(a: Pick<Readiness, 'status' | 'entityRef'>, b: Pick<Readiness, 'status' | 'entityRef'>): number {
  return RANK[a.status] - RANK[b.status] || a.entityRef.localeCompare(b.entityRef);
}

/**
 * Can the entity be recovered now, within its objectives? Pure: every fact comes in.
 * Reasons are listed most severe first.
 */
export function assessReadiness(input: ReadinessInput): Readiness {
  const blocking: string[] = [];
  const risks: string[] = [];
  const unknowns: string[] = [];
  const { rpoSeconds, rtoSeconds } = input.objectives;

  const machines = new Set(input.captures.map(c => c.machineRef));
  const leavesPlanWhole = ({ annotation, entityRef }: EntityProblem) =>
    annotation !== undefined && (PLAN_WHOLE.has(annotation) || (MACHINE_ONLY.has(annotation) && !machines.has(entityRef)));
  for (const problem of input.problems) (leavesPlanWhole(problem) ? risks : blocking).push(problem.message);
  for (const problem of input.captureProblems ?? []) risks.push(problem.message);
  if (input.planError) blocking.push(input.planError);
  if (input.plan && input.plan.machines.length === 0) {
    unknowns.push('No machines in the boot plan: add dependsOn relations to machine Resources');
  }
  // Machines no capture source serves: their problem says why their last capture is the one restored.
  const uncapturable = new Set((input.captureProblems ?? []).map(p => p.entityRef));
  for (const c of input.captures) {
    const now = input.locators?.get(c.machineRef);
    // Only one started after the latest capture: a failure recorded before it is no news.
    const lastFailure = input.captureFailures?.get(c.machineRef);
    const failure = lastFailure && (!c.latest || Date.parse(lastFailure.failedAt) >= Date.parse(c.latest.createdAt)) ? lastFailure : undefined;
    if (c.latest && failure) {
      risks.push(
        `Last capture of ${c.machineRef} failed at ${failure.failedAt}: ${failure.message}; none has succeeded since, so a recovery would restore its capture of ${c.latest.createdAt}`,
      );
    }
    if (!c.latest) blocking.push(`${c.machineRef} has never been captured${failure ? ` (its capture at ${failure.failedAt} failed: ${failure.message})` : ''}`);
    else if (now && !uncapturable.has(c.machineRef) && (now.engine !== c.latest.engine || now.container !== c.latest.container)) {
      // The machine was replaced (or moved): its age says nothing of the machine it is now, and a
      // recovery would restore the one before.
      risks.push(
        `Last capture of ${c.machineRef} is of container ${c.latest.container} on engine ${c.latest.engine}, but the catalog now names ${now.container} on ${now.engine}: it has not been captured since, so a recovery would restore that earlier container`,
      );
    } else if ((c.ageSeconds ?? 0) < -CLOCK_TOLERANCE_SECONDS) {
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
  const run = input.lastRun;
  if (!run && input.outgrownRun) {
    const { run: partial, shown } = input.outgrownRun;
    // A plan that changed since does not make the machine it failed on come up.
    const own = partial.entityRef === input.entityRef;
    // Another entity's run is named where the caller sees it, as `outgrown` names it: the notifier
    // reads which run a reason is tied to from this (runNamedIn).
    const which = !own && isFullRun(shown) ? `, ${runNamed(partial)},` : '';
    if (failsPlan(partial, input.plan, own)) blocking.push(`Last ${runKind(shown)}${which} failed: ${shown.error?.message ?? 'unknown error'}`);
    risks.push(outgrown(input.entityRef, input.outgrownRun, input.plan));
  } else if (!run) unknowns.push('Never test-recovered');
  else if (run.status === 'failed') {
    blocking.push(`Last ${runKind(run)} failed: ${run.error?.message ?? 'unknown error'}`);
  } else {
    if (run.rtoSeconds !== undefined && run.rtoSeconds > rtoSeconds) {
      risks.push(
        `Last measured RTO ${formatSecondsAgainst(run.rtoSeconds, rtoSeconds)} exceeds the objective of ${formatSeconds(rtoSeconds)}`,
      );
    }
    risks.push(...restoredBefore(run, input, uncapturable));
    const age = input.lastRunAgeSeconds ?? 0;
    if (age < -CLOCK_TOLERANCE_SECONDS) {
      risks.push(
        `Last ${runKind(run)} is dated ${formatSeconds(-age)} ahead of the backend's clock: one of their clocks is wrong, so how long it vouches for the entity cannot be told`,
      );
    } else if (age > input.maxTestAgeSeconds) {
      risks.push(
        `Last ${runKind(run)} is ${formatSecondsAgainst(age, input.maxTestAgeSeconds)} old, over the ${formatSeconds(input.maxTestAgeSeconds)} within which one must have succeeded`,
      );
    }
  }
  // A run since the last covering one (or with none) that failed on a machine of the plan, gated
  // there as the plan gates it: a recovery of the plan boots that machine under what failed, so no
  // older success vouches for it. The outgrown run's own failure is said above.
  const failure = input.failedRun;
  if (failure && failure.run.id !== input.outgrownRun?.run.id) blocking.push(failedSince(input.entityRef, failure, run !== undefined));

  let status: ReadinessStatus = 'ready';
  if (blocking.length > 0) status = 'not-recoverable';
  else if (risks.length > 0) status = 'at-risk';
  else if (unknowns.length > 0) status = 'unknown';

  const own = new Set(input.ownMachines);
  const mine = input.plan?.machines.filter(m => own.has(m.machineRef)) ?? [];
  const position =
    mine.length > 0
      ? {
          wave: Math.max(...mine.map(m => m.wave)),
          machines: mine.map(m => m.machineRef),
          waitsFor: [...new Set(mine.flatMap(m => m.waitsFor))]
            .filter(m => !own.has(m))
            .sort(),
        }
      : undefined;

  return {
    entityRef: input.entityRef,
    status,
    reasons: [...blocking, ...risks, ...unknowns],
    problems: [...input.problems, ...(input.captureProblems ?? [])],
    objectives: input.objectives,
    plan: input.plan,
    position,
    // An age ahead of the clock is none yet (the reasons say why).
    captures: input.captures.map(c => (c.ageSeconds !== undefined && c.ageSeconds < 0 ? { ...c, ageSeconds: 0 } : c)),
    lastRun: input.lastRun,
    disagreements: input.disagreements,
  };
}

/**
 * The machines of the plan the last run restored from a capture of another container (or engine)
 * than the catalog names now: replaced since, they are not what the run proved recovers, whatever
 * was captured since. A newer run that restores the container named now is the last run then, and
 * vouches for it again.
 */
function restoredBefore(run: Pick<RecoveryRun, 'mode'>, input: ReadinessInput, uncapturable: Set<string>): string[] {
  const restored = new Map((input.lastRunRestored ?? []).map(m => [m.machineRef, m.capturedFrom]));
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
    if (from.engine === now.engine && from.container === now.container) return [];
    return [
      `Last ${runKind(run)} restored ${machineRef} from a capture of container ${from.container} on engine ${from.engine}, but the catalog now names ${now.container} on ${now.engine}: it does not vouch for the machine as it is now, until a run restores that container`,
    ];
  });
}

/**
 * Another entity's run as a reason names it where the caller may see it: `run ID of ENTITY`, first
 * in the reason (before its message, which is free text).
 */
export function runNamed(run: Pick<RecoveryRun, 'id' | 'entityRef'>): string {
  return `run ${run.id} of ${run.entityRef}`;
}

/**
 * The run a reason names first (runNamed), if any: the notifier words a reason tied to another
 * entity's run by it, or as readiness for owners withholds it. An entity ref holds no space,
 * comma or parenthesis.
 */
export function runNamedIn(reason: string): Pick<RecoveryRun, 'id' | 'entityRef'> | undefined {
  const found = /\brun (\S+) of ([^\s,()]+)/.exec(reason);
  return found ? { id: found[1], entityRef: found[2] } : undefined;
}

/**
 * Words of a reason tied to a run of another entity that is not named, as readiness for owners
 * (ReadinessService's `ownRunsOnly`, whose withheld run message says them too) words it: the
 * notifier reads such a reason again as the plugin sees it, to name the run where the owners told
 * may be told it.
 */
export const OTHER_ENTITYS_RUN = 'in a run of another entity';

/** What the run was, as reasons name it: a failover counts as a test recovery does, but is no test. */
const runKind = (run: Pick<RecoveryRun, 'mode'>) => (run.mode === 'failover' ? 'failover' : 'test recovery');

/**
 * Whether a failed run that did not recover the whole plan fails it all the same: it failed on a
 * machine the plan holds, gated there by nothing the plan does not gate it by (a recovery of the
 * plan runs what failed), or, the entity's own run, as a whole (its lab, the host's room: a plan
 * grown since needs them too). Failed on a machine gated by another service's probes, it says
 * nothing of the plan's.
 */
function failsPlan(run: RecoveryRun, plan: BootPlan | undefined, own: boolean): boolean {
  if (run.status !== 'failed') return false;
  if (run.error?.machineRef === undefined) return own;
  return plan !== undefined && failedWithin(run, plan);
}

/**
 * The failure of a run newer than the entity's last covering run (`afterLast`; else there is
 * none) on a machine of its plan, gated there as the plan gates it: the run named as the caller
 * may see it, as `outgrown` names it.
 */
function failedSince(entityRef: string, { run, shown }: NonNullable<ReadinessInput['failedRun']>, afterLast: boolean): string {
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
  const held = failedOn !== undefined && (plan?.machines ?? []).some(m => m.machineRef === failedOn);
  // A failure that fails the plan is a reason of its own (failsPlan); the others say why not.
  const failure =
    run.status !== 'failed' || failsPlan(run, plan, own)
      ? undefined
      : failedOn === undefined
        ? 'failed as a whole'
        : held
          ? `failed on ${failedOn}, gated there by more than the plan gates it by`
          : // Of a hidden run, only a machine of the caller's plan may be named.
            own
            ? `failed on ${failedOn}, which the plan no longer holds`
            : isFullRun(shown)
              ? `failed on ${failedOn}, which the plan does not hold`
              : 'failed on a machine the plan does not hold';
  const why = [
    ...(missed.machines.length > 0 ? [`did not boot ${missed.machines.join(', ')}`] : []),
    ...(missed.services.length > 0 ? [`did not probe ${missed.services.join(', ')}`] : []),
    ...(missed.probes.length > 0 ? [`did not run probe ${missed.probes.join(', ')}`] : []),
    ...(failure ? [failure] : []),
  ];
  const which = own
    ? `its last ${runKind(run)}`
    : isFullRun(shown)
      ? `its last ${runKind(run)}, ${runNamed(run)}`
      : // Hidden from the caller, or withheld from owners (who may or may not see it): not named.
        `its last ${runKind(run)}, ${OTHER_ENTITYS_RUN}`;
  return `Its boot plan changed since ${which} (${formatSeconds(Math.max(0, ageSeconds))} ago), which ${why.join(' and ')}: none has recovered the plan it has now`;
}
