import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { TarEntry } from './tar';

/**
 * The entries of a minimal root file system around a static busybox binary: the binary at
 * /bin/busybox, a symlink per applet in /bin, and the few directories and files a
 * container needs (/etc/passwd, /tmp, …). No registry is needed: `docker import` it.
 */
export function busyboxRootfsEntries(busyboxPath = '/bin/busybox'): TarEntry[] {
  const binary = readFileSync(busyboxPath);
  let applets: string[];
  try {
    applets = execFileSync(busyboxPath, ['--list'], { encoding: 'utf8' })
      .split('\n')
      .map(a => a.trim())
      .filter(a => a && a !== 'busybox' && /^[\w.[\]-]+$/.test(a));
  } catch (e) {
    throw new Error(`${busyboxPath} is not a usable busybox binary: ${(e as Error).message}`);
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
    { type: 'file', path: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' },
    { type: 'file', path: 'etc/group', content: 'root:x:0:\nnogroup:x:65534:\n' },
  ];
  for (const applet of applets) {
    entries.push({ type: 'symlink', path: `bin/${applet}`, target: 'busybox' });
  }
  return entries;
}
