import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import {
  appendFile,
  chmod,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  utimes,
} from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import {
  forEachTarFile,
  paxRecords,
  tarFileEntry,
  TAR_BLOCK,
  tarEntryPath,
  tarEntrySize,
  tarHeaderChecksumMatches,
} from './tar';

/**
 * Image layers kept once in the capture store, by the sha256 of their content: the captures of a
 * machine share every layer but the one each commit adds, and machines built from one image share
 * its layers. A capture's archive keeps everything else of `docker save`'s output and, in place of
 * each layer, a small entry referring to it ("thin"); reading it back gives the original archive,
 * byte for byte, so its checksum is the one `docker save`'s output had.
 */
export const LAYERS_DIRECTORY = 'layers';

/**
 * Modes of what the capture store holds: captures carry secrets from the machines' environment
 * (an image's config, e.g. `DB_PASSWORD`) and volumes, for the backend's user alone to read.
 */
export const STORE_FILE_MODE = 0o600;
export const STORE_DIRECTORY_MODE = 0o700;

/**
 * Makes a directory of the store the backend's user's alone (STORE_DIRECTORY_MODE), one made
 * before that too (its files, made readable to all then, are then out of others' reach). One the
 * backend does not own (a mount point an operator made) is left as it is, the operator's to set;
 * so is a read-only one, whose write fails next with its own words.
 */
async function protectStoreDirectory(directory: string): Promise<void> {
  await mkdir(directory, { recursive: true, mode: STORE_DIRECTORY_MODE });
  await chmod(directory, STORE_DIRECTORY_MODE).catch(e => {
    const { code } = e as NodeJS.ErrnoException;
    if (code !== 'EPERM' && code !== 'EROFS') throw e;
  });
}

/** The first entry of a thin archive. */
const THIN_MARKER = '.recovery-thin-archive';
/** Appended to a layer's path for the entry that refers to it. */
const REF_SUFFIX = '.layer-ref';
/** Smaller layers (a commit that changed little) stay in the archive: a file each costs more. */
const MIN_LAYER_BYTES = 64 * 1024;
/**
 * A layer no capture refers to is removed once this old: one written (or found and touched) by a
 * capture under way is not referred to until that capture's archive is in place.
 */
export const UNUSED_LAYER_AGE_MS = 6 * 60 * 60_000;
/**
 * A capture's claim on the layers it wrote or found, one sha256 a line, in the layers directory:
 * written before it looks for a layer, removed once its archive (which then refers to them) is in
 * place or it failed. By it a failed capture's removal of its layers (removeWrittenLayers) leaves
 * those another capture under way is writing or reusing. A claim a killed backend left goes with
 * the sweep's other leftovers (removeUnusedLayers), once as old as an unused layer.
 */
const CLAIM_SUFFIX = '.claim';

/** `docker save`'s layers: `<id>/layer.tar` (Docker before 25), `blobs/sha256/<digest>` (OCI layout). */
const isLayer = (path: string, size: number) =>
  size >= MIN_LAYER_BYTES &&
  (/(^|\/)layer\.tar$/.test(path) ||
    /^blobs\/sha256\/[0-9a-f]{64}$/.test(path));

interface LayerRef {
  sha256: string;
  size: number;
  /** The layer's headers in the original archive (extended ones included), base64. */
  headers: string;
}

/**
 * A `*.layer-ref` entry of a thin archive. Its sha256 names a file of the store (layerFile): one
 * that is not a digest (`../../etc/shadow`, say, in an archive someone changed) is refused, not
 * read into an image.
 */
function parseRef(data: Buffer): LayerRef {
  const ref = JSON.parse(data.toString('utf8')) as LayerRef;
  if (typeof ref?.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(ref.sha256))
    throw new Error(
      `a layer reference names ${JSON.stringify(ref?.sha256)}, not a sha256 digest (64 hex digits): the archive is not one a capture wrote`,
    );
  return ref;
}

const layerFile = (storeDirectory: string, sha256: string) =>
  join(storeDirectory, LAYERS_DIRECTORY, `${sha256}.layer`);

/**
 * A file written a chunk at a time, flushed to the disk (fsync) as it is closed where `flush` says:
 * renamed into place unflushed, a power loss could leave it short or empty under its final name. A
 * write that fails (a full disk) fails the next `write` or `close`: between them nothing listens,
 * and an error no one hears would end the backend.
 */
