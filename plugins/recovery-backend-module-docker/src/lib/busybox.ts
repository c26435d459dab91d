import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { TarEntry } from './tar';

/**
 * The entries of a minimal root file system around a static busybox binary: the binary at
 * /bin/busybox, a symlink per applet in /bin, and the few directories and files a
 * container needs (/etc/passwd, /tmp, …). No registry is needed: `docker import` it.
 */
export function busyboxRootfsEntries(busyboxPath = '/bin/busybox'): TarEntry[] {
  const fix = `set recovery.docker.busyboxPath to a static busybox (Debian's busybox-static)`;
  let binary: Buffer;
  try {
    binary = readFileSync(busyboxPath);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new Error(
      `cannot read ${busyboxPath}, the busybox the probe image is built from (${why}): ${fix}`,
    );
  }
  // The image holds the binary alone: a dynamic one (Debian's busybox package installs one at the
  // same path) or a script would be imported, kept on the engine, and fail every probe of every run.
  const notStatic = notStaticElf(binary);
  if (notStatic)
    throw new Error(
      `${busyboxPath} ${notStatic}, and the probe image holds nothing else: ${fix}`,
    );
  let applets: string[];
  try {
    applets = execFileSync(busyboxPath, ['--list'], { encoding: 'utf8' })
      .split('\n')
      .map(a => a.trim())
      .filter(a => a && a !== 'busybox' && /^[\w.[\]-]+$/.test(a));
  } catch (e) {
    throw new Error(
      `${busyboxPath} is not a usable busybox binary: ${(e as Error).message}`,
    );
  }
  const entries: TarEntry[] = [
    { type: 'dir', path: 'bin' },
    { type: 'dir', path: 'sbin' },
    { type: 'dir', path: 'etc' },
    { type: 'dir', path: 'dev' },
    { type: 'dir', path: 'proc' },
    { type: 'dir', path: 'sys' },
    { type: 'dir', path: 'run' },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'dir', path: 'tmp', mode: 0o1777 },
    { type: 'dir', path: 'var' },
    { type: 'dir', path: 'var/log' },
    { type: 'dir', path: 'usr' },
    { type: 'dir', path: 'usr/bin' },
    { type: 'file', path: 'bin/busybox', content: binary, mode: 0o755 },
    {
      type: 'file',
      path: 'etc/passwd',
      content:
        'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
    },
    {
      type: 'file',
      path: 'etc/group',
      content: 'root:x:0:\nnogroup:x:65534:\n',
    },
  ];
  for (const applet of applets) {
    entries.push({ type: 'symlink', path: `bin/${applet}`, target: 'busybox' });
  }
  return entries;
}

/** Why an executable could not run alone in an empty root file system; undefined if it can. */
export function notStaticElf(binary: Buffer): string | undefined {
  if (binary.length < 52 || binary.readUInt32BE(0) !== 0x7f454c46)
    return 'is no ELF executable';
  const is64 = binary[4] === 2;
  const le = binary[5] === 1;
  const u16 = (at: number) =>
    le ? binary.readUInt16LE(at) : binary.readUInt16BE(at);
  const u32 = (at: number) =>
    le ? binary.readUInt32LE(at) : binary.readUInt32BE(at);
  const phoff = is64
    ? Number(le ? binary.readBigUInt64LE(0x20) : binary.readBigUInt64BE(0x20))
    : u32(0x1c);
  const phentsize = u16(is64 ? 0x36 : 0x2a);
  const phnum = u16(is64 ? 0x38 : 0x2c);
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > binary.length) return 'is a truncated ELF file';
    // PT_INTERP: the program loader, with the libraries it loads, is another file.
    if (u32(at) !== 3) continue;
    const offset = is64
      ? Number(
          le ? binary.readBigUInt64LE(at + 8) : binary.readBigUInt64BE(at + 8),
        )
      : u32(at + 4);
    const size = is64
      ? Number(
          le
            ? binary.readBigUInt64LE(at + 32)
            : binary.readBigUInt64BE(at + 32),
        )
      : u32(at + 16);
    const loader = binary
      .subarray(offset, offset + size)
      .toString('latin1')
      .replace(/\0+$/, '');
    return `is dynamically linked (it needs ${loader || 'a program loader'})`;
  }
  return undefined;
}

/**
 * `sha256:…` of the busybox file, which the probe image records as what it was built from;
 * undefined where it cannot be read.
 */
export function busyboxDigest(
  busyboxPath = '/bin/busybox',
): string | undefined {
  try {
    return `sha256:${createHash('sha256').update(readFileSync(busyboxPath)).digest('hex')}`;
  } catch {
    return undefined;
  }
}
