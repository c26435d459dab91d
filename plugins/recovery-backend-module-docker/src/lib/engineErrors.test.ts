import Docker from 'dockerode';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { explainEngineError, onEngine } from './engineErrors';

describe('engine errors', () => {
  it('names the engine that cannot be reached, with where and why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'no-engine-'));
    try {
      const docker = new Docker({ socketPath: join(dir, 'docker.sock') });
      await expect(onEngine('primary', () => docker.ping())).rejects.toMatchObject({
        name: 'ServiceUnavailableError',
        message: `Docker engine 'primary' is unreachable at ${join(dir, 'docker.sock')} (ENOENT): is it running, and may the backend use it?`,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('leaves other errors as they are', () => {
    const error = Object.assign(new Error('no such container'), { statusCode: 404 });
    expect(explainEngineError('primary', error)).toBe(error);
  });
});
