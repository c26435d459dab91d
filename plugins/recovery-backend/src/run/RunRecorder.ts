import type {
  EntityProblem,
  MachinePhase,
  RecoveryRun,
  RunMachine,
  RunStatus,
  RunStepLevel,
} from '@backstage-recovery/plugin-recovery-common';
import {
  describeMachineState,
  exitedWithZero,
  formatMeasured,
  formatSeconds,
  formatSecondsAgainst,
  isJobMachine,
  jobAnnotationHint,
  withoutHealthOutput,
  machineNotServing,
} from '@backstage-recovery/plugin-recovery-common';
import type { RestoredMachine } from '@backstage-recovery/plugin-recovery-node';
import {
  counted,
  criticalPath,
  describeLearned,
  describeLearnedMachineWait,
  lowConfidenceWarning,
} from '@backstage-recovery/plugin-recovery-node';
import type { StoredCapture } from '../database/CaptureStore';
import type { RunStore } from '../database/RunStore';
import { learnedWaitsOf } from '../plan/inference';
import { RunSuperseded } from './errors';
import {
  assertMachineTransition,
  assertRunTransition,
  isFinalMachinePhase,
  unfinishedMachinePhase,
} from './runState';

/** A timestamp as a run records it. */
export const now = () => new Date().toISOString();

/** Keeps a run's in-memory view and its persisted state in step, and writes its timeline. */
export class RunRecorder {
  private readonly state: Map<string, RunMachine>;
  private status_: RunStatus;
  /** Per machine, the host's adaptations that gave up one of its production addresses. */
  private readonly addressAdaptations = new Map<string, string[]>();

  constructor(
    private readonly store: RunStore,
    private readonly run: RecoveryRun,
  ) {
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
    patch: Partial<
      Pick<RecoveryRun, 'startedAt' | 'finishedAt' | 'rtoSeconds' | 'error'>
    >,
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
    await this.store.updateRunMachine(this.run.id, machineRef, {
      ...patch,
      phase,
    });
    // As the run's status: a machine whose write failed stays in its stored phase, to be failed or settled from there.
    Object.assign(current, patch, { phase });
  }

  /** The console tail of a machine that failed, as evidence of why. */
  async logTail(machineRef: string, logTail: string): Promise<void> {
    await this.store.updateRunMachine(this.run.id, machineRef, { logTail });
    this.state.get(machineRef)!.logTail = logTail;
  }

  async step(
    message: string,
    machineRef?: string,
    level: RunStepLevel = 'info',
  ) {
    await this.store.appendStep(this.run.id, {
      at: now(),
      machineRef,
      level,
      message,
    });
  }

  /**
   * Opens the timeline: what the run recovers where, then what it was admitted with that a
   * recovery would regret. The catalog's problems (readiness shows them while they last; the
   * run's page shows those of its admission), and each capture older than the RPO: an old capture
   * boots all the same, so the run says what a recovery from it would lose, or its success would
   * vouch for captures that miss weeks of production's changes. So too each capture of a machine
   * that was not serving when captured: a pass on it proves a state production was not in.
   */
  async opening(
    hostId: string,
    waves: string[][],
    captures: Map<string, StoredCapture>,
    /** What the catalog got wrong about the recovered entities. */
    problems: EntityProblem[],
    /** The recovered entity's RPO. */
    rpoSeconds: number,
  ): Promise<void> {
    const run = this.run;
    await this.step(
      `${run.mode === 'test' ? 'Test recovery' : 'Failover'} of ${run.entityRef} on ${hostId}: ${counted(waves.length, 'wave')}, ${counted(waves.flat().length, 'machine')}${run.recoveryPoint ? `, to the recovery point ${run.recoveryPoint}` : ''}`,
    );
    await this.learnedWaits(waves);
    const machineRefs = new Set(waves.flat());
    for (const problem of problems) {
      await this.step(
        `Catalog problem: ${problem.message}`,
        machineRefs.has(problem.entityRef) ? problem.entityRef : undefined,
        'warning',
      );
    }
    for (const machineRef of waves.flat()) {
      const capture = captures.get(machineRef)!;
      // At a recovery point, what it would lose of what production had then.
      const age = Math.max(
        0,
        Math.round(
          (Date.parse(run.recoveryPoint ?? run.createdAt) -
            Date.parse(capture.createdAt)) /
            1000,
        ),
      );
      if (age > rpoSeconds) {
        await this.step(
          `Restores its capture of ${capture.createdAt}, ${formatSecondsAgainst(age, rpoSeconds)} old ${run.recoveryPoint ? 'at the recovery point' : 'when the run was admitted'}, over the RPO of ${formatSeconds(rpoSeconds)}: a recovery from it would lose what changed since`,
          machineRef,
          'warning',
        );
      }
      // A capture of a machine that was not serving (stopped, restarting, paused, unhealthy): the
      // run restores that state, so its success is no proof production was well. A job done
      // (exited with code 0) is as it should be between runs.
      const completed = exitedWithZero(capture.machineState);
      const job = isJobMachine(run.plan, machineRef);
      if (machineNotServing(capture.machineState) && !(job && completed)) {
        await this.step(
          `Restores its capture of ${capture.createdAt}, taken while ${machineRef} was ${describeMachineState(withoutHealthOutput(capture.machineState!))}: the capture holds a machine that was not serving, so ${
            run.mode === 'test'
              ? 'this run passing proves that capture boots, not that production was well'
              : 'what is recovered is the state production was in then, not one it was serving from'
          }${completed ? `; ${jobAnnotationHint(machineRef)}` : ''}`,
          machineRef,
          'warning',
        );
      }
    }
  }