function fileFor(path: string, flush: boolean): WriteStream {
  return createWriteStream(path, {
    flags: 'wx',
    flush,
    mode: STORE_FILE_MODE,
  }).on('error', () => {});
}

/**
 * Flushes a file, or a directory's entries, to the disk (fsync). A rename into a directory (or a
 * file's creation) is durable only once the directory is flushed: the file's own fsync does not
 * cover its name. A file system that cannot flush a directory (EINVAL, as some network and FUSE
 * ones say) keeps its entries as it does: so does PostgreSQL.
 */
export async function syncToDisk(
  path: string,
  { directory = false } = {},
): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } catch (e) {
    if (!(directory && (e as NodeJS.ErrnoException).code === 'EINVAL')) throw e;
  } finally {
    await handle.close();
  }
}

async function write(out: WriteStream, chunk: Buffer): Promise<void> {
  if (out.errored) throw out.errored;
  if (!out.write(chunk)) await once(out, 'drain');
}

async function close(out: WriteStream): Promise<void> {
  if (out.errored) throw out.errored;
  out.end();
  if (!out.closed) await once(out, 'close');
  if (out.errored) throw out.errored;
}

/**
 * What the engine said where its error took the archive's place: once `docker save` has begun,
 * dockerd reports a failure by writing it (`{"errorDetail":…}`) into the stream, which then ends.
 */
function engineSays(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  const at = text.indexOf('{"error');
  if (at < 0) return '';
  try {
    const { error, errorDetail } = JSON.parse(
      text.slice(at, text.lastIndexOf('}') + 1),
    );
    return `: the engine says "${error ?? errorDetail?.message}"`;
  } catch {
    return `: the engine says ${JSON.stringify(text.slice(at, at + 300))}`;
  }
}

/**
 * Streams `docker save`'s output into the thin archive `<storeDirectory>/<name>` and its layers
 * into the layer store, those already there (by content) kept as they are. Returns the size and
 * sha256 of the original archive, and the bytes this capture added to the store. The archive is a
 * temporary file renamed into place, each file and its directory flushed to the disk (fsync) before
 * this returns; both paths go into `written` first, for the caller's cleanup on failure, and the
 * sha256 of each layer it wrote into the store (not those it found there) into `layers`, for
 * removeWrittenLayers once the caller has removed the archive.
 */
