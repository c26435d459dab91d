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
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { adaptInspectedContainer, dockerName, dockerTag, type NetworkIdentity } from './adapt';
import { isStatus } from './lib/dockerStreams';
import { onEngine } from './lib/engineErrors';

/** Repository of the images a capture commits: `recovery-capture/<container>:<captureId>`. */
export const CAPTURE_REPOSITORY = 'recovery-capture';

/** Resolves a capture artifact (relative to the capture store, or absolute). */
export function artifactPath(storeDirectory: string, artifact: string): string {
  return isAbsolute(artifact) ? artifact : join(storeDirectory, artifact);
}

/**
 * Captures primary machines running as containers on one Docker engine: `docker commit`
 * (paused, for consistency) tagged per capture, then `docker save` streamed into the capture
 * store as `<captureId>.tar`, checksummed while streaming, written atomically.
 */
export class DockerCaptureSource implements CaptureSource {
  constructor(
    readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: { storeDirectory: string; pause?: boolean },
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
    const { runtime, adaptations } = adaptInspectedContainer(info, networks);

    const ref = this.imageRef(machine, options.captureId);
    const [repo, tag] = ref.split(':');
    const committed = (await container.commit({
      repo,
      tag,
      pause: this.options.pause ?? true,
      comment: `recovery capture ${options.captureId} of ${machine.machineRef}`,
    })) as { Id: string };
    const imageId = committed.Id;

    const dir = this.options.storeDirectory;
    const artifact = `${dockerTag(options.captureId)}.tar`;
    const finalPath = join(dir, artifact);
    const tempPath = join(dir, `.${artifact}.${randomBytes(4).toString('hex')}.tmp`);
    const hash = createHash('sha256');
    let size: number;
    // From the commit on, a failure (store directory included) must leave neither file nor tag.
    try {
      await mkdir(dir, { recursive: true });
      const stream = (await this.docker.getImage(ref).get()) as unknown as Readable;
      const hasher = new Transform({
        transform(chunk, _enc, cb) {
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      const out = createWriteStream(tempPath, { flags: 'wx' });
      await pipeline(stream, hasher, out, { signal: options.signal });
      await rename(tempPath, finalPath);
      ({ size } = await stat(finalPath));
    } catch (e) {
      // Best effort (the directory may be what failed): the capture's own error is the one to report.
      await Promise.allSettled([rm(tempPath, { force: true }), rm(finalPath, { force: true })]);
      await this.removeTag(ref);
      throw e;
    }
    return {
      imageId,
      sizeBytes: size,
      checksum: `sha256:${hash.digest('hex')}`,
      artifact,
      runtime,
      adaptations,
      durationMs: Date.now() - started,
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

  discard(capture: { captureId: string; artifact: string }): Promise<void> {
    return onEngine(this.engineId, () => this.discardOn(capture));
  }

  private async discardOn(capture: { captureId: string; artifact: string }): Promise<void> {
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
