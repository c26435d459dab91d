import type { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type {
  BootPlanMachine,
  ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import {
  ANNOTATION_JOB,
  ANNOTATION_PROBES,
  describeProbe,
  exitedWithZero,
  formatUtcTime,
  jobAnnotationHint,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  HypervisorHost,
  LabHandle,
  MachineHandle,
  MachineState,
  ProbeResult,
  RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import {
  hostCondition,
  isCaptureDamaged,
  isEngineError,
} from '@backstage-recovery/plugin-recovery-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StoredCapture } from '../database/CaptureStore';
import { isConsoleTail } from './consoleTails';
import { unansweredForMs, withDeadline } from './deadline';
import {
  hostConditionFailure,
  HostUnreachable,
  hostUnreachable,
  isHostUnreachable,
  MachineFailed,
  MachineFailure,
  messageOf,
  RunSuperseded,
} from './errors';
import { progressSteps } from './progressSteps';
import { now, RunRecorder } from './RunRecorder';
import type { RunServiceOptions } from './RunService';

/** How often a machine's verification may say that a probe's answer changed (probeProgress). */
const PROBE_PROGRESS_MS = 5_000;
/** How long before it says an unchanged answer again, with the attempts it took. */
const PROBE_STILL_MS = 60_000;
/**
 * How many such lines a machine's verification says at most: many slow machines would otherwise
 * grow a run's timeline by a line a minute each until their timeouts. The last one says so.
 */
export const PROBE_PROGRESS_LINES = 10;
/**
 * How long apart a machine's failure asks the host twice whether it still answers, where its
 * engine answered the machine's step with an error: an engine shutting down or restarting
 * (`systemctl restart docker`) fails one of the two, a machine's own fault neither.
 */
export const ENGINE_GRACE_MS = 3_000;
/** How long each of those asks may take: an engine that hangs does not answer either. */
const ENGINE_ASK_MS = 5_000;

/** A stored capture as the host restores it. */
export const restorable = (capture: StoredCapture): RestorableCapture => ({
  captureId: capture.id,
  machineRef: capture.machineRef,
  imageId: capture.imageId,
  checksum: capture.checksum,
  artifact: capture.artifact,
  runtime: capture.runtime,
  sizeBytes: capture.sizeBytes,
});

/** A run whose lab is built, as booting its machines sees it. */
export interface BootingRun {
  recorder: RunRecorder;
  host: HypervisorHost;
  lab: LabHandle;
  /** The plan's machines, with their probes. */
  planned: Map<string, BootPlanMachine>;
  /** The capture each machine restores, chosen at admission. */
  captures: Map<string, StoredCapture>;
  /** Aborted once the run is no longer driven here (interrupted, or claimed elsewhere). */
  signal: AbortSignal;
  /** Removes what a step creates after its deadline (see withDeadline). */
  removeLate: () => Promise<unknown>;
  /** Whether this replica still drives the run: false once another replica claimed it. */
  stillDriven: () => Promise<boolean>;
  /** Marks a capture its restore found damaged (CaptureDamagedError), so that no run restores it again. */
  captureDamaged?: (capture: StoredCapture, reason: string) => Promise<unknown>;
}

/** The run's timings a lab's boot goes by, for a run and for a supervised failover alike. */
export type LabBootOptions = Pick<
  RunServiceOptions,
  | 'machineReadyTimeoutMs'
  | 'probeIntervalMs'
  | 'stepTimeoutMs'
  | 'minReadyMs'
  | 'engineGraceMs'
>;

/**
 * Boots a run's machines in its lab, a wave at a time: each restored from its capture, started
 * and gated by readiness (it runs, its health check passes, every probe answers) within its ready
 * timeout; then, once the last one has been ready for minReadyMs, the final check looks at every
 * machine again. A machine that fails is recorded failed, with its console tail.
 */
export class LabBoot {
  private readonly booted = new Map<string, MachineHandle>();
  /**
   * Per machine, the last probe answer its verification said, when, and how many lines it said
   * (probeProgress).
   */
  private readonly probing = new Map<
    string,
    { answer: string; at: number; lines: number }
  >();

  /** How long an engine error's grace is (engineGraceMs, else ENGINE_GRACE_MS): see hostFailure. */
  private readonly engineGraceMs: number;

  constructor(
    private readonly run: BootingRun,
    private readonly options: LabBootOptions,
    /** The run's logger (a child with its runId). */
    private readonly logger: LoggerService,
  ) {
    this.engineGraceMs = options.engineGraceMs ?? ENGINE_GRACE_MS;
  }

  /** Whether a machine of the plan is a job (ANNOTATION_JOB): ready once it completed. */
  isJob(machineRef: string): boolean {
    return this.run.planned.get(machineRef)?.job === true;
  }

  /** Boots the waves in boot order, each once the one before it is ready. */
  async waves(waves: string[][]): Promise<void> {
    const { recorder, signal } = this.run;
    for (const [index, wave] of waves.entries()) {
      signal.throwIfAborted();
      await recorder.step(`Wave ${index + 1}: booting ${wave.join(', ')}`);
      await this.wave(wave);
    }
  }

  /**
   * Boots the machines of one wave side by side; throws the first one's failure. That failure
   * fails the run: the others' waits and probes stop then, not at their ready timeouts, which
   * the run's end (its RTO, its lab's teardown) would otherwise wait out.
   */
  async wave(machineRefs: string[]): Promise<void> {
    // Those of earlier waves, not the ones of this wave that get ready first: the same every run.
    const booted = [...this.booted.values()];
    const failed = new AbortController();
    const signal = AbortSignal.any([this.run.signal, failed.signal]);
    let first: { reason: unknown } | undefined;
    await Promise.allSettled(
      machineRefs.map(async machineRef => {
        try {
          this.booted.set(
            machineRef,
            await this.machine(machineRef, booted, signal),
          );
        } catch (error) {
          // Recorded failed first (failed()): the others, stopped, are left to the run to settle.
          first ??= { reason: error };
          failed.abort();
        }
      }),
    );
    if (first) throw first.reason;
  }

  /**
   * Waits, before the final check, until the last machine to get ready has been ready for
   * minReadyMs: a machine that passes its probes and exits moments later is not recovered.
   */
  async holdReady(): Promise<void> {
    const { recorder, signal } = this.run;
    // A job done stays done: only what must keep running is held.
    const lastReady = Math.max(
      ...recorder
        .machines()
        .filter(m => !this.isJob(m.machineRef))
        .map(m => Date.parse(m.readyAt!)),
    );
    const waitMs = lastReady + this.options.minReadyMs - Date.now();
    if (!(waitMs > 0)) return;
    await recorder.step(
      `Final check in ${Number((waitMs / 1000).toFixed(1))} s, once every machine has been ready for ${this.options.minReadyMs / 1000} s (recovery.runs.minReadyTime)`,
    );
    await sleep(waitMs, undefined, { signal });
  }

  /**
   * Checks every machine again before the run may succeed: each was verified once, when it got
   * ready, and one of an early wave may have stopped since (its dependents may even have passed
   * their probes against it while it still answered). One look each, no retries: the machine
   * still runs, its health check does not report unhealthy and every probe passes. Each call
   * gets the step deadline. The first machine in boot order that fell over fails the run; every
   * one that did is recorded failed, with its console tail. A job is not looked at: it was ready
   * once it completed, and is stopped since.
   */
  async finalCheck(): Promise<void> {
    const results = await Promise.allSettled(
      this.run.recorder.machines().map(async ({ machineRef }) => {
        if (this.isJob(machineRef)) return;
        const handle = this.booted.get(machineRef)!;
        try {
          await this.recheck(handle, this.run.planned.get(machineRef)!);
        } catch (error) {
          throw await this.failed(machineRef, handle, error, true);
        }
      }),
    );
    const failed = results.find(r => r.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
  }

  /**
   * Starts again a machine of a kept failover that its host stopped (the engine restarted), and
   * gates it as its boot did: it runs, its health check passes, every probe answers, within its
   * ready timeout. Throws a MachineFailure saying why it is not ready. `running`: it still runs,
   * in the network namespace of a machine that stopped, and is stopped and started again
   * (HypervisorHost.restartMachine) to join that one's anew. A host that stopped answering meanwhile
   * (hostFailure) throws a HostUnreachable instead: its failure, not the machine's.
   */
  async restart(
    machine: MachineHandle,
    { running = false }: { running?: boolean } = {},
  ): Promise<void> {
    const { host, signal, removeLate } = this.run;
    const deadline = Date.now() + this.options.machineReadyTimeoutMs;
    try {
      await withDeadline(
        () =>
          running && host.restartMachine
            ? host.restartMachine(machine)
            : host.startMachine(machine),
        this.options.machineReadyTimeoutMs,
        'start',
        signal,
        removeLate,
      );
      await this.verify(
        machine,
        this.run.planned.get(machine.machineRef)!,
        deadline,
      );
    } catch (error) {
      throw (
        (await this.hostFailure(
          error,
          `${machine.machineRef} was started again`,
          signal,
        )) ?? error
      );
    }
  }

  /** Restores, starts and verifies one machine; records each phase and what it took. */
  private async machine(
    machineRef: string,
    booted: MachineHandle[],
    /** The run's, or its wave's: aborted once another machine of the wave failed. */
    signal: AbortSignal,
  ): Promise<MachineHandle> {
    const { recorder, host, lab, removeLate } = this.run;
    const planned = this.run.planned.get(machineRef)!;
    const capture = this.run.captures.get(machineRef)!;
    let handle: MachineHandle | undefined;
    try {
      signal.throwIfAborted();
      await recorder.machine(machineRef, 'restoring', {
        restoreStartedAt: now(),
      });
      // When it was taken: what the machine comes back as (the CLI's watch shows no machine table),
      // written as the portal and the CLI write a time.
      await recorder.step(
        `Restoring capture ${capture.id} of ${formatUtcTime(capture.createdAt)}`,
        machineRef,
      );
      // A large capture takes a while to read back and put in place: its lines say how far it is.
      const progress = progressSteps(recorder, machineRef, error =>
        this.logger
          .child({ machineRef })
          .warn("Could not record the restore's progress", toError(error)),
      );
      const restored = await withDeadline(
        () =>
          host.restoreMachine(lab, restorable(capture), {
            progress: progress.listener,
            runCaptures: [...this.run.captures.values()].map(restorable),
            booted,
          }),
        this.options.stepTimeoutMs,
        'restore',
        signal,
        removeLate,
      ).finally(progress.done);
      handle = restored.machine;
      await recorder.machine(machineRef, 'starting', { restoredAt: now() });
      await recorder.adapted(machineRef, capture.adaptations, restored);
      // One budget from start to passing its probes: what the start takes, verifying has not.
      const deadline = Date.now() + this.options.machineReadyTimeoutMs;
      await withDeadline(
        () => host.startMachine(restored.machine),
        this.options.machineReadyTimeoutMs,
        'start',
        signal,
        removeLate,
      );
      signal.throwIfAborted();
      await recorder.machine(machineRef, 'verifying', { startedAt: now() });
      const healthChecked = planned.job
        ? await this.completed(handle, deadline, signal)
        : await this.verify(handle, planned, deadline, signal);
      await recorder.machine(machineRef, 'ready', {
        readyAt: now(),
        finishedAt: now(),
      });
      const m = recorder.machines().find(x => x.machineRef === machineRef)!;
      const after = seconds(m.startedAt, m.readyAt);
      await recorder.step(
        planned.job
          ? `Ready: a job (${ANNOTATION_JOB}), restored in ${seconds(m.restoreStartedAt, m.restoredAt)} s, completed with exit code 0 ${after} s after start${planned.probes.length > 0 ? `; its probes (${planned.probes.map(p => probeText(p, planned)).join(', ')}) were not checked: a job done serves nothing` : ''}`
          : `Ready: restored in ${seconds(m.restoreStartedAt, m.restoredAt)} s, verified ${after} s after start`,
        machineRef,
      );
      if (!planned.job && !healthChecked && planned.probes.length === 0) {
        await recorder.step(
          `Ready only in that it runs: it has no health check and neither it nor its services have probes, so nothing showed them answering (annotate them, or the machine, with ${ANNOTATION_PROBES})`,
          machineRef,
          'warning',
        );
      }
      return handle;
    } catch (error) {
      if (isCaptureDamaged(error) && !signal.aborted)
        await this.run
          .captureDamaged?.(capture, messageOf(error))
          .catch(() => {});
      throw await this.failed(machineRef, handle, error, false, signal);
    }
  }

  /**
   * Records why a machine failed, with its console tail, and returns the run's failure naming it.
   * `afterReady`: the final check found it fell over after it was ready.
   */
  private async failed(
    machineRef: string,
    handle: MachineHandle | undefined,
    error: unknown,
    afterReady = false,
    signal = this.run.signal,
  ): Promise<Error> {
    const { recorder, host } = this.run;
    // Interrupted, not failed: the run settles the machine when it finishes.
    if (signal.aborted) return error as Error;
    // Claimed by another replica, which tears the lab down only after its claim: a machine
    // that vanished with it is no failure to record. Checked after the failure was seen, so
    // one seen while the run was still ours is real.
    if (!(await this.run.stillDriven()))
      return new RunSuperseded(`Run ${recorder.runId} was claimed elsewhere`);
    // The host ran out of disk (an image it could not hold) or memory, or something of it holds a
    // port the machine publishes: the run failed at the host too, not at this machine, which a host
    // with room or the port free, or a smaller plan's run, would boot.
    const condition = hostCondition(error);
    if (condition) {
      const doing = doingTo(machineRef, recorder, afterReady);
      await recorder.machine(
        machineRef,
        'failed',
        { finishedAt: now(), message: messageOf(error) },
        afterReady,
      );
      return hostConditionFailure(host, condition, machineRef, doing, error);
    }
    // The host stopped answering: the run failed at the host, not at this machine, which readiness
    // and owners' notices would otherwise blame.
    const atHost = await this.hostFailure(
      error,
      `${machineRef} was ${afterReady ? 'checked' : 'booting'}`,
      signal,
    );
    if (signal.aborted) return error as Error;
    if (atHost) {
      await recorder.machine(
        machineRef,
        'failed',
        { finishedAt: now(), message: messageOf(error) },
        afterReady,
      );
      // Said once, as the run's failure.
      return atHost;
    }
    // The run records the message; where it came from (a provider, or a bug) only the stack says.
    if (!(error instanceof MachineFailure)) {
      this.logger.child({ machineRef }).warn('Machine failed', toError(error));
    }
    const failure =
      error instanceof MachineFailure
        ? error
        : new MachineFailure(messageOf(error));
    // A lab without production's addresses explains many failures (a dependency's address
    // the machine was configured with no longer answers): say so with the failure.
    const lost = recorder.lostAddresses(machineRef);
    const reason =
      lost.length > 0
        ? `${failure.message} (the lab could not use production's addresses: ${lost.join('; ')})`
        : failure.message;
    const message = `${machineRef} failed: ${reason}`;
    await recorder.machine(
      machineRef,
      'failed',
      { finishedAt: now(), message: reason, probe: failure.probe },
      afterReady,
    );
    await recorder.step(message, machineRef, 'error');
    // Read after the failure is recorded: an engine that hung the machine may hang its console
    // too, and the machine is failed when it failed, not a step deadline later.
    const logTail = handle
      ? await withDeadline(
          () => host.logTail(handle, 30),
          this.options.stepTimeoutMs,
          'console tail',
          signal,
          async () => {},
        ).catch(() => undefined)
      : undefined;
    // Evidence only: a write of it that fails must not take the machine's reason from the run.
    // A blank console is none: stored, it would read as a tail withheld from some callers.
    const evidence = failureEvidence(logTail, failure.healthOutput);
    if (evidence !== undefined) {
      await recorder
        .logTail(machineRef, evidence)
        .catch(stored =>
          this.logger
            .child({ machineRef })
            .warn("Could not keep the machine's console tail", toError(stored)),
        );
    }
    return new MachineFailed(message, machineRef, failure.probe);
  }

  /**
   * The host's failure where a machine's step failed with `error` because the host stopped answering
   * (`stoppedWhile` that went on), not because of the machine; undefined where the machine is to
   * blame. The host could not be reached (its engine went away). Or its engine answered with an
   * error as it shut down or restarted (`HTTP 500: failed to update store …` from a dockerd on
   * SIGTERM): the machine is blamed only where the host still answers, now and an engine error's
   * grace later. Or the step went unanswered at least as long as that grace (a hung dockerd answers
   * nothing): asked once (a round trip where it answers), the machine is blamed only if it does.
   * Not a step given less (a probe in flight as the machine's budget ran out): it says nothing of
   * the engine.
   */
  private async hostFailure(
    error: unknown,
    stoppedWhile: string,
    signal: AbortSignal,
  ): Promise<HostUnreachable | undefined> {
    const { host } = this.run;
    if (isHostUnreachable(error))
      return hostUnreachable(host, error, stoppedWhile);
    const silence = isEngineError(error)
      ? await this.hostSilence(signal)
      : (unansweredForMs(error) ?? 0) >= this.engineGraceMs
        ? await this.hostSilence(signal, { again: false })
        : undefined;
    if (silence === undefined) return undefined;
    const failure = hostUnreachable(host, error, stoppedWhile);
    failure.message += `; asked again, it did not answer: ${silence}`;
    return failure;
  }

  /**
   * Whether the host still answers after its engine failed a machine's step: asked what it holds of
   * the run now and again an engine error's grace later (`again: false`: once, after a step it never
   * answered, where a hung engine does not answer this either). Undefined where it answered each
   * time, else what it said (or that it did not answer in time) when it did not.
   */
  private async hostSilence(
    signal: AbortSignal,
    { again = true }: { again?: boolean } = {},
  ): Promise<string | undefined> {
    const { host, recorder } = this.run;
    const ask = () =>
      withDeadline(
        () => host.listLabResources(recorder.runId),
        ENGINE_ASK_MS,
        `asking hypervisor host ${host.id} what it holds of the run`,
        signal,
        async () => {},
      );
    try {
      await ask();
      if (!again) return undefined;
      await sleep(this.engineGraceMs, undefined, { signal });
      await ask();
      return undefined;
    } catch (error) {
      // Interrupted meanwhile: the run settles the machine when it finishes.
      return signal.aborted ? undefined : messageOf(error);
    }
  }

  /**
   * Gates a job's readiness (ANNOTATION_JOB): it exits with code 0 within its ready timeout, counted
   * from its start. Exiting otherwise fails it naming the code; its console tail is kept (failed).
   * Its health check and probes are not looked at: it serves nothing once done. Returns false: no
   * health check gated it.
   */
  private async completed(
    machine: MachineHandle,
    deadline: number,
    signal: AbortSignal,
  ): Promise<false> {
    const { host, removeLate } = this.run;
    const timeoutText = `${this.options.machineReadyTimeoutMs / 1000} s`;
    const notDone = () =>
      new MachineFailure(
        `a job (${ANNOTATION_JOB}) that did not complete within ${timeoutText} of its start: it still runs (recovery.runs.machineReadyTimeout)`,
      );
    for (;;) {
      const state = await withDeadline(
        () => host.inspectMachine(machine),
        Math.max(0, deadline - Date.now()),
        notDone,
        signal,
        removeLate,
      );
      if (!state.running) {
        if (state.exitCode === 0) return false;
        throw new MachineFailure(
          `a job (${ANNOTATION_JOB}) that exited with code ${state.exitCode ?? 'unknown'}, not 0`,
        );
      }
      if (Date.now() > deadline) throw notDone();
      await sleep(this.options.probeIntervalMs, undefined, { signal });
    }
  }

  /**
   * What a machine that must keep running and stopped says: its exit code, and where it exited
   * with code 0 as its capture shows it did in production under a restart policy that lets it stay
   * stopped (`no`, `on-failure`), that it may be a job the catalog does not say is one. Only a
   * hint: a service stopped cleanly by an operator is captured just so.
   */
  private stopped(
    machine: MachineHandle,
    state: MachineState,
    when = '',
  ): string {
    const said = `stopped with exit code ${state.exitCode ?? 'unknown'}${when}`;
    if (state.exitCode !== 0) return said;
    const capture = this.run.captures.get(machine.machineRef);
    const policy = capture?.runtime.restartPolicy?.name ?? 'no';
    if (
      !capture ||
      !exitedWithZero(capture.machineState) ||
      !['no', 'on-failure'].includes(policy)
    )
      return said;
    return `${said}, as its capture of ${capture.createdAt} shows it had in production (restart policy ${policy}): ${jobAnnotationHint(machine.machineRef)}`;
  }

  /**
   * Gates readiness: the machine runs, its health check passes, then every probe answers.
   * Each call to the engine gets what is left until `deadline` (its ready timeout, counted from
   * its start), so a hung one fails the machine at the deadline; a late answer still says why it
   * had not passed before. Returns whether the machine has a health check.
   */
  private async verify(
    machine: MachineHandle,
    planned: BootPlanMachine,
    deadline: number,
    signal = this.run.signal,
  ): Promise<boolean> {
    const { host, lab, removeLate } = this.run;
    const timeoutText = `${this.options.machineReadyTimeoutMs / 1000} s`;
    const bounded = <T>(
      call: () => Promise<T>,
      timedOut: () => MachineFailure,
    ) =>
      withDeadline(
        call,
        Math.max(0, deadline - Date.now()),
        timedOut,
        signal,
        removeLate,
      );
    let last: MachineState | undefined;
    // `timedOut`: what failed when the deadline falls during the inspect (a probe still failing).
    const assertAlive = async (timedOut?: () => MachineFailure) => {
      const state = await bounded(
        () => host.inspectMachine(machine),
        timedOut ??
          (() =>
            last?.health === 'starting'
              ? healthFailure(
                  `health check still starting after ${timeoutText}`,
                  last,
                )
              : new MachineFailure(
                  `inspect did not finish within ${timeoutText}`,
                )),
      );
      last = state;
      if (!state.running) {
        throw new MachineFailure(this.stopped(machine, state));
      }
      if (state.health === 'unhealthy') {
        throw healthFailure('its health check reports unhealthy', state);
      }
      return state;
    };
    const wait = () =>
      sleep(this.options.probeIntervalMs, undefined, { signal });

    while ((await assertAlive()).health === 'starting') {
      if (Date.now() > deadline) {
        throw healthFailure(
          `health check still starting after ${timeoutText}`,
          last,
        );
      }
      await wait();
    }
    const healthChecked = last?.health !== undefined;
    for (const probe of planned.probes) {
      const name = describeProbe(probe);
      const said = probeText(probe, planned);
      let answer: ProbeResult | undefined;
      for (let attempt = 1; ; attempt++) {
        const previous = answer;
        const result: ProbeResult = await bounded(
          () => host.probe(lab, machine, probe),
          () =>
            new MachineFailure(
              previous
                ? `probe ${said} did not pass within ${timeoutText}: ${previous.message}`
                : `probe ${said} did not finish within ${timeoutText}`,
              name,
            ),
        );
        answer = result;
        if (result.ok) break;
        // At the deadline the probe is the cause, not the inspect that had no time left.
        const probeFailed = () =>
          new MachineFailure(
            `probe ${said} did not pass within ${timeoutText}: ${result.message}`,
            name,
          );
        if (Date.now() > deadline) throw probeFailed();
        await this.probeProgress(machine.machineRef, said, attempt, result);
        await assertAlive(probeFailed);
        await wait();
      }
    }
    return healthChecked;
  }

  /**
   * Says in the timeline what a machine's probe answers while it does not pass yet, so a watcher
   * (`recovery watch`, the portal) sees what the machine waits on, not only that it verifies: a step
   * as the answer changes, at most one a machine every PROBE_PROGRESS_MS, and the same answer again
   * once PROBE_STILL_MS have passed. The timeline is append-only: each such step is a new line, so a
   * machine says PROBE_PROGRESS_LINES at most, the last saying that further attempts go unlisted.
   */
  private async probeProgress(
    machineRef: string,
    probe: string,
    attempt: number,
    { message }: ProbeResult,
  ): Promise<void> {
    const answer = `probe ${probe} not passing yet: ${message}`;
    const last = this.probing.get(machineRef);
    const lines = last?.lines ?? 0;
    const since = last ? Date.now() - last.at : Infinity;
    if (
      lines >= PROBE_PROGRESS_LINES ||
      since < (last?.answer === answer ? PROBE_STILL_MS : PROBE_PROGRESS_MS)
    )
      return;
    this.probing.set(machineRef, { answer, at: Date.now(), lines: lines + 1 });
    const unlisted =
      lines + 1 === PROBE_PROGRESS_LINES
        ? '; further attempts are not listed until it passes or times out'
        : '';
    // Only what a watcher sees: a write that fails does not fail the machine.
    await this.run.recorder
      .step(
        `probe ${probe} not passing yet (attempt ${attempt}): ${message}${unlisted}`,
        machineRef,
      )
      .catch(error =>
        this.logger
          .child({ machineRef })
          .warn("Could not record a probe's answer", toError(error)),
      );
  }

  /** One look at a ready machine for the final check; throws what no longer holds. */
  private async recheck(
    machine: MachineHandle,
    planned: BootPlanMachine,
  ): Promise<void> {
    const { host, lab, signal, removeLate } = this.run;
    const step = this.options.stepTimeoutMs;
    const timeoutText = `${step / 1000} s`;
    // Nothing to remove after a late inspect; a probe may make the lab's probe container again.
    const state = await withDeadline(
      () => host.inspectMachine(machine),
      step,
      () =>
        new MachineFailure(
          `inspect did not finish within ${timeoutText} after it was ready`,
        ),
      signal,
      async () => {},
    );
    if (!state.running) {
      throw new MachineFailure(
        this.stopped(machine, state, ' after it was ready'),
      );
    }
    if (state.health === 'unhealthy') {
      throw healthFailure(
        'its health check reports unhealthy after it was ready',
        state,
      );
    }
    for (const probe of planned.probes) {
      const name = describeProbe(probe);
      const said = probeText(probe, planned);
      const result = await withDeadline(
        () => host.probe(lab, machine, probe),
        step,
        () =>
          new MachineFailure(
            `probe ${said} did not finish within ${timeoutText} after it was ready`,
            name,
          ),
        signal,
        removeLate,
      );
      if (!result.ok)
        throw new MachineFailure(
          `probe ${said} stopped passing after it was ready: ${result.message}`,
          name,
        );
    }
  }
}

/** What the run was doing to a machine when it failed, by the phase it was in: `restoring …`. */
function doingTo(
  machineRef: string,
  recorder: RunRecorder,
  afterReady: boolean,
): string {
  if (afterReady) return `checking ${machineRef} after it was ready`;
  const phase = recorder
    .machines()
    .find(m => m.machineRef === machineRef)?.phase;
  return phase === 'restoring' || phase === 'starting' || phase === 'verifying'
    ? `${phase} ${machineRef}`
    : `booting ${machineRef}`;
}

const seconds = (from?: string, to?: string) =>
  from && to ? (Date.parse(to) - Date.parse(from)) / 1000 : '?';

/**
 * A probe as a failure names it: with the service it is of, on a machine that may run several
 * (`tcp:8082 of component:default/orders`). The machine's own, and those of plans stored before
 * probes said whose they are, by port and path alone.
 */
function probeText(probe: ProbeSpec, planned: BootPlanMachine): string {
  const name = describeProbe(probe);
  return probe.of && probe.of !== planned.machineRef
    ? `${name} of ${probe.of}`
    : name;
}

/**
 * A failure of the machine's health check. What its last failed check said (the likely cause) may
 * carry secrets, as its console may: kept with its console tail, read with recovery.run.logs.read
 * on the machine, never in the message every caller who sees the run reads.
 */
function healthFailure(
  message: string,
  state: MachineState | undefined,
): MachineFailure {
  return state?.healthOutput
    ? new MachineFailure(
        `${message} (what its last check said is kept with its console tail)`,
        undefined,
        state.healthOutput,
      )
    : new MachineFailure(message);
}

/** A failed machine's evidence: its console's last lines, then what its last failed health check said. */
export function failureEvidence(
  logTail: string | undefined,
  healthOutput: string | undefined,
): string | undefined {
  const tail = isConsoleTail(logTail) ? logTail.replace(/\n$/, '') : '';
  if (!healthOutput) return tail || undefined;
  return `${tail ? `${tail}\n` : ''}${HEALTH_OUTPUT_LINE}${healthOutput}`;
}

/** How a failed machine's evidence introduces its last failed health check's output. */
export const HEALTH_OUTPUT_LINE = '[last failed health check] ';
