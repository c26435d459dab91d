import type {
  MachinePhase,
  RecoveryRun,
  RunMachine,
  RunStatus,
  RunStepLevel,
} from '@backstage-recovery/plugin-recovery-common';
import type { RestoredMachine } from '@backstage-recovery/plugin-recovery-node';
import type { RecoveryStore } from '../database/RecoveryStore';
import { RunSuperseded } from './errors';
import { assertMachineTransition, assertRunTransition, isFinalMachinePhase } from './runState';

/** A timestamp as a run records it. */
export const now = () => new Date().toISOString();

/** Keeps a run's in-memory view and its persisted state in step. */
export class RunRecorder {
  private readonly state: Map<string, RunMachine>;
  private status_: RunStatus;
  /** Per machine, the host's adaptations that gave up one of its production addresses. */
  private readonly addressAdaptations = new Map<string, string[]>();

  constructor(private readonly store: RecoveryStore, private readonly run: RecoveryRun) {
    this.state = new Map(run.machines.map(m => [m.machineRef, { ...m }]));
    this.status_ = run.status;
  }

  get runId(): string {
    return this.run.id;
  }

  machines(): RunMachine[] {
    return [...this.state.values()];
  }

  async status(
    status: RunStatus,
    patch: Partial<Pick<RecoveryRun, 'startedAt' | 'finishedAt' | 'rtoSeconds' | 'error'>>,
  ): Promise<void> {
    assertRunTransition(this.status_, status);
    if (!(await this.store.updateRun(this.run.id, { status, ...patch }))) {
      throw new RunSuperseded(`Run ${this.run.id} is already finished`);
    }
    // Moved on only once stored: a write that failed leaves the run where the store has it, so
    // the run can still fail with that cause instead of being refused the move.
    this.status_ = status;
  }

  async machine(
    machineRef: string,
    phase: MachinePhase,
    patch: Partial<RunMachine>,
    /** The final check fails a machine that was ready. */
    finalCheck = false,
  ): Promise<void> {
    const current = this.state.get(machineRef)!;
    assertMachineTransition(machineRef, current.phase, phase, finalCheck);
    await this.store.updateRunMachine(this.run.id, machineRef, { ...patch, phase });
    // As the run's status: a machine whose write failed stays in its stored phase, to be failed or settled from there.
    Object.assign(current, patch, { phase });
  }

  /** The console tail of a machine that failed, as evidence of why. */
  async logTail(machineRef: string, logTail: string): Promise<void> {
    await this.store.updateRunMachine(this.run.id, machineRef, { logTail });
    this.state.get(machineRef)!.logTail = logTail;
  }

  async step(message: string, machineRef?: string, level: RunStepLevel = 'info') {
    await this.store.appendStep(this.run.id, { at: now(), machineRef, level, message });
  }

  /**
   * Records what was adapted away from production: at capture (stored with the capture, so the
   * run shows what the restored machine lacks) and by the host when it restored the machine; those
   * that gave up a production address get a step of their own, as they can break whatever
   * reaches the machine by address.
   */
  async adapted(machineRef: string, atCapture: string[], { adaptations, addressesLost: lost }: RestoredMachine): Promise<void> {
    if (atCapture.length > 0) await this.step(`Adapted at capture: ${atCapture.join('; ')}`, machineRef);
    if (adaptations.length > 0) await this.step(`Adapted: ${adaptations.join('; ')}`, machineRef);
    if (lost.length > 0) {
      this.addressAdaptations.set(machineRef, lost);
      // A warning: the machine may still boot, but whatever reaches it by address may not.
      await this.step(`Adapted, without production's addresses: ${lost.join('; ')}`, machineRef, 'warning');
    }
  }

  /** Why the lab may not behave like production for this machine: its own lost addresses, else the others'. */
  lostAddresses(machineRef: string): string[] {
    const own = this.addressAdaptations.get(machineRef);
    if (own) return own;
    return [...this.addressAdaptations].flatMap(([other, lost]) => lost.map(a => `${other}: ${a}`));
  }

  /**
   * Settles the machines a finished run leaves behind: one it never started is skipped, one
   * still in progress (the run was interrupted) is failed with `reason`.
   */
  async settleUnfinished(reason: string): Promise<void> {
    const at = now();
    for (const m of this.state.values()) {
      if (m.phase === 'waiting') await this.machine(m.machineRef, 'skipped', {});
      else if (!isFinalMachinePhase(m.phase)) {
        await this.machine(m.machineRef, 'failed', { finishedAt: at, message: reason });
      }
    }
  }
}
