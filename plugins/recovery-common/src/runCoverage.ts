import type { BootPlan, RecoveryRun } from './types';

/**
 * Whether a finished run tells whether `plan` recovers: it booted every machine of the plan, each
 * gated by the probes of at least the services the plan puts on it (probes come from services),
 * whichever entity it was for. A machine alone is not enough: a run's plan can boot a machine for
 * one of its services, or for a learned wait, without the others' probes. A run that failed on a
 * machine outside the plan says nothing about it: the plan's machines were ready or never started.
 *
 * Readiness counts a run for an entity by this rule, and the nightly check chooses its runs by it
 * (a planned run as a succeeded one), so the two agree on what covers what.
 */
export function coversPlan(
  run: Pick<RecoveryRun, 'status' | 'error'> & { plan: Pick<BootPlan, 'machines'> },
  plan: Pick<BootPlan, 'machines'>,
): boolean {
  const booted = new Map(run.plan.machines.map(m => [m.machineRef, new Set(m.services)]));
  const covered = plan.machines.every(m => {
    const services = booted.get(m.machineRef);
    return services !== undefined && m.services.every(s => services.has(s));
  });
  if (!covered) return false;
  const failedOn = run.status === 'failed' ? run.error?.machineRef : undefined;
  return failedOn === undefined || plan.machines.some(m => m.machineRef === failedOn);
}