export async function writeThinArchive(
  source: AsyncIterable<Buffer | string>,
  storeDirectory: string,
  name: string,
  written: string[],
  signal?: AbortSignal,
  layers: string[] = [],
): Promise<{ size: number; checksum: string; storedBytes: number }> {
  const finalPath = join(storeDirectory, name);
  const tempPath = join(
    storeDirectory,
    `.${name}.${randomBytes(4).toString('hex')}.tmp`,
  );
  written.push(tempPath, finalPath);
  await protectStoreDirectory(storeDirectory);
  await protectStoreDirectory(join(storeDirectory, LAYERS_DIRECTORY));
  const claim = join(
    storeDirectory,
    LAYERS_DIRECTORY,
    `.${randomBytes(6).toString('hex')}${CLAIM_SUFFIX}`,
  );
  const whole = createHash('sha256');
  let size = 0;
  let storedBytes = 0;
  const out = fileFor(tempPath, true);
  // An abort ends a stream that is waiting for data (an engine that stalls), as pipeline would.
  const onAbort = () =>
    (source as { destroy?: (error?: unknown) => void }).destroy?.(
      signal!.reason,
    );
  signal?.addEventListener('abort', onAbort, { once: true });
  const input = source[Symbol.asyncIterator]();
  let held = Buffer.alloc(0);
  const have = async (n: number) => {
    while (held.length < n) {
      signal?.throwIfAborted();
      const { value, done } = await input.next();
      if (done) return false;
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value);
      whole.update(chunk);
      size += chunk.length;
      held = held.length > 0 ? Buffer.concat([held, chunk]) : chunk;
    }
    return true;
  };
  const take = (n: number) => {
    const part = held.subarray(0, n);
    held = held.subarray(n);
    return part;
  };
  /** Passes `n` bytes of the input on, a chunk at a time. */
  async function* pass(n: number, path: string) {
    for (let left = n; left > 0;) {
      if (held.length === 0 && !(await have(1)))
        throw new Error(`tar: the image archive ends inside entry ${path}`);
      const part = take(Math.min(left, held.length));
      left -= part.length;
      yield part;
    }
  }
  try {
    await write(out, tarFileEntry(THIN_MARKER, Buffer.alloc(0)));
    // Extended headers wait for the entry they describe: with a layer, they go into its ref.
    let prelude: Buffer[] = [];
    let described = new Map<string, string>();
    let global = false;
    // Only an archive that reaches its end block is whole: a save cut short, or one the engine
    // ended with an error, would be kept, checksummed, and fail only when loaded for a recovery.
    let ended = false;
    while (await have(TAR_BLOCK)) {
      const at = size - held.length;
      const header = take(TAR_BLOCK);
      if (header.every(byte => byte === 0)) {
        await write(out, header);
        ended = true;
        break;
      }
      if (!tarHeaderChecksumMatches(header)) {
        await have(TAR_BLOCK * 8);
        throw new Error(
          `tar: the image archive holds no tar header at byte ${at}${engineSays(Buffer.concat([header, held]))}`,
        );
      }
      const type = String.fromCharCode(header[156]);
      const extended = 'xgLK'.includes(type);
      // A pax `size` or `path` stands for the header's (a layer past 8 GiB, a long name).
      const entrySize =
        !extended && described.has('size')
          ? Number(described.get('size'))
          : tarEntrySize(header);
      const padded = Math.ceil(entrySize / TAR_BLOCK) * TAR_BLOCK;
      const path = (!extended && described.get('path')) || tarEntryPath(header);
      if (extended) {
        if (!(await have(padded)))
          throw new Error(`tar: the image archive ends inside entry ${path}`);
        const data = Buffer.from(take(padded));
        prelude.push(Buffer.from(header), data);
        if (type === 'x')
          described = new Map([
            ...described,
            ...paxRecords(data.subarray(0, entrySize)),
          ]);
        if (type === 'L')
          described.set(
            'path',
            data.subarray(0, entrySize).toString('utf8').replace(/\0.*$/s, ''),
          );
        global ||= type === 'g';
        continue;
      }
      described = new Map();
      // A global header describes every entry after it: left in the archive, with what it describes.
      if (
        (type === '0' || type === '\0') &&
        !global &&
        isLayer(path, entrySize)
      ) {
        const { sha256, added } = await storeLayer(
          storeDirectory,
          pass(padded, path),
          entrySize,
          claim,
        );
        storedBytes += added;
        if (added > 0) layers.push(sha256);
        const ref: LayerRef = {
          sha256,
          size: entrySize,
          headers: Buffer.concat([...prelude, header]).toString('base64'),
        };
        prelude = [];
        await write(
          out,
          tarFileEntry(
            `${path}${REF_SUFFIX}`,
            Buffer.from(JSON.stringify(ref)),
          ),
        );
        continue;
      }
      for (const part of prelude) await write(out, part);
      prelude = [];
      await write(out, header);
      for await (const part of pass(padded, path)) await write(out, part);
    }
    if (!ended) {
      throw new Error(
        `tar: the image archive ends after ${size} bytes, without its end block (cut short)${engineSays(held)}`,
      );
    }
    // The rest (the second zero block, the record's padding) as it came.
    for (;;) {
      if (held.length > 0) await write(out, take(held.length));
      if (!(await have(1))) break;
    }
    await close(out);
    // The layers it refers to reach the disk before the archive does: after a power loss, an
    // archive is never found without them.
    await syncToDisk(join(storeDirectory, LAYERS_DIRECTORY), {
      directory: true,
    });
    await rename(tempPath, finalPath);
    await syncToDisk(storeDirectory, { directory: true });
    storedBytes += (await stat(finalPath)).size;
    return { size, checksum: `sha256:${whole.digest('hex')}`, storedBytes };
  } catch (e) {
    out.destroy();
    // Ends the source too (docker save's response): nothing reads it any longer.
    await input.return?.().catch(() => {});
    throw e;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // In place, the archive holds its layers; failed, the caller removes those it wrote.
    await rm(claim, { force: true }).catch(() => {});
  }
}

/**
 * Writes a layer's data (`padded` to whole blocks, `size` of it the layer) into the store by its
 * sha256, unless the store has it: then it is only touched, so that removeUnusedLayers leaves it
 * to the capture about to refer to it. Claimed (in `claim`) before it is looked for. Returns its
 * sha256 and the bytes written (none where the store had it).
 */
