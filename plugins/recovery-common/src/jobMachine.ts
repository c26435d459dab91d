import type { BootPlan, MachinePhase, RunMachine } from './types';

/**
 * What is said beside a job machine (ANNOTATION_JOB) wherever the machines of a plan or a run are
 * listed (the CLI's `plan` and `show-run`, the portal's boot plan and run): it is not expected to
 * keep running.
 *
 * @public
 */
export const JOB_MACHINE_NOTE = 'job: ready once it exits 0';

/**
 * Whether a machine of a plan is a job. False for one of a plan kept before jobs were.
 *
 * @public
 */
export function isJobMachine(
  plan: Pick<BootPlan, 'machines'> | undefined,
  machineRef: string,
): boolean {
  return (
    plan?.machines?.some(m => m.machineRef === machineRef && m.job === true) ??
    false
  );
}

/**
 * A machine's phase in a run as the CLI and the portal say it: `completed` for a job the run
 * counted ready (it exited with code 0: it is done, not running), else its phase.
 *
 * @public
 */
export type ShownMachinePhase = MachinePhase | 'completed';

/**
 * A machine's phase as {@link ShownMachinePhase} says it, the run's plan telling its jobs.
 *
 * @public
 */
export function shownMachinePhase(
  plan: Pick<BootPlan, 'machines'> | undefined,
  machine: Pick<RunMachine, 'machineRef' | 'phase'>,
): ShownMachinePhase {
  return machine.phase === 'ready' && isJobMachine(plan, machine.machineRef)
    ? 'completed'
    : machine.phase;
}