  /**
   * Names each wave's waits that the analysis learned rather than the catalog declared, with
   * their evidence: a learned wait changes the plan on the boot history's word, and one of low
   * confidence (fewer samples than the analysis trusts) may be wrong, so it is a warning. Only
   * where the run boots the plan's waves as planned (not the reverse-order test hook).
   */
  private async learnedWaits(waves: string[][]): Promise<void> {
    const { plan } = this.run;
    const asPlanned = (w: string[][]) => JSON.stringify(w);
    if (asPlanned(waves) !== asPlanned(plan.waves)) return;
    for (const { wave, dependencies, machineWaits } of learnedWaitsOf(plan)) {
      const waits = [
        ...(dependencies.length > 0
          ? [
              `learned ${dependencies.length === 1 ? 'dependency' : 'dependencies'}: ${dependencies.map(describeLearned).join(', ')}`,
            ]
          : []),
        ...(machineWaits.length > 0
          ? [
              `machine ${machineWaits.length === 1 ? 'wait' : 'waits'} learned from reboots: ${machineWaits.map(describeLearnedMachineWait).join(', ')}`,
            ]
          : []),
      ];
      const doubt = lowConfidenceWarning(dependencies);
      await this.step(
        `Wave ${wave + 1} waits on ${waits.join(' and on ')}${doubt ? `: ${doubt}` : ''}`,
        undefined,
        doubt ? 'warning' : 'info',
      );
    }
  }

  /**
   * Records where a recovery's time went: the chain of machine waits that took longest, each
   * machine from its restore to ready, beside the waves booted one after another (each waits for
   * its slowest machine). Shortening a machine off that chain does not shorten the recovery.
   * Nothing where a machine has no timings.
   */
  async criticalPath(waves: string[][]): Promise<void> {
    const durations: Record<string, number> = {};
    for (const m of this.machines()) {
      if (!m.restoreStartedAt || !m.readyAt) return;
      durations[m.machineRef] =
        Math.max(0, Date.parse(m.readyAt) - Date.parse(m.restoreStartedAt)) /
        1000;
    }
    const edges = this.run.plan.machines.map(m => ({
      machine: m.machineRef,
      waitsFor: m.waitsFor.filter(w => w in durations),
    }));
    const chain = criticalPath({ waves, edges }, durations);
    const byWaves = criticalPath({ waves }, durations);
    // To the millisecond, as the run's RTO is written: the chain adds up to it.
    await this.step(
      `Critical path: ${chain.path.map(m => `${m} (${formatMeasured(durations[m])})`).join(' → ')}: ${formatMeasured(chain.duration)}, each machine from its restore to ready, ` +
        `the least its boot order allows; wave after wave (each waiting for its slowest machine) the machines took ${formatMeasured(byWaves.duration)}`,
    );
  }

  /**
   * Records what was adapted away from production: at capture (stored with the capture, so the
   * run shows what the restored machine lacks) and by the host when it restored the machine; those
   * that gave up a production address get a step of their own, as they can break whatever
   * reaches the machine by address; so do the host ports a failover published for it.
   */
  async adapted(
    machineRef: string,
    atCapture: string[],
    { adaptations, addressesLost: lost, published = [] }: RestoredMachine,
  ): Promise<void> {
    if (atCapture.length > 0)
      await this.step(
        `Adapted at capture: ${atCapture.join('; ')}`,
        machineRef,
      );
    if (adaptations.length > 0)
      await this.step(`Adapted: ${adaptations.join('; ')}`, machineRef);
    // A failover's: clients reach the machine by them on the recovery host, as they did production.
    if (published.length > 0)
      await this.step(
        `Published host port${published.length === 1 ? '' : 's'} ${published.join(', ')} on the recovery host, as production did`,
        machineRef,
      );
    if (lost.length > 0) {
      this.addressAdaptations.set(machineRef, lost);
      // A warning: the machine may still boot, but whatever reaches it by address may not.
      await this.step(
        `Adapted, without production's addresses: ${lost.join('; ')}`,
        machineRef,
        'warning',
      );
    }
  }

  /**
   * Why the lab may not behave like production for this machine: its own lost addresses, else
   * those of the machines it waits for in the plan (what it reaches); another's say nothing of it.
   */
  lostAddresses(machineRef: string): string[] {
    const own = this.addressAdaptations.get(machineRef);
    if (own) return own;
    const awaited =
      this.run.plan.machines.find(m => m.machineRef === machineRef)?.waitsFor ??
      [];
    return awaited.flatMap(other =>
      (this.addressAdaptations.get(other) ?? []).map(a => `${other}: ${a}`),
    );
  }

  /**
   * Settles the machines a run ending with `status` leaves behind: one it never started is
   * skipped, one still in progress ends as the run did (unfinishedMachinePhase) with `reason`.
   */
  async settleUnfinished(status: RunStatus, reason: string): Promise<void> {
    const at = now();
    const phase = unfinishedMachinePhase(status);
    for (const m of this.state.values()) {
      if (m.phase === 'waiting')
        await this.machine(m.machineRef, 'skipped', {});
      else if (!isFinalMachinePhase(m.phase)) {
        await this.machine(m.machineRef, phase, {
          finishedAt: at,
          message: reason,
        });
      }
    }
  }
}
