import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createReadStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { PassThrough, Readable } from 'node:stream';
import { join } from 'node:path';
import {
  LAYERS_DIRECTORY,
  readCaptureArchive,
  removeUnusedLayers,
  removeWrittenLayers,
  writeThinArchive,
} from './layerStore';
import { createTar } from './tar';

/** What reaches the disk, in order, while a test records it: `fsync <path>` and `rename <from> <to>`. */
const disk = vi.hoisted(() => ({
  log: undefined as string[] | undefined,
  /** A flush fails as the test says (a disk error, a file system that cannot flush a directory). */
  syncFails: undefined as
    undefined | ((path: string) => NodeJS.ErrnoException | undefined),
}));

/**
 * Lets a test act the moment after the layer store read a file's age, or around a rename (a
 * capture running meanwhile).
 */
const afterStat = vi.hoisted(() => ({
  hook: undefined as undefined | ((path: string) => Promise<void>),
  openFails: undefined as undefined | ((path: string) => Error | undefined),
  beforeRename: undefined as
    undefined | ((from: string, to: string) => Promise<void>),
  afterRename: undefined as
    undefined | ((from: string, to: string) => Promise<void>),
}));
vi.mock('node:fs/promises', async importOriginal => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const stat = (async (path: string, ...rest: any[]) => {
    const info = await (fs.stat as any)(path, ...rest);
    await afterStat.hook?.(String(path));
    return info;
  }) as typeof fs.stat;
  // Opening a file may fail as the test says (too many open files, say).
  const open = (async (path: string, ...rest: any[]) => {
    const failure = afterStat.openFails?.(String(path));
    if (failure) throw failure;
    const handle = await (fs.open as any)(path, ...rest);
    const sync = handle.sync.bind(handle);
    handle.sync = async () => {
      disk.log?.push(`fsync ${path}`);
      const syncFailure = disk.syncFails?.(String(path));
      if (syncFailure) throw syncFailure;
      return sync();
    };
    return handle;
  }) as typeof fs.open;
  const rename = (async (from: string, to: string) => {
    disk.log?.push(`rename ${from} ${to}`);
    await afterStat.beforeRename?.(String(from), String(to));
    await fs.rename(from, to);
    await afterStat.afterRename?.(String(from), String(to));
  }) as typeof fs.rename;
  return { ...fs, stat, open, rename, default: { ...fs, stat, open, rename } };
});

/** Files written under this directory go to /dev/full instead: a capture store whose disk is full. */
const fullDisk = vi.hoisted(() => ({ under: undefined as string | undefined }));
vi.mock('node:fs', async importOriginal => {
  const fs = await importOriginal<typeof import('node:fs')>();
  // Its fsync (as `flush` asks) is recorded.
  const recorded = (path: string) => ({
    open: fs.open,
    write: fs.write,
    writev: fs.writev,
    close: fs.close,
    fsync: (fd: number, cb: (e: Error | null) => void) => {
      disk.log?.push(`fsync ${path}`);
      const failure = disk.syncFails?.(path);
      if (failure) cb(failure);
      else fs.fsync(fd, cb);
    },
  });
  const createWriteStream = ((path: string, options?: any) =>
    fullDisk.under && String(path).startsWith(fullDisk.under)
      ? fs.createWriteStream('/dev/full', { flags: 'w' })
      : fs.createWriteStream(path, {
          ...options,
          fs: recorded(String(path)),
        })) as typeof fs.createWriteStream;
  return { ...fs, createWriteStream, default: { ...fs, createWriteStream } };
});

const sha256 = (data: Buffer) =>
  `sha256:${createHash('sha256').update(data).digest('hex')}`;

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of chunks) parts.push(chunk);
  return Buffer.concat(parts);
}