async function storeLayer(
  storeDirectory: string,
  data: AsyncIterable<Buffer>,
  size: number,
  claim: string,
): Promise<{ sha256: string; added: number }> {
  const temp = join(
    storeDirectory,
    LAYERS_DIRECTORY,
    `.${randomBytes(6).toString('hex')}.tmp`,
  );
  const hash = createHash('sha256');
  // Flushed only when kept: most layers are in the store already, and their copy is removed.
  const out = fileFor(temp, false);
  try {
    let left = size;
    for await (const part of data) {
      const layerPart = part.subarray(
        0,
        Math.max(0, Math.min(part.length, left)),
      );
      left -= layerPart.length;
      if (layerPart.length === 0) continue;
      hash.update(layerPart);
      await write(out, layerPart);
    }
    await close(out);
    const sha256 = hash.digest('hex');
    const final = layerFile(storeDirectory, sha256);
    // Before the look: a failed capture removing this layer from now on either sees the claim and
    // leaves it, or has moved it aside already, when it is written anew below.
    await appendFile(claim, `${sha256}\n`, { mode: STORE_FILE_MODE });
    try {
      // One of another size was cut short (a crash before its data reached the disk): replaced.
      if ((await stat(final)).size !== size)
        throw new Error(`layer ${sha256} is cut short`);
      // One whose content changed since it was written (a disk error, a hand's edit) would make
      // this capture unrestorable too, as it does every capture referring to it: replaced, which
      // mends those. Read once per capture, as the copy just written was.
      if ((await sha256OfFile(final)) !== sha256)
        throw new Error(`layer ${sha256} does not hold its content`);
      const now = new Date();
      await utimes(final, now, now);
      await rm(temp, { force: true });
      return { sha256, added: 0 };
    } catch {
      await syncToDisk(temp);
      await rename(temp, final);
      return { sha256, added: size };
    }
  } catch (e) {
    out.destroy();
    await rm(temp, { force: true });
    throw e;
  }
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The layer files of the store that a capture's archive refers to and that no longer hold the
 * content their name (its sha256) says: where a capture whose checksum does not match went wrong,
 * and what else it breaks (every capture referring to them). None for a whole archive.
 */
export async function corruptLayersOf(
  storeDirectory: string,
  file: string,
): Promise<string[]> {
  if (!(await isThin(file))) return [];
  const refs: LayerRef[] = [];
  await forEachTarFile(file, async (path, _size, read) => {
    if (path.endsWith(REF_SUFFIX)) refs.push(parseRef(await read()));
  });
  const corrupt: string[] = [];
  for (const ref of refs) {
    const layer = layerFile(storeDirectory, ref.sha256);
    if ((await sha256OfFile(layer).catch(() => undefined)) !== ref.sha256)
      corrupt.push(layer);
  }
  return corrupt;
}

/** Whether `file` is a thin archive (else a whole `docker save` output, as older captures keep). */
async function isThin(file: string): Promise<boolean> {
  const handle = await open(file, 'r');
  try {
    const header = Buffer.alloc(TAR_BLOCK);
    const { bytesRead } = await handle.read(header, 0, TAR_BLOCK, 0);
    return bytesRead === TAR_BLOCK && tarEntryPath(header) === THIN_MARKER;
  } finally {
    await handle.close();
  }
}

/**
 * The original archive of a capture, streamed: a thin one with its layers put back from the
 * store, a whole one as it is. A layer missing from the store, or of another size, is an error
 * naming it; one whose content changed shows in the archive's checksum. A layer that could not be
 * looked at fails with the file system's `code` (ENOENT where it is gone, EACCES, ENOTDIR, EIO…).
 */
export async function* readCaptureArchive(
  storeDirectory: string,
  file: string,
): AsyncGenerator<Buffer> {
  if (!(await isThin(file))) {
    for await (const chunk of createReadStream(file)) yield chunk as Buffer;
    return;
  }
  const handle = await open(file, 'r');
  try {
    const { size: total } = await handle.stat();
    const header = Buffer.alloc(TAR_BLOCK);
    let at = 0;
    while (at < total) {
      const { bytesRead } = await handle.read(header, 0, TAR_BLOCK, at);
      // Cut short (a truncated file): said so, rather than read on from a header's remains.
      if (bytesRead < TAR_BLOCK)
        throw new Error(
          `the archive is cut short: it ends inside a tar header, at ${total} bytes`,
        );
      if (header.every(byte => byte === 0)) break;
      const size = tarEntrySize(header);
      const padded = Math.ceil(size / TAR_BLOCK) * TAR_BLOCK;
      const path = tarEntryPath(header);
      if (at + TAR_BLOCK + padded > total)
        throw new Error(
          `the archive is cut short: it ends inside entry ${path}, at ${total} bytes`,
        );
      // A ref's own header is plain ustar (writeThinArchive): its path is in the header itself.
      if (path.endsWith(REF_SUFFIX)) {
        const data = Buffer.alloc(size);
        await handle.read(data, 0, size, at + TAR_BLOCK);
        const ref = parseRef(data);
        yield Buffer.from(ref.headers, 'base64');
        const layer = layerFile(storeDirectory, ref.sha256);
        const named = `layer ${ref.sha256} of ${path.slice(0, -REF_SUFFIX.length)}`;
        let actual: number;
        try {
          actual = (await stat(layer)).size;
        } catch (e) {
          // With the file system's code: only a layer gone (ENOENT) from a store that is there is
          // damage; one that could not be looked at (EACCES, ENOTDIR, EIO) says nothing of it.
          const { code, message } = e as NodeJS.ErrnoException;
          throw Object.assign(
            new Error(
              code === 'ENOENT'
                ? `${named} is missing from the capture store (${layer})`
                : `${named} could not be read in the capture store: ${message}`,
            ),
            { code },
          );
        }
        if (actual !== ref.size)
          throw new Error(
            `${named} is ${actual} bytes, not ${ref.size}, in the capture store (${layer})`,
          );
        for await (const chunk of createReadStream(layer))
          yield chunk as Buffer;
        if (ref.size % TAR_BLOCK)
          yield Buffer.alloc(TAR_BLOCK - (ref.size % TAR_BLOCK));
      } else if (path !== THIN_MARKER) {
        for await (const chunk of createReadStream(file, {
          start: at,
          end: at + TAR_BLOCK + padded - 1,
        }))
          yield chunk as Buffer;
      }
      at += TAR_BLOCK + padded;
    }
    if (at < total)
      for await (const chunk of createReadStream(file, { start: at }))
        yield chunk as Buffer;
  } finally {
    await handle.close();
  }
}

/**
 * What a capture's original archive holds, for the room its load takes, keyed so that what two
 * captures share is one key: each layer by the sha256 of its content (`sha256:<hex>`), whatever
 * directory id each archive gives it (`docker save` names a layer by an id of the image's chain,
 * so a base layer two images share is under two ids), every other file by its path. A large layer
 * a whole archive (older captures) keeps in place is known by its path alone: its sha256 would
 * take reading it.
 */
export async function captureArchiveContent(
  file: string,
): Promise<Map<string, number>> {
  const content = new Map<string, number>();
  await forEachTarFile(file, async (path, size, read) => {
    if (path === THIN_MARKER) return;
    if (path.endsWith(REF_SUFFIX)) {
      const ref = parseRef(await read());
      content.set(`sha256:${ref.sha256}`, ref.size);
      return;
    }
    const blob = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(path);
    if (blob) content.set(`sha256:${blob[1]}`, size);
    else if (/(^|\/)layer\.tar$/.test(path) && size < MIN_LAYER_BYTES)
      content.set(
        `sha256:${createHash('sha256')
          .update(await read())
          .digest('hex')}`,
        size,
      );
    else content.set(path, size);
  });
  return content;
}

/**
 * The layers the archives in the store refer to. An archive that cannot be read (too many open
 * files, a disk error) is an error: its layers, taken for unused, would be lost to its capture.
 */
async function referredLayers(storeDirectory: string): Promise<Set<string>> {
  const used = new Set<string>();
  for (const name of await readdir(storeDirectory)) {
    if (!name.endsWith('.tar') || name.startsWith('.')) continue;
    const file = join(storeDirectory, name);
    try {
      // A volume's archive refers to no layer.
      if (!(await isThin(file))) continue;
      await forEachTarFile(file, async (path, _size, read) => {
        if (path.endsWith(REF_SUFFIX)) used.add(parseRef(await read()).sha256);
      });
    } catch (e) {
      // Removed meanwhile (a discard).
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
  return used;
}

/** The layers captures under way claim (CLAIM_SUFFIX). */
async function claimedLayers(layersDir: string): Promise<Set<string>> {
  const claimed = new Set<string>();
  for (const name of await readdir(layersDir)) {
    if (!name.endsWith(CLAIM_SUFFIX)) continue;
    const text = await readFile(join(layersDir, name), 'utf8').catch(e => {
      // Let go of meanwhile: its capture's archive is in place, or it failed.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
      throw e;
    });
    for (const line of text.split('\n')) if (line) claimed.add(line);
  }
  return claimed;
}

/**
 * Removes at once the layers a failed capture wrote (`layers`, from writeThinArchive), once its
 * archive is gone: each but those an archive in the store refers to (a recorded capture's, or one
 * whose layer this capture wrote anew) and those a capture under way claims (writing or reusing
 * it). Each is moved aside first, then the claims are read, then the archives: a capture lets go
 * of its claim only once its archive is in place, and one that claims a layer after the move finds
 * it gone and writes it anew. Returns the bytes freed.
 */
export async function removeWrittenLayers(
  storeDirectory: string,
  layers: string[],
): Promise<number> {
  if (layers.length === 0) return 0;
  const layersDir = join(storeDirectory, LAYERS_DIRECTORY);
  // Those a kept archive refers to are not even moved: a restore reading one meanwhile would miss it.
  const referred = await referredLayers(storeDirectory);
  const aside = new Map<string, string>();
  for (const sha256 of new Set(layers.filter(l => !referred.has(l)))) {
    const to = join(layersDir, `.${randomBytes(6).toString('hex')}.removing`);
    if (
      await rename(layerFile(storeDirectory, sha256), to).then(
        () => true,
        () => false,
      )
    )
      aside.set(sha256, to);
  }
  if (aside.size === 0) return 0;
  let keep: Set<string>;
  try {
    const claimed = await claimedLayers(layersDir);
    keep = new Set([...claimed, ...(await referredLayers(storeDirectory))]);
  } catch (e) {
    // Who else needs them is unknown: all go back, to the sweep.
    keep = new Set(aside.keys());
    await putBack(storeDirectory, aside, keep);
    throw e;
  }
  await putBack(storeDirectory, aside, keep);
  let freed = 0;
  for (const [sha256, path] of aside) {
    if (keep.has(sha256)) continue;
    const { size } = await stat(path);
    await rm(path, { force: true });
    freed += size;
  }
  return freed;
}

/** Moves back the layers moved aside that `keep` names (over a copy written anew meanwhile: the same content). */
async function putBack(
  storeDirectory: string,
  aside: Map<string, string>,
  keep: Set<string>,
) {
  for (const [sha256, path] of aside)
    if (keep.has(sha256)) await rename(path, layerFile(storeDirectory, sha256));
}

/**
 * Removes the layers no archive in the store refers to, once older than `minAgeMs` (a capture
 * under way refers to its layers only once its archive is in place), and what a killed capture or
 * sweep left beside them (temporary copies, claims) once as old. Returns the bytes freed.
 */
export async function removeUnusedLayers(
  storeDirectory: string,
  minAgeMs = UNUSED_LAYER_AGE_MS,
): Promise<number> {
  const layersDir = join(storeDirectory, LAYERS_DIRECTORY);
  const layers = await readdir(layersDir).catch(e => {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
    throw e;
  });
  if (layers.length === 0) return 0;
  const used = await referredLayers(storeDirectory);
  let freed = 0;
  const now = Date.now();
  for (const name of layers) {
    const sha256 = name.replace(/\.layer$/, '');
    if (used.has(sha256)) continue;
    const path = join(layersDir, name);
    const info = await stat(path).catch(() => undefined);
    if (!info || now - info.mtimeMs < minAgeMs) continue;
    // Moved aside before its age is read again: a capture that touched it meanwhile keeps it (it
    // goes back), one that comes to touch it later finds it gone and writes it anew.
    const aside = join(
      layersDir,
      `.${randomBytes(6).toString('hex')}.removing`,
    );
    if (
      !(await rename(path, aside).then(
        () => true,
        () => false,
      ))
    )
      continue;
    const last = await stat(aside);
    if (Date.now() - last.mtimeMs < minAgeMs) {
      await rename(aside, path);
      continue;
    }
    await rm(aside, { force: true });
    freed += last.size;
  }
  return freed;
}
