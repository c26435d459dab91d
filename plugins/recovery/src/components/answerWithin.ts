import { formatDuration } from './format';

/** The longest any request the portal waits on may go unanswered: a minute. */
export const MAX_ANSWER_WAIT_MS = 60_000;

/**
 * How long a request may go unanswered before it counts as failed and is retried: 30 intervals
 * of a poll sent every `intervalMs` (30 s at the card's default), at most a minute; a minute for
 * a load that is not polled (readiness, the overview, the check for a run in progress). A request
 * left hanging (a connection dropped by a VPN or a laptop's sleep, a proxy that never answers)
 * would otherwise stop a poll or a page's reloads for good, or keep a spinner, or a button off,
 * until the page is reloaded. A minute is far more than a slow answer takes: the overview of a
 * site of 1,050 entities answers in about 3 s.
 */
export function answerTimeoutMs(intervalMs?: number): number {
  return intervalMs === undefined
    ? MAX_ANSWER_WAIT_MS
    : Math.min(intervalMs * 30, MAX_ANSWER_WAIT_MS);
}

/**
 * `request`'s answer, or a failure once it has gone `timeoutMs` unanswered (see
 * {@link answerTimeoutMs}): the caller reports and retries it as any failed request. An answer
 * that comes later is dropped.
 */
export function answerWithin<T>(request: Promise<T>, timeoutMs: number): Promise<T> {
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    deadline = setTimeout(
      () => reject(new Error(`No answer from the backend within ${formatDuration(timeoutMs / 1000)}`)),
      timeoutMs,
    );
  });
  // No timer left running once the request has settled, whichever way.
  return Promise.race([request, timeout]).finally(() => clearTimeout(deadline));
}
