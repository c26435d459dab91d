import { open } from 'node:fs/promises';

/** One entry of a tarball built in memory (ustar). */
export type TarEntry =
  | { type: 'file'; path: string; content: Buffer | string; mode?: number }
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const BLOCK = 512;

function writeString(
  header: Buffer,
  offset: number,
  length: number,
  value: string,
) {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) {
    throw new Error(`tar: "${value}" is longer than ${length} bytes`);
  }
  bytes.copy(header, offset);
}

function writeOctal(
  header: Buffer,
  offset: number,
  length: number,
  value: number,
) {
  writeString(
    header,
    offset,
    length,
    `${value.toString(8).padStart(length - 1, '0')}\0`,
  );
}

function splitName(path: string): { name: string; prefix: string } {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  const cut = path.lastIndexOf('/', path.length - 2);
  const prefix = path.slice(0, cut);
  const name = path.slice(cut + 1);
  if (
    cut < 0 ||
    Buffer.byteLength(name) > 100 ||
    Buffer.byteLength(prefix) > 155
  ) {
    throw new Error(`tar: path too long: ${path}`);
  }
  return { name, prefix };
}

function headerBlock(entry: TarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const path =
    entry.path.replace(/^\/+/, '') + (entry.type === 'dir' ? '/' : '');
  const { name, prefix } = splitName(path);
  writeString(h, 0, 100, name);
  const mode =
    entry.type === 'symlink'
      ? 0o777
      : (entry.mode ?? (entry.type === 'dir' ? 0o755 : 0o644));
  writeOctal(h, 100, 8, mode);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, size);
  writeOctal(h, 136, 12, mtime);
  h.write(
    entry.type === 'file' ? '0' : entry.type === 'dir' ? '5' : '2',
    156,
    'ascii',
  );
  if (entry.type === 'symlink') writeString(h, 157, 100, entry.target);
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 265, 32, 'root');
  writeString(h, 297, 32, 'root');
  writeString(h, 345, 155, prefix);
  return sealed(h);
}

/** The header with its checksum (the sum of its bytes, the checksum field read as spaces) set. */
function sealed(h: Buffer): Buffer {
  h.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of h) sum += byte;
  writeString(h, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return h;
}

