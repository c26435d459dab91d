import { ServiceUnavailableError } from '@backstage/errors';

// What a socket or TCP connection to an engine says when nothing (or no one allowed) answers,
// and what looking its host name up says when that name no longer resolves (a moved or lost host).
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ENOENT',
  'EACCES',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Turns "cannot talk to the engine" into an error that names the engine; leaves others alone. */
export function explainEngineError(engineId: string, error: unknown): unknown {
  const e = error as { code?: string; address?: string; hostname?: string; port?: number; path?: string; message?: string };
  if (!e || typeof e.code !== 'string' || !UNREACHABLE.has(e.code)) return error;
  // A file error (capture store, artifact, busybox) carries its path and says which file itself;
  // a socket error carries an address instead.
  if (typeof e.path === 'string') return error;
  // A failed name look-up carries the name, not an address.
  const at = e.address ?? e.hostname;
  const where = at ? ` at ${at}${e.port ? `:${e.port}` : ''}` : '';
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
