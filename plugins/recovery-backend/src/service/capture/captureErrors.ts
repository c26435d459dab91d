import { ForwardedError } from '@backstage/errors';
import {
  formatSeconds,
  type CaptureRequestError,
} from '@backstage-recovery/plugin-recovery-common';
import {
  answerOf,
  httpStatusOf,
  isCaptureStoreError,
  isEngineError,
} from '@backstage-recovery/plugin-recovery-node';

/** recovery.captures.timeout as a capture past it says it. */
export function withinTimeout(ms: number): string {
  return `${ms < 120_000 ? `${ms / 1000} s` : formatSeconds(ms / 1000)} (recovery.captures.timeout)`;
}

/**
 * A ForwardedError, which keeps its cause's name (by which Backstage's error handler answers 404,
 * 503, …), and the status of a cause that says it by its status instead: an engine's failure
 * (EngineError, 502).
 */
export function forwarded(
  message: string,
  cause: unknown,
  notFoundIsEngines = false,
): ForwardedError {
  const error = new ForwardedError(message, cause);
  if (isEngineError(cause))
    return Object.assign(error, { statusCode: cause.statusCode });
  // A capture store full or read-only: 507 (Insufficient Storage), the store's condition, not a 500.
  if (isCaptureStoreError(cause))
    return Object.assign(error, {
      statusCode: cause.statusCode,
      directory: cause.directory,
    });
  // A machine's capture the source answers 404 (no such container on its engine): the engine
  // lacks what the catalog names, a 502 as an engine's failure is; a 404 would read as an entity
  // the catalog does not hold.
  if (notFoundIsEngines && httpStatusOf(cause) === 404)
    return Object.assign(error, { statusCode: 502 });
  return error;
}

/** An error as the API names it: its name and message. */
export function errorOf(error: unknown): { name: string; message: string } {
  return {
    name: (error as Error)?.name ?? 'Error',
    message: String((error as Error)?.message ?? error),
  };
}

/**
 * An error as Backstage's error handler answers a client (its status, its serialized body without
 * a stack, a database's error hidden): a capture request's failure, answered by the poll as POST
 * answered it before.
 */
export function answered(error: unknown): CaptureRequestError {
  const { statusCode, body } = answerOf(error, { hideInternal: true });
  return { statusCode, error: body.error };
}
