import type Docker from 'dockerode';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NotFoundError } from '@backstage/errors';
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

/**
 * Captures primary machines running as containers on one Docker engine: paused (for
 * consistency), `docker commit` tagged per capture and each volume's content archived
 * (`docker cp`), then unpaused and `docker save` streamed into the capture store as
 * `<captureId>.tar`, the volumes as `<captureId>.volume-<n>.tar`; each checksummed while
 * streaming, written atomically.
 */
export class DockerCaptureSource implements CaptureSource {
  constructor(
    readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: { storeDirectory: string; pause?: boolean; maxPauseMs?: number },
  ) {}

  private imageRef(machine: MachineLocator, captureId: string) {
    return `${CAPTURE_REPOSITORY}/${dockerName(machine.container).toLowerCase()}:${dockerTag(captureId)}`;
  }

  capture(
    machine: MachineLocator,
    options: { captureId: string; signal?: AbortSignal },
  ): Promise<CapturedMachine> {
    return onEngine(this.engineId, () => this.captureOn(machine, options));
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
    const pause = (this.options.pause ?? true) && Boolean(info.State?.Running) && !info.State?.Paused;
    const written: string[] = [];
    let committed = false;
    let imageId: string;
    const volumes: CapturedVolume[] = [];
    let image: { size: number; checksum: string };
    let pausedAt: number | undefined;
    let pausedMs = 0;
    // Production stays paused no longer than the limit: past it the copy stops and fails.
    const maxPauseMs = this.options.maxPauseMs ?? DEFAULT_MAX_PAUSE_MS;
    const pauseLimit = new AbortController();
    const whilePaused = options.signal ? AbortSignal.any([options.signal, pauseLimit.signal]) : pauseLimit.signal;
    let step = 'committing the image';
    let timer: NodeJS.Timeout | undefined;
    let pausedTooLong: string | undefined;
    let unpauseError: Error | undefined;
    // A failure (store directory included) must leave neither file nor tag.
    try {
      if (pause) {
        await container.pause();
        pausedAt = performance.now();
        const limit = maxPauseMs < 1000 ? `${maxPauseMs} ms` : `${maxPauseMs / 1000} s`;
        timer = setTimeout(() => {
          pausedTooLong = `capture of ${machine.machineRef} kept production paused past the ${limit} limit (recovery.docker.maxCapturePause) while ${step}`;
          pauseLimit.abort();
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
          const stream = (await container.getArchive({ path: mount.destination })) as unknown as Readable;
          const { size, checksum } = await writeAtomically(stream, dir, volumeArtifact, written, whilePaused);
          volumes.push({ destination: mount.destination, artifact: volumeArtifact, checksum, sizeBytes: size });
        }
        failed = false;
      } finally {
        clearTimeout(timer);
        if (pause) {
          try {
            await container.unpause();
            pausedMs = Math.round(performance.now() - pausedAt!);
          } catch (e) {
            // The capture's own error is the one to report; otherwise production stays paused: say so.
            if (!failed) throw e;
            unpauseError = e as Error;
          }
        }
      }
      const stream = (await this.docker.getImage(ref).get()) as unknown as Readable;
      image = await writeAtomically(stream, dir, artifact, written, options.signal);
    } catch (e) {
      clearTimeout(timer);
      // Best effort (the directory may be what failed): the capture's own error is the one to report.
      await Promise.allSettled(written.map(f => rm(f, { force: true })));
      if (committed) await this.removeTag(ref);
      // Past the pause limit, the limit is what went wrong, not the stream it cut.
      if (pausedTooLong && !options.signal?.aborted) {
        const machineState = unpauseError ? `could not unpause it (${unpauseError.message})` : 'unpaused';
        throw new Error(`${pausedTooLong}: ${machineState}, nothing kept`);
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
