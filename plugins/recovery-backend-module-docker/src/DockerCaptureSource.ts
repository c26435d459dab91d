import type Docker from 'dockerode';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError, NotFoundError, ServiceUnavailableError } from '@backstage/errors';
import type {
  CaptureSource,
  CapturedMachine,
  CapturedVolume,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { adaptInspectedContainer, dockerName, dockerTag, volumeMounts, type NetworkIdentity } from './adapt';
import { isStatus } from './lib/dockerStreams';
import { onEngine } from './lib/engineErrors';

/** Repository of the images a capture commits: `recovery-capture/<container>:<captureId>`. */
export const CAPTURE_REPOSITORY = 'recovery-capture';

/** Resolves a capture artifact (relative to the capture store, or absolute). */
export function artifactPath(storeDirectory: string, artifact: string): string {
  return isAbsolute(artifact) ? artifact : join(storeDirectory, artifact);
}

/**
 * Streams `stream` into `<dir>/<name>` through sha256: a temporary file renamed into place, so
 * the store never holds a partial archive. Both paths go into `written` first, for the caller's
 * cleanup on failure.
 */
async function writeAtomically(
  stream: Readable,
  dir: string,
  name: string,
  written: string[],
  signal?: AbortSignal,
): Promise<{ size: number; checksum: string }> {
  const finalPath = join(dir, name);
  const tempPath = join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
  written.push(tempPath, finalPath);
  const hash = createHash('sha256');
  const hasher = new Transform({
    transform(chunk, _enc, cb) {
      hash.update(chunk);
      cb(null, chunk);
    },
  });
  const out = createWriteStream(tempPath, { flags: 'wx' });
  await pipeline(stream, hasher, out, { signal });
  await rename(tempPath, finalPath);
  const { size } = await stat(finalPath);
  return { size, checksum: `sha256:${hash.digest('hex')}` };
}

/** Longest a capture keeps production paused unless configured (recovery.docker.maxCapturePause). */
const DEFAULT_MAX_PAUSE_MS = 5 * 60_000;

/** Longest the backend's shutdown waits for the captures it stops to unpause and clean up. */
const STOP_WAIT_MS = 10_000;

/**
 * Where a capture notes, before it pauses a machine, that it did so (one file per engine and
 * container, removed once unpaused): a backend stopped in between leaves the note, and the
 * machine is unpaused from it at the next start or capture instead of staying paused for good.
 */
const PAUSE_NOTES = '.paused';
function underWay(machineRef: string, held: PauseNote) {
  return new ConflictError(
    `machine ${machineRef}: capture ${held.captureId} is under way (paused it at ${held.pausedAt}); one capture of a machine at a time`,
  );
}

/** A full container id, as `docker inspect` gives it: what a note's name ends with. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** How long past its pause limit a note must be before it counts as left by a stopped capture. */
const NOTE_GRACE_MS = 30_000;

interface PauseNote {
  machineRef: string;
  captureId: string;
  /** The capture's image tag and the prefix of its files, removed with the note: never stored. */
  imageRef: string;
  filePrefix: string;
  pausedAt: string;
}

/**
 * Captures primary machines running as containers on one Docker engine: paused (for
 * consistency), `docker commit` tagged per capture and each volume's content archived
 * (`docker cp`), then unpaused and `docker save` streamed into the capture store as
 * `<captureId>.tar`, the volumes as `<captureId>.volume-<n>.tar`; each checksummed while
 * streaming, written atomically.
 */
export class DockerCaptureSource implements CaptureSource {
  /** Aborted when the backend shuts down: captures under way stop, and no new one starts. */
  private readonly stopping = new AbortController();
  /** Captures under way, until they have settled (unpaused, and cleaned up after a failure). */
  private readonly capturesUnderWay = new Set<Promise<unknown>>();
  /** Unpauses the machine of each capture that has it paused now. */
  private readonly pausedNow = new Set<() => Promise<void>>();

  constructor(
    readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: {
      storeDirectory: string;
      pause?: boolean;
      maxPauseMs?: number;
      logger?: LoggerService;
    },
  ) {}

  private pauseNotePath(containerId: string) {
    return join(this.options.storeDirectory, PAUSE_NOTES, `${dockerName(this.engineId)}.${containerId}`);
  }

  private get maxPauseMs() {
    return this.options.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS;
  }

  /** When a note's capture, if it still ran, would have unpaused its machine by its own limit. */
  private staleFrom(note: PauseNote): number {
    return Date.parse(note.pausedAt) + this.maxPauseMs + NOTE_GRACE_MS;
  }

  private async readPauseNote(path: string): Promise<PauseNote | undefined> {
    try {
      return JSON.parse(await readFile(path, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`pause note ${path} is unreadable, so its machine may still be paused: ${(e as Error).message}`);
    }
  }

  /**
   * Unpauses the machines that a capture paused and never unpaused (the backend stopped in
   * between) and removes what that capture left; a note too recent to tell (another backend's
   * capture may still run) is looked at again once it would have passed its limit. Run at
   * start-up; returns the machines unpaused now.
   */
  resumeInterruptedCaptures(): Promise<string[]> {
    return onEngine(this.engineId, async () => {
      const dir = join(this.options.storeDirectory, PAUSE_NOTES);
      const prefix = `${dockerName(this.engineId)}.`;
      const names = await readdir(dir).catch(e => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
        throw e;
      });
      const resumed: string[] = [];
      for (const name of names.sort()) {
        // This engine's id and a whole container id: engine `dc1` must not take the notes of
        // engine `dc1.b` (its machine would stay paused once this engine dropped the note).
        const containerId = name.slice(prefix.length);
        if (!name.startsWith(prefix) || !CONTAINER_ID.test(containerId)) continue;
        const note = await this.readPauseNote(join(dir, name));
        if (!note) continue;
        const wait = this.staleFrom(note) - Date.now();
        if (wait <= 0) {
          await this.resumeInterrupted(containerId, note);
          resumed.push(note.machineRef);
          continue;
        }
        setTimeout(() => {
          this.resumeIfStill(containerId, note).catch(e =>
            this.options.logger?.warn(`recovery: could not unpause ${note.machineRef} after capture ${note.captureId}: ${e}`),
          );
        }, wait).unref();
      }
      return resumed;
    });
  }

  private async resumeIfStill(containerId: string, note: PauseNote) {
    const now = await this.readPauseNote(this.pauseNotePath(containerId));
    if (now?.captureId === note.captureId) await onEngine(this.engineId, () => this.resumeInterrupted(containerId, now));
  }

  /** Unpauses what an interrupted capture paused, and removes its files, tag and note. */
  private async resumeInterrupted(containerId: string, note: PauseNote): Promise<void> {
    const container = this.docker.getContainer(containerId);
    try {
      if ((await container.inspect()).State?.Paused) await container.unpause();
    } catch (e) {
      if (!isStatus(e, 404)) throw e;
    }
    this.options.logger?.warn(
      `recovery: capture ${note.captureId} of ${note.machineRef} was interrupted with the machine paused (since ${note.pausedAt}): unpaused it and removed what that capture left`,
    );
    const dir = this.options.storeDirectory;
    const files = await readdir(dir);
    await Promise.all(
      files
        .filter(f => f.startsWith(`${note.filePrefix}.`) || f.startsWith(`.${note.filePrefix}.`))
        .map(f => rm(join(dir, f), { force: true })),
    );
    await this.removeTag(note.imageRef);
    await rm(this.pauseNotePath(containerId), { force: true });
  }

  /**
   * Writes the note before pausing, exclusively: a note there already is another capture's of
   * the same machine (a conflict), unless it is stale, when its capture is resumed first.
   */
  private async takePauseNote(containerId: string, note: PauseNote): Promise<void> {
    const path = this.pauseNotePath(containerId);
    await mkdir(join(this.options.storeDirectory, PAUSE_NOTES), { recursive: true });
    for (let attempt = 0; ; attempt++) {
      try {
        await writeFile(path, JSON.stringify(note), { flag: 'wx' });
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === 2) throw e;
      }
      await this.settleNote(containerId, note.machineRef);
    }
  }

  /**
   * A note on the machine is another capture's: a conflict while it may still run, else
   * resolved (its capture resumed). True where one was resolved.
   */
  private async settleNote(containerId: string, machineRef: string): Promise<boolean> {
    const held = await this.readPauseNote(this.pauseNotePath(containerId));
    if (!held) return false;
    if (Date.now() < this.staleFrom(held)) throw underWay(machineRef, held);
    await this.resumeInterrupted(containerId, held);
    return true;
  }

  private imageRef(machine: MachineLocator, captureId: string) {
    return `${CAPTURE_REPOSITORY}/${dockerName(machine.container).toLowerCase()}:${dockerTag(captureId)}`;
  }

  capture(
    machine: MachineLocator,
    options: { captureId: string; signal?: AbortSignal },
  ): Promise<CapturedMachine> {
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
   * Waits for that at most `waitMs`: a machine that stays paused (an unreachable engine) keeps
   * its pause note, by which the next start unpauses it.
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

  private async captureOn(
    machine: MachineLocator,
    options: { captureId: string; signal?: AbortSignal },
  ): Promise<CapturedMachine> {
    const started = Date.now();
    const container = this.docker.getContainer(machine.container);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await container.inspect();
    } catch (e) {
      if (isStatus(e, 404)) {
        throw new NotFoundError(
          `machine ${machine.machineRef}: no container "${machine.container}" on engine ${this.engineId}`,
        );
      }
      throw e;
    }
    options.signal?.throwIfAborted();
    const wantsPause = (this.options.pause ?? true) && Boolean(info.State?.Running);
    // Paused by a capture under way (a conflict), by one that stopped (unpaused first, then
    // captured as any machine), or by someone else (no note: left paused, captured as it is).
    if (wantsPause && info.State?.Paused && (await this.settleNote(info.Id, machine.machineRef))) {
      info = await container.inspect();
    }

    const networks: Record<string, NetworkIdentity> = {};
    for (const name of Object.keys(info.NetworkSettings?.Networks ?? {})) {
      try {
        const net = await this.docker.getNetwork(name).inspect();
        const cfg = net.IPAM?.Config?.find((c: any) => c.Subnet && !c.Subnet.includes(':'));
        networks[name] = { subnet: cfg?.Subnet, gateway: cfg?.Gateway };
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
      }
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
    let committed = false;
    let imageId: string;
    const volumes: CapturedVolume[] = [];
    let image: { size: number; checksum: string };
    let pausedMs = 0;
    // Production stays paused no longer than the limit: past it the machine is unpaused at once
    // and the copy stops; a commit still running is left to return, and its image removed.
    const maxPauseMs = this.maxPauseMs;
    const pauseLimit = new AbortController();
    const stopping = this.stopping.signal;
    const whilePaused = AbortSignal.any([pauseLimit.signal, stopping, ...(options.signal ? [options.signal] : [])]);
    const whileSaving = options.signal ? AbortSignal.any([options.signal, stopping]) : stopping;
    let step = 'committing the image';
    let timer: NodeJS.Timeout | undefined;
    let pausedTooLong: string | undefined;
    let unpauseError: Error | undefined;
    let pausedAt = 0;
    let unpausing: Promise<void> | undefined;
    const notePath = this.pauseNotePath(info.Id);
    // Once: from the limit's timer or when the copy ends, whichever comes first.
    const unpause = () =>
      (unpausing ??= container.unpause().then(async () => {
        pausedMs = Math.round(performance.now() - pausedAt);
        await rm(notePath, { force: true });
      }));
    // A failure (store directory included) must leave neither file nor tag.
    try {
      stopping.throwIfAborted();
      if (pause) {
        const note: PauseNote = {
          machineRef: machine.machineRef,
          captureId: options.captureId,
          imageRef: ref,
          filePrefix: base,
          pausedAt: new Date().toISOString(),
        };
        await this.takePauseNote(info.Id, note);
        try {
          await container.pause();
        } catch (e) {
          await rm(notePath, { force: true });
          throw e;
        }
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
        const result = (await container.commit({
          repo,
          tag,
          pause: false,
          comment: `recovery capture ${options.captureId} of ${machine.machineRef}`,
        })) as { Id: string };
        committed = true;
        imageId = result.Id;
        whilePaused.throwIfAborted();
        await mkdir(dir, { recursive: true });
        for (const [i, mount] of volumeMounts(info).entries()) {
          step = `archiving the volume at ${mount.destination}`;
          const volumeArtifact = `${base}.volume-${i + 1}.tar`;
          const stream = (await container.getArchive({ path: mount.destination, abortSignal: whilePaused })) as unknown as Readable;
          const { size, checksum } = await writeAtomically(stream, dir, volumeArtifact, written, whilePaused);
          volumes.push({ destination: mount.destination, artifact: volumeArtifact, checksum, sizeBytes: size });
        }
        failed = false;
      } finally {
        clearTimeout(timer);
        if (pause) {
          try {
            await unpause();
          } catch (e) {
            // The capture's own error is the one to report; otherwise production stays paused: say so.
            // The pause note stays, so the next start or capture unpauses it.
            if (!failed) throw e;
            unpauseError = e as Error;
          } finally {
            this.pausedNow.delete(unpause);
          }
        }
      }
      whileSaving.throwIfAborted();
      const stream = (await this.docker.getImage(ref).get()) as unknown as Readable;
      image = await writeAtomically(stream, dir, artifact, written, whileSaving);
    } catch (e) {
      clearTimeout(timer);
      // Best effort (the directory may be what failed): the capture's own error is the one to report.
      await Promise.allSettled(written.map(f => rm(f, { force: true })));
      if (committed) await this.removeTag(ref);
      if (!options.signal?.aborted) {
        const machineState = unpauseError ? `could not unpause it (${unpauseError.message})` : 'unpaused';
        // Past the pause limit, the limit is what went wrong, not the stream it cut.
        if (pausedTooLong) throw new Error(`${pausedTooLong}: ${machineState}, nothing kept`);
        if (stopping.aborted) {
          throw new ServiceUnavailableError(
            `capture of ${machine.machineRef} stopped as the backend shuts down: ${pausedAt ? `${machineState}, ` : ''}nothing kept`,
          );
        }
      }
      throw e;
    }
    const { runtime, adaptations } = adaptInspectedContainer(info, networks, volumes);
    return {
      imageId: imageId!,
      sizeBytes: image.size,
      checksum: image.checksum,
      artifact,
      runtime,
      adaptations,
      durationMs: Date.now() - started,
      pausedMs,
    };
  }

  private async removeTag(ref: string) {
    try {
      // Removing the tag (not forcing) leaves the image if running containers use it.
      await this.docker.getImage(ref).remove({ noprune: false });
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
    const images = await this.docker.listImages({
      filters: { reference: [`${CAPTURE_REPOSITORY}/*${suffix}`] },
    });
    for (const image of images) {
      for (const t of image.RepoTags ?? []) {
        if (t.startsWith(`${CAPTURE_REPOSITORY}/`) && t.endsWith(suffix)) await this.removeTag(t);
      }
    }
  }
}
