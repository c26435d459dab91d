import type Docker from 'dockerode';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { NotFoundError } from '@backstage/errors';
import {
  CaptureDamagedError,
  type RestorableCapture,
  type Transfer,
  type TransferProgressLines,
} from '@backstage-recovery/plugin-recovery-node';
import { artifactPath } from './captureNames';
import { counted, followProgress, isStatus } from './lib/dockerStreams';
import { hasImage, removeUnusedImages } from './lib/engineImages';
import {
  corruptLayersOf,
  LAYERS_DIRECTORY,
  readCaptureArchive,
} from './lib/layerStore';
import { rewriteTarFiles } from './lib/tar';

// A capture's files in the capture store (`storeDirectory`), on their way onto the recovery
// engine: checksums verified, the image archive loaded, the volume archives put back.

/**
 * The bytes of the capture's image archive, as a restore reads it back: what the capture stores
 * less its volumes' archives. Undefined where the capture does not say its size.
 */
function imageArchiveBytes(
  capture: Partial<Pick<RestorableCapture, 'sizeBytes' | 'runtime'>>,
): number | undefined {
  if (capture.sizeBytes === undefined) return undefined;
  const volumes = (capture.runtime?.volumes ?? []).reduce(
    (sum, v) => sum + v.sizeBytes,
    0,
  );
  return capture.sizeBytes > volumes ? capture.sizeBytes - volumes : undefined;
}

/**
 * Streams the capture file through sha256 and fails unless it matches the recorded checksum: a
 * CaptureDamagedError where the capture's content is wrong or gone, any other error where the store
 * could not be read. `signal` stops the reading; `progress` hears how it comes along.
 */
export async function verifyArtifact(
  storeDirectory: string,
  capture: Pick<RestorableCapture, 'captureId' | 'artifact' | 'checksum'> &
    Partial<Pick<RestorableCapture, 'sizeBytes' | 'runtime'>>,
  signal?: AbortSignal,
  progress?: TransferProgressLines,
): Promise<void> {
  await verifyFile(
    storeDirectory,
    capture.captureId,
    '',
    capture.artifact,
    capture.checksum,
    signal,
    progress?.start(
      'verifying',
      'the image archive',
      imageArchiveBytes(capture),
    ),
  );
}

/** The same for each volume archive of the capture (none in captures older than volumes). */
export async function verifyVolumes(
  storeDirectory: string,
  capture: Pick<RestorableCapture, 'captureId' | 'runtime'>,
  signal?: AbortSignal,
  progress?: TransferProgressLines,
): Promise<void> {
  for (const volume of capture.runtime.volumes ?? []) {
    await verifyFile(
      storeDirectory,
      capture.captureId,
      `volume ${volume.destination} `,
      volume.artifact,
      volume.checksum,
      signal,
      progress?.start(
        'verifying',
        `volume ${volume.destination}`,
        volume.sizeBytes,
      ),
    );
  }
}

/** What a damaged capture comes to, after what is wrong with it; what to do is the run's to say (it knows what else is kept). */
const DAMAGED = 'the capture is damaged and cannot be restored';

/**
 * Whether the capture store is the store itself: its layers directory is there, as it is once the
 * store holds a capture (writeThinArchive makes it, nothing removes it). An empty mount point (its
 * disk or share not mounted), or a layers directory gone with the disk it was on, is no store: a
 * file missing from it says nothing of the capture.
 */
async function storeIsThere(storeDirectory: string): Promise<boolean> {
  return stat(join(storeDirectory, LAYERS_DIRECTORY)).then(
    s => s.isDirectory(),
    () => false,
  );
}

/**
 * Whether `e`, met reading a capture's file, proves the capture damaged: the file gone (ENOENT)
 * from a store that is there. Any other code (EACCES, ENOTDIR, EIO…) is the store that could not
 * be read.
 */
async function goneFromStore(
  e: unknown,
  storeDirectory: string,
): Promise<boolean> {
  return (
    (e as NodeJS.ErrnoException).code === 'ENOENT' &&
    (await storeIsThere(storeDirectory))
  );
}

/** Said where the store could not be read: nothing is known of the capture. */
const UNREAD = (storeDirectory: string) =>
  `the capture store ${storeDirectory} could not be read (not mounted, or no ${LAYERS_DIRECTORY} directory in it?), so nothing is known of the capture`;

