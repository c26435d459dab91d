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
import { formatSeconds, formatSecondsAgainst } from '@backstage-recovery/plugin-recovery-common';

export interface ReadinessInput {
  entityRef: string;
  /** Machines the entity runs on itself (for its position in the plan). */
  ownMachines: string[];
  problems: EntityProblem[];
  objectives: { rpoSeconds: number; rtoSeconds: number };
  plan?: BootPlan;
  planError?: string;
  captures: MachineCaptureStatus[];
  /** In full, or as a HiddenRun when the caller may not see its entity. */
  lastRun?: RecoveryRun | HiddenRun;
  /** How long ago the last run finished. */
  lastRunAgeSeconds?: number;
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

  for (const problem of input.problems) blocking.push(problem.message);
  if (input.planError) blocking.push(input.planError);
  if (input.plan && input.plan.machines.length === 0) {
    unknowns.push('No machines in the boot plan: add dependsOn relations to machine Resources');
  }
  for (const c of input.captures) {
    if (!c.latest) blocking.push(`${c.machineRef} has never been captured`);
    else if ((c.ageSeconds ?? 0) > rpoSeconds) {
      risks.push(
        `Last capture of ${c.machineRef} is ${formatSecondsAgainst(c.ageSeconds!, rpoSeconds)} old, over the RPO of ${formatSeconds(rpoSeconds)}`,
      );
    }
  }
  const run = input.lastRun;
  if (!run) unknowns.push('Never test-recovered');
  else if (run.status === 'failed') {
    blocking.push(`Last test recovery failed: ${run.error?.message ?? 'unknown error'}`);
  } else {
    if (run.rtoSeconds !== undefined && run.rtoSeconds > rtoSeconds) {
      risks.push(
        `Last measured RTO ${formatSecondsAgainst(run.rtoSeconds, rtoSeconds)} exceeds the objective of ${formatSeconds(rtoSeconds)}`,
      );
    }
    if ((input.lastRunAgeSeconds ?? 0) > input.maxTestAgeSeconds) {
      risks.push(
        `Last test recovery is ${formatSecondsAgainst(input.lastRunAgeSeconds!, input.maxTestAgeSeconds)} old, over the ${formatSeconds(input.maxTestAgeSeconds)} within which one must have succeeded`,
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
    problems: input.problems,
    objectives: input.objectives,
    plan: input.plan,
    position,
    captures: input.captures,
    lastRun: input.lastRun,
    disagreements: input.disagreements,
  };
}
