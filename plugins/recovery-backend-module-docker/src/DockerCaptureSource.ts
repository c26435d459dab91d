import type Docker from 'dockerode';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError, NotAllowedError, NotFoundError, ServiceUnavailableError } from '@backstage/errors';
import { ANNOTATION_CONTAINER, formatBytes, MACHINE_LABEL } from '@backstage-recovery/plugin-recovery-common';
import type {
  CaptureSource,
  CapturedMachine,
  CapturedVolume,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { MAX_TIMER_MS } from '@backstage-recovery/plugin-recovery-node';
import { adaptInspectedContainer, dockerName, dockerTag, volumeMounts, type NetworkIdentity } from './adapt';
import { isStatus } from './lib/dockerStreams';
import { answerWithin, explainEngineError, isUnanswered, onEngine } from './lib/engineErrors';
import { removeUnusedLayers, removeWrittenLayers, syncToDisk, writeThinArchive } from './lib/layerStore';

/** Repository of the images a capture commits: `recovery-capture/<container>:<captureId>`. */
export const CAPTURE_REPOSITORY = 'recovery-capture';

/** Resolves a capture artifact (relative to the capture store, or absolute). */
export function artifactPath(storeDirectory: string, artifact: string): string {
  return isAbsolute(artifact) ? artifact : join(storeDirectory, artifact);
}

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
 * `docker save` of an image, asked as dockerode's `image.get()` asks it but stopped by `signal`
 * even before the engine answers: older engines answer only once the whole image is exported, and
 * would hold a shutdown, or a capture's timeout, that long.
 */
function saveImage(docker: Docker, ref: string, signal: AbortSignal): Promise<Readable> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      { path: `/images/${ref}/get`, method: 'GET', isStream: true, abortSignal: signal, statusCodes: { 200: true, 500: 'server error' } },
      // Aborted, the abort's reason is the error, as where the stream that follows is cut.
      (err, data) => (err ? reject(signal.aborted ? signal.reason : err) : resolve(data as Readable)),
    );
  });
}

/** `work`, or the reason of `signal` where it aborts first; `work` itself goes on. */
function unlessAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * `docker image inspect`, asked as dockerode's `image.inspect()` asks it but stopped by `signal`,
 * which dockerode does not pass on for it.
 */
function inspectImage(docker: Docker, name: string, signal: AbortSignal): Promise<Docker.ImageInspectInfo> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      { path: `/images/${name}/json`, method: 'GET', options: {}, abortSignal: signal, statusCodes: { 200: true, 404: 'no such image', 500: 'server error' } },
      (err, data) => (err ? reject(err) : resolve(data as Docker.ImageInspectInfo)),
    );
  });
}

/**
 * `docker network inspect`, asked as dockerode's `network.inspect()` asks it but stopped by
 * `signal`, which dockerode does not pass on for networks.
 */
function inspectNetwork(docker: Docker, name: string, signal?: AbortSignal): Promise<Docker.NetworkInspectInfo> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      { path: `/networks/${name}?`, method: 'GET', options: {}, abortSignal: signal, statusCodes: { 200: true, 404: 'no such network', 500: 'server error' } },
      (err, data) => (err ? reject(err) : resolve(data as Docker.NetworkInspectInfo)),
    );
  });
}

/** The comment a capture's image is committed with: whose capture it is (read back by removeUnrecorded). */
const captureComment = (captureId: string, machineRef: string) => `recovery capture ${captureId} of ${machineRef}`;
const CAPTURE_COMMENT = /^recovery capture (\S+) of (\S+)$/;

/**
 * Whether a container's machine label names the machine a capture is for: its entity ref, or its
 * name alone for a machine of the default namespace (as the demo and event collection label them).
 * The label is set by whoever runs the container on the engine, unlike the catalog's annotation,
 * which any catalog author can point at any container.
 */
export function labelledAs(labels: Record<string, string> | undefined, machineRef: string): boolean {
  const label = labels?.[MACHINE_LABEL]?.trim().toLocaleLowerCase('en-US');
  if (!label) return false;
  const ref = machineRef.toLocaleLowerCase('en-US');
  return label === ref || (ref.startsWith('resource:default/') && label === ref.slice('resource:default/'.length));
}

/** Age past which a note that does not parse was cut short by a kill, not being written now. */
const TORN_NOTE_AGE_MS = 60_000;
/** Longest a capture keeps production paused unless configured (recovery.docker.maxCapturePause). */
const DEFAULT_MAX_PAUSE_MS = 5 * 60_000;

/** Longest a capture waits for its machine's memory figure before it goes on without one. */
const STATS_WAIT_MS = 2_000;

/** Longest the backend's shutdown waits for the captures it stops to unpause and clean up. */
const STOP_WAIT_MS = 10_000;

/**
 * Longest a capture waits for the engine to answer its unpause (and the calls that clean up after
 * it stopped): within the grace its note gets past the pause limit (NOTE_GRACE_MS), so that on an
 * engine gone silent the capture ends saying production stays paused, and its note is tried again,
 * rather than wait with it for good.
 */
const ANSWER_WAIT_MS = 10_000;