/** Builds an uncompressed ustar archive (owner root, fixed mtime) from the entries, in order. */
export function createTar(entries: TarEntry[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    const content =
      entry.type === 'file'
        ? Buffer.isBuffer(entry.content)
          ? entry.content
          : Buffer.from(entry.content, 'utf8')
        : Buffer.alloc(0);
    parts.push(headerBlock(entry, content.length, mtime));
    if (content.length) {
      parts.push(content);
      const pad = (BLOCK - (content.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/**
 * Whether a block is a tar header: its checksum field matches its bytes (summed unsigned, or signed
 * as some old tars sum them). Anything else in a header's place (an engine's error message, data
 * read out of step) is not an archive.
 */
function headerChecksumMatches(h: Buffer): boolean {
  const field = h.toString('ascii', 148, 156).replace(/\0.*$/s, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : h[i];
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  const recorded = parseInt(field, 8);
  return recorded === unsigned || recorded === signed;
}

/** An entry's size: octal, or base-256 (GNU, past 8 GiB) where the field's first bit is set. */
function entrySize(h: Buffer): number {
  if (h[124] & 0x80) {
    let size = 0;
    for (let i = 125; i < 136; i++) size = size * 256 + h[i];
    return size;
  }
  const octal = h.toString('ascii', 124, 136).replace(/\0.*$/s, '').trim();
  return octal ? parseInt(octal, 8) : 0;
}

/** An entry's path: its name, behind the ustar prefix where there is one. */
function entryPath(h: Buffer): string {
  const field = (offset: number, length: number) =>
    h.toString('utf8', offset, offset + length).replace(/\0.*$/s, '');
  const prefix =
    h.toString('ascii', 257, 262) === 'ustar' ? field(345, 155) : '';
  return (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100)).replace(
    /^\.\//,
    '',
  );
}

const asBuffer = (chunk: Buffer | string) =>
  Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);

/**
 * Streams a tar archive through with the content of the regular files `rewrite` names (by path)
 * replaced, each read whole: meant for the small metadata files of an image archive, such as
 * `manifest.json`. Every other byte passes as it comes. An entry that an extended header describes
 * (pax, GNU long name) passes unchanged: its own header would no longer say all of it.
 */
export async function* rewriteTarFiles(
  archive: AsyncIterable<Buffer | string>,
  rewrite: Record<string, (content: Buffer) => Buffer>,
): AsyncGenerator<Buffer> {
  const input = archive[Symbol.asyncIterator]();
  let held = Buffer.alloc(0);
  /** Whether `held` has `n` bytes, read on until it has or the archive ends. */
  const have = async (n: number) => {
    while (held.length < n) {
      const { value, done } = await input.next();
      if (done) return false;
      held =
        held.length > 0
          ? Buffer.concat([held, asBuffer(value)])
          : asBuffer(value);
    }
    return true;
  };
  const take = (n: number) => {
    const out = held.subarray(0, n);
    held = held.subarray(n);
    return out;
  };
  const truncated = (path: string) =>
    new Error(`tar: the archive ends inside entry ${path}`);
  let describedByGlobal = false;
  let described = false;
  // A pax `size` stands for the header's: a file past 8 GiB (a large layer) has 0 there.
  let globalSize: string | undefined;
  let nextSize: string | undefined;
  while (await have(BLOCK)) {
    const header = take(BLOCK);
    // The end of the archive: what follows (its second zero block, padding) passes as it is.
    if (header.every(byte => byte === 0)) {
      yield header;
      break;
    }
    const type = String.fromCharCode(header[156]);
    const extended = 'xgLK'.includes(type);
    const path = entryPath(header);
    const paxSize = extended ? undefined : (nextSize ?? globalSize);
    const size = paxSize !== undefined ? Number(paxSize) : entrySize(header);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    const change =
      !described && (type === '0' || type === '\0') ? rewrite[path] : undefined;
    // A pax or GNU header describes the entry after it; a global pax header, every entry after it.
    describedByGlobal ||= type === 'g';
    described =
      describedByGlobal || type === 'x' || type === 'L' || type === 'K';
    if (!extended) nextSize = undefined;
    if (type === 'x' || type === 'g') {
      // Read whole (a few records) for the size it may give the entries it describes.
      if (!(await have(padded))) throw truncated(path);
      const data = take(padded);
      const records = paxRecords(data.subarray(0, size));
      if (type === 'x') nextSize = records.get('size');
      else globalSize = records.get('size') ?? globalSize;
      yield header;
      yield data;
      continue;
    }
    if (!change) {
      yield header;
      for (let left = padded; left > 0;) {
        if (held.length === 0 && !(await have(1))) throw truncated(path);
        const out = take(Math.min(left, held.length));
        left -= out.length;
        yield out;
      }
      continue;
    }
    if (!(await have(padded))) throw truncated(path);
    const content = change(Buffer.from(take(padded).subarray(0, size)));
    const resized = Buffer.from(header);
    writeOctal(resized, 124, 12, content.length);
    yield sealed(resized);
    yield content;
    yield Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK);
  }
  if (held.length > 0) yield held;
  for (let next = await input.next(); !next.done; next = await input.next())
    yield asBuffer(next.value);
}

/** A pax extended header's records (`<length> <key>=<value>\n`), as key → value. */
export function paxRecords(data: Buffer): Map<string, string> {
  const records = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const length = parseInt(data.toString('ascii', at, space), 10);
    if (space < 0 || !(length > 0)) break;
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq > 0) records.set(record.slice(0, eq), record.slice(eq + 1));
    at += length;
  }
  return records;
}

/**
 * Calls `onFile` for each regular file of a tar archive on disk, in order, with its path, size
 * and a reader of its content, reading the headers alone: the data
 * between them is skipped unless read, so an archive of gigabytes takes a few reads per entry.
 * Pax and GNU long-name headers are followed for the entry they describe.
 */
export async function forEachTarFile(
  file: string,
  onFile: (
    path: string,
    size: number,
    read: () => Promise<Buffer>,
  ) => Promise<void> | void,
): Promise<void> {
  const handle = await open(file, 'r');
  try {
    const { size: total } = await handle.stat();
    const header = Buffer.alloc(BLOCK);
    const readData = async (at: number, size: number) => {
      const data = Buffer.alloc(size);
      await handle.read(data, 0, size, at);
      return data;
    };
    let global = new Map<string, string>();
    let next = new Map<string, string>();
    let at = 0;
    while (at + BLOCK <= total) {
      await handle.read(header, 0, BLOCK, at);
      if (header.every(byte => byte === 0)) break;
      const type = String.fromCharCode(header[156]);
      // A pax `size` stands for the header's (a file past the header field's 8 GiB).
      const paxSize = 'gxLK'.includes(type)
        ? undefined
        : (next.get('size') ?? global.get('size'));
      const size = paxSize !== undefined ? Number(paxSize) : entrySize(header);
      const dataAt = at + BLOCK;
      at = dataAt + Math.ceil(size / BLOCK) * BLOCK;
      if (at > total)
        throw new Error(`tar: ${file} ends inside entry ${entryPath(header)}`);
      if (type === 'g')
        global = new Map([
          ...global,
          ...paxRecords(await readData(dataAt, size)),
        ]);
      else if (type === 'x') next = paxRecords(await readData(dataAt, size));
      else if (type === 'L')
        next.set(
          'path',
          (await readData(dataAt, size)).toString('utf8').replace(/\0.*$/s, ''),
        );
      else if (type !== 'K') {
        const described = new Map([...global, ...next]);
        next = new Map();
        if (type !== '0' && type !== '\0') continue;
        const path = (described.get('path') ?? entryPath(header)).replace(
          /^\.\//,
          '',
        );
        await onFile(path, size, () => readData(dataAt, size));
      }
    }
  } finally {
    await handle.close();
  }
}

/** One regular file as a tar entry: its header, its content, padding to a whole block. */
export function tarFileEntry(path: string, content: Buffer): Buffer {
  const padding = Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK);
  return Buffer.concat([
    headerBlock({ type: 'file', path, content }, content.length, 0),
    content,
    padding,
  ]);
}

export {
  BLOCK as TAR_BLOCK,
  entryPath as tarEntryPath,
  entrySize as tarEntrySize,
  headerChecksumMatches as tarHeaderChecksumMatches,
};
