import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { busyboxDigest, busyboxRootfsEntries, notStaticElf } from './busybox';

describe('busyboxRootfsEntries', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'busybox-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a dynamically linked binary that answers --list: the probe image would hold no loader to run it', () => {
    // coreutils' true is dynamic and exits 0 on --list, as a dynamic busybox does.
    expect(() => busyboxRootfsEntries('/bin/true')).toThrow(
      /^\/bin\/true is dynamically linked \(it needs \/\S+ld\S+\), and the probe image holds nothing else: set recovery\.docker\.busyboxPath to a static busybox \(Debian's busybox-static\)$/,
    );
  });

  it('refuses a script standing in for busybox', () => {
    const script = join(dir, 'busybox');
    writeFileSync(script, '#!/bin/sh\nexec /bin/busybox "$@"\n');
    chmodSync(script, 0o755);
    expect(() => busyboxRootfsEntries(script)).toThrow(
      `${script} is no ELF executable, and the probe image holds nothing else`,
    );
  });

  it('names the setting when the binary is missing', () => {
    const missing = join(dir, 'no-busybox');
    expect(() => busyboxRootfsEntries(missing)).toThrow(
      `cannot read ${missing}, the busybox the probe image is built from (ENOENT): set recovery.docker.busyboxPath to a static busybox (Debian's busybox-static)`,
    );
  });

  // Where the host has the static busybox the README asks for.
  it.runIf(
    existsSync('/bin/busybox') && !notStaticElf(readFileSync('/bin/busybox')),
  )('takes a static busybox, with a link per applet', () => {
    const entries = busyboxRootfsEntries('/bin/busybox');
    expect(entries).toContainEqual(
      expect.objectContaining({ type: 'file', path: 'bin/busybox' }),
    );
    expect(entries).toContainEqual({
      type: 'symlink',
      path: 'bin/sh',
      target: 'busybox',
    });
  });
});

describe('busyboxDigest', () => {
  it('is the sha256 of the file the probe image is built from, and undefined where there is none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'busybox-'));
    try {
      const file = join(dir, 'busybox');
      writeFileSync(file, 'a binary');
      expect(busyboxDigest(file)).toBe(
        `sha256:${createHash('sha256').update('a binary').digest('hex')}`,
      );
      expect(busyboxDigest(join(dir, 'missing'))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
