import { ServiceUnavailableError } from '@backstage/errors';
import { CaptureStoreError } from '@backstage-recovery/plugin-recovery-node';

// A capture the capture store could not take, said as the store's failure: Node's own message
// for a failed write (a full disk) names no path.

/** What is wrong with the capture store, by the file system's code, and what to do about it. */
const STORE_CONDITIONS: Record<string, string> = {
  ENOSPC:
    'the capture store is full: free room there (recovery.captureStore.keepLast keeps fewer captures), or give it a larger disk',
  EDQUOT:
    'the capture store is over its disk quota: raise the quota, or free room there',
  EFBIG:
    'a capture file grew past the largest its file system allows: put the capture store on one that allows larger files',
  EROFS:
    'the capture store is read-only (its file system mounted read-only, as after disk errors): make it writable again',
  EACCES:
    "the backend may not write there: give the backend's user write access to the capture store",
  EPERM:
    "the backend may not write there: give the backend's user write access to the capture store",
  EIO: 'its disk reported an I/O error: check the disk',
  ENOENT: 'the capture store directory is not there (not mounted?)',
  ENOTDIR: 'the capture store directory is not a directory',
  EISDIR: 'a directory stands where the capture store keeps a file',
};

/** Out of open files: the backend's own condition, met writing to the store, not the store's. */
const BACKEND_CONDITIONS = new Set(['EMFILE', 'ENFILE']);

/**
 * What a file system says when the capture store cannot be written (full, read-only, gone, a disk
 * error): said as the store's failure, naming it, where Node's own message names no path (`write`).
 * A socket's errors (the engine's) carry an address instead of a path, and `connect` or no file call.
 */
export function isStoreError(e: unknown): e is NodeJS.ErrnoException {
  const { code, syscall, address } = (e ?? {}) as NodeJS.ErrnoException & {
    address?: string;
  };
  return (
    typeof code === 'string' &&
    (Object.hasOwn(STORE_CONDITIONS, code) || BACKEND_CONDITIONS.has(code)) &&
    typeof syscall === 'string' &&
    syscall !== 'connect' &&
    address === undefined
  );
}

/**
 * A capture the capture store could not take, as its caller answers it: a CaptureStoreError (507)
 * saying what is wrong with the store; out of open files (EMFILE, ENFILE), the backend's own
 * condition, a 503 (try again).
 */
export function storeFailure(
  message: string,
  storeDirectory: string,
  e: NodeJS.ErrnoException,
): Error {
  if (BACKEND_CONDITIONS.has(e.code!))
    return new ServiceUnavailableError(
      `${message}: the backend has too many files open; try again, or raise its limit (ulimit -n)`,
    );
  return new CaptureStoreError(
    `${message}: ${STORE_CONDITIONS[e.code!]}`,
    storeDirectory,
  );
}
