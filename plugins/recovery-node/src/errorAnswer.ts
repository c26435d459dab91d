import {
  AuthenticationError,
  ConflictError,
  InputError,
  isError,
  NotAllowedError,
  NotFoundError,
  NotImplementedError,
  NotModifiedError,
  serializeError,
  type SerializedError,
  ServiceUnavailableError,
} from '@backstage/errors';

/**
 * An error as Backstage's error handler answers it: its HTTP status, and its body without a stack.
 *
 * @public
 */
export interface ErrorAnswer {
  statusCode: number;
  body: { error: SerializedError };
}

/** Backstage's named errors, by the status its error handler answers them with. */
const STATUS_BY_NAME: Record<string, number> = {
  [NotModifiedError.name]: 304,
  [InputError.name]: 400,
  [AuthenticationError.name]: 401,
  [NotAllowedError.name]: 403,
  [NotFoundError.name]: 404,
  [ConflictError.name]: 409,
  [NotImplementedError.name]: 501,
  [ServiceUnavailableError.name]: 503,
};

/** What the handler keeps from a client's answer (its applyInternalErrorFilter): a 500 instead. */
function isInternal(error: unknown): boolean {
  return !isError(error) || error.constructor?.name === 'DatabaseError';
}

/**
 * The HTTP status Backstage's error handler (MiddlewareFactory.error) answers `error` with: its
 * own `statusCode`, else its `status` (a whole number from 100 to 599), else its name's (a
 * ForwardedError's is its cause's), else 500. A database's error, or something thrown that is no
 * Error, is a 500.
 *
 * @public
 */
export function httpStatusOf(error: unknown): number {
  if (isInternal(error)) return 500;
  const own = error as { statusCode?: unknown; status?: unknown };
  for (const status of [own.statusCode, own.status]) {
    if (
      typeof status === 'number' &&
      Number.isInteger(status) &&
      status >= 100 &&
      status <= 599
    )
      return status;
  }
  return STATUS_BY_NAME[(error as Error).name] ?? 500;
}

/**
 * `error` as Backstage's error handler answers it: {@link httpStatusOf}, and its serialized body
 * (`{ error: { name, message, ...its parts } }`, no stacks, its cause's neither). `hideInternal`:
 * as a client is answered, a database's error or something thrown that is no Error as a 500 "An
 * internal error occurred" (the handler adds a log id); else such a thing keeps its message, for
 * those (the plugin's own scheduled work) who may read it.
 *
 * @public
 */
export function answerOf(
  error: unknown,
  options?: { hideInternal?: boolean },
): ErrorAnswer {
  const statusCode = httpStatusOf(error);
  if (!isError(error) || (options?.hideInternal && isInternal(error))) {
    const message = options?.hideInternal
      ? 'An internal error occurred'
      : String(error);
    return { statusCode, body: { error: { name: 'Error', message } } };
  }
  return {
    statusCode,
    body: { error: serializeError(error as Error, { includeStack: false }) },
  };
}
