import type Docker from 'dockerode';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type {
  CapturedVolume,
  Transfer,
  TransferProgressLines,
} from '@backstage-recovery/plugin-recovery-node';
import { volumeMounts } from './adapt';
import { STORE_FILE_MODE, syncToDisk } from './lib/layerStore';

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
  transfer?: Transfer,
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
      transfer?.add(chunk.length);
      cb(null, chunk);
    },
  });
  // A volume's content (the machine's data, its secrets too) for the backend's user alone.
  const out = createWriteStream(tempPath, {
    flags: 'wx',
    mode: STORE_FILE_MODE,
  });
  await pipeline(stream, hasher, out, { signal });
  transfer?.end();
  const keep = async () => {
    await syncToDisk(tempPath);
    await rename(tempPath, finalPath);
    await syncToDisk(dir, { directory: true });
  };
  return { size, checksum: `sha256:${hash.digest('hex')}`, keep };
}

/** A machine's volumes as a capture archived them, not yet kept. */
export interface ExportedVolumes {
  volumes: CapturedVolume[];
  /** Flushes their archives to the disk and renames them into place, one after the other. */
  keep(): Promise<void>;
  /** How much of the pause their copy took: what grows it as they grow. */
  copyMs: number;
}

/**
 * Archives each volume of the machine's container (`docker cp`) into the capture store as
 * `<base>.volume-<n>.tar`, checksummed while streaming, while the capture holds it paused: kept
 * only once it runs again (ExportedVolumes.keep). Each archive's paths go into `written`, for the
 * capture's cleanup on failure; `at` is told which volume it copies, for its errors; `progress`
 * hears how each copy comes along (its size unknown until it ends: the engine does not say it).
 */
export async function exportVolumes(
  container: Docker.Container,
  info: Docker.ContainerInspectInfo,
  to: {
    dir: string;
    base: string;
    written: string[];
    signal: AbortSignal;
    at: (step: string) => void;
    progress?: TransferProgressLines;
    /** The capture paused the machine for the copy: its lines say so. */
    paused?: boolean;
    /** The machine's engine: with each volume's name, which machines restored together share. */
    engine: string;
  },
): Promise<ExportedVolumes> {
  const copyStarted = performance.now();
  const volumes: CapturedVolume[] = [];
  const toKeep: Array<() => Promise<void>> = [];
  for (const [i, mount] of volumeMounts(info).entries()) {
    to.at(`archiving the volume at ${mount.destination}`);
    const copiedAt = new Date().toISOString();
    const artifact = `${to.base}.volume-${i + 1}.tar`;
    const stream = (await container.getArchive({
      path: mount.destination,
      abortSignal: to.signal,
    })) as unknown as Readable;
    const { size, checksum, keep } = await writeAtomically(
      stream,
      to.dir,
      artifact,
      to.written,
      to.signal,
      to.progress?.start(
        'archiving',
        `volume ${mount.destination}${to.paused ? ' (machine paused)' : ''}`,
      ),
    );
    toKeep.push(keep);
    volumes.push({
      destination: mount.destination,
      artifact,
      checksum,
      sizeBytes: size,
      volume: { engine: to.engine, name: mount.name },
      copiedAt,
    });
  }
  return {
    volumes,
    copyMs: performance.now() - copyStarted,
    keep: async () => {
      for (const keep of toKeep) await keep();
    },
  };
}
