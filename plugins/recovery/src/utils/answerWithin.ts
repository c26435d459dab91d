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
 * The failure of a request left unanswered past its bound. Unlike a refusal it says nothing of
 * what the backend did: a start, a capture or a release may have been done all the same, so the
 * caller looks (see {@link answerOrLook}) before it says anything failed. Its name stays `Error`:
 * the error panels show `Error: No answer…` as for any other failed load.
 */
export class NoAnswerError extends Error {
  constructor(readonly timeoutMs: number) {
    super(
      `No answer from the backend within ${formatDuration(timeoutMs / 1000)}`,
    );
  }
}

/**
 * `request`'s answer, or a {@link NoAnswerError} once it has gone `timeoutMs` unanswered (see
 * {@link answerTimeoutMs}): the caller reports and retries it as any failed request. An answer
 * that comes later is dropped.
 */
export function answerWithin<T>(
  request: Promise<T>,
  timeoutMs: number,
): Promise<T> {
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    deadline = setTimeout(
      () => reject(new NoAnswerError(timeoutMs)),
      timeoutMs,
    );
  });
  // No timer left running once the request has settled, whichever way.
  return Promise.race([request, timeout]).finally(() => clearTimeout(deadline));
}

/**
 * How long the card waits for one machine's capture to end (POST /captures with its machineRef,
 * answered at once (202), then its capture request polled until it ends): 35 minutes. The backend
 * stops a machine's capture at recovery.captures.timeout (30 minutes unless configured), its tidy-up
 * bounded by the same deadline, and fails the request then; the 5 minutes more cover working out
 * the entity's plan first. Past it, either a request hung (the POST or a poll, on a connection
 * dropped by a VPN, a laptop's sleep, a proxy) and the button would spin until the page is
 * reloaded, or a backend configured for longer captures is taking it still: the card stops
 * polling, and looks at the machine's captures to say which is likelier.
 */
export const CAPTURE_ANSWER_TIMEOUT_MS = 35 * 60_000;

/** What a look at the backend found after a request went unanswered, or why the look failed. */
export type LookAfterNoAnswer<L> = { seen: L } | { lookFailed: Error };

/** `look`'s answer within a minute ({@link answerTimeoutMs}), or why it failed: never a throw. */
export async function lookAfterNoAnswer<L>(
  look: () => Promise<L>,
): Promise<LookAfterNoAnswer<L>> {
  try {
    return { seen: await answerWithin(look(), answerTimeoutMs()) };
  } catch (error) {
    return {
      lookFailed: error instanceof Error ? error : new Error(String(error)),
    };
  }
}

/**
 * `request`'s answer; or, once it has gone `timeoutMs` unanswered, what `look` then finds of what
 * it asked for (the run it started, the release on the run's timeline). For a request whose
 * effect the backend records: a dropped connection does not mean it failed, and sending it again
 * could do it twice. A refusal is thrown as it came.
 */
export async function answerOrLook<T, L>(
  request: Promise<T>,
  timeoutMs: number,
  look: () => Promise<L>,
): Promise<
  { answer: T } | ({ unanswered: NoAnswerError } & LookAfterNoAnswer<L>)
> {
  try {
    return { answer: await answerWithin(request, timeoutMs) };
  } catch (error) {
    if (!(error instanceof NoAnswerError)) throw error;
    return { unanswered: error, ...(await lookAfterNoAnswer(look)) };
  }
}