/**
 * Longest each engine call of a sweep waits (resuming a note, the look for unrecorded captures, a
 * discard): an engine that never answers fails the sweep, naming it, and is tried again at the
 * next, rather than hold it (and the scheduled task that runs it) for good.
 */
const SWEEP_WAIT_MS = 60_000;

/**
 * Longest a capture that stopped waiting for its commit (its deadline, a failed unpause) keeps
 * listening for the engine's answer, which dockerd gives once it has tagged the image, whoever
 * left: the tag then goes at once. Past that (an engine gone silent), as at the backend's
 * shutdown, the look for unrecorded captures, every 10 minutes, removes it.
 */
const COMMIT_FOLLOW_MS = 10 * 60_000;

/**
 * Where a capture keeps a note of itself (one file per engine and container), from before it
 * pauses the machine until the backend has recorded it or it has removed its files: a backend
 * stopped in between leaves the note, by which the next start or capture of that machine unpauses
 * it (if the note says it is paused) and removes that capture's files and tag, instead of
 * production staying paused, or the store and the engine filling up, for good. (Named when the
 * note only covered the pause: notes that older backends left are found still.)
 */
const CAPTURE_NOTES = '.paused';
function underWay(machineRef: string, held: CaptureNote) {
  const doing =
    held.phase === 'saving' ? 'saving it into the capture store' : held.phase === 'recording' ? 'recording it' : `paused it at ${held.pausedAt}`;
  return new ConflictError(
    `machine ${machineRef}: capture ${held.captureId} is under way (${doing}); one capture of a machine at a time`,
  );
}

/**
 * What a file system says when the capture store cannot be written (full, read-only, gone, a disk
 * error): said as the store's failure, naming it, where Node's own message names no path (`write`).
 * A socket's errors (the engine's) carry an address instead of a path, and `connect` or no file call.
 */
const STORE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EROFS', 'EIO', 'EACCES', 'EPERM', 'ENOTDIR', 'EISDIR', 'EFBIG', 'ENOENT', 'EMFILE', 'ENFILE']);
function isStoreError(e: unknown): e is NodeJS.ErrnoException {
  const { code, syscall, address } = (e ?? {}) as NodeJS.ErrnoException & { address?: string };
  return typeof code === 'string' && STORE_ERRORS.has(code) && typeof syscall === 'string' && syscall !== 'connect' && address === undefined;
}

/** A full container id, as `docker inspect` gives it: what a note's name ends with. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** How often resuming a stale note is tried again while it fails (an engine that does not answer). */
const RESUME_RETRY_MS = 60_000;

/** How long past its pause limit a note of the paused phase must be before it counts as left by a stopped capture. */
const NOTE_GRACE_MS = 30_000;

/**
 * How often a capture refreshes its note's mtime, and how long a note of the saving or recording
 * phase may go unrefreshed before it counts as left by a stopped capture (neither has a limit of
 * its own).
 */
const NOTE_HEARTBEAT_MS = 20_000;
const SAVING_NOTE_STALE_MS = 2 * 60_000;

interface CaptureNote {
  machineRef: string;
  captureId: string;
  /** The capture's image tag and the prefix of its files, removed with the note: never stored. */
  imageRef: string;
  filePrefix: string;
  /**
   * `paused`: the capture has the machine paused, since `pausedAt`; `saving`: it has not (never
   * paused it, or unpaused it) and copies into the capture store; `recording`: its files are
   * kept, and the backend records it. Older backends' notes have no phase: they only noted a pause.
   */
  phase?: 'paused' | 'saving' | 'recording';
  pausedAt?: string;
}

type CaptureOptions = Parameters<CaptureSource['capture']>[1];

/** A note as found: `heartbeatAt` is its mtime, which its capture refreshes while it runs. */
interface HeldNote {
  note: CaptureNote;
  heartbeatAt: number;
}

/**
 * A container's memory as `docker stats` counts it (the CLI's calculateMemUsageUnixNoCache): its
 * cgroup's usage without the inactive file cache it could drop, that cache where it is less than
 * the usage. Undefined where the engine keeps no figures.
 */