/** `what` names the file for people (`volume /data `), empty for the image archive. */
async function verifyFile(
  storeDirectory: string,
  captureId: string,
  what: string,
  artifact: string,
  checksum: string,
  signal?: AbortSignal,
  transfer?: Transfer,
): Promise<void> {
  const file = artifactPath(storeDirectory, artifact);
  try {
    await access(file);
  } catch (e) {
    // Gone from a store that is there: the capture is damaged. A store that cannot be read at all
    // (not mounted: an empty directory; not readable) says nothing of the capture.
    if (await goneFromStore(e, storeDirectory)) {
      throw new CaptureDamagedError(
        `capture ${captureId}: ${what}artifact ${file} not found in the capture store: ${DAMAGED}`,
        captureId,
      );
    }
    const code = (e as NodeJS.ErrnoException).code;
    throw new NotFoundError(
      `capture ${captureId}: ${what}artifact ${file} ${code === 'ENOENT' ? 'not found' : `could not be read (${(e as Error).message})`}: ${UNREAD(storeDirectory)}`,
    );
  }
  const hash = createHash('sha256');
  try {
    for await (const chunk of readCaptureArchive(storeDirectory, file)) {
      signal?.throwIfAborted();
      hash.update(chunk);
      transfer?.add(chunk.length);
    }
  } catch (e) {
    if (signal?.aborted) throw e;
    // A layer of another size, an archive cut short: said so by the store (no code); a layer gone
    // from a store that is there. A file the system could not read (EACCES, ENOTDIR, EIO), or one
    // gone from a store that is not there, is no proof of damage.
    if (
      (e as NodeJS.ErrnoException).code === undefined ||
      (await goneFromStore(e, storeDirectory))
    ) {
      throw new CaptureDamagedError(
        `capture ${captureId}: ${what}artifact ${file}: ${(e as Error).message}: ${DAMAGED}`,
        captureId,
      );
    }
    throw new NotFoundError(
      `capture ${captureId}: ${what}artifact ${file}: ${(e as Error).message}: ${UNREAD(storeDirectory)}`,
    );
  }
  const actual = `sha256:${hash.digest('hex')}`;
  if (actual !== checksum) {
    // A layer the store keeps once may be what changed: named, as every capture referring to it is
    // damaged too. The layer a capture's own commit made is referred to by that capture alone, and
    // no later capture writes it again (each commit makes a new one): nothing mends the capture.
    const layers = what
      ? []
      : await corruptLayersOf(storeDirectory, file).catch(() => []);
    const where =
      layers.length > 0
        ? ` (layer file${layers.length === 1 ? '' : 's'} ${layers.join(', ')} no longer ${layers.length === 1 ? 'holds its' : 'hold their'} content; every capture referring to ${layers.length === 1 ? 'it' : 'them'} is damaged too)`
        : '';
    throw new CaptureDamagedError(
      `capture ${captureId}: checksum mismatch for ${what ? `${what}(${file})` : file}${where}: expected ${checksum}, got ${actual}; ${DAMAGED}`,
      captureId,
    );
  }
  transfer?.end();
}

/**
 * Puts each volume's captured content back at its destination in the created (not started)
 * container: the archive's entries are under the destination's last element (`data/…` for
 * `/data`), so it is extracted in the destination's parent directory. `progress` hears how each
 * comes along, counted as the engine takes it in.
 */
export async function restoreVolumes(
  storeDirectory: string,
  container: Docker.Container,
  capture: RestorableCapture,
  progress?: TransferProgressLines,
): Promise<void> {
  for (const volume of capture.runtime.volumes ?? []) {
    const file = artifactPath(storeDirectory, volume.artifact);
    const parent = posix.dirname(posix.normalize(volume.destination));
    const transfer = progress?.start(
      'restoring',
      `volume ${volume.destination}`,
      volume.sizeBytes,
    );
    const archive = transfer
      ? counted(createReadStream(file), transfer)
      : createReadStream(file);
    try {
      await container.putArchive(archive, { path: parent });
      transfer?.end();
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
 * (the capture's tag on the primary engine). `progress` hears how it comes along.
 */
export async function loadArtifact(
  docker: Docker,
  storeDirectory: string,
  capture: Pick<RestorableCapture, 'captureId' | 'artifact' | 'imageId'> &
    Partial<Pick<RestorableCapture, 'sizeBytes' | 'runtime'>>,
  as?: string,
  progress?: TransferProgressLines,
): Promise<void> {
  const file = artifactPath(storeDirectory, capture.artifact);
  const transfer = progress?.start(
    'loading',
    'the image',
    imageArchiveBytes(capture),
  );
  const read = Readable.from(readCaptureArchive(storeDirectory, file));
  const archive = transfer ? counted(read, transfer) : read;
  const body = as
    ? Readable.from(
        rewriteTarFiles(archive, {
          'manifest.json': manifest => namedIn(manifest, as),
        }),
      )
    : archive;
  let messages: string[];
  try {
    const response = await docker.loadImage(
      body as any,
      { quiet: true } as any,
    );
    messages = await followProgress(response as unknown as Readable);
  } finally {
    body.destroy();
    archive.destroy();
    read.destroy();
  }
  if (await hasImage(docker, capture.imageId)) {
    transfer?.end();
    return;
  }
  // The file held another image: removed, so a failed restore leaves nothing on the host.
  await removeUnusedImages(docker, await imagesLoaded(docker, messages));
  throw new Error(
    `capture ${capture.captureId}: ${file} loaded but image ${capture.imageId} is missing`,
  );
}

/** The image ids `docker load` reported ("Loaded image ID: …", or "Loaded image: <tag>"). */
async function imagesLoaded(
  docker: Docker,
  messages: string[],
): Promise<string[]> {
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
  const images = JSON.parse(manifest.toString('utf8')) as Array<
    Record<string, unknown>
  >;
  return Buffer.from(
    JSON.stringify(images.map(image => ({ ...image, RepoTags: [ref] }))),
  );
}
