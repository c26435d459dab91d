import type { BootPlan, ProbeSpec, RecoveryRun } from './types';

/**
 * A probe as its annotation writes it (`tcp:5432`, `http:80/healthz`): how the timeline names it,
 * and how a run's probes and a plan's are compared.
 *
 * @public
 */
export function describeProbe(probe: ProbeSpec): string {
  return probe.kind === 'http'
    ? `http:${probe.port}${probe.path ?? '/'}`
    : `tcp:${probe.port}`;
}

/**
 * What of a plan a run did not recover (planNotRecovered).
 *
 * @public
 */
export interface PlanNotRecovered {
  /** Machines of the plan the run did not boot. */
  machines: string[];
  /** On machines it booted, the plan's services whose probes did not gate them there, as `service on machine`. */
  services: string[];
  /** On machines it booted, the plan's probes it did not run there (one added since), as `probe on machine`. */
  probes: string[];
}

/**
 * What of `plan` the run did not recover: the machines it did not boot, and on those it booted,
 * the services and the probes that did not gate them. A machine recovered on its own is its own
 * service in its plan: any run that booted it under its probes recovered it.
 *
 * @public
 */
export function planNotRecovered(
  run: { plan: Pick<BootPlan, 'machines'> },
  plan: Pick<BootPlan, 'machines'>,
): PlanNotRecovered {
  const booted = new Map(run.plan.machines.map(m => [m.machineRef, m]));
  const missed: PlanNotRecovered = { machines: [], services: [], probes: [] };
  for (const m of plan.machines) {
    const ran = booted.get(m.machineRef);
    if (!ran) {
      missed.machines.push(m.machineRef);
      continue;
    }
    const services = new Set(ran.services);
    for (const s of m.services)
      if (s !== m.machineRef && !services.has(s))
        missed.services.push(`${s} on ${m.machineRef}`);
    // Runs gate a machine by the probes its plan held then: one added since was never run.
    const probes = new Set((ran.probes ?? []).map(describeProbe));
    for (const p of (m.probes ?? []).map(describeProbe))
      if (!probes.has(p)) missed.probes.push(`${p} on ${m.machineRef}`);
  }
  return missed;
}

/**
 * Whether a run tells whether `plan`, the plan of `entityRef`, recovers: it finished (succeeded or
 * failed) and booted every machine of the plan, each gated by the probes the plan gates it by (its
 * services' and its own), whichever entity it was for. A machine alone is not enough: a run's plan can boot a machine for
 * one of its services, or for a learned wait, without the others' probes, and a probe added since
 * was never run. A run that failed on a machine outside the plan says nothing about it: the plan's
 * machines were ready or never started. Nor does one that failed as a whole (no machine to blame:
 * no room on the host for all it boots) about another entity's plan,
 * which may fit where the run's did not, or outlast what stopped it: it stays the last run of its
 * own entity alone. An interrupted run, or one not finished yet (pending, running), reached no
 * result: it covers no plan; nor does one that failed as its host could not be reached
 * (failedAtHost): the host's condition, not the plan's.
 *
 * Readiness counts a run for an entity by this rule, and the nightly check chooses its runs by it
 * (passing a planned run as a succeeded one), so the two agree on what covers what.
 *
 * @public
 */
export function coversPlan(
  run: Pick<RecoveryRun, 'entityRef' | 'status' | 'error'> & {
    plan: Pick<BootPlan, 'machines'>;
  },
  plan: Pick<BootPlan, 'machines'>,
  entityRef: string,
): boolean {
  const missed = planNotRecovered(run, plan);
  if (
    missed.machines.length + missed.services.length + missed.probes.length >
    0
  )
    return false;
  if (run.status === 'succeeded') return true;
  // Interrupted, or not finished yet: no result, so nothing it tells about any plan.
  if (run.status !== 'failed' || failedAtHost(run)) return false;
  const failedOn = run.error?.machineRef;
  return failedOn === undefined
    ? run.entityRef === entityRef
    : plan.machines.some(m => m.machineRef === failedOn);
}

/**
 * Whether a run failed because its hypervisor host could not be reached, or stopped answering: it
 * covers no plan, and readiness says so beside the run before it.
 *
 * @public
 */
export function failedAtHost(
  run: Pick<RecoveryRun, 'status' | 'error'>,
): boolean {
  return run.status === 'failed' && run.error?.hostUnreachable === true;
}

/**
 * Why a run's failure on a machine of `plan` may not be the plan's: what the run gated the machine
 * by there that the plan does not (services' or its own probes: the failure may be theirs), and the
 * machines the plan boots before it that the run did not (the failure may be their lack: a
 * dependency added since). Undefined where the run did not fail on a machine both hold.
 *
 * @public
 */
export function failureBeyondPlan(
  run: Pick<RecoveryRun, 'status' | 'error'> & {
    plan: Pick<BootPlan, 'machines'>;
  },
  plan: Pick<BootPlan, 'machines'>,
): { gatedBy: string[]; bootedWithout: string[] } | undefined {
  const failedOn = run.status === 'failed' ? run.error?.machineRef : undefined;
  if (failedOn === undefined) return undefined;
  const now = plan.machines.find(m => m.machineRef === failedOn);
  const then = run.plan.machines.find(m => m.machineRef === failedOn);
  if (!now || !then) return undefined;
  const beyond = planNotRecovered(
    { plan: { machines: [now] } },
    { machines: [then] },
  );
  const bootedBefore = new Set(
    run.plan.machines.filter(m => m.wave < then.wave).map(m => m.machineRef),
  );
  return {
    gatedBy: [...beyond.services, ...beyond.probes],
    bootedWithout: now.waitsFor.filter(ref => !bootedBefore.has(ref)),
  };
}

/**
 * Whether a failed run counts against `plan` by the machine it failed on: the plan holds that
 * machine, gates it by every service and probe the run gated it by there, and boots before it only
 * machines the run booted before it, so a recovery of the plan runs what failed as it failed,
 * whichever entity the run was for and whatever else it booted. Failed on a machine gated by another
 * service's probes, or as a whole (no machine), it says nothing of the plan's machines; readiness
 * weighs such a run against the last that recovered the plan.
 *
 * @public
 */
export function failedWithin(
  run: Pick<RecoveryRun, 'status' | 'error'> & {
    plan: Pick<BootPlan, 'machines'>;
  },
  plan: Pick<BootPlan, 'machines'>,
): boolean {
  const beyond = failureBeyondPlan(run, plan);
  return (
    beyond !== undefined &&
    beyond.gatedBy.length + beyond.bootedWithout.length === 0
  );
}