export function memoryInUseOf(memory: { usage?: number; stats?: Record<string, number> } | undefined): number | undefined {
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
  /** The start-up look at the notes, which removeUnrecorded waits for (see there). */
  private resuming?: Promise<unknown>;
  /**
   * Captures that ended here but left their note: their machine's unpause failed (the engine
   * went away), or the note could not be removed (the store turned read-only). The machine's next
   * capture, and a look at the note, settle it at once rather than refuse it as a capture under
   * way until the pause limit or the heartbeat's silence says it is stale.
   */
  private readonly ended = new Set<string>();

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
    },
  ) {}

  /** One engine call of this engine, failing where it is not answered within `ms` (answerWithin). */
  private answer<T>(what: string, ms: number, call: (abortSignal: AbortSignal) => Promise<T>, also?: AbortSignal): Promise<T> {
    return answerWithin(this.engineId, what, ms, call, also);
  }

  /** One engine call of a sweep, bounded as SWEEP_WAIT_MS says. */
  private answerSweep<T>(what: string, call: (abortSignal: AbortSignal) => Promise<T>, also?: AbortSignal): Promise<T> {
    return answerWithin(this.engineId, what, this.options.sweepWaitMs ?? SWEEP_WAIT_MS, call, also);
  }

  private notePath(containerId: string) {
    return join(this.options.storeDirectory, CAPTURE_NOTES, `${dockerName(this.engineId)}.${containerId}`);
  }

  private get maxPauseMs() {
    // A timer past 2^31 - 1 ms (24.8 days) fires at once: a limit meant as "none" would stop every capture.
    return Math.min(this.options.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS, MAX_TIMER_MS);
  }

  /**
   * When a note counts as left by a stopped capture: paused, once its capture, if it still ran,
   * would have unpaused its machine by its own limit; saving or recording, once it was not
   * refreshed for a while.
   */
  private staleFrom({ note, heartbeatAt }: HeldNote): number {
    if (note.phase === 'saving' || note.phase === 'recording') return heartbeatAt + SAVING_NOTE_STALE_MS;
    return Date.parse(note.pausedAt!) + this.maxPauseMs + NOTE_GRACE_MS;
  }

  private async readNote(path: string): Promise<HeldNote | undefined> {
    const unreadable = (e: unknown) =>
      new Error(`capture note ${path} is unreadable, so its machine may still be paused: ${(e as Error).message}`);
    let text: string;
    let mtimeMs: number;
    try {
      [text, { mtimeMs }] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw unreadable(e);
    }
    try {
      return { note: JSON.parse(text), heartbeatAt: mtimeMs };
    } catch (e) {
      // Cut short while it was first written (a backend killed then): its capture never paused
      // anything, which comes only once the write returned. A young one may be being written now.
      if (Date.now() - mtimeMs < TORN_NOTE_AGE_MS) throw unreadable(e);
      await rm(path, { force: true });
      return undefined;
    }
  }

  /**
   * Removes what the captures that never finished (the backend stopped mid-capture) left, and
   * unpauses the machines they left paused; a note too recent to tell (another backend's capture
   * may still run) is looked at again once it would be stale. Run at start-up; returns the
   * machines unpaused now.
   */
  resumeInterruptedCaptures(): Promise<string[]> {
    const resuming = onEngine(this.engineId, async () => {
      const dir = join(this.options.storeDirectory, CAPTURE_NOTES);
      const prefix = `${dockerName(this.engineId)}.`;
      const names = await readdir(dir).catch(e => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
        throw e;
      });
      const resumed: string[] = [];
      const failed: string[] = [];
      // Once the engine left a call unanswered, the others' calls are not made: each would wait as long.
      let silent: string | undefined;
      for (const name of names.sort()) {
        // This engine's id and a whole container id: engine `dc1` must not take the notes of
        // engine `dc1.b` (its machine would stay paused once this engine dropped the note).
        const containerId = name.slice(prefix.length);
        if (!name.startsWith(prefix) || !CONTAINER_ID.test(containerId)) continue;
        let held: HeldNote | undefined;
        try {
          held = await this.readNote(join(dir, name));
          if (!held) continue;
          if (Date.now() < this.staleFrom(held)) {
            this.lookAgainWhenStale(containerId, held);
          } else if (silent) {
            failed.push(`capture ${held.note.captureId} of ${held.note.machineRef}: not tried, ${silent}`);
          } else if (await this.resumeInterrupted(containerId, held.note)) {
            resumed.push(held.note.machineRef);
          }
        } catch (e) {
          // One note that cannot be dealt with must not leave the machines of the others paused.
          const what = held ? `capture ${held.note.captureId} of ${held.note.machineRef}` : `note ${name}`;
          failed.push(`${what}: ${(explainEngineError(this.engineId, e) as Error).message}`);
          if (isUnanswered(e)) silent = `as engine ${this.engineId} left a call unanswered`;
        }
      }
      if (failed.length > 0) {
        throw new Error(
          `could not resume ${failed.length} interrupted capture(s), whose machines may still be paused (their notes stay, for the next start or capture of the machine): ${failed.join('; ')}`,
        );
      }
      return resumed;
    });
    this.resuming = resuming;
    return resuming;
  }

  /**
   * Looks at a note again once it would be stale, for as long as its capture keeps it fresh; and
   * every minute while resuming it fails (its machine may be paused), until the backend stops.
   */
  private lookAgainWhenStale(containerId: string, held: HeldNote, delayMs = this.staleFrom(held) - Date.now()) {
    const { machineRef, captureId } = held.note;
    setTimeout(() => {
      if (this.stopping.signal.aborted) return;
      this.resumeIfStill(containerId, captureId).catch(e => {
        this.options.logger?.warn(`recovery: could not resume ${machineRef} after capture ${captureId} (tries again in a minute): ${e}`);
        this.lookAgainWhenStale(containerId, held, RESUME_RETRY_MS);
      });
    }, delayMs).unref();
  }

  private async resumeIfStill(containerId: string, captureId: string) {
    const now = await this.readNote(this.notePath(containerId));
    if (now?.note.captureId !== captureId) return;
    if (Date.now() < this.staleFrom(now) && !this.ended.has(captureId)) this.lookAgainWhenStale(containerId, now);
    else await onEngine(this.engineId, () => this.resumeInterrupted(containerId, now.note));
  }

  /**
   * Removes an interrupted capture's files, tag and note, unpausing its machine first where the
   * note says it had it paused (true then); a capture interrupted while saving had unpaused it.
   * One interrupted while the backend recorded it may be recorded: only its note goes, and its
   * files and tag are left to removeUnrecorded, which asks the records. Each engine call waits at
   * most SWEEP_WAIT_MS (and no longer than `signal`, a capture's, where given): resumed from a
   * timer, one that waited for good would never be tried again.
   */
  private async resumeInterrupted(containerId: string, note: CaptureNote, signal?: AbortSignal): Promise<boolean> {
    if (note.phase === 'recording') {
      this.options.logger?.warn(
        `recovery: capture ${note.captureId} of ${note.machineRef} was interrupted while the backend recorded it: its files and tag stay unless the records lack it, when the backend's next look for unrecorded captures removes them`,
      );
      await this.dropNote(this.notePath(containerId));
      this.ended.delete(note.captureId);
      return false;
    }
    const paused = note.phase !== 'saving';
    if (paused) {
      const container = this.docker.getContainer(containerId);
      try {
        const { State } = await this.answerSweep(
          `the look at container ${containerId} (resuming capture ${note.captureId})`,
          abortSignal => container.inspect({ abortSignal }),
          signal,
        );
        if (State?.Paused) {
          await this.answerSweep(`the unpause of ${note.machineRef} (resuming capture ${note.captureId})`, abortSignal => container.unpause({ abortSignal }), signal);
        }
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
      }
    }
    this.options.logger?.warn(
      paused
        ? `recovery: capture ${note.captureId} of ${note.machineRef} was interrupted with the machine paused (since ${note.pausedAt}): unpaused it and removed what that capture left`
        : `recovery: capture ${note.captureId} of ${note.machineRef} was interrupted while saving into the capture store: removed what that capture left`,
    );
    await this.removeLeftovers(note.filePrefix, note.imageRef, signal);
    await this.dropNote(this.notePath(containerId));
    this.ended.delete(note.captureId);
    return paused;
  }

  /**
   * Removes a capture's files (temporary ones too), then its tag: a backend stopped in between
   * leaves the tag, by which removeUnrecorded finds the capture again.
   */
  private async removeLeftovers(filePrefix: string, imageRef: string, signal?: AbortSignal): Promise<void> {
    const dir = this.options.storeDirectory;
    const files = await readdir(dir).catch(e => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
      throw e;
    });
    await Promise.all(
      files
        .filter(f => f.startsWith(`${filePrefix}.`) || f.startsWith(`.${filePrefix}.`))
        .map(f => rm(join(dir, f), { force: true })),
    );
    await this.answerSweep(`the removal of the tag ${imageRef}`, abortSignal => this.removeTag(imageRef, abortSignal), signal);
  }

  removeUnrecorded(recorded: (machineRefs: string[]) => Promise<string[]>, machine?: MachineLocator): Promise<string[]> {
    return onEngine(this.engineId, async () => {
      const removed = await this.removeUnrecordedOn(recorded, machine);
      // The sweep of every machine also takes the layers no capture refers to any longer: a
      // discard removes only its archive, as other captures may share its layers.
      if (!machine) {
        const freed = await removeUnusedLayers(this.options.storeDirectory);
        if (freed > 0) this.options.logger?.info(`recovery: removed ${formatBytes(freed)} of layers no capture refers to any longer`);
      }
      return removed;
    });
  }

  /**
   * A capture takes its note before it tags its image, tags it before it writes a file, and lets
   * go of the note only once it is recorded or has removed what it made. So: the capture tags
   * first, then the notes, then the records. A capture under way at the first look is noted at the
   * second, or recorded (or gone) by the third; a tag that neither accounts for is left over, as
   * are its files (removed before the tag, everywhere: no file outlives its tag). No age is needed:
   * a backend stopped mid-capture keeps its note until it is stale, and then one left while
   * recording only loses its note (resumeInterrupted), the start-up look at the notes done first.
   */
  private async removeUnrecordedOn(
    recorded: (machineRefs: string[]) => Promise<string[]>,
    machine?: MachineLocator,
  ): Promise<string[]> {
    await this.resuming?.catch(() => {});
    // A repository per container: the machine's, or every one.
    const repository = machine ? this.repository(machine) : `${CAPTURE_REPOSITORY}/*`;
    const within = machine ? `${repository}:` : `${CAPTURE_REPOSITORY}/`;
    const images = await this.answerSweep('the list of capture images (looking for unrecorded captures)', abortSignal =>
      this.docker.listImages({ filters: { reference: [repository] }, abortSignal }),
    );
    const tags = images.flatMap(image =>
      (image.RepoTags ?? []).filter(ref => ref.startsWith(within)).map(ref => ({ ref, imageId: image.Id })),
    );
    if (tags.length === 0) return [];
    const noted = new Set((await this.notedCaptureIds()).map(dockerTag));
    const unnoted: { ref: string; captureId: string; machineRef: string }[] = [];
    for (const { ref, imageId } of tags) {
      const tag = ref.slice(ref.lastIndexOf(':') + 1);
      if (noted.has(tag)) continue;
      // The image's comment says whose capture it is: the repository is named after the
      // container, which another catalog machine (or a name differing in case) may share.
      const capture = await this.captureOf(imageId);
      if (!capture || dockerTag(capture.captureId) !== tag) continue;
      if (machine && capture.machineRef !== machine.machineRef) continue;
      unnoted.push({ ref, ...capture });
    }
    if (unnoted.length === 0) return [];
    const accounted = new Set(await recorded([...new Set(unnoted.map(c => c.machineRef))]));
    const removed: string[] = [];
    for (const { ref, captureId, machineRef } of unnoted) {
      if (accounted.has(captureId)) continue;
      this.options.logger?.warn(
        `recovery: capture ${captureId} of ${machineRef} was never recorded (a backend stopped before recording it, or its discard failed): removed its files and tag`,
      );
      await this.removeLeftovers(dockerTag(captureId), ref);
      removed.push(captureId);
    }
    return removed;
  }

  /**
   * The capture ids of every note in the store. A note that cannot be read yet (being written) is
   * an error: whose capture it holds is unknown.
   */
  private async notedCaptureIds(): Promise<string[]> {
    const dir = join(this.options.storeDirectory, CAPTURE_NOTES);
    const names = await readdir(dir).catch(e => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
      throw e;
    });
    const ids: string[] = [];
    // A `.tmp` is a note being rewritten, whose capture the note itself still names.
    for (const name of names.filter(n => !n.endsWith('.tmp'))) {
      const held = await this.readNote(join(dir, name));
      if (held) ids.push(held.note.captureId);
    }
    return ids;
  }

  /** The capture an image was committed for, and of which machine, as its comment says. */
  private async captureOf(imageId: string): Promise<{ captureId: string; machineRef: string } | undefined> {
    try {
      const { Comment } = await this.answerSweep(`the look at image ${imageId} (looking for unrecorded captures)`, abortSignal =>
        inspectImage(this.docker, imageId, abortSignal),
      );
      const [, captureId, machineRef] = CAPTURE_COMMENT.exec(Comment ?? '') ?? [];
      return captureId ? { captureId, machineRef } : undefined;
    } catch (e) {
      if (isStatus(e, 404)) return undefined;
      throw e;
    }
  }

  /**
   * A capture that ended here could not remove its note: the machine's next capture settles it
   * (see `ended`), and a look every minute removes it, with what that capture left, once the store lets it.
   */
  private noteLeft(containerId: string, held: HeldNote, error: unknown) {
    this.ended.add(held.note.captureId);
    this.options.logger?.warn(
      `recovery: capture ${held.note.captureId} of ${held.note.machineRef} could not remove its note from the capture store (${(error as Error).message}): removed once the store is writable again, or by the machine's next capture`,
    );
    this.lookAgainWhenStale(containerId, held, RESUME_RETRY_MS);
  }

  /**
   * Writes the note before anything else, exclusively: a note there already is another capture's
   * of the same machine (a conflict), unless it is stale, when its capture is resumed first.
   */
  private async takeNote(containerId: string, note: CaptureNote, signal?: AbortSignal): Promise<void> {
    const path = this.notePath(containerId);
    await mkdir(join(this.options.storeDirectory, CAPTURE_NOTES), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      let handle: FileHandle | undefined;
      try {
        handle = await open(path, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === 2) throw e;
      }
      if (handle) {
        try {
          // On the disk before the machine is paused: after a power loss of the backend's host, the
          // note is what unpauses it.
          await handle.writeFile(JSON.stringify(note));
          await handle.sync();
        } catch (e) {
          // Created but not written (a full store): gone again, or the machine's next capture
          // would find a note it cannot read, and be refused as if a machine might be paused.
          await handle.close().catch(() => {});
          await rm(path, { force: true }).catch(() => {});
          throw e;
        }
        await handle.close();
        await syncToDisk(dirname(path), { directory: true });
        return;
      }
      await this.settleNote(containerId, note.machineRef, signal);
    }
  }

  /**
   * A note on the machine is another capture's: a conflict while it may still run, else
   * resolved (its capture resumed). True where one was resolved.
   */
  private async settleNote(containerId: string, machineRef: string, signal?: AbortSignal): Promise<boolean> {
    const held = await this.readNote(this.notePath(containerId));
    if (!held) return false;
    if (Date.now() < this.staleFrom(held) && !this.ended.has(held.note.captureId)) throw underWay(machineRef, held.note);
    await this.resumeInterrupted(containerId, held.note, signal);
    return true;
  }

  /**
   * Rewrites the capture's own note (no one else writes it while it is there): through a rename,
   * so that no reader, nor a backend killed mid-write, leaves it half written; flushed to the disk,
   * so that a power loss does not bring back the phase before (a note of the saving phase found
   * after its capture was recorded would have its files removed).
   */
  private async rewriteNote(path: string, note: CaptureNote): Promise<void> {
    await writeFile(`${path}.tmp`, JSON.stringify(note), { flush: true });
    await rename(`${path}.tmp`, path);
    await syncToDisk(dirname(path), { directory: true });
  }

  /**
   * Lets go of a note, and first of the rewrite a backend killed mid-rewriteNote left beside it:
   * nothing else would remove that, once the note is gone.
   */
  private async dropNote(path: string): Promise<void> {
    await rm(`${path}.tmp`, { force: true });
    await rm(path, { force: true });
  }

  /** Where the machine's captured images are tagged, one tag per capture. */
  private repository(machine: MachineLocator) {
    return `${CAPTURE_REPOSITORY}/${dockerName(machine.container).toLowerCase()}`;
  }

  private imageRef(machine: MachineLocator, captureId: string) {
    return `${this.repository(machine)}:${dockerTag(captureId)}`;
  }

  capture(machine: MachineLocator, options: CaptureOptions): Promise<CapturedMachine> {
    const capture = onEngine(this.engineId, () => this.captureOn(machine, options));
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
      Promise.allSettled([...[...this.pausedNow].map(unpause => unpause()), ...this.capturesUnderWay]),
      new Promise(resolve => {
        timer = setTimeout(resolve, waitMs);
      }),
    ]);
    clearTimeout(timer);
  }

  /**
   * The error of a capture its caller's signal stopped (the capture's deadline): the signal's
   * reason, where the capture was, and what it left of production (`left`, before "nothing kept").
   */
  private stoppedError(machine: MachineLocator, signal: AbortSignal, step: string, left: string) {
    const reason =
      signal.reason instanceof Error && signal.reason.name !== 'AbortError'
        ? signal.reason.message
        : `capture of ${machine.machineRef} on engine ${this.engineId} was stopped by its caller`;
    return new ServiceUnavailableError(`${reason} while ${step}: ${left}nothing kept`);
  }

  private async captureOn(machine: MachineLocator, options: CaptureOptions): Promise<CapturedMachine> {
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
      if (this.options.requireMachineLabel && !labelledAs(info.Config?.Labels ?? undefined, machine.machineRef)) {
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
      memoryInUse = info.State?.Running ? this.memoryInUse(container) : Promise.resolve(undefined);
      wantsPause = (this.options.pause ?? true) && Boolean(info.State?.Running);
      // Paused by a capture under way (a conflict), by one that stopped (unpaused first, then
      // captured as any machine), or by someone else (no note: left paused, captured as it is).
      step = "settling an earlier capture's note";
      if (wantsPause && info.State?.Paused && (await this.settleNote(info.Id, machine.machineRef, signal))) {
        info = await container.inspect({ ...abortSignal });
      }

      step = 'inspecting its networks';
      for (const name of Object.keys(info.NetworkSettings?.Networks ?? {})) {
        try {
          const net = await inspectNetwork(this.docker, name, signal);
          const cfg = net.IPAM?.Config?.find((c: any) => c.Subnet && !c.Subnet.includes(':'));
          networks[name] = { subnet: cfg?.Subnet, gateway: cfg?.Gateway };
        } catch (e) {
          if (!isStatus(e, 404)) throw e;
        }
      }
    } catch (e) {
      if (signal?.aborted) throw this.stoppedError(machine, signal, step, '');
      throw e;
    }
    const ref = this.imageRef(machine, options.captureId);
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
    // Production stays paused no longer than the limit: past it the machine is unpaused at once
    // and the copy stops; a commit still running is left to return, and its image removed.
    const maxPauseMs = this.maxPauseMs;
    const pauseLimit = new AbortController();
    const stopping = this.stopping.signal;
    const whilePaused = AbortSignal.any([pauseLimit.signal, stopping, ...(options.signal ? [options.signal] : [])]);
    const whileSaving = options.signal ? AbortSignal.any([options.signal, stopping]) : stopping;
    // An unpause that failed (the engine went silent) stops the wait for the commit too: the
    // capture then ends saying production stays paused, and its note is tried again.
    const unpauseFailed = new AbortController();
    const whileCommitting = options.signal ? AbortSignal.any([options.signal, unpauseFailed.signal]) : unpauseFailed.signal;
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
    const notePath = this.notePath(info.Id);
    const note: CaptureNote = {
      machineRef: machine.machineRef,
      captureId: options.captureId,
      imageRef: ref,
      filePrefix: base,
      ...(pause ? { phase: 'paused', pausedAt: new Date().toISOString() } : { phase: 'saving' }),
    };
    let noteTaken = false;
    let heartbeat: NodeJS.Timeout | undefined;
    // Once: from the limit's timer or when the copy ends, whichever comes first; waited for no
    // longer than the grace the note gives it past the limit.
    const answerWaitMs = this.options.answerWaitMs ?? ANSWER_WAIT_MS;
    const unpause = () =>
      (unpausing ??= this.answer('the unpause', answerWaitMs, abortSignal => container.unpause({ abortSignal })).then(
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
      await this.takeNote(info.Id, note, signal);
      noteTaken = true;
      step = 'committing the image';
      // Refreshed for as long as the capture runs: a note of the saving phase left unrefreshed
      // is one a stopped backend left. Touched while paused too, where it does not count.
      heartbeat = setInterval(() => {
        const now = new Date();
        utimes(notePath, now, now).catch(() => {});
      }, NOTE_HEARTBEAT_MS);
      heartbeat.unref();
      if (pause) {
        try {
          await container.pause({ ...abortSignal });
        } catch (e) {
          // An answer lost on the way (a connection reset) may hide a pause that took: undone, or
          // where even that cannot be told, the note kept, by which it is unpaused later (below).
          // One the engine refused (409: paused by someone else meanwhile) is left as it is.
          const answered = (e as { statusCode?: number }).statusCode !== undefined;
          try {
            const look = () => this.answer('the look at its container', answerWaitMs, abortSignal => container.inspect({ abortSignal }));
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
        const limit = maxPauseMs < 1000 ? `${maxPauseMs} ms` : `${maxPauseMs / 1000} s`;
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
        for (const [i, mount] of volumeMounts(info).entries()) {
          step = `archiving the volume at ${mount.destination}`;
          const volumeArtifact = `${base}.volume-${i + 1}.tar`;
          const stream = (await container.getArchive({ path: mount.destination, abortSignal: whilePaused })) as unknown as Readable;
          const { size, checksum, keep } = await writeAtomically(stream, dir, volumeArtifact, written, whilePaused);
          volumesToKeep.push(keep);
          volumes.push({ destination: mount.destination, artifact: volumeArtifact, checksum, sizeBytes: size });
        }
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
          }
        }
      }
      whileSaving.throwIfAborted();
      step = 'saving it into the capture store';
      // Flushed once production runs again, before anything can record the capture.
      for (const keep of volumesToKeep) await keep();
      // Unpaused: a note left from here on is stale once no longer refreshed, not at the pause limit.
      if (pause) await this.rewriteNote(notePath, { ...note, phase: 'saving' });
      const stream = await saveImage(this.docker, ref, whileSaving);
      // Layers the store has (earlier captures of the machine, machines of the same image) are kept once.
      const image = await writeThinArchive(stream, dir, artifact, written, whileSaving, layersWritten);
      const { runtime, adaptations } = adaptInspectedContainer(info, networks, volumes);
      const memoryBytes = await memoryInUse;
      captured = {
        imageId: imageId!,
        sizeBytes: image.size,
        storedBytes: image.storedBytes + volumes.reduce((n, v) => n + v.sizeBytes, 0),
        checksum: image.checksum,
        artifact,
        runtime: memoryBytes === undefined ? runtime : { ...runtime, memoryBytes },
        adaptations,
        durationMs: Date.now() - started,
        pausedMs,
      };
      if (options.record) {
        // Recorded while the note still holds the capture: no one takes it for one left
        // unrecorded meanwhile (removeUnrecorded skips noted captures), and a backend stopped
        // before the record is in leaves a note that removes nothing by itself (resumeInterrupted).
        await this.rewriteNote(notePath, { ...note, phase: 'recording' });
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
      if (commitLeft) this.followCommit(commitLeft, commitAnswer, ref, options.captureId, machine.machineRef);
      // A tag left (an engine gone silent) goes with the note, or at the look for unrecorded captures.
      if (committed) {
        await this.answer("the removal of the capture's tag", answerWaitMs, abortSignal => this.removeTag(ref, abortSignal)).catch(tagError =>
          this.options.logger?.warn(`recovery: capture ${options.captureId} of ${machine.machineRef} could not remove its tag ${ref} yet: ${(tagError as Error).message}`),
        );
      }
      const kept: HeldNote = { note, heartbeatAt: Date.now() };
      // Last, so that a backend stopped meanwhile leaves it; kept while the machine may be paused.
      // One that cannot go (the store turned read-only) must not hide the capture's own error.
      if (noteTaken && !leftPaused) await this.dropNote(notePath).catch(dropError => this.noteLeft(info.Id, kept, dropError));
      // Left paused (its unpause failed): unpaused by its note once stale, as after a stopped
      // backend, rather than at the next start or at a capture of the machine an hour on.
      if (leftPaused) {
        this.ended.add(note.captureId);
        this.lookAgainWhenStale(info.Id, kept);
      }
      const machineState = unpauseError
        ? `could not unpause it (${(explainEngineError(this.engineId, unpauseError) as Error).message}): production stays paused; the backend tries again at ${new Date(this.staleFrom(kept)).toISOString()}`
        : 'unpaused';
      // Stopped by its caller (its deadline): said with what it left of production, where it may
      // have paused it (a pause whose answer the deadline cut, too).
      if (signal?.aborted) throw this.stoppedError(machine, signal, step, pausedAt || unpausing ? `${machineState}, ` : '');
      // Removed from production under the capture: a 404 of the pause, the commit or a copy.
      if (!removed && isStatus(e, 404)) {
        removed = await this.answer('the look at its container', answerWaitMs, abortSignal => container.inspect({ abortSignal })).then(
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
      if (pausedTooLong) throw new Error(`${pausedTooLong}: ${machineState}, nothing kept`);
      if (stopping.aborted) {
        throw new ServiceUnavailableError(
          `capture of ${machine.machineRef} stopped as the backend shuts down: ${pausedAt ? `${machineState}, ` : ''}nothing kept`,
        );
      }
      if (unpauseError) {
        const failure = e === unpauseError ? '' : ` failed while ${step} (${(e as Error).message}) and`;
        throw new Error(`capture of ${machine.machineRef}${failure} ${machineState}, nothing kept`);
      }
      // Node's own message names no file for a failed write (a full disk): the store is named here.
      if (isStoreError(e)) {
        throw new Error(
          `capture of ${machine.machineRef} could not write to the capture store ${this.options.storeDirectory} while ${step} (${e.message})${pausedAt ? `: ${machineState}` : ''}, nothing kept`,
        );
      }
      throw e;
    } finally {
      clearInterval(heartbeat);
    }
    // Kept (and recorded, where the caller records through the capture): nothing of it is removed
    // from here on, and the note goes. Recorded, a note that cannot go (the store turned
    // read-only) fails nothing: it holds the capture no longer, and goes once it can.
    await this.dropNote(notePath).catch(e => {
      if (!options.record) throw e;
      this.noteLeft(info.Id, { note: { ...note, phase: 'recording' }, heartbeatAt: Date.now() }, e);
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
  private async memoryInUse(container: Docker.Container): Promise<number | undefined> {
    try {
      const stream = (await container.stats({ stream: true, abortSignal: AbortSignal.timeout(STATS_WAIT_MS) } as { stream: true })) as AsyncIterable<Buffer>;
      let text = '';
      // One JSON document a line; leaving the loop ends the stream.
      for await (const chunk of stream) {
        text += chunk.toString('utf8');
        if (text.includes('\n')) break;
      }
      const stats = JSON.parse(text.slice(0, text.indexOf('\n') + 1 || undefined)) as Docker.ContainerStats;
      return memoryInUseOf(stats.memory_stats);
    } catch (e) {
      this.options.logger?.debug(`Could not read the memory of container ${container.id}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /**
   * Removes the tag of a commit its capture stopped waiting for, as soon as the engine answers
   * it; listened for COMMIT_FOLLOW_MS at most, and not past the backend's shutdown (the request
   * is then given up, and the tag left to the look for unrecorded captures).
   */
  private followCommit(commit: Promise<unknown>, answer: AbortController, ref: string, captureId: string, machineRef: string) {
    const giveUp = () => answer.abort();
    const timer = setTimeout(giveUp, COMMIT_FOLLOW_MS);
    timer.unref();
    const stopping = this.stopping.signal;
    if (stopping.aborted) giveUp();
    else stopping.addEventListener('abort', giveUp, { once: true });
    const done = () => {
      clearTimeout(timer);
      stopping.removeEventListener('abort', giveUp);
    };
    commit.then(
      async () => {
        done();
        try {
          await this.answerSweep(`the removal of the tag ${ref}`, abortSignal => this.removeTag(ref, abortSignal));
          this.options.logger?.info(`recovery: removed ${ref}, which engine ${this.engineId} tagged for capture ${captureId} of ${machineRef} after that capture had stopped`);
        } catch (e) {
          this.options.logger?.warn(
            `recovery: could not remove ${ref}, which engine ${this.engineId} tagged for capture ${captureId} of ${machineRef} after that capture had stopped (${(explainEngineError(this.engineId, e) as Error).message}): left to the look for unrecorded captures`,
          );
        }
      },
      // Refused, or given up: nothing tagged, or a tag the look for unrecorded captures finds.
      done,
    );
  }

  private async removeTag(ref: string, abortSignal?: AbortSignal) {
    try {
      // Removing the tag (not forcing) leaves the image if running containers use it.
      await this.docker.getImage(ref).remove({ noprune: false, ...(abortSignal && { abortSignal }) });
    } catch (e) {
      if (!isStatus(e, 404, 409)) throw e;
    }
  }

  discard(capture: { captureId: string; artifact: string; volumes?: CapturedVolume[] }): Promise<void> {
    return onEngine(this.engineId, () => this.discardOn(capture));
  }

  private async discardOn(capture: { captureId: string; artifact: string; volumes?: CapturedVolume[] }): Promise<void> {
    for (const volume of capture.volumes ?? []) {
      await rm(artifactPath(this.options.storeDirectory, volume.artifact), { force: true });
    }
    await rm(artifactPath(this.options.storeDirectory, capture.artifact), { force: true });
    // The tag was `<repo>/<container>:<captureId>`: find it by tag suffix.
    const suffix = `:${dockerTag(capture.captureId)}`;
    const images = await this.answerSweep(`the list of capture ${capture.captureId}'s images (discarding it)`, abortSignal =>
      this.docker.listImages({ filters: { reference: [`${CAPTURE_REPOSITORY}/*${suffix}`] }, abortSignal }),
    );
    for (const image of images) {
      for (const t of image.RepoTags ?? []) {
        if (t.startsWith(`${CAPTURE_REPOSITORY}/`) && t.endsWith(suffix)) {
          await this.answerSweep(`the removal of the tag ${t} (discarding capture ${capture.captureId})`, abortSignal => this.removeTag(t, abortSignal));
        }
      }
    }
  }
}
