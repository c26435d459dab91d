import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CaptureStoreError } from '@backstage-recovery/plugin-recovery-node';
import { DockerCaptureSource } from './DockerCaptureSource';
import {
  fakePrimaryEngine,
  type FakeContainer,
} from './testing/fakePrimaryEngine';

/** How the capture store fails the capture's first write (its note), as the file system says it: none unless set. */
const store = vi.hoisted(() => ({
  fails: undefined as
    undefined | { code: string; syscall: string; message: string },
}));
vi.mock('node:fs/promises', async importOriginal => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const failure = () =>
    Object.assign(new Error(store.fails!.message), {
      code: store.fails!.code,
      syscall: store.fails!.syscall,
      errno: -1,
    });
  const open = (async (path: string, flags?: any, ...rest: any[]) => {
    if (store.fails && flags === 'wx') {
      // Read-only: refused at the open. Full: the file is made, its write refused.
      if (store.fails.syscall === 'open') throw failure();
      const handle = await (fs.open as any)(path, flags, ...rest);
      handle.writeFile = async () => {
        throw failure();
      };
      return handle;
    }
    return (fs.open as any)(path, flags, ...rest);
  }) as typeof fs.open;
  return { ...fs, open, default: { ...fs, open } };
});

describe('a capture the capture store cannot take', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'capture-store-full-'));
  });
  afterEach(() => {
    store.fails = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const capture = () => {
    const containers: Record<string, FakeContainer> = {
      web: { paused: false },
    };
    const { docker } = fakePrimaryEngine(containers);
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: dir,
    });
    return {
      containers,
      result: source.capture(
        {
          machineRef: 'resource:default/web-01',
          engine: 'primary',
          container: 'web',
        },
        { captureId: 'cap-1' },
      ),
    };
  };

  it('fails with a CaptureStoreError (507) naming machine, store and what is wrong, not a plain error, when the store is full', async () => {
    store.fails = {
      code: 'ENOSPC',
      syscall: 'write',
      message: 'ENOSPC: no space left on device, write',
    };
    const { containers, result } = capture();
    const error = await result.catch(e => e);
    expect(error).toBeInstanceOf(CaptureStoreError);
    expect({
      name: error.name,
      statusCode: error.statusCode,
      directory: error.directory,
    }).toEqual({ name: 'CaptureStoreError', statusCode: 507, directory: dir });
    expect(error.message).toBe(
      `capture of resource:default/web-01 could not write to the capture store ${dir} while writing its note (ENOSPC: no space left on device, write), nothing kept: ` +
        'the capture store is full: free room there (recovery.captureStore.keepLast keeps fewer captures), or give it a larger disk',
    );
    // Never paused, nothing kept.
    expect(containers.web.paused).toBe(false);
    expect(readdirSync(dir).filter(f => f.endsWith('.tar'))).toEqual([]);
  });

  it('says a read-only store so', async () => {
    store.fails = {
      code: 'EROFS',
      syscall: 'open',
      message: `EROFS: read-only file system, open '${dir}/.paused/primary.web'`,
    };
    const error = await capture().result.catch(e => e);
    expect(error).toMatchObject({
      name: 'CaptureStoreError',
      statusCode: 507,
      directory: dir,
    });
    expect(error.message).toMatch(
      /: the capture store is read-only \(its file system mounted read-only, as after disk errors\): make it writable again$/,
    );
  });

  it.each(['EMFILE', 'ENFILE'])(
    'answers a backend out of open files (%s) with a 503 (try again), not as the store',
    async code => {
      store.fails = {
        code,
        syscall: 'open',
        message: `${code}: too many open files`,
      };
      const error = await capture().result.catch(e => e);
      expect(error).toMatchObject({ name: 'ServiceUnavailableError' });
      expect(error.message).toMatch(
        /: the backend has too many files open; try again, or raise its limit \(ulimit -n\)$/,
      );
    },
  );

  it.each([
    [
      'EACCES',
      "the backend may not write there: give the backend's user write access to the capture store",
    ],
    ['ENOENT', 'the capture store directory is not there (not mounted?)'],
    ['EIO', 'its disk reported an I/O error: check the disk'],
  ])(
    'says each condition of the store (%s) as a CaptureStoreError naming it',
    async (code, condition) => {
      store.fails = {
        code,
        syscall: 'open',
        message: `${code}: open '${dir}/.paused/primary.web'`,
      };
      const error = await capture().result.catch(e => e);
      expect(error).toMatchObject({
        name: 'CaptureStoreError',
        statusCode: 507,
        directory: dir,
      });
      expect(error.message.endsWith(`: ${condition}`)).toBe(true);
    },
  );
});
