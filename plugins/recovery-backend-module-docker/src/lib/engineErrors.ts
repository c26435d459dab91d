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

/**
 * One engine call, given a signal aborted after `ms` (and with `also`): one not answered by then
 * fails naming the engine, the call and the wait, where it would otherwise wait for good on an
 * engine whose connection went silent (accepted, never answered). Stopped by `also`, it fails as
 * the call does.
 */
export async function answerWithin<T>(
  engineId: string,
  what: string,
  ms: number,
  call: (abortSignal: AbortSignal) => Promise<T>,
  also?: AbortSignal,
): Promise<T> {
  const timeout = AbortSignal.timeout(ms);
  try {
    return await call(also ? AbortSignal.any([timeout, also]) : timeout);
  } catch (e) {
    if (timeout.aborted && !also?.aborted) {
      const silent = new ServiceUnavailableError(`Docker engine '${engineId}' did not answer ${what} within ${ms / 1000} s`);
      unanswered.add(silent);
      throw silent;
    }
    throw e;
  }
}

const unanswered = new WeakSet<object>();

/** Whether `error` is answerWithin's for a call the engine left unanswered: its next calls would wait as long. */
export function isUnanswered(error: unknown): boolean {
  return typeof error === 'object' && error !== null && unanswered.has(error);
}
