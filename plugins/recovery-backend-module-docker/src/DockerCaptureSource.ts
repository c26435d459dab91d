import type Docker from 'dockerode';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LoggerService } from '@backstage/backend-plugin-api';
import {
  NotAllowedError,
  NotFoundError,
  ServiceUnavailableError,
} from '@backstage/errors';
import {
  ANNOTATION_CONTAINER,
  MACHINE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  CaptureSource,
  CapturedMachine,
  CapturedVolume,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import {
  CaptureStoppedError,
  CaptureStoreError,
  engineError,
  MAX_TIMER_MS,
} from '@backstage-recovery/plugin-recovery-node';
import {
  adaptInspectedContainer,
  dockerTag,
  volumeMounts,
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
import { CaptureSweeps } from './captureSweeps';
import { isStatus } from './lib/dockerStreams';
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
  syncToDisk,
  writeThinArchive,
} from './lib/layerStore';
import { armPauseGuard, type PauseGuard } from './pauseGuard';
import { capturePauseWarning } from './pauseWarning';
import { machineStateOf } from './machineState';

/**
 * Streams `stream` into a temporary file beside `<dir>/<name>` through sha256; `keep` then flushes
 * it to the disk and renames it into place, the rename flushed too, so the store never holds a
 * partial archive, not even after a power loss. Apart, so that a capture keeps its volumes'
 * archives once it has unpaused its machine: a flush takes about 0.4 s per 200 MB (on this
 * project's test machine), which production would wait. Both paths go into `written` first, for
 * the caller's cleanup on failure.
 */
async function writeAtomically(
  stream: Readable,
  dir: string,
  name: string,
  written: string[],
  signal?: AbortSignal,
): Promise<{ size: number; checksum: string; keep: () => Promise<void> }> {
  const finalPath = join(dir, name);
  const tempPath = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  written.push(tempPath, finalPath);
  const hash = createHash('sha256');
  let size = 0;
  const hasher = new Transform({
    transform(chunk, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const out = createWriteStream(tempPath, { flags: 'wx' });
  await pipeline(stream, hasher, out, { signal });
  const keep = async () => {
    await syncToDisk(tempPath);
    await rename(tempPath, finalPath);
    await syncToDisk(dir, { directory: true });
  };
  return { size, checksum: `sha256:${hash.digest('hex')}`, keep };
}

/**
 * Whether a container's machine label names the machine a capture is for: its entity ref, or its
 * name alone for a machine of the default namespace (as the demo and event collection label them).
 * The label is set by whoever runs the container on the engine, unlike the catalog's annotation,
 * which any catalog author can point at any container.
 */
export function labelledAs(
  labels: Record<string, string> | undefined,
  machineRef: string,
): boolean {
  const label = labels?.[MACHINE_LABEL]?.trim().toLocaleLowerCase('en-US');
  if (!label) return false;
  const ref = machineRef.toLocaleLowerCase('en-US');
  return (
    label === ref ||
    (ref.startsWith('resource:default/') &&
      label === ref.slice('resource:default/'.length))
  );
}

/** Longest a capture keeps production paused unless configured (recovery.docker.maxCapturePause). */
const DEFAULT_MAX_PAUSE_MS = 5 * 60_000;

/** Longest a capture waits for its machine's memory figure before it goes on without one. */
const STATS_WAIT_MS = 2_000;

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

/** What is wrong with the capture store, by the file system's code, and what to do about it. */
const STORE_CONDITIONS: Record<string, string> = {
  ENOSPC:
    'the capture store is full: free room there (recovery.captureStore.keepLast keeps fewer captures), or give it a larger disk',
  EDQUOT:
    'the capture store is over its disk quota: raise the quota, or free room there',
  EFBIG:
    'a capture file grew past the largest its file system allows: put the capture store on one that allows larger files',
  EROFS:
    'the capture store is read-only (its file system mounted read-only, as after disk errors): make it writable again',
  EACCES:
    "the backend may not write there: give the backend's user write access to the capture store",
  EPERM:
    "the backend may not write there: give the backend's user write access to the capture store",
  EIO: 'its disk reported an I/O error: check the disk',
  ENOENT: 'the capture store directory is not there (not mounted?)',
  ENOTDIR: 'the capture store directory is not a directory',
  EISDIR: 'a directory stands where the capture store keeps a file',
};

/** Out of open files: the backend's own condition, met writing to the store, not the store's. */
const BACKEND_CONDITIONS = new Set(['EMFILE', 'ENFILE']);

/**
 * What a file system says when the capture store cannot be written (full, read-only, gone, a disk
 * error): said as the store's failure, naming it, where Node's own message names no path (`write`).
 * A socket's errors (the engine's) carry an address instead of a path, and `connect` or no file call.
 */
function isStoreError(e: unknown): e is NodeJS.ErrnoException {
  const { code, syscall, address } = (e ?? {}) as NodeJS.ErrnoException & {
    address?: string;
  };
  return (
    typeof code === 'string' &&
    (Object.hasOwn(STORE_CONDITIONS, code) || BACKEND_CONDITIONS.has(code)) &&
    typeof syscall === 'string' &&
    syscall !== 'connect' &&
    address === undefined
  );
}

/**
 * A capture the capture store could not take, as its caller answers it: a CaptureStoreError (507)
 * saying what is wrong with the store; out of open files (EMFILE, ENFILE), the backend's own
 * condition, a 503 (try again).
 */
function storeFailure(
  message: string,
  storeDirectory: string,
  e: NodeJS.ErrnoException,
): Error {
  if (BACKEND_CONDITIONS.has(e.code!))
    return new ServiceUnavailableError(
      `${message}: the backend has too many files open; try again, or raise its limit (ulimit -n)`,
    );
  return new CaptureStoreError(
    `${message}: ${STORE_CONDITIONS[e.code!]}`,
    storeDirectory,
  );
}

type CaptureOptions = Parameters<CaptureSource['capture']>[1];

/**
 * A container's memory as `docker stats` counts it (the CLI's calculateMemUsageUnixNoCache): its
 * cgroup's usage without the inactive file cache it could drop, that cache where it is less than
 * the usage. Undefined where the engine keeps no figures.
 */
export function memoryInUseOf(
  memory: { usage?: number; stats?: Record<string, number> } | undefined,
): number | undefined {
  const { usage, stats = {} } = memory ?? {};
  if (!usage) return undefined;
  // cgroup v1: total_inactive_file, which counts nested cgroups too (its inactive_file does not).
  const v1 = stats.total_inactive_file;
  if (v1 !== undefined && v1 < usage) return usage - v1;
  // cgroup v2: inactive_file.
  const v2 = stats.inactive_file ?? 0;
  return v2 < usage ? usage - v2 : usage;
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
      /**
       * How the engine is reached (the options `docker` was made with). Where given, a capture
       * that pauses its machine first starts a pause guard (pauseGuard.ts), which unpauses the
       * machine should the backend die while it is paused (its note only does at the next start),
       * or keep it paused past the limit.
       */
      engineConnection?: Docker.DockerOptions;
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

  private async captureOn(
    machine: MachineLocator,
    options: CaptureOptions,
  ): Promise<CapturedMachine> {
    const started = Date.now();
    const container = this.docker.getContainer(machine.container);
    // Every engine call of the capture stops at its signal (its deadline): an engine whose
    // connection goes silent would otherwise hold the capture, and its note, for good.
    const { signal } = options;
    const abortSignal = signal && { abortSignal: signal };
    let info!: Docker.ContainerInspectInfo;
    const networks: Record<string, NetworkIdentity> = {};
    let memoryInUse!: Promise<number | undefined>;
    let wantsPause = false;
    let step = 'inspecting its container';
    try {
      try {
        info = await container.inspect({ ...abortSignal });
      } catch (e) {
        if (isStatus(e, 404)) {
          throw new NotFoundError(
            `machine ${machine.machineRef}: no container "${machine.container}" on engine ${this.engineId}`,
          );
        }
        throw e;
      }
      // Before anything touches it: a machine entity may name any container on the engine.
      if (
        this.options.requireMachineLabel &&
        !labelledAs(info.Config?.Labels ?? undefined, machine.machineRef)
      ) {
        const found = info.Config?.Labels?.[MACHINE_LABEL];
        throw new NotAllowedError(
          `machine ${machine.machineRef}: container "${machine.container}" on engine ${this.engineId} is ` +
            `${found ? `labelled ${MACHINE_LABEL}=${found}` : `not labelled ${MACHINE_LABEL}`}, and this engine captures only containers ` +
            `labelled as their machine (recovery.docker.engines[${this.engineId}].requireMachineLabel): label the container ` +
            `${MACHINE_LABEL}=${machine.machineRef}, or correct the machine's ${ANNOTATION_CONTAINER} annotation`,
        );
      }
      signal?.throwIfAborted();
      // Asked now, taken at the end: the engine answers at its next collection, up to a second on.
      memoryInUse = info.State?.Running
        ? this.memoryInUse(container)
        : Promise.resolve(undefined);
      wantsPause = (this.options.pause ?? true) && Boolean(info.State?.Running);
      // Paused by a capture under way (a conflict), by one that stopped (unpaused first, then
      // captured as any machine), or by someone else (no note: left paused, captured as it is).
      step = "settling an earlier capture's note";
      if (
        wantsPause &&
        info.State?.Paused &&
        (await this.notes.settleNote(info.Id, machine.machineRef, signal))
      ) {
        info = await container.inspect({ ...abortSignal });
      }

      step = 'inspecting its networks';
      for (const name of Object.keys(info.NetworkSettings?.Networks ?? {})) {
        try {
          const net = await inspectNetwork(this.docker, name, signal);
          const cfg = net.IPAM?.Config?.find(
            (c: any) => c.Subnet && !c.Subnet.includes(':'),
          );
          networks[name] = { subnet: cfg?.Subnet, gateway: cfg?.Gateway };
        } catch (e) {
          if (!isStatus(e, 404)) throw e;
        }
      }
    } catch (e) {
      if (signal?.aborted) throw this.stoppedError(machine, signal, step, '');
      throw this.engineFailure(machine, step, e);
    }
    const ref = captureImageRef(machine, options.captureId);
    const [repo, tag] = ref.split(':');
    const dir = this.options.storeDirectory;
    const base = dockerTag(options.captureId);
    const artifact = `${base}.tar`;
    // Paused by the capture itself, so the commit and the volumes' archives are one instant of
    // the machine; a machine not running has nothing to pause (and one paused already stays so).
    const pause = wantsPause && !info.State?.Paused;
    const written: string[] = [];
    // The layers it wrote into the layer store (not those it found there): gone with it if it fails.
    const layersWritten: string[] = [];
    let committed = false;
    // A commit it stopped waiting for (its deadline, a failed unpause), which the engine goes on with.
    let commitLeft: Promise<unknown> | undefined;
    const commitAnswer = new AbortController();
    let imageId: string;
    const volumes: CapturedVolume[] = [];
    const volumesToKeep: Array<() => Promise<void>> = [];
    let captured: CapturedMachine;
    let pausedMs = 0;
    // How much of the pause the volumes' copy took: what grows it as they grow.
    let volumeCopyMs = 0;
    // Production stays paused no longer than the limit: past it the machine is unpaused at once
    // and the copy stops; a commit still running is left to return, and its image removed.
    const maxPauseMs = this.maxPauseMs;
    const pauseLimit = new AbortController();
    const stopping = this.stopping.signal;
    const whilePaused = AbortSignal.any([
      pauseLimit.signal,
      stopping,
      ...(options.signal ? [options.signal] : []),
    ]);
    const whileSaving = options.signal
      ? AbortSignal.any([options.signal, stopping])
      : stopping;
    // An unpause that failed (the engine went silent) stops the wait for the commit too: the
    // capture then ends saying production stays paused, and its note is tried again.
    const unpauseFailed = new AbortController();
    const whileCommitting = options.signal
      ? AbortSignal.any([options.signal, unpauseFailed.signal])
      : unpauseFailed.signal;
    step = 'writing its note';
    let timer: NodeJS.Timeout | undefined;
    let pausedTooLong: string | undefined;
    let unpauseError: Error | undefined;
    let pausedAt = 0;
    let unpausing: Promise<void> | undefined;
    // Paused by this capture and not unpaused since: its note must then stay.
    let leftPaused = false;
    // The container was removed (docker rm -f) under the capture: nothing of it is paused.
    let removed = false;
    const notePath = this.notes.notePath(info.Id);
    const pausedBeatMs =
      this.options.pausedNoteHeartbeatMs ?? PAUSED_NOTE_HEARTBEAT_MS;
    const note: CaptureNote = {
      machineRef: machine.machineRef,
      captureId: options.captureId,
      imageRef: ref,
      filePrefix: base,
      ...(pause
        ? {
            phase: 'paused',
            pausedAt: new Date().toISOString(),
            heartbeatMs: pausedBeatMs,
          }
        : { phase: 'saving' }),
    };
    // As the note reads once the machine is unpaused: no longer refreshed every second.
    const { heartbeatMs: _pausedBeat, ...unpausedNote } = note;
    let noteTaken = false;
    let heartbeat: NodeJS.Timeout | undefined;
    // The dead man's switch of the pause: released once the machine is unpaused, and kept running
    // where it could not be (it then unpauses it past the limit, or when the backend dies).
    let guard: PauseGuard | undefined;
    const releaseGuard = () => {
      if (!leftPaused) guard?.release();
    };
    // Once: from the limit's timer or when the copy ends, whichever comes first; waited for no
    // longer than the grace the note gives it past the limit.
    const answerWaitMs = this.options.answerWaitMs ?? ANSWER_WAIT_MS;
    const unpause = () =>
      (unpausing ??= this.answer('the unpause', answerWaitMs, abortSignal =>
        container.unpause({ abortSignal }),
      ).then(
        () => {
          pausedMs = Math.round(performance.now() - pausedAt);
          leftPaused = false;
        },
        e => {
          if (!isStatus(e, 404)) {
            unpauseFailed.abort();
            throw e;
          }
          removed = true;
          leftPaused = false;
        },
      ));
    // A failure (store directory included) must leave neither file nor tag.
    try {
      stopping.throwIfAborted();
      await this.notes.takeNote(info.Id, note, signal);
      noteTaken = true;
      step = 'committing the image';
      // Refreshed for as long as the capture runs: a note left unrefreshed is one a stopped
      // backend left. Every second while the machine is paused (production waits: a backend
      // killed meanwhile is told by it within seconds), then every NOTE_HEARTBEAT_MS.
      const beat = (ms: number) => {
        clearInterval(heartbeat);
        heartbeat = setInterval(() => {
          const now = new Date();
          utimes(notePath, now, now).catch(() => {});
        }, ms);
        heartbeat.unref();
      };
      beat(pause ? pausedBeatMs : NOTE_HEARTBEAT_MS);
      if (pause && this.options.engineConnection) {
        step = 'starting its pause guard';
        guard = await armPauseGuard({
          engineId: this.engineId,
          containerId: info.Id,
          machineRef: machine.machineRef,
          captureId: options.captureId,
          notePath,
          connection: this.options.engineConnection,
          limitMs: maxPauseMs + answerWaitMs + GUARD_MARGIN_MS,
          storeDirectory: dir,
        }).catch(e => {
          // Paused all the same: the note still unpauses it at the backend's next start.
          this.options.logger?.warn(
            `recovery: capture ${options.captureId} of ${machine.machineRef} pauses it without a guard: ${(e as Error).message}`,
          );
          return undefined;
        });
        step = 'committing the image';
      }
      if (pause) {
        try {
          await container.pause({ ...abortSignal });
        } catch (e) {
          // An answer lost on the way (a connection reset) may hide a pause that took: undone, or
          // where even that cannot be told, the note kept, by which it is unpaused later (below).
          // One the engine refused (409: paused by someone else meanwhile) is left as it is.
          const answered =
            (e as { statusCode?: number }).statusCode !== undefined;
          try {
            const look = () =>
              this.answer(
                'the look at its container',
                answerWaitMs,
                abortSignal => container.inspect({ abortSignal }),
              );
            if (!answered && (await look()).State?.Paused) {
              leftPaused = true;
              await unpause();
            }
          } catch (u) {
            leftPaused = true;
            unpauseError = u as Error;
          }
          step = 'pausing it';
          throw e;
        }
        leftPaused = true;
        pausedAt = performance.now();
        this.pausedNow.add(unpause);
        // The backend began to shut down while the machine was being paused.
        if (stopping.aborted) unpause().catch(() => {});
        const limit =
          maxPauseMs < 1000 ? `${maxPauseMs} ms` : `${maxPauseMs / 1000} s`;
        timer = setTimeout(() => {
          pausedTooLong = `capture of ${machine.machineRef} kept production paused past the ${limit} limit (recovery.docker.maxCapturePause) while ${step}`;
          pauseLimit.abort();
          // Its failure is awaited, and reported, where the copy ends.
          unpause().catch(() => {});
        }, maxPauseMs);
      }
      let failed = true;
      try {
        // Stopped by the deadline, or a failed unpause, the capture stops waiting, not the commit:
        // dockerd tags the image all the same once done, whoever left, and its answer (listened
        // for past the capture's end, followCommit) is when that tag can go.
        whileCommitting.throwIfAborted();
        const commit = container.commit({
          repo,
          tag,
          pause: false,
          comment: captureComment(options.captureId, machine.machineRef),
          abortSignal: commitAnswer.signal,
        }) as Promise<{ Id: string }>;
        commitLeft = commit;
        const result = await unlessAborted(commit, whileCommitting);
        commitLeft = undefined;
        committed = true;
        imageId = result.Id;
        whilePaused.throwIfAborted();
        await mkdir(dir, { recursive: true });
        const copyStarted = performance.now();
        for (const [i, mount] of volumeMounts(info).entries()) {
          step = `archiving the volume at ${mount.destination}`;
          const volumeArtifact = `${base}.volume-${i + 1}.tar`;
          const stream = (await container.getArchive({
            path: mount.destination,
            abortSignal: whilePaused,
          })) as unknown as Readable;
          const { size, checksum, keep } = await writeAtomically(
            stream,
            dir,
            volumeArtifact,
            written,
            whilePaused,
          );
          volumesToKeep.push(keep);
          volumes.push({
            destination: mount.destination,
            artifact: volumeArtifact,
            checksum,
            sizeBytes: size,
          });
        }
        volumeCopyMs = performance.now() - copyStarted;
        failed = false;
      } finally {
        clearTimeout(timer);
        if (pause) {
          try {
            await unpause();
          } catch (e) {
            // Reported with the capture's own error, if any. The note stays, by which the machine
            // is unpaused later (below).
            unpauseError = e as Error;
            if (!failed) throw e;
          } finally {
            this.pausedNow.delete(unpause);
            releaseGuard();
          }
        }
      }
      whileSaving.throwIfAborted();
      step = 'saving it into the capture store';
      // Flushed once production runs again, before anything can record the capture.
      for (const keep of volumesToKeep) await keep();
      // Unpaused: a note left from here on is stale once no longer refreshed, not at the pause limit.
      if (pause) {
        await this.notes.rewriteNote(notePath, {
          ...unpausedNote,
          phase: 'saving',
        });
        beat(NOTE_HEARTBEAT_MS);
      }
      const stream = await saveImage(this.docker, ref, whileSaving);
      // Layers the store has (earlier captures of the machine, machines of the same image) are kept once.
      const image = await writeThinArchive(
        stream,
        dir,
        artifact,
        written,
        whileSaving,
        layersWritten,
      );
      const { runtime, adaptations } = adaptInspectedContainer(
        info,
        networks,
        volumes,
      );
      const memoryBytes = await memoryInUse;
      const volumeBytes = volumes.reduce((n, v) => n + v.sizeBytes, 0);
      captured = {
        imageId: imageId!,
        // All it stores: its image archive and its volumes' archives.
        sizeBytes: image.size + volumeBytes,
        storedBytes: image.storedBytes + volumeBytes,
        checksum: image.checksum,
        artifact,
        runtime:
          memoryBytes === undefined ? runtime : { ...runtime, memoryBytes },
        adaptations,
        durationMs: Date.now() - started,
        pausedMs,
      };
      // As it was when the capture began: a machine stopped, restarting, paused by someone else or
      // unhealthy is captured all the same (its disk is the best copy there is), and says so.
      const machineState = machineStateOf(info.State);
      if (machineState) captured.machineState = machineState;
      const pauseWarning =
        pause &&
        capturePauseWarning({
          pausedMs,
          maxPauseMs,
          volumeBytes,
          volumeCopyMs,
        });
      if (pauseWarning) captured.pauseWarning = pauseWarning;
      if (options.record) {
        // Recorded while the note still holds the capture: no one takes it for one left
        // unrecorded meanwhile (removeUnrecorded skips noted captures), and a backend stopped
        // before the record is in leaves a note that removes nothing by itself (resumeInterrupted).
        await this.notes.rewriteNote(notePath, {
          ...unpausedNote,
          phase: 'recording',
        });
        await options.record(captured);
      }
    } catch (e) {
      clearTimeout(timer);
      // Best effort (the directory may be what failed): the capture's own error is the one to report.
      await Promise.allSettled(written.map(f => rm(f, { force: true })));
      // Its archive gone, so are the layers only it wrote, at once rather than at the sweep hours on.
      await removeWrittenLayers(dir, layersWritten).catch(layerError =>
        this.options.logger?.warn(
          `recovery: capture ${options.captureId} of ${machine.machineRef} could not remove the layers it wrote (${(layerError as Error).message}): left to the sweep of unused layers`,
        ),
      );
      if (commitLeft)
        this.sweeps.followCommit(
          commitLeft,
          commitAnswer,
          ref,
          options.captureId,
          machine.machineRef,
        );
      // A tag left (an engine gone silent) goes with the note, or at the look for unrecorded captures.
      if (committed) {
        await this.answer(
          "the removal of the capture's tag",
          answerWaitMs,
          abortSignal => removeImage(this.docker, ref, abortSignal),
        ).catch(tagError =>
          this.options.logger?.warn(
            `recovery: capture ${options.captureId} of ${machine.machineRef} could not remove its tag ${ref} yet: ${(tagError as Error).message}`,
          ),
        );
      }
      const kept: HeldNote = { note, heartbeatAt: Date.now() };
      // Last, so that a backend stopped meanwhile leaves it; kept while the machine may be paused.
      // One that cannot go (the store turned read-only) must not hide the capture's own error.
      if (noteTaken && !leftPaused)
        await this.notes
          .dropNote(notePath)
          .catch(dropError => this.notes.noteLeft(info.Id, kept, dropError));
      // Left paused (its unpause failed): tried again within seconds, rather than at the next
      // start, at a capture of the machine an hour on, or once its note is stale minutes on.
      // Its guard goes once that retry (or whatever settles the note) has unpaused the machine:
      // left armed, it would unpause a later capture's pause, or a person's, at its limit.
      if (leftPaused)
        this.notes.retryUnpause(
          info.Id,
          kept,
          undefined,
          guard && (() => guard!.release()),
        );
      const machineState = unpauseError
        ? `could not unpause it (${engineWords(this.engineId, unpauseError)}): production stays paused; ` +
          `the backend tries again in ${UNPAUSE_RETRY_FIRST_MS / 1000} s, then at least every ${UNPAUSE_RETRY_MAX_MS / 1000} s ` +
          `(by hand: docker unpause ${machine.container}, on engine ${this.engineId})`
        : 'unpaused';
      // Stopped by its caller (its deadline): said with what it left of production, where it may
      // have paused it (a pause whose answer the deadline cut, too).
      if (signal?.aborted)
        throw this.stoppedError(
          machine,
          signal,
          step,
          pausedAt || unpausing ? `${machineState}, ` : '',
        );
      // Removed from production under the capture: a 404 of the pause, the commit or a copy.
      if (!removed && isStatus(e, 404)) {
        removed = await this.answer(
          'the look at its container',
          answerWaitMs,
          abortSignal => container.inspect({ abortSignal }),
        ).then(
          () => false,
          gone => isStatus(gone, 404),
        );
      }
      if (removed) {
        throw new NotFoundError(
          `capture of ${machine.machineRef}: container "${machine.container}" was removed from engine ${this.engineId} while ${step}: nothing kept`,
        );
      }
      // Past the pause limit, the limit is what went wrong, not the stream it cut.
      if (pausedTooLong)
        throw new Error(`${pausedTooLong}: ${machineState}, nothing kept`);
      if (stopping.aborted) {
        throw new CaptureStoppedError(
          `capture of ${machine.machineRef} stopped as the backend shuts down: ${pausedAt ? `${machineState}, ` : ''}nothing kept`,
        );
      }
      // The engine's failure, whatever the capture's own was: production stays paused on it.
      if (unpauseError) {
        const failure =
          e === unpauseError
            ? ''
            : ` failed while ${step} (${engineWords(this.engineId, e)}) and`;
        throw engineError(
          `capture of ${machine.machineRef}${failure} ${machineState}, nothing kept`,
          this.engineId,
          isEngineUnreachable(this.engineId, unpauseError)
            ? 'unreachable'
            : 'answered',
        );
      }
      // Node's own message names no file for a failed write (a full disk): the store is named here.
      if (isStoreError(e)) {
        throw storeFailure(
          `capture of ${machine.machineRef} could not write to the capture store ${this.options.storeDirectory} while ${step} (${e.message})${pausedAt ? `: ${machineState}` : ''}, nothing kept`,
          this.options.storeDirectory,
          e,
        );
      }
      throw this.engineFailure(machine, step, e);
    } finally {
      clearInterval(heartbeat);
      releaseGuard();
    }
    // Kept (and recorded, where the caller records through the capture): nothing of it is removed
    // from here on, and the note goes. Recorded, a note that cannot go (the store turned
    // read-only) fails nothing: it holds the capture no longer, and goes once it can.
    await this.notes.dropNote(notePath).catch(e => {
      if (!options.record) throw e;
      this.notes.noteLeft(
        info.Id,
        {
          note: { ...unpausedNote, phase: 'recording' },
          heartbeatAt: Date.now(),
        },
        e,
      );
    });
    return captured;
  }

  /**
   * The memory a running machine holds, as `docker stats` counts it (its cgroup's usage without
   * the inactive file cache): the first sample of the stats stream, which comes at the engine's
   * next collection (at once where none runs, else within a second; a single answer, even
   * `one-shot`, waits a second more). A capture does not fail for a figure only a run's admission
   * uses: undefined where the engine does not say.
   */
  private async memoryInUse(
    container: Docker.Container,
  ): Promise<number | undefined> {
    try {
      const stream = (await container.stats({
        stream: true,
        abortSignal: AbortSignal.timeout(STATS_WAIT_MS),
      } as { stream: true })) as AsyncIterable<Buffer>;
      let text = '';
      // One JSON document a line; leaving the loop ends the stream.
      for await (const chunk of stream) {
        text += chunk.toString('utf8');
        if (text.includes('\n')) break;
      }
      const stats = JSON.parse(
        text.slice(0, text.indexOf('\n') + 1 || undefined),
      ) as Docker.ContainerStats;
      return memoryInUseOf(stats.memory_stats);
    } catch (e) {
      this.options.logger?.debug(
        `Could not read the memory of container ${container.id}: ${(e as Error).message}`,
      );
      return undefined;
    }
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

  private get maxPauseMs() {
    // A timer past 2^31 - 1 ms (24.8 days) fires at once: a limit meant as "none" would stop every capture.
    return Math.min(
      this.options.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS,
      MAX_TIMER_MS,
    );
  }
}
