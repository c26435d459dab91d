import type Docker from 'dockerode';
import { mkdir, rm } from 'node:fs/promises';
import type { LoggerService } from '@backstage/backend-plugin-api';
import type { MetricsServiceHistogram } from '@backstage/backend-plugin-api/alpha';
import { NotFoundError, ServiceUnavailableError } from '@backstage/errors';
import type {
  CaptureSource,
  CapturedMachine,
  CapturedVolume,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import {
  CaptureStoppedError,
  engineError,
  MAX_TIMER_MS,
  TransferProgressLines,
} from '@backstage-recovery/plugin-recovery-node';
import {
  adaptInspectedContainer,
  dockerTag,
  networkIdentity,
  type NetworkIdentity,
} from './adapt';
import { captureComment, captureImageRef } from './captureNames';
import {
  CaptureNotes,
  NOTE_HEARTBEAT_MS,
  PAUSED_NOTE_HEARTBEAT_MS,
  UNPAUSE_RETRY_FIRST_MS,
  UNPAUSE_RETRY_MAX_MS,
  type CaptureNote,
  type HeldNote,
} from './captureNotes';
import { CapturePause, refusedAsRestarting } from './capturePause';
import { CaptureSweeps } from './captureSweeps';
import { EngineClock } from './engineClock';
import { counted, isStatus } from './lib/dockerStreams';
import { inspectNetwork, saveImage, unlessAborted } from './lib/engineCalls';
import { removeImage } from './lib/engineImages';
import {
  answerWithin,
  engineFailure,
  engineWords,
  isEngineUnreachable,
  onEngine,
} from './lib/engineErrors';
import {
  removeWrittenLayers,
  STORE_DIRECTORY_MODE,
  writeThinArchive,
} from './lib/layerStore';
import { refuseUnlabelled } from './machineLabel';
import { memoryInUse } from './machineMemory';
import { machineStateOf } from './machineState';
import { NoteHeartbeat } from './noteHeartbeat';
import { capturePauseWarning, pauseWords } from './pauseWarning';
import { quiesce, QUIESCE_TIMEOUT_MS } from './captureQuiesce';
import { isStoreError, storeFailure } from './storeFailures';
import { exportVolumes, type ExportedVolumes } from './volumeArchives';

/** Longest a capture keeps production paused unless configured (recovery.docker.maxCapturePause). */
const DEFAULT_MAX_PAUSE_MS = 5 * 60_000;

/**
 * How long past the pause limit (and the wait for the engine's answer to the unpause) a capture's
 * pause guard unpauses the machine itself: the backend's own unpause comes first where it can.
 */
const GUARD_MARGIN_MS = 5_000;

/** Longest the backend's shutdown waits for the captures it stops to unpause and clean up. */
const STOP_WAIT_MS = 10_000;

/**
 * Longest a capture waits for the engine to answer its unpause (and the calls that clean up after
 * it stopped): within the grace its note gets past the pause limit (NOTE_GRACE_MS), so that on an
 * engine gone silent the capture ends saying production stays paused, and its note is tried again,
 * rather than wait with it for good.
 */
const ANSWER_WAIT_MS = 10_000;

type CaptureOptions = Parameters<CaptureSource['capture']>[1];

/** The machine's container as a capture finds it, before it touches it. */
interface FoundMachine {
  container: Docker.Container;
  info: Docker.ContainerInspectInfo;
  /** When `info` was inspected, by the engine's clock (EngineClock), against which its times read. */
  inspectedAt: number;
  networks: Record<string, NetworkIdentity>;
  /** Asked at once, taken at the end: the engine answers at its next collection. */
  memoryInUse: Promise<number | undefined>;
  /**
   * Running, on an engine whose captures pause (a machine paused already included); not while it
   * restarts (a crash loop), which Docker reports as running though no process is there to freeze.
   */
  wantsPause: boolean;
  /** Why its quiesce command (QUIESCE_LABEL) did not run through, for the capture to note. */
  quiesceFailure?: string;
}

/** One capture under way: what its steps share, and what a failure must undo. */
interface CaptureUnderWay extends FoundMachine {
  machine: MachineLocator;
  options: CaptureOptions;
  /** Where it is: said by its errors, and by the pause limit's. */
  step: string;
  /** Its image's tag, and its files in the store: `<base>.tar`, `<base>.volume-<n>.tar`. */
  ref: string;
  dir: string;
  base: string;
  artifact: string;
  /** Pauses the machine itself (running, and not paused already). */
  pauses: boolean;
  pause: CapturePause;
  /** What each part of it stops at: its caller's signal (its deadline), the backend's shutdown. */
  whilePaused: AbortSignal;
  whileCommitting: AbortSignal;
  whileSaving: AbortSignal;
  notePath: string;
  note: CaptureNote;
  /** As the note reads once the machine is unpaused: no longer refreshed every second. */
  unpausedNote: CaptureNote;
  noteTaken: boolean;
  heartbeat: NoteHeartbeat;
  /** Every file it wrote: a failure (store directory included) must leave neither file nor tag. */
  written: string[];
  /** The layers it wrote into the layer store (not those it found there): gone with it if it fails. */
  layersWritten: string[];
  committed: boolean;
  /** A commit it stopped waiting for (its deadline, a failed unpause), which the engine goes on with. */
  commitLeft?: Promise<unknown>;
  commitAnswer: AbortController;
  imageId?: string;
  exported?: ExportedVolumes;
  /** Its copies' progress lines, for its caller. */
  progress: TransferProgressLines;
}

/**
 * Captures primary machines running as containers on one Docker engine: paused (for
 * consistency), `docker commit` tagged per capture and each volume's content archived
 * (`docker cp`), then unpaused and `docker save` streamed into the capture store as
 * `<captureId>.tar`, the volumes as `<captureId>.volume-<n>.tar`; each checksummed while
 * streaming, written atomically. A note in the store holds the machine for the whole capture.
 */
export class DockerCaptureSource implements CaptureSource {
  /** Aborted when the backend shuts down: captures under way stop, and no new one starts. */
  private readonly stopping = new AbortController();
  /** Captures under way, until they have settled (unpaused, and cleaned up after a failure). */
  private readonly capturesUnderWay = new Set<Promise<unknown>>();
  /** Unpauses the machine of each capture that has it paused now. */
  private readonly pausedNow = new Set<() => Promise<void>>();
  /** The capture notes, by which a machine has one capture at a time and a stopped one is resumed. */
  private readonly notes: CaptureNotes;
  /** What captures leave once no note holds them: unrecorded ones, discards, commits left. */
  private readonly sweeps: CaptureSweeps;
  /** The engine's clock, against which a container's start is judged recent (machineStateOf). */
  private readonly clock: EngineClock;

  constructor(
    readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: {
      storeDirectory: string;
      pause?: boolean;
      maxPauseMs?: number;
      logger?: LoggerService;
      /**
       * Capture only containers labelled as the machine they are captured for (MACHINE_LABEL):
       * the catalog alone cannot then have a production container paused and copied.
       */
      requireMachineLabel?: boolean;
      /** Longest a capture waits for the engine to answer its unpause (ANSWER_WAIT_MS unless said). */
      answerWaitMs?: number;
      /** Longest each engine call of a sweep waits (SWEEP_WAIT_MS unless said). */
      sweepWaitMs?: number;
      /** How often a capture refreshes its note while it has its machine paused (PAUSED_NOTE_HEARTBEAT_MS unless said). */
      pausedNoteHeartbeatMs?: number;
      /** How often a capture's progress lines may come (PROGRESS_LINE_INTERVAL_MS unless said). */
      progressIntervalMs?: number;
      /** Longest a machine's quiesce command may run (QUIESCE_TIMEOUT_MS unless said). */
      quiesceTimeoutMs?: number;
      /**
       * How the engine is reached (the options `docker` was made with). Where given, a capture
       * that pauses its machine first starts a pause guard (pauseGuard.ts), which unpauses the
       * machine should the backend die while it is paused (its note only does at the next start),
       * or keep it paused past the limit.
       */
      engineConnection?: Docker.DockerOptions;
      /** Records how long each capture kept its machine paused, in seconds (recovery.captures.pause). */
      pauseSeconds?: MetricsServiceHistogram;
    },
  ) {
    this.notes = new CaptureNotes(
      engineId,
      docker,
      options,
      this.maxPauseMs,
      this.stopping.signal,
    );
    this.sweeps = new CaptureSweeps(
      engineId,
      docker,
      options,
      this.notes,
      this.stopping.signal,
    );
    this.clock = new EngineClock(engineId, docker, options.logger);
  }

  capture(
    machine: MachineLocator,
    options: CaptureOptions,
  ): Promise<CapturedMachine> {
    const capture = onEngine(this.engineId, () =>
      this.captureOn(machine, options),
    );
    this.capturesUnderWay.add(capture);
    const settled = () => {
      this.capturesUnderWay.delete(capture);
    };
    capture.then(settled, settled);
    return capture;
  }

  /**
   * Stops the captures under way as the backend shuts down: a machine one of them paused is
   * unpaused at once (as at the pause limit), the copies stop and what they wrote is removed.
   * Without it, a backend stopped mid-capture leaves production paused until its next start.
   * Waits for that at most `waitMs`: a capture that has not settled by then (an unreachable
   * engine) keeps its note, by which the next start unpauses its machine and removes its files.
   */
  async stopCaptures(waitMs = STOP_WAIT_MS): Promise<void> {
    this.stopping.abort();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([
        ...[...this.pausedNow].map(unpause => unpause()),
        ...this.capturesUnderWay,
      ]),
      new Promise(resolve => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /** Resumes the captures a stopped backend left (CaptureNotes.resumeInterruptedCaptures): run at start-up; returns the machines unpaused now. */
  resumeInterruptedCaptures(): Promise<string[]> {
    return this.notes.resumeInterruptedCaptures();
  }

  removeUnrecorded(
    recorded: (machineRefs: string[]) => Promise<string[]>,
    machine?: MachineLocator,
  ): Promise<string[]> {
    return this.sweeps.removeUnrecorded(recorded, machine);
  }

  discard(capture: {
    captureId: string;
    artifact: string;
    volumes?: CapturedVolume[];
  }): Promise<void> {
    return this.sweeps.discard(capture);
  }

  /**
   * One capture, step by step: look at the machine, take its note, arm its guard, pause it, commit
   * its image and export its volumes, unpause it, save the image into the store, record it, and
   * let go of the note. A failure undoes what it made and says what it left of production.
   */
  private async captureOn(
    machine: MachineLocator,
    options: CaptureOptions,
  ): Promise<CapturedMachine> {
    const started = Date.now();
    const found = await this.lookAt(machine, options);
    // Before its note, which says when the pause began: the command may take its whole timeout.
    found.quiesceFailure = await quiesce(
      this.docker,
      found.container,
      found.info,
      this.options.quiesceTimeoutMs ?? QUIESCE_TIMEOUT_MS,
      options.signal,
    );
    const capture = this.underWay(machine, options, found);
    let captured: CapturedMachine;
    try {
      await this.takeNote(capture);
      await this.armGuard(capture);
      await this.pauseMachine(capture);
      await this.copyWhilePaused(capture);
      captured = await this.save(capture, started);
      await this.record(capture, captured);
    } catch (e) {
      capture.pause.stopLimit();
      await this.removeWhatItMade(capture);
      await this.settleNoteAfterFailure(capture);
      throw await this.failureOf(capture, e);
    } finally {
      capture.heartbeat.stop();
      capture.pause.releaseGuard();
    }
    await this.letGoOfNote(capture);
    return captured;
  }

  /**
   * Looks at the machine's container before the capture touches it: there, labelled as the machine
   * where the engine asks it, an earlier capture's note settled, its networks' identity read.
   * Every engine call of the capture stops at its signal (its deadline): an engine whose
   * connection goes silent would otherwise hold the capture, and its note, for good.
   */
  private async lookAt(
    machine: MachineLocator,
    options: CaptureOptions,
  ): Promise<FoundMachine> {
    const { signal } = options;
    const abortSignal = signal && { abortSignal: signal };
    let step = 'inspecting its container';
    try {
      let info = await this.inspectMachine(
        machine,
        this.docker.getContainer(machine.container),
        abortSignal,
      );
      // By its id from here on: renamed under the capture (`docker rename`), a call by its name
      // would find nothing, and the unpause take it for removed and leave production paused.
      const container = this.docker.getContainer(info.Id);
      let inspectedAt = Date.now();
      // Before anything touches it: a machine entity may name any container on the engine.
      if (this.options.requireMachineLabel)
        refuseUnlabelled(
          this.engineId,
          machine,
          info.Config?.Labels ?? undefined,
        );
      signal?.throwIfAborted();
      // Asked now, taken at the end: the engine answers at its next collection, up to a second on.
      const memory = info.State?.Running
        ? memoryInUse(container, this.options.logger)
        : Promise.resolve(undefined);
      // Docker says a restarting container runs, and refuses its pause: it is committed as it is.
      const wantsPause =
        (this.options.pause ?? true) &&
        Boolean(info.State?.Running) &&
        !info.State?.Restarting;
      // Paused by a capture under way (a conflict), by one that stopped (unpaused first, then
      // captured as any machine), or by someone else (no note: left paused, captured as it is).
      step = "settling an earlier capture's note";
      if (
        wantsPause &&
        info.State?.Paused &&
        (await this.notes.settleNote(info.Id, machine.machineRef, signal))
      ) {
        info = await container.inspect({ ...abortSignal });
        inspectedAt = Date.now();
      }
      step = 'inspecting its networks';
      const networks = await this.networksOf(info, signal);
      // Its start is the engine's time: the backend's clock may be off from its host's by minutes.
      inspectedAt += await this.clock.offsetMs(signal);
      return {
        container,
        info,
        inspectedAt,
        networks,
        memoryInUse: memory,
        wantsPause,
      };
    } catch (e) {
      if (signal?.aborted) throw this.stoppedError(machine, signal, step, '');
      throw this.engineFailure(machine, step, e);
    }
  }

  private async inspectMachine(
    machine: MachineLocator,
    container: Docker.Container,
    abortSignal: { abortSignal: AbortSignal } | undefined,
  ): Promise<Docker.ContainerInspectInfo> {
    try {
      return await container.inspect({ ...abortSignal });
    } catch (e) {
      if (isStatus(e, 404)) {
        throw new NotFoundError(
          `machine ${machine.machineRef}: no container "${machine.container}" on engine ${this.engineId}`,
        );
      }
      throw e;
    }
  }

  /** The subnets and gateways of each network the container is on; one removed meanwhile has none. */
  private async networksOf(
    info: Docker.ContainerInspectInfo,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, NetworkIdentity>> {
    const networks: Record<string, NetworkIdentity> = {};
    for (const name of Object.keys(info.NetworkSettings?.Networks ?? {})) {
      try {
        const net = await inspectNetwork(this.docker, name, signal);
        networks[name] = networkIdentity(net);
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
      }
    }
    return networks;
  }

  /** What the capture of a machine found will make, and will stop at, before it takes its note. */
  private underWay(
    machine: MachineLocator,
    options: CaptureOptions,
    found: FoundMachine,
  ): CaptureUnderWay {
    const { info } = found;
    const base = dockerTag(options.captureId);
    // Paused by the capture itself, so the commit and the volumes' archives are one instant of
    // the machine; a machine not running has nothing to pause (and one paused already stays so).
    const pauses = found.wantsPause && !info.State?.Paused;
    const pause = new CapturePause(
      this.engineId,
      found.container,
      machine.machineRef,
      this.maxPauseMs,
      this.options.answerWaitMs ?? ANSWER_WAIT_MS,
    );
    const ref = captureImageRef(machine, options.captureId);
    const notePath = this.notes.notePath(info.Id);
    const note = this.noteOf(machine, options, ref, base, pauses);
    const { heartbeatMs: _pausedBeat, ...unpausedNote } = note;
    return {
      ...found,
      machine,
      options,
      step: 'writing its note',
      ref,
      dir: this.options.storeDirectory,
      base,
      artifact: `${base}.tar`,
      pauses,
      pause,
      ...this.stopSignals(pause, options.signal),
      notePath,
      note,
      unpausedNote,
      noteTaken: false,
      heartbeat: new NoteHeartbeat(notePath),
      written: [],
      layersWritten: [],
      committed: false,
      commitAnswer: new AbortController(),
      progress: new TransferProgressLines(options.progress, {
        intervalMs: this.options.progressIntervalMs,
      }),
    };
  }

  /**
   * What each part of a capture stops at. The copy stops at the pause limit too: production stays
   * paused no longer than that. An unpause that failed (the engine went silent) stops the wait for
   * the commit: the capture then ends saying production stays paused, and its note is tried again.
   */
  private stopSignals(pause: CapturePause, signal: AbortSignal | undefined) {
    const stopping = this.stopping.signal;
    return {
      whilePaused: AbortSignal.any([
        pause.limitReached,
        stopping,
        ...(signal ? [signal] : []),
      ]),
      whileSaving: signal ? AbortSignal.any([signal, stopping]) : stopping,
      whileCommitting: signal
        ? AbortSignal.any([signal, pause.unpauseFailed])
        : pause.unpauseFailed,
    };
  }

  /** The note a capture holds its machine by: paused since now where it pauses it. */
  private noteOf(
    machine: MachineLocator,
    options: CaptureOptions,
    imageRef: string,
    filePrefix: string,
    pauses: boolean,
  ): CaptureNote {
    return {
      machineRef: machine.machineRef,
      captureId: options.captureId,
      imageRef,
      filePrefix,
      ...(pauses
        ? {
            phase: 'paused',
            pausedAt: new Date().toISOString(),
            heartbeatMs: this.pausedBeatMs,
          }
        : { phase: 'saving' }),
    };
  }

  /**
   * Takes the machine's note, by which it has one capture at a time, and keeps it refreshed for as
   * long as the capture runs: a note left unrefreshed is one a stopped backend left.
   */
  private async takeNote(capture: CaptureUnderWay) {
    this.stopping.signal.throwIfAborted();
    await this.notes.takeNote(
      capture.info.Id,
      capture.note,
      capture.options.signal,
    );
    capture.noteTaken = true;
    capture.step = 'committing the image';
    capture.heartbeat.beat(
      capture.pauses ? this.pausedBeatMs : NOTE_HEARTBEAT_MS,
    );
  }

  /**
   * Arms the pause guard where the engine's connection is known (engineConnection): it unpauses
   * the machine should the backend die while it is paused (its note only does at the next start).
   */
  private async armGuard(capture: CaptureUnderWay) {
    if (!capture.pauses || !this.options.engineConnection) return;
    capture.step = 'starting its pause guard';
    await capture.pause.armGuard(
      {
        engineId: this.engineId,
        containerId: capture.info.Id,
        machineRef: capture.machine.machineRef,
        captureId: capture.options.captureId,
        notePath: capture.notePath,
        connection: this.options.engineConnection,
        limitMs: this.maxPauseMs + capture.pause.answerWaitMs + GUARD_MARGIN_MS,
        storeDirectory: capture.dir,
      },
      this.options.logger,
    );
    capture.step = 'committing the image';
  }

  /** Pauses the machine, under the pause limit, and unpausable by the backend's shutdown. */
  private async pauseMachine(capture: CaptureUnderWay) {
    if (!capture.pauses) return;
    const { signal } = capture.options;
    try {
      await capture.pause.pause(signal && { abortSignal: signal });
    } catch (e) {
      capture.step = 'pausing it';
      if (refusedAsRestarting(e) && !capture.pause.leftPaused) {
        await this.goOnWithoutPause(capture);
        return;
      }
      throw e;
    }
    this.pausedNow.add(capture.pause.unpause);
    // The backend began to shut down while the machine was being paused.
    if (this.stopping.signal.aborted) capture.pause.unpause().catch(() => {});
    capture.pause.startLimit(() => capture.step);
  }

  /**
   * Goes on without a pause where the engine refused it as the machine restarts (its crash loop
   * began after the look): nothing was paused, and there is no process to freeze, so it is
   * committed as it is, as a machine found restarting is. Its note says so and its guard goes
   * first: a backend stopped from here on must not unpause it. Its state is looked at again, for
   * the capture to say it was restarting, not running.
   */
  private async goOnWithoutPause(capture: CaptureUnderWay) {
    const { signal } = capture.options;
    capture.pauses = false;
    capture.pause.releaseGuard();
    capture.step = 'writing its note';
    capture.note = this.noteOf(
      capture.machine,
      capture.options,
      capture.ref,
      capture.base,
      false,
    );
    capture.unpausedNote = capture.note;
    await this.notes.rewriteNote(capture.notePath, capture.note);
    capture.heartbeat.beat(NOTE_HEARTBEAT_MS);
    capture.step = 'inspecting its container';
    const { State, RestartCount } = await capture.container.inspect({
      ...(signal && { abortSignal: signal }),
    });
    capture.inspectedAt = Date.now() + (await this.clock.offsetMs(signal));
    capture.info = { ...capture.info, State, RestartCount };
    capture.step = 'committing the image';
  }

  /**
   * Commits the image and exports the volumes, as one instant of the machine, then unpauses it at
   * once: nothing else is done while production waits (the volumes' archives are kept later).
   */
  private async copyWhilePaused(capture: CaptureUnderWay) {
    let copied = false;
    try {
      await this.commit(capture);
      capture.whilePaused.throwIfAborted();
      await mkdir(capture.dir, { recursive: true, mode: STORE_DIRECTORY_MODE });
      capture.exported = await exportVolumes(capture.container, capture.info, {
        dir: capture.dir,
        base: capture.base,
        written: capture.written,
        signal: capture.whilePaused,
        at: step => {
          capture.step = step;
        },
        progress: capture.progress,
        paused: capture.pauses,
        engine: this.engineId,
      });
      copied = true;
    } finally {
      await this.unpauseAfterCopy(capture, copied);
    }
  }

  /**
   * `docker commit`, without a pause of its own. Stopped by the deadline, or a failed unpause, the
   * capture stops waiting, not the commit: dockerd tags the image all the same once done, whoever
   * left, and its answer (listened for past the capture's end, followCommit) is when that tag can go.
   */
  private async commit(capture: CaptureUnderWay) {
    capture.whileCommitting.throwIfAborted();
    const [repo, tag] = capture.ref.split(':');
    const commit = capture.container.commit({
      repo,
      tag,
      pause: false,
      comment: captureComment(
        capture.options.captureId,
        capture.machine.machineRef,
      ),
      abortSignal: capture.commitAnswer.signal,
    }) as Promise<{ Id: string }>;
    capture.commitLeft = commit;
    const result = await unlessAborted(commit, capture.whileCommitting);
    capture.commitLeft = undefined;
    capture.committed = true;
    capture.imageId = result.Id;
  }

  /**
   * Unpauses the machine the capture paused, as the copy ends. A failed unpause is the capture's
   * failure once the copy went well; else it is reported with the copy's own error. The note stays
   * either way, by which the machine is unpaused later (settleNoteAfterFailure).
   */
  private async unpauseAfterCopy(capture: CaptureUnderWay, copied: boolean) {
    capture.pause.stopLimit();
    if (!capture.pauses) return;
    try {
      await capture.pause.unpause();
    } catch (e) {
      capture.pause.unpauseError = e as Error;
      if (copied) throw e;
      return;
    } finally {
      this.pausedNow.delete(capture.pause.unpause);
      capture.pause.releaseGuard();
    }
    const { removed, changedUnder, pausedMs } = capture.pause;
    // Unpaused or stopped by someone else mid-copy: the copies are not one instant (failureOf).
    if (changedUnder && copied) throw new ChangedUnderCaptureError();
    // A machine removed or changed under the capture was paused no time we could measure.
    if (!removed && !changedUnder) this.recordPause(pausedMs);
  }

  /** recovery.captures.pause: also of a capture whose unpause failed, once its retry unpaused it. */
  private recordPause(ms: number) {
    this.options.pauseSeconds?.record(ms / 1000);
  }

  /**
   * Saves the capture into the store once production runs again: the volumes' archives flushed
   * into place, then `docker save` of its image, each layer the store has already (earlier
   * captures of the machine, machines of the same image) kept once. Says what it captured.
   */
  private async save(
    capture: CaptureUnderWay,
    started: number,
  ): Promise<CapturedMachine> {
    capture.whileSaving.throwIfAborted();
    capture.step = 'saving it into the capture store';
    // Flushed once production runs again, before anything can record the capture.
    await capture.exported!.keep();
    // Unpaused: a note left from here on is stale once no longer refreshed, not at the pause limit.
    if (capture.pauses) {
      await this.notes.rewriteNote(capture.notePath, {
        ...capture.unpausedNote,
        phase: 'saving',
      });
      capture.heartbeat.beat(NOTE_HEARTBEAT_MS);
    }
    const transfer = capture.progress.start('saving', 'the image');
    const stream = counted(
      await saveImage(this.docker, capture.ref, capture.whileSaving),
      transfer,
    );
    const image = await writeThinArchive(
      stream,
      capture.dir,
      capture.artifact,
      capture.written,
      capture.whileSaving,
      capture.layersWritten,
    );
    transfer.end();
    return this.capturedMachine(capture, image, started);
  }

  /** What the capture holds: its archives, the machine's runtime adapted, and how its pause went. */
  private async capturedMachine(
    capture: CaptureUnderWay,
    image: { size: number; storedBytes: number; checksum: string },
    started: number,
  ): Promise<CapturedMachine> {
    const volumes = capture.exported!.volumes;
    const { runtime, adaptations } = adaptInspectedContainer(
      capture.info,
      capture.networks,
      volumes,
    );
    const memoryBytes = await capture.memoryInUse;
    const volumeBytes = volumes.reduce((n, v) => n + v.sizeBytes, 0);
    const { pausedMs } = capture.pause;
    const captured: CapturedMachine = {
      imageId: capture.imageId!,
      // All it stores: its image archive and its volumes' archives.
      sizeBytes: image.size + volumeBytes,
      storedBytes: image.storedBytes + volumeBytes,
      checksum: image.checksum,
      artifact: capture.artifact,
      runtime:
        memoryBytes === undefined ? runtime : { ...runtime, memoryBytes },
      adaptations,
      durationMs: Date.now() - started,
      pausedMs,
    };
    // As it was when the capture began: a machine stopped, restarting, paused by someone else or
    // unhealthy is captured all the same (its disk is the best copy there is), and says so.
    const machineState = machineStateOf(
      capture.info.State,
      capture.info.RestartCount,
      capture.inspectedAt,
    );
    if (machineState) captured.machineState = machineState;
    const pauseWarning =
      capture.pauses &&
      capturePauseWarning({
        pausedMs,
        maxPauseMs: capture.pause.maxPauseMs,
        volumeBytes,
        volumeCopyMs: capture.exported!.copyMs,
      });
    if (pauseWarning) captured.pauseWarning = pauseWarning;
    if (capture.quiesceFailure) adaptations.push(capture.quiesceFailure);
    // Paused, the copies are one instant of the machine; not paused, each is its own moment.
    const { State } = capture.info;
    if (
      this.options.pause === false &&
      State?.Running &&
      !State.Paused &&
      !State.Restarting
    )
      adaptations.push(
        'not paused while copied (recovery.docker.pauseOnCapture is false): its image and volumes were copied while it ran, each at its own moment, so a file written meanwhile may be held partly written or empty',
      );
    return captured;
  }

  /**
   * Records the capture where its caller records through it. While the note still holds the
   * capture: no one takes it for one left unrecorded meanwhile (removeUnrecorded skips noted
   * captures), and a backend stopped before the record is in leaves a note that removes nothing by
   * itself (resumeInterrupted).
   */
  private async record(capture: CaptureUnderWay, captured: CapturedMachine) {
    if (!capture.options.record) return;
    await this.notes.rewriteNote(capture.notePath, {
      ...capture.unpausedNote,
      phase: 'recording',
    });
    await capture.options.record(captured);
  }

  /**
   * Kept (and recorded, where the caller records through the capture): nothing of it is removed
   * from here on, and the note goes. Recorded, a note that cannot go (the store turned read-only)
   * fails nothing: it holds the capture no longer, and goes once it can.
   */
  private async letGoOfNote(capture: CaptureUnderWay) {
    await this.notes.dropNote(capture.notePath).catch(e => {
      if (!capture.options.record) throw e;
      this.notes.noteLeft(
        capture.info.Id,
        {
          note: { ...capture.unpausedNote, phase: 'recording' },
          heartbeatAt: Date.now(),
        },
        e,
      );
    });
  }

  /**
   * Removes what a failed capture made: its files, the layers only it wrote, its tag; a commit it
   * stopped waiting for is followed, its tag removed once the engine answers it. Best effort: the
   * capture's own error is the one to report.
   */
  private async removeWhatItMade(capture: CaptureUnderWay) {
    const { captureId } = capture.options;
    const { machineRef } = capture.machine;
    // The directory may be what failed.
    await Promise.allSettled(capture.written.map(f => rm(f, { force: true })));
    // Its archive gone, so are the layers only it wrote, at once rather than at the sweep hours on.
    await removeWrittenLayers(capture.dir, capture.layersWritten).catch(
      layerError =>
        this.options.logger?.warn(
          `recovery: capture ${captureId} of ${machineRef} could not remove the layers it wrote (${(layerError as Error).message}): left to the sweep of unused layers`,
        ),
    );
    if (capture.commitLeft)
      this.sweeps.followCommit(
        capture.commitLeft,
        capture.commitAnswer,
        capture.ref,
        captureId,
        machineRef,
      );
    // A tag left (an engine gone silent) goes with the note, or at the look for unrecorded captures.
    if (capture.committed) {
      await this.answer(
        "the removal of the capture's tag",
        capture.pause.answerWaitMs,
        abortSignal => removeImage(this.docker, capture.ref, abortSignal),
      ).catch(tagError =>
        this.options.logger?.warn(
          `recovery: capture ${captureId} of ${machineRef} could not remove its tag ${capture.ref} yet: ${(tagError as Error).message}`,
        ),
      );
    }
  }

  /**
   * Lets go of a failed capture's note, last, so that a backend stopped meanwhile leaves it; kept
   * while the machine may be paused, and the unpause then tried again within seconds, rather than
   * at the next start, at a capture of the machine an hour on, or once its note is stale minutes on.
   */
  private async settleNoteAfterFailure(capture: CaptureUnderWay) {
    const kept: HeldNote = { note: capture.note, heartbeatAt: Date.now() };
    // One that cannot go (the store turned read-only) must not hide the capture's own error.
    if (capture.noteTaken && !capture.pause.leftPaused)
      await this.notes
        .dropNote(capture.notePath)
        .catch(dropError =>
          this.notes.noteLeft(capture.info.Id, kept, dropError),
        );
    if (capture.pause.leftPaused)
      this.notes.retryUnpause(
        capture.info.Id,
        kept,
        undefined,
        capture.pause.afterRetry(ms => this.recordPause(ms)),
      );
  }

  /**
   * The error a failed capture ends with: where it was, and what it left of production. Its
   * caller's stop, a removed container, the pause limit, the backend's shutdown and a failed
   * unpause come before the failure they caused; then the store's, then the engine's.
   */
  private async failureOf(
    capture: CaptureUnderWay,
    e: unknown,
  ): Promise<unknown> {
    const { machine, step, pause } = capture;
    const { signal } = capture.options;
    const production = this.productionAfter(capture);
    // Stopped by its caller (its deadline): said with what it left of production, where it may
    // have paused it (a pause whose answer the deadline cut, too).
    if (signal?.aborted)
      return this.stoppedError(
        machine,
        signal,
        step,
        pause.mayHavePaused ? `${production}, ` : '',
      );
    if (await this.removedUnder(capture, e)) {
      return new NotFoundError(
        `capture of ${machine.machineRef}: container "${machine.container}" was removed from engine ${this.engineId} while ${step}: nothing kept`,
      );
    }
    if (pause.changedUnder) {
      const copyFailure =
        e instanceof ChangedUnderCaptureError
          ? ''
          : ` (and ${step} failed: ${engineWords(this.engineId, e)})`;
      return new Error(
        `capture of ${machine.machineRef}: container "${machine.container}" was ${pause.changedUnder} by someone else while the capture had it paused${copyFailure}: its image and volumes would not be one instant of it, nothing kept`,
      );
    }
    // Past the pause limit, the limit is what went wrong, not the stream it cut.
    if (pause.pausedTooLong)
      return new Error(`${pause.pausedTooLong}: ${production}, nothing kept`);
    if (this.stopping.signal.aborted) {
      return new CaptureStoppedError(
        `capture of ${machine.machineRef} stopped as the backend shuts down: ${pause.pausedAt ? `${production}, ` : ''}nothing kept`,
      );
    }
    // The engine's failure, whatever the capture's own was: production stays paused on it.
    if (pause.unpauseError) {
      const failure =
        e === pause.unpauseError
          ? ''
          : ` failed while ${step} (${engineWords(this.engineId, e)}) and`;
      return engineError(
        `capture of ${machine.machineRef}${failure} ${production}, nothing kept`,
        this.engineId,
        isEngineUnreachable(this.engineId, pause.unpauseError)
          ? 'unreachable'
          : 'answered',
      );
    }
    // Node's own message names no file for a failed write (a full disk): the store is named here.
    if (isStoreError(e)) {
      return storeFailure(
        `capture of ${machine.machineRef} could not write to the capture store ${capture.dir} while ${step} (${e.message})${pause.pausedAt ? `: ${production}` : ''}, nothing kept`,
        capture.dir,
        e,
      );
    }
    return this.engineFailure(machine, step, e);
  }

  /** What a failed capture left of production: unpaused, or paused still and how that is undone. */
  private productionAfter(capture: CaptureUnderWay): string {
    const { unpauseError, pausedSoFarMs } = capture.pause;
    if (!unpauseError) return 'unpaused';
    // How long production waits on the retry, the unpause's outcome still unknown: a bound.
    const sofar =
      pausedSoFarMs === undefined
        ? ''
        : ` (paused at least ${pauseWords(pausedSoFarMs)} so far)`;
    // By its id, as the capture holds it: renamed meanwhile (docker rename), its name finds nothing.
    const { Id } = capture.info;
    const { container } = capture.machine;
    const byId =
      Id === container
        ? Id
        : `${Id} (the container the catalog names ${container})`;
    return (
      `could not unpause it (${engineWords(this.engineId, unpauseError)}): production stays paused${sofar}; ` +
      `the backend tries again in ${UNPAUSE_RETRY_FIRST_MS / 1000} s, then at least every ${UNPAUSE_RETRY_MAX_MS / 1000} s ` +
      `(by hand: docker unpause ${byId}, on engine ${this.engineId})`
    );
  }

  /** Whether the container was removed from production under the capture: a 404 of the pause, the commit or a copy. */
  private async removedUnder(
    capture: CaptureUnderWay,
    e: unknown,
  ): Promise<boolean> {
    if (capture.pause.removed) return true;
    if (!isStatus(e, 404)) return false;
    return (await capture.pause.containerNow()) === 'removed';
  }

  /**
   * The error of a capture its caller's signal stopped (the capture's deadline): the signal's
   * reason, where the capture was, and what it left of production (`left`, before "nothing kept").
   */
  private stoppedError(
    machine: MachineLocator,
    signal: AbortSignal,
    step: string,
    left: string,
  ) {
    const reason =
      signal.reason instanceof Error && signal.reason.name !== 'AbortError'
        ? signal.reason.message
        : `capture of ${machine.machineRef} on engine ${this.engineId} was stopped by its caller`;
    return new ServiceUnavailableError(
      `${reason} while ${step}: ${left}nothing kept`,
    );
  }

  /**
   * The engine's failure (unreachable, or an error answer) while the capture of `machine` was at
   * `step`, as an EngineError naming engine, machine, container, step and cause (engineFailure):
   * never the engine's status as the caller's. Other errors as they are.
   */
  private engineFailure(
    machine: MachineLocator,
    step: string,
    error: unknown,
  ): unknown {
    return engineFailure(
      this.engineId,
      error,
      `capture of ${machine.machineRef} (container ${machine.container}) failed while ${step}`,
    );
  }

  /** One engine call of this engine, failing where it is not answered within `ms` (answerWithin). */
  private answer<T>(
    what: string,
    ms: number,
    call: (abortSignal: AbortSignal) => Promise<T>,
    also?: AbortSignal,
  ): Promise<T> {
    return answerWithin(this.engineId, what, ms, call, also);
  }

  /** How often a capture refreshes its note while it has its machine paused. */
  private get pausedBeatMs() {
    return this.options.pausedNoteHeartbeatMs ?? PAUSED_NOTE_HEARTBEAT_MS;
  }

  private get maxPauseMs() {
    // A timer past 2^31 - 1 ms (24.8 days) fires at once: a limit meant as "none" would stop every capture.
    return Math.min(
      this.options.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS,
      MAX_TIMER_MS,
    );
  }
}

/** Thrown where a capture's machine was unpaused or stopped by someone else mid-copy (failureOf words it). */
class ChangedUnderCaptureError extends Error {}
