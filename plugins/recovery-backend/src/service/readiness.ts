import type {
  BootPlan,
  DependencyDisagreements,
  EntityProblem,
  HiddenRun,
  MachineCaptureStatus,
  Readiness,
  ReadinessStatus,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  ANNOTATION_PROBES,
  ANNOTATION_RPO,
  ANNOTATION_RTO,
  formatSeconds,
  formatSecondsAgainst,
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
  /** In full, or as a HiddenRun when the caller may not see its entity. */
  lastRun?: RecoveryRun | HiddenRun;
  /** How long ago the last run finished (negative: dated ahead of this backend's clock). */
  lastRunAgeSeconds?: number;
  /**
   * Without a last run, the entity's own newest finished run that counts, and how long ago it
   * finished: it recovered a plan the entity's has since outgrown (a machine added, say).
   */
  outgrownRun?: { run: RecoveryRun; ageSeconds: number };
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
  for (const c of input.captures) {
    if (!c.latest) blocking.push(`${c.machineRef} has never been captured`);
    else if ((c.ageSeconds ?? 0) < -CLOCK_TOLERANCE_SECONDS) {
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
  if (!run && input.outgrownRun) risks.push(outgrown(input.outgrownRun.run, input.outgrownRun.ageSeconds, input.plan));
  else if (!run) unknowns.push('Never test-recovered');
  else if (run.status === 'failed') {
    blocking.push(`Last test recovery failed: ${run.error?.message ?? 'unknown error'}`);
  } else {
    if (run.rtoSeconds !== undefined && run.rtoSeconds > rtoSeconds) {
      risks.push(
        `Last measured RTO ${formatSecondsAgainst(run.rtoSeconds, rtoSeconds)} exceeds the objective of ${formatSeconds(rtoSeconds)}`,
      );
    }
    const age = input.lastRunAgeSeconds ?? 0;
    if (age < -CLOCK_TOLERANCE_SECONDS) {
      risks.push(
        `Last test recovery is dated ${formatSeconds(-age)} ahead of the backend's clock: one of their clocks is wrong, so how long it vouches for the entity cannot be told`,
      );
    } else if (age > input.maxTestAgeSeconds) {
      risks.push(
        `Last test recovery is ${formatSecondsAgainst(age, input.maxTestAgeSeconds)} old, over the ${formatSeconds(input.maxTestAgeSeconds)} within which one must have succeeded`,
      );
    }
  }

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
 * Why the entity's own last run no longer tells about it: its plan has what the run did not
 * recover (a machine it did not boot, a service whose probes it did not run), or the run failed on
 * a machine the plan no longer holds.
 */
function outgrown(run: RecoveryRun, ageSeconds: number, plan: BootPlan | undefined): string {
  const booted = new Map(run.plan.machines.map(m => [m.machineRef, new Set(m.services)]));
  const notBooted = (plan?.machines ?? []).filter(m => !booted.has(m.machineRef)).map(m => m.machineRef);
  const unprobed = (plan?.machines ?? []).flatMap(m =>
    booted.has(m.machineRef) ? m.services.filter(s => !booted.get(m.machineRef)!.has(s)).map(s => `${s} on ${m.machineRef}`) : [],
  );
  const missed = [
    ...(notBooted.length > 0 ? [`did not boot ${notBooted.join(', ')}`] : []),
    ...(unprobed.length > 0 ? [`did not probe ${unprobed.join(', ')}`] : []),
  ];
  const why = missed.length > 0 ? missed.join(' and ') : `failed on ${run.error?.machineRef ?? 'a machine'}, which the plan no longer holds`;
  return `Its boot plan changed since its last test recovery (${formatSeconds(Math.max(0, ageSeconds))} ago), which ${why}: none has recovered the plan it has now`;
}