describe('the layer store', () => {
  let dir: string;
  let store: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'layers-test-'));
    store = join(dir, 'store');
    mkdirSync(store);
  });
  afterEach(() => {
    afterStat.hook = undefined;
    afterStat.openFails = undefined;
    afterStat.beforeRename = undefined;
    afterStat.afterRename = undefined;
    fullDisk.under = undefined;
    disk.log = undefined;
    disk.syncFails = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** An archive laid out as `docker save` lays one out: a directory per layer, configs, a manifest. */
  function saved(
    name: string,
    layers: Record<string, Buffer>,
    format = 'gnu',
  ): string {
    const root = join(dir, `${name}-in`);
    for (const [id, content] of Object.entries(layers)) {
      mkdirSync(join(root, id), { recursive: true });
      writeFileSync(join(root, id, 'layer.tar'), content);
      writeFileSync(join(root, id, 'json'), `{"id":"${id}"}`);
    }
    writeFileSync(
      join(root, 'manifest.json'),
      JSON.stringify([
        { Layers: Object.keys(layers).map(id => `${id}/layer.tar`) },
      ]),
    );
    const archive = join(dir, `${name}.tar`);
    execFileSync('tar', [
      `--format=${format}`,
      '-cf',
      archive,
      '-C',
      root,
      ...Object.keys(layers),
      'manifest.json',
    ]);
    return archive;
  }

  const base = Buffer.alloc(300_000, 7);
  const top1 = Buffer.alloc(100_000, 1);
  const top2 = Buffer.alloc(120_000, 2);
  const small = Buffer.alloc(4_096, 3);

  it('keeps a layer two captures share once, and gives back each original archive byte for byte', async () => {
    const first = saved('first', { aaa: base, bbb: top1, ccc: small });
    const second = saved('second', { aaa: base, ddd: top2 });
    const a = await writeThinArchive(
      createReadStream(first),
      store,
      'cap-1.tar',
      [],
    );
    const b = await writeThinArchive(
      createReadStream(second),
      store,
      'cap-2.tar',
      [],
    );
    expect(a).toMatchObject({
      size: statSync(first).size,
      checksum: sha256(readFileSync(first)),
    });
    expect(b).toMatchObject({
      size: statSync(second).size,
      checksum: sha256(readFileSync(second)),
    });
    // The first stores both of its large layers (the small one stays in its archive), the second its top alone.
    expect(a.storedBytes).toBe(
      base.length + top1.length + statSync(join(store, 'cap-1.tar')).size,
    );
    expect(b.storedBytes).toBe(
      top2.length + statSync(join(store, 'cap-2.tar')).size,
    );
    // Metadata, the small layer, and the 10 KiB records GNU tar pads to.
    expect(statSync(join(store, 'cap-1.tar')).size).toBeLessThan(32_000);
    expect(readdirSync(join(store, LAYERS_DIRECTORY)).sort()).toEqual(
      [base, top1, top2].map(l => `${sha256(l).slice(7)}.layer`).sort(),
    );

    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-1.tar')))
      ).equals(readFileSync(first)),
    ).toBe(true);
    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-2.tar')))
      ).equals(readFileSync(second)),
    ).toBe(true);
    // A whole archive, as older captures keep: read as it is.
    expect(
      (await collect(readCaptureArchive(store, first))).equals(
        readFileSync(first),
      ),
    ).toBe(true);
  });

  it("keeps the store's files for the backend's user alone (0600, directories 0700): they hold the machines' secrets", async () => {
    const mode = (path: string) => statSync(path).mode & 0o777;
    const inStore = join(store, 'new');
    const archive = saved('first', { aaa: base, bbb: top1, ccc: small });
    const before = process.umask(0o022);
    try {
      await writeThinArchive(
        createReadStream(archive),
        inStore,
        'cap-1.tar',
        [],
      );
    } finally {
      process.umask(before);
    }
    expect(mode(inStore)).toBe(0o700);
    expect(mode(join(inStore, LAYERS_DIRECTORY))).toBe(0o700);
    expect(mode(join(inStore, 'cap-1.tar'))).toBe(0o600);
    const layers = readdirSync(join(inStore, LAYERS_DIRECTORY));
    expect(layers).toHaveLength(2);
    for (const layer of layers)
      expect(mode(join(inStore, LAYERS_DIRECTORY, layer))).toBe(0o600);
  });

  it('closes a store made before to others at its next capture, and reads its captures as before', async () => {
    const mode = (path: string) => statSync(path).mode & 0o777;
    const first = saved('first', { aaa: base, bbb: top1 });
    const second = saved('second', { aaa: base, ddd: top2 });
    await writeThinArchive(createReadStream(first), store, 'cap-1.tar', []);
    // As a backend before this one left it: readable to all.
    execFileSync('chmod', ['-R', 'go+rX', store]);
    expect(mode(store)).toBe(0o755);
    expect(mode(join(store, 'cap-1.tar'))).toBe(0o644);

    await writeThinArchive(createReadStream(second), store, 'cap-2.tar', []);
    expect(mode(store)).toBe(0o700);
    expect(mode(join(store, LAYERS_DIRECTORY))).toBe(0o700);
    expect(mode(join(store, 'cap-2.tar'))).toBe(0o600);
    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-1.tar')))
      ).equals(readFileSync(first)),
    ).toBe(true);
  });

  it('flushes each file to the disk before its rename, and the rename after; the layers before the archive that names them', async () => {
    mkdirSync(join(store, LAYERS_DIRECTORY));
    // One layer the store holds already: its copy is removed, not flushed.
    writeFileSync(
      join(store, LAYERS_DIRECTORY, `${sha256(base).slice(7)}.layer`),
      base,
    );
    const archive = saved('first', { aaa: base, bbb: top1 });
    disk.log = [];
    await writeThinArchive(createReadStream(archive), store, 'cap-1.tar', []);
    const layers = join(store, LAYERS_DIRECTORY);
    const log = disk.log.map(line =>
      line
        .replaceAll(layers, 'layers')
        .replaceAll(store, 'store')
        .replace(/\.[0-9a-f]+\.tmp/g, '.TMP'),
    );
    expect(log).toEqual([
      'fsync layers/.TMP',
      `rename layers/.TMP layers/${sha256(top1).slice(7)}.layer`,
      'fsync store/.cap-1.tar.TMP',
      'fsync layers',
      'rename store/.cap-1.tar.TMP store/cap-1.tar',
      'fsync store',
    ]);
  });

  it('fails on a flush that fails, keeping nothing under its name; goes on where the file system cannot flush a directory', async () => {
    const archive = saved('first', { aaa: base, bbb: top1 });
    const failure = (code: string) =>
      Object.assign(new Error(`${code}: flush failed`), { code });
    const layers = join(store, LAYERS_DIRECTORY);
    disk.syncFails = path =>
      path.startsWith(layers) && path.endsWith('.tmp')
        ? failure('EIO')
        : undefined;
    await expect(
      writeThinArchive(createReadStream(archive), store, 'cap-1.tar', []),
    ).rejects.toThrow('EIO: flush failed');
    disk.syncFails = path =>
      path.startsWith(join(store, '.cap-2.tar.')) ? failure('EIO') : undefined;
    await expect(
      writeThinArchive(createReadStream(archive), store, 'cap-2.tar', []),
    ).rejects.toThrow('EIO: flush failed');
    expect(readdirSync(store).filter(f => f.startsWith('cap-'))).toEqual([]);

    disk.syncFails = path =>
      path === store || path === layers ? failure('EINVAL') : undefined;
    const thin = await writeThinArchive(
      createReadStream(archive),
      store,
      'cap-3.tar',
      [],
    );
    expect(thin.checksum).toBe(sha256(readFileSync(archive)));
    // A file's flush is never let go.
    disk.syncFails = path =>
      path.startsWith(join(store, '.cap-4.tar.'))
        ? failure('EINVAL')
        : undefined;
    await expect(
      writeThinArchive(createReadStream(archive), store, 'cap-4.tar', []),
    ).rejects.toThrow('EINVAL: flush failed');
  });

  it('gives back an archive whose entries pax headers describe, and with a layer changed, says so by the checksum', async () => {
    const long = `${'l'.repeat(120)}`;
    const archive = saved('pax', { [long]: base, eee: top1 }, 'pax');
    const thin = await writeThinArchive(
      createReadStream(archive),
      store,
      'cap-pax.tar',
      [],
    );
    expect(readdirSync(join(store, LAYERS_DIRECTORY))).toHaveLength(2);
    const back = await collect(
      readCaptureArchive(store, join(store, 'cap-pax.tar')),
    );
    expect(back.equals(readFileSync(archive))).toBe(true);
    expect(sha256(back)).toBe(thin.checksum);

    const top = join(store, LAYERS_DIRECTORY, `${sha256(top1).slice(7)}.layer`);
    writeFileSync(top, Buffer.alloc(top1.length, 9));
    expect(
      sha256(
        await collect(readCaptureArchive(store, join(store, 'cap-pax.tar'))),
      ),
    ).not.toBe(thin.checksum);
    rmSync(top);
    await expect(
      collect(readCaptureArchive(store, join(store, 'cap-pax.tar'))),
    ).rejects.toThrow(
      `layer ${sha256(top1).slice(7)} of eee/layer.tar is missing from the capture store (${top})`,
    );
  });

  it('removes the layers no archive refers to once old enough, and no other', async () => {
    await writeThinArchive(
      createReadStream(saved('first', { aaa: base, bbb: top1 })),
      store,
      'cap-1.tar',
      [],
    );
    await writeThinArchive(
      createReadStream(saved('second', { aaa: base, ddd: top2 })),
      store,
      'cap-2.tar',
      [],
    );
    writeFileSync(
      join(store, 'cap-2.volume-1.tar'),
      readFileSync(saved('volume', { vvv: top1 })),
    );
    rmSync(join(store, 'cap-1.tar'));
    const layer = (l: Buffer) =>
      join(store, LAYERS_DIRECTORY, `${sha256(l).slice(7)}.layer`);
    // Fresh: a capture under way may be about to refer to it.
    expect(await removeUnusedLayers(store)).toBe(0);
    const old = new Date(Date.now() - 7 * 60 * 60_000);
    for (const l of [base, top1, top2]) utimesSync(layer(l), old, old);
    expect(await removeUnusedLayers(store)).toBe(top1.length);
    expect(readdirSync(join(store, LAYERS_DIRECTORY)).sort()).toEqual(
      [base, top2].map(l => `${sha256(l).slice(7)}.layer`).sort(),
    );
    expect(
      (await collect(readCaptureArchive(store, join(store, 'cap-2.tar'))))
        .length,
    ).toBe(statSync(join(dir, 'second.tar')).size);
  });

  it('removes no layer while an archive cannot be read, and says which; one removed meanwhile is no archive', async () => {
    await writeThinArchive(
      createReadStream(saved('first', { aaa: base, bbb: top1 })),
      store,
      'cap-1.tar',
      [],
    );
    const layers = readdirSync(join(store, LAYERS_DIRECTORY)).sort();
    const old = new Date(Date.now() - 7 * 60 * 60_000);
    for (const name of layers)
      utimesSync(join(store, LAYERS_DIRECTORY, name), old, old);
    const archive = join(store, 'cap-1.tar');
    afterStat.openFails = path =>
      path === archive
        ? Object.assign(
            new Error(`EMFILE: too many open files, open '${path}'`),
            { code: 'EMFILE', path },
          )
        : undefined;
    await expect(removeUnusedLayers(store)).rejects.toThrow(
      `EMFILE: too many open files, open '${archive}'`,
    );
    expect(readdirSync(join(store, LAYERS_DIRECTORY)).sort()).toEqual(layers);
    // Discarded between the listing and the read: its layers are unused.
    afterStat.openFails = path =>
      path === archive
        ? Object.assign(new Error('ENOENT'), { code: 'ENOENT', path })
        : undefined;
    expect(await removeUnusedLayers(store)).toBe(base.length + top1.length);
  });

  it('keeps a layer that a capture finds while the sweep is about to remove it', async () => {
    await writeThinArchive(
      createReadStream(saved('first', { aaa: base, bbb: top1 })),
      store,
      'cap-1.tar',
      [],
    );
    rmSync(join(store, 'cap-1.tar'));
    const layer = (l: Buffer) =>
      join(store, LAYERS_DIRECTORY, `${sha256(l).slice(7)}.layer`);
    const old = new Date(Date.now() - 7 * 60 * 60_000);
    for (const l of [base, top1]) utimesSync(layer(l), old, old);
    // The next capture of an image with that layer runs the moment after the sweep read its age.
    const second = saved('second', { bbb: top1 });
    let capturing: Promise<unknown> | undefined;
    afterStat.hook = async path => {
      if (path !== layer(top1) || capturing) return;
      capturing = writeThinArchive(
        createReadStream(second),
        store,
        'cap-2.tar',
        [],
      );
      await capturing;
    };
    expect(await removeUnusedLayers(store)).toBe(base.length);
    expect(capturing).toBeDefined();
    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-2.tar')))
      ).equals(readFileSync(second)),
    ).toBe(true);
  });

  const layerName = (l: Buffer) => `${sha256(l).slice(7)}.layer`;
  const layersNow = () => readdirSync(join(store, LAYERS_DIRECTORY)).sort();

  it('removes at once the layers a failed capture wrote, not those it found, nor one it wrote anew that a kept archive refers to', async () => {
    await writeThinArchive(
      createReadStream(saved('first', { aaa: base, bbb: top1 })),
      store,
      'cap-1.tar',
      [],
    );
    const second: string[] = [];
    await writeThinArchive(
      createReadStream(saved('second', { aaa: base, ddd: top2 })),
      store,
      'cap-2.tar',
      [],
      undefined,
      second,
    );
    // The base was in the store: only its top is the second capture's own.
    expect(second).toEqual([sha256(top2).slice(7)]);
    // It fails after its archive was in place (its record, say): the caller removes the archive, then the layers.
    rmSync(join(store, 'cap-2.tar'));
    expect(await removeWrittenLayers(store, second)).toBe(top2.length);
    expect(layersNow()).toEqual([base, top1].map(layerName).sort());

    // The first capture's top, cut short by a crash, is written anew by a third that then fails: the first still needs it.
    const top = join(store, LAYERS_DIRECTORY, layerName(top1));
    truncateSync(top, 4096);
    const third: string[] = [];
    await writeThinArchive(
      createReadStream(saved('third', { bbb: top1 })),
      store,
      'cap-3.tar',
      [],
      undefined,
      third,
    );
    expect(third).toEqual([sha256(top1).slice(7)]);
    rmSync(join(store, 'cap-3.tar'));
    expect(await removeWrittenLayers(store, third)).toBe(0);
    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-1.tar')))
      ).equals(readFileSync(join(dir, 'first.tar'))),
    ).toBe(true);
    // No claim outlives its capture.
    expect(layersNow()).toEqual([base, top1].map(layerName).sort());
  });

  it("keeps a failed capture's layer that another capture under way found or writes anew, until that one's archive refers to it", async () => {
    const failed: string[] = [];
    await writeThinArchive(
      createReadStream(saved('first', { bbb: top1 })),
      store,
      'cap-1.tar',
      [],
      undefined,
      failed,
    );
    rmSync(join(store, 'cap-1.tar'));
    const archive = saved('second', { aaa: base, bbb: top1 });
    // The first capture's cleanup runs the moment before the second's archive is in place: the
    // second found the layer (touched it), and its archive refers to it only once renamed.
    let removing: Promise<number> | undefined;
    afterStat.beforeRename = async (_from, to) => {
      if (to !== join(store, 'cap-2.tar') || removing) return;
      removing = removeWrittenLayers(store, failed);
      expect(await removing).toBe(0);
    };
    await writeThinArchive(createReadStream(archive), store, 'cap-2.tar', []);
    expect(removing).toBeDefined();
    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-2.tar')))
      ).equals(readFileSync(archive)),
    ).toBe(true);

    // A third capture comes to the layer while a failed one has it moved aside: it writes it anew,
    // and the one moved aside goes back (the same content) where the third's archive refers to it.
    rmSync(join(store, 'cap-2.tar'));
    afterStat.beforeRename = undefined;
    let third: Promise<unknown> | undefined;
    afterStat.afterRename = async (from, to) => {
      if (
        from !== join(store, LAYERS_DIRECTORY, layerName(top1)) ||
        !to.endsWith('.removing') ||
        third
      )
        return;
      third = writeThinArchive(
        createReadStream(archive),
        store,
        'cap-3.tar',
        [],
      );
      await third;
    };
    expect(await removeWrittenLayers(store, failed)).toBe(0);
    expect(third).toBeDefined();
    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-3.tar')))
      ).equals(readFileSync(archive)),
    ).toBe(true);
    // Once no archive refers to it and no capture claims it, it goes.
    rmSync(join(store, 'cap-3.tar'));
    afterStat.afterRename = undefined;
    expect(await removeWrittenLayers(store, failed)).toBe(top1.length);
    expect(layersNow()).toEqual([layerName(base)]);
  });

  it('writes anew a layer that a crash left cut short, instead of referring to it', async () => {
    const archive = saved('first', { aaa: base, bbb: top1 });
    mkdirSync(join(store, LAYERS_DIRECTORY));
    writeFileSync(
      join(store, LAYERS_DIRECTORY, `${sha256(base).slice(7)}.layer`),
      base.subarray(0, 4096),
    );
    const thin = await writeThinArchive(
      createReadStream(archive),
      store,
      'cap-1.tar',
      [],
    );
    expect(
      (
        await collect(readCaptureArchive(store, join(store, 'cap-1.tar')))
      ).equals(readFileSync(archive)),
    ).toBe(true);
    expect(thin.storedBytes).toBe(
      base.length + top1.length + statSync(join(store, 'cap-1.tar')).size,
    );
  });

  it('refuses a layer reference that is no sha256 digest: a changed archive does not have the store read a file outside it', async () => {
    await writeThinArchive(
      createReadStream(saved('first', { aaa: base })),
      store,
      'cap-1.tar',
      [],
    );
    // Of the same length, so the archive stays well formed: a path out of the layers directory.
    const digest = sha256(base).slice(7);
    const outside = `../../${'o'.repeat(58)}`;
    writeFileSync(join(dir, `${'o'.repeat(58)}.layer`), base);
    const archive = join(store, 'cap-1.tar');
    const data = readFileSync(archive);
    const at = data.indexOf(`"sha256":"${digest}"`);
    expect(at).toBeGreaterThan(0);
    data.write(outside, at + '"sha256":"'.length);
    writeFileSync(archive, data);
    await expect(collect(readCaptureArchive(store, archive))).rejects.toThrow(
      `a layer reference names "${outside}", not a sha256 digest (64 hex digits): the archive is not one a capture wrote`,
    );
  });

  it("fails reading an archive whose layer could not be looked at with the file system's code, telling gone (ENOENT) from unreadable", async () => {
    await writeThinArchive(
      createReadStream(saved('first', { aaa: base, bbb: top1 })),
      store,
      'cap-1.tar',
      [],
    );
    const layers = join(store, LAYERS_DIRECTORY);
    const read = () =>
      collect(readCaptureArchive(store, join(store, 'cap-1.tar'))).catch(
        e => e,
      );
    // Of another size: the store's own word, no code.
    truncateSync(join(layers, `${sha256(base).slice(7)}.layer`), 1000);
    const short = await read();
    expect(short.message).toMatch(
      /^layer [0-9a-f]{64} of aaa\/layer\.tar is 1000 bytes, not 300000, in the capture store/,
    );
    expect(short.code).toBeUndefined();
    rmSync(join(layers, `${sha256(base).slice(7)}.layer`));
    const gone = await read();
    expect(gone).toMatchObject({
      code: 'ENOENT',
      message: `layer ${sha256(base).slice(7)} of aaa/layer.tar is missing from the capture store (${join(layers, `${sha256(base).slice(7)}.layer`)})`,
    });
    // A file where the layers directory stands: not a layer gone, a store that could not be read.
    rmSync(layers, { recursive: true });
    writeFileSync(layers, '');
    const notDir = await read();
    expect(notDir.code).toBe('ENOTDIR');
    expect(notDir.message).toMatch(
      /^layer [0-9a-f]{64} of aaa\/layer\.tar could not be read in the capture store: ENOTDIR: not a directory, stat /,
    );
  });

  it('fails a capture whose store is full, naming the error, and goes on', async () => {
    const archive = readFileSync(saved('first', { aaa: base, bbb: top1 }));
    fullDisk.under = store;
    // The engine's output comes in small pieces, slower than the disk fails.
    const source = new PassThrough();
    const feeding = (async () => {
      for (let at = 0; at < archive.length && !source.destroyed; at += 4096) {
        source.write(archive.subarray(at, at + 4096));
        await new Promise(r => setTimeout(r, 1));
      }
      source.end();
    })();
    await expect(
      writeThinArchive(source, store, 'cap-1.tar', []),
    ).rejects.toThrow(/ENOSPC/);
    await feeding;
  }, 10_000);

  it('fails a save cut short, or that the engine ended with its error, naming it, and keeps nothing of it', async () => {
    const whole = readFileSync(saved('first', { aaa: base, bbb: top1 }));
    // Cut where an entry begins: every entry is whole, the archive is not.
    const entries = createTar([
      { type: 'file', path: 'aaa/layer.tar', content: base },
      { type: 'file', path: 'manifest.json', content: '[]' },
    ]);
    const cut = entries.subarray(0, entries.length - 1024);
    // dockerd writes a failure into the stream once the save has begun, and ends it.
    const says = (message: string) =>
      Buffer.from(
        `${JSON.stringify({ errorDetail: { message }, error: message })}\r\n`,
      );
    const short =
      'open /var/lib/docker/overlay2/abc/diff: no such file or directory';
    const long = `${short} ${'x'.repeat(600)}`;
    const cases: Array<[Buffer, string]> = [
      [
        cut,
        `tar: the image archive ends after ${cut.length} bytes, without its end block (cut short)`,
      ],
      [
        whole.subarray(0, 4096 + 512),
        'tar: the image archive ends inside entry aaa/layer.tar',
      ],
      [
        Buffer.concat([cut, says(short)]),
        `without its end block (cut short): the engine says "${short}"`,
      ],
      [
        Buffer.concat([cut, says(long)]),
        `tar: the image archive holds no tar header at byte ${cut.length}: the engine says "${long}"`,
      ],
    ];
    for (const [i, [archive, message]] of cases.entries()) {
      const written: string[] = [];
      await expect(
        writeThinArchive(
          Readable.from([archive]),
          store,
          `cap-${i}.tar`,
          written,
        ),
      ).rejects.toThrow(message);
      // Only the temporary file, which the capture removes as any of its files.
      expect(readdirSync(store).filter(f => f.endsWith('.tar'))).toEqual([]);
    }
  });

  it('stops when aborted mid-layer, ending the source and leaving no layer half written', async () => {
    const archive = readFileSync(saved('first', { aaa: base, bbb: top1 }));
    const source = new PassThrough();
    source.write(archive.subarray(0, 200_000));
    const abort = new AbortController();
    const written: string[] = [];
    const writing = writeThinArchive(
      source,
      store,
      'cap-1.tar',
      written,
      abort.signal,
    );
    setTimeout(() => abort.abort(new Error('the backend shuts down')), 50);
    await expect(writing).rejects.toThrow('the backend shuts down');
    expect(source.destroyed).toBe(true);
    expect(readdirSync(join(store, LAYERS_DIRECTORY))).toEqual([]);
    // The caller removes the archive's temporary file, as with any capture file.
    expect(
      readdirSync(store)
        .filter(f => f !== LAYERS_DIRECTORY)
        .map(f => join(store, f)),
    ).toEqual(written.filter(f => f.endsWith('.tmp')));
  });
});
