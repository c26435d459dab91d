import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTar } from './tar';

describe('createTar', () => {
  it('writes an archive GNU tar extracts: directories, files with modes, symlinks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tar-test-'));
    try {
      const long = `${'d'.repeat(60)}/${'e'.repeat(60)}/file.txt`;
      writeFileSync(
        join(dir, 'a.tar'),
        createTar([
          { type: 'dir', path: 'bin' },
          { type: 'file', path: 'bin/tool', content: '#!/bin/sh\necho hi\n', mode: 0o755 },
          { type: 'symlink', path: 'bin/alias', target: 'tool' },
          { type: 'file', path: long, content: Buffer.alloc(1000, 1) },
        ]),
      );
      const out = join(dir, 'out');
      execFileSync('mkdir', [out]);
      execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', out]);
      expect(readFileSync(join(out, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
      expect(execFileSync('stat', ['-c', '%a', join(out, 'bin/tool')], { encoding: 'utf8' }).trim()).toBe('755');
      expect(readlinkSync(join(out, 'bin/alias'))).toBe('tool');
      expect(readFileSync(join(out, long)).length).toBe(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
