import { ServiceUnavailableError } from '@backstage/errors';

// What a socket or TCP connection to an engine says when nothing (or no one allowed) answers.
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET']);

/** Turns "cannot talk to the engine" into an error that names the engine; leaves others alone. */
export function explainEngineError(engineId: string, error: unknown): unknown {
  const e = error as { code?: string; address?: string; port?: number; path?: string; message?: string };
  if (!e || typeof e.code !== 'string' || !UNREACHABLE.has(e.code)) return error;
  // A file error (capture store, artifact, busybox) carries its path and says which file itself;
  // a socket error carries an address instead.
  if (typeof e.path === 'string') return error;
  const where = e.address ? ` at ${e.address}${e.port ? `:${e.port}` : ''}` : '';
  return new ServiceUnavailableError(
    `Docker engine '${engineId}' is unreachable${where} (${e.code}): is it running, and may the backend use it?`,
  );
}

/** Runs engine work, naming the engine when it cannot be reached. */
export async function onEngine<T>(engineId: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    throw explainEngineError(engineId, error);
  }
}
