import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { posix } from 'node:path';
import { Readable } from 'node:stream';
import { InputError, NotFoundError } from '@backstage/errors';
import type { RestorableCapture } from '@backstage-recovery/plugin-recovery-node';
import { artifactPath } from './captureNames';
import { followProgress, isStatus } from './lib/dockerStreams';
import { hasImage, removeUnusedImages } from './lib/engineImages';
import { corruptLayersOf, readCaptureArchive } from './lib/layerStore';
import { rewriteTarFiles } from './lib/tar';

// A capture's files in the capture store (`storeDirectory`), on their way onto the recovery
// engine: checksums verified, the image archive loaded, the volume archives put back.

/** Streams the capture file through sha256 and fails unless it matches the recorded checksum. */
export async function verifyArtifact(
  storeDirectory: string,
  capture: Pick<RestorableCapture, 'captureId' | 'artifact' | 'checksum'>,
): Promise<void> {
  await verifyFile(storeDirectory, capture.captureId, '', capture.artifact, capture.checksum);
}

/** The same for each volume archive of the capture (none in captures older than volumes). */
export async function verifyVolumes(storeDirectory: string, capture: Pick<RestorableCapture, 'captureId' | 'runtime'>): Promise<void> {
  for (const volume of capture.runtime.volumes ?? []) {
    await verifyFile(storeDirectory, capture.captureId, `volume ${volume.destination} `, volume.artifact, volume.checksum);
  }
}

/** `what` names the file for people (`volume /data `), empty for the image archive. */
async function verifyFile(storeDirectory: string, captureId: string, what: string, artifact: string, checksum: string): Promise<void> {
  const file = artifactPath(storeDirectory, artifact);
  try {
    await access(file);
  } catch {
    throw new NotFoundError(`capture ${captureId}: ${what}artifact ${file} not found`);
  }
  const hash = createHash('sha256');
  try {
    for await (const chunk of readCaptureArchive(storeDirectory, file)) hash.update(chunk);
  } catch (e) {
    throw new NotFoundError(`capture ${captureId}: ${what}artifact ${file}: ${(e as Error).message}`);
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== checksum) {
    // A layer the store keeps once may be what changed: named, as every capture sharing it is broken too.
    const layers = what ? [] : await corruptLayersOf(storeDirectory, file).catch(() => []);
    const where = layers.length > 0 ? ` (layer file${layers.length === 1 ? '' : 's'} ${layers.join(', ')} no longer holding ${layers.length === 1 ? 'its' : 'their'} content: the machine's next capture writes ${layers.length === 1 ? 'it' : 'them'} anew)` : '';
    throw new InputError(
      `capture ${captureId}: checksum mismatch for ${what ? `${what}(${file})` : file}${where}: expected ${checksum}, got ${actual}; refusing to restore it`,
    );
  }
}

/**
 * Puts each volume's captured content back at its destination in the created (not started)
 * container: the archive's entries are under the destination's last element (`data/…` for
 * `/data`), so it is extracted in the destination's parent directory.
 */
export async function restoreVolumes(storeDirectory: string, container: Docker.Container, capture: RestorableCapture): Promise<void> {
  for (const volume of capture.runtime.volumes ?? []) {
    const file = artifactPath(storeDirectory, volume.artifact);
    const parent = posix.dirname(posix.normalize(volume.destination));
    const archive = createReadStream(file);
    try {
      await container.putArchive(archive, { path: parent });
    } catch (e) {
      archive.destroy();
      throw new Error(
        `capture ${capture.captureId}: volume ${volume.destination} could not be restored into machine ${capture.machineRef}: ${(e as Error).message}`,
      );
    }
  }
}

/**
 * `docker load`s the capture file; named `as` where given, in place of the archive's own name
 * (the capture's tag on the primary engine).
 */
export async function loadArtifact(
  docker: Docker,
  storeDirectory: string,
  capture: Pick<RestorableCapture, 'captureId' | 'artifact' | 'imageId'>,
  as?: string,
): Promise<void> {
  const file = artifactPath(storeDirectory, capture.artifact);
  const archive = Readable.from(readCaptureArchive(storeDirectory, file));
  const body = as ? Readable.from(rewriteTarFiles(archive, { 'manifest.json': manifest => namedIn(manifest, as) })) : archive;
  let messages: string[];
  try {
    const response = await docker.loadImage(body as any, { quiet: true } as any);
    messages = await followProgress(response as unknown as Readable);
  } finally {
    body.destroy();
    archive.destroy();
  }
  if (await hasImage(docker, capture.imageId)) return;
  // The file held another image: removed, so a failed restore leaves nothing on the host.
  await removeUnusedImages(docker, await imagesLoaded(docker, messages));
  throw new Error(`capture ${capture.captureId}: ${file} loaded but image ${capture.imageId} is missing`);
}

/** The image ids `docker load` reported ("Loaded image ID: …", or "Loaded image: <tag>"). */
async function imagesLoaded(docker: Docker, messages: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const m of messages) {
    const id = /^Loaded image ID: (\S+)/.exec(m)?.[1];
    const tag = /^Loaded image: (\S+)/.exec(m)?.[1];
    if (id) ids.push(id);
    else if (tag) {
      try {
        ids.push((await docker.getImage(tag).inspect()).Id);
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
      }
    }
  }
  return ids;
}

/** A `docker save` archive's manifest with each image in it named `ref`, and by nothing else. */
function namedIn(manifest: Buffer, ref: string): Buffer {
  const images = JSON.parse(manifest.toString('utf8')) as Array<Record<string, unknown>>;
  return Buffer.from(JSON.stringify(images.map(image => ({ ...image, RepoTags: [ref] }))));
}
