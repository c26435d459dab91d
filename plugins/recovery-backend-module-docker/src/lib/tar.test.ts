import { execFileSync } from 'node:child_process';
import {
  mkdtempSync,
  readFileSync,
  readlinkSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTar, forEachTarFile, rewriteTarFiles } from './tar';

/** The regular files of a tar archive on disk and their sizes, by path, as forEachTarFile reads them. */
async function tarFileSizes(file: string): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  await forEachTarFile(file, (path, size) => {
    sizes.set(path, size);
  });
  return sizes;
}

describe('createTar', () => {
  it('writes an archive GNU tar extracts: directories, files with modes, symlinks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
    try {
      const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/file.txt`;
      writeFileSync(
        join(dir, 'a.tar'),
        createTar([
          { type: 'dir', path: 'bin' },
          {
            type: 'file',
            path: 'bin/tool',
            content: '#!/bin/sh\necho hi\n',
            mode: 0o755,
          },
          { type: 'symlink', path: 'bin/alias', target: 'tool' },
          { type: 'file', path: long, content: Buffer.alloc(1000, 1) },
        ]),
      );
      const out = join(dir, 'out');
      execFileSync('mkdir', [out]);
      execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', out]);
      expect(readFileSync(join(out, 'bin/tool'), 'utf8')).toBe(
        '#!/bin/sh\necho hi\n',
      );
      expect(
        execFileSync('stat', ['-c', '%a', join(out, 'bin/tool')], {
          encoding: 'utf8',
        }).trim(),
      ).toBe('755');
      expect(readlinkSync(join(out, 'bin/alias'))).toBe('tool');
      expect(readFileSync(join(out, long)).length).toBe(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Changes a header in place and sets its checksum again. */
function resealed(header: Buffer, change: (h: Buffer) => void) {
  change(header);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header.subarray(0, 512)) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
}

describe('rewriteTarFiles', () => {
  /** The archive fed in chunks of `size` bytes, rewritten, joined again. */
  async function rewritten(
    archive: Buffer,
    size: number,
    rewrite: Record<string, (content: Buffer) => Buffer>,
  ) {
    async function* chunks() {
      for (let i = 0; i < archive.length; i += size)
        yield archive.subarray(i, i + size);
    }
    const out: Buffer[] = [];
    for await (const chunk of rewriteTarFiles(chunks(), rewrite))
      out.push(chunk);
    return Buffer.concat(out);
  }

  /** What GNU tar extracts from the archive: each file's content by path. */
  function extracted(archive: Buffer): Record<string, string> {
    const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
    try {
      writeFileSync(join(dir, 'a.tar'), archive);
      const paths = execFileSync('tar', ['-tf', join(dir, 'a.tar')], {
        encoding: 'utf8',
      })
        .split('\n')
        .filter(p => p && !p.endsWith('/'));
      execFileSync('mkdir', [join(dir, 'out')]);
      execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', join(dir, 'out')]);
      return Object.fromEntries(
        paths.map(p => [p, readFileSync(join(dir, 'out', p), 'utf8')]),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  const layer = 'x'.repeat(70_000);
  const archive = createTar([
    { type: 'dir', path: 'abc' },
    { type: 'file', path: 'abc/layer.tar', content: layer },
    {
      type: 'file',
      path: 'abc/manifest.json',
      content: "nested: not the archive's own",
    },
    {
      type: 'file',
      path: 'manifest.json',
      content: '[{"RepoTags":["recovery-capture/web-01:c1"]}]',
    },
    { type: 'file', path: 'repositories', content: '{}' },
  ]);
  const retag = {
    'manifest.json': () =>
      Buffer.from('[{"RepoTags":["recovery-lab/0123:run-1"]}]'),
  };

  it('replaces the named top-level file, longer or shorter, and passes every other entry as it was', async () => {
    for (const size of [7, 511, 513, 65_536, archive.length]) {
      expect(extracted(await rewritten(archive, size, retag))).toEqual({
        'abc/layer.tar': layer,
        'abc/manifest.json': "nested: not the archive's own",
        'manifest.json': '[{"RepoTags":["recovery-lab/0123:run-1"]}]',
        repositories: '{}',
      });
    }
    const shorter = await rewritten(archive, 4096, {
      'manifest.json': () => Buffer.from('[]'),
    });
    expect(extracted(shorter)['manifest.json']).toBe('[]');
    // Nothing named: byte for byte the same.
    expect((await rewritten(archive, 1000, {})).equals(archive)).toBe(true);
  });

  it('leaves an entry that a pax header describes as it is, and fails on an archive cut short', async () => {
    // A pax header naming the entry after it (as where its name is too long for its own header).
    const pax = createTar([
      {
        type: 'file',
        path: 'PaxHeaders/manifest.json',
        content: '22 path=manifest.json\n',
      },
    ]).subarray(0, 1024);
    pax[156] = 'x'.charCodeAt(0);
    pax.fill(' ', 148, 156);
    let sum = 0;
    for (const byte of pax.subarray(0, 512)) sum += byte;
    pax.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    const described = Buffer.concat([
      pax,
      createTar([
        { type: 'file', path: 'manifest.json', content: 'as it was' },
      ]),
    ]);
    expect(
      extracted(await rewritten(described, 700, retag))['manifest.json'],
    ).toBe('as it was');
    // Only the entry right after it.
    expect(
      extracted(await rewritten(Buffer.concat([pax, archive]), 700, retag))[
        'manifest.json'
      ],
    ).toBe('[{"RepoTags":["recovery-lab/0123:run-1"]}]');
    await expect(
      rewritten(archive.subarray(0, 2000), 700, retag),
    ).rejects.toThrow('tar: the archive ends inside entry abc/layer.tar');
  });

  it('follows a pax size, as Go writes one for a layer past 8 GiB (0 in its own header), to the manifest after it', async () => {
    // Go's tar writer gives such a file a pax `size` record and writes 0 in the header's field.
    const paxSized = (path: string, content: Buffer) => {
      const pax = createTar([
        {
          type: 'file',
          path: `PaxHeaders/${path}`,
          content: `14 size=${content.length}\n`,
        },
      ]).subarray(0, 1024);
      const entry = createTar([{ type: 'file', path, content }]);
      resealed(pax.subarray(0, 512), h => h.write('x', 156, 'ascii'));
      resealed(entry.subarray(0, 512), h =>
        h.write(`${'0'.repeat(11)}\0`, 124, 'ascii'),
      );
      return Buffer.concat([pax, entry.subarray(0, entry.length - 1024)]);
    };
    // A layer is itself a tar: read as headers, its end-of-archive blocks would end the outer one.
    const large = createTar([
      {
        type: 'file',
        path: 'var/lib/data',
        content: Buffer.alloc(70_000, 'y'),
      },
    ]);
    const big = Buffer.concat([
      paxSized('abc/layer.tar', large),
      createTar([
        {
          type: 'file',
          path: 'manifest.json',
          content: '[{"RepoTags":["recovery-capture/web-01:c1"]}]',
        },
      ]),
    ]);
    expect(extracted(big)['abc/layer.tar']).toBe(large.toString());
    expect(extracted(await rewritten(big, 4096, retag))).toEqual({
      'abc/layer.tar': large.toString(),
      'manifest.json': '[{"RepoTags":["recovery-lab/0123:run-1"]}]',
    });
  });
});

describe('forEachTarFile', () => {
  it('reads each regular file and its size from the headers, as GNU tar writes them in every format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
    try {
      const long = `${'d'.repeat(80)}/${'e'.repeat(80)}/layer.tar`;
      execFileSync('mkdir', [
        '-p',
        join(dir, 'in', 'abc'),
        join(dir, 'in', long, '..'),
      ]);
      writeFileSync(
        join(dir, 'in', 'abc', 'layer.tar'),
        Buffer.alloc(70_000, 1),
      );
      writeFileSync(join(dir, 'in', long), Buffer.alloc(1_234, 2));
      writeFileSync(join(dir, 'in', 'manifest.json'), '[]');
      execFileSync('ln', ['-s', 'manifest.json', join(dir, 'in', 'link')]);
      const expected = new Map([
        ['abc/layer.tar', 70_000],
        [long, 1_234],
        ['manifest.json', 2],
      ]);
      // ustar cannot hold the long name: gnu writes it as a long-name entry, pax as an extended header.
      for (const format of ['gnu', 'pax']) {
        const archive = join(dir, `${format}.tar`);
        execFileSync('tar', [
          `--format=${format}`,
          '-cf',
          archive,
          '-C',
          join(dir, 'in'),
          'abc',
          'd'.repeat(80),
          'manifest.json',
          'link',
        ]);
        expect(await tarFileSizes(archive)).toEqual(expected);
      }
      writeFileSync(
        join(dir, 'ours.tar'),
        createTar([
          { type: 'dir', path: 'abc' },
          { type: 'file', path: 'abc/layer.tar', content: 'x'.repeat(513) },
        ]),
      );
      expect(await tarFileSizes(join(dir, 'ours.tar'))).toEqual(
        new Map([['abc/layer.tar', 513]]),
      );

      const cut = join(dir, 'cut.tar');
      writeFileSync(
        cut,
        readFileSync(join(dir, 'gnu.tar')).subarray(0, 40_000),
      );
      await expect(tarFileSizes(cut)).rejects.toThrow(
        `tar: ${cut} ends inside entry abc/layer.tar`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
