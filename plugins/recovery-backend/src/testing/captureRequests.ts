import type { CaptureRequest } from '@backstage-recovery/plugin-recovery-common';
import request, { type Response } from 'supertest';

type Server = Parameters<typeof request>[0];

/** `POST /captures` refused the capture at once: the status and body it answered, no request. */
export interface CaptureRefusal {
  status: number;
  body: any;
}

/** What the API answers a capture: its refusal at once, else its request as it ended. */
export type CaptureAnswer = CaptureRefusal | CaptureRequest;

/** The parts of an answer read here. */
type Answer = Pick<Response, 'status' | 'body' | 'headers'>;

/** How a test sends the exchanges of a capture, each under `/api/recovery`. */
export interface CaptureExchanges {
  /** `POST /captures`. */
  post(): Promise<Answer>;
  /** `GET` of the capture request at `url`, e.g. `/captures/requests/:id`. */
  get(url: string): Promise<Answer>;
}

const POLL_INTERVAL_MS = 20;
/** Well within the unit tests' 60 s, so a capture that never ends fails as that, not as a timeout. */
const DEADLINE_MS = 20_000;

export function refusedAtOnce(answer: CaptureAnswer): answer is CaptureRefusal {
  return typeof answer.status === 'number';
}

/**
 * A capture as the API answers it: where `POST /captures` refuses it at once, that refusal;
 * else (202) its request polled at its `Location` until it has ended (`succeeded` or `failed`).
 * A request still capturing after `deadlineMs`, or a poll not answered 200, fails the test,
 * naming the request and the last answer.
 */
export async function pollCapture(
  exchanges: CaptureExchanges,
  deadlineMs = DEADLINE_MS,
): Promise<CaptureAnswer> {
  const posted = await exchanges.post();
  if (posted.status !== 202)
    return { status: posted.status, body: posted.body };
  const { requestId } = posted.body;
  const url = `/captures/requests/${requestId}`;
  if (posted.headers.location !== `/api/recovery${url}`) {
    throw new Error(
      `POST /captures accepted capture request ${requestId} with Location ${posted.headers.location}, not /api/recovery${url}`,
    );
  }
  const deadline = Date.now() + deadlineMs;
  let ended: CaptureRequest = posted.body;
  while (ended.status === 'capturing') {
    if (Date.now() > deadline) {
      throw new Error(
        `capture request ${requestId} did not end within ${deadlineMs / 1000} s; last answered ${JSON.stringify(ended)}`,
      );
    }
    await new Promise(resolve => setTimeout(resolve, POLL_INTERVAL_MS));
    const polled = await exchanges.get(url);
    if (polled.status !== 200) {
      throw new Error(
        `GET ${url} answered ${polled.status} ${JSON.stringify(polled.body)}; last answered ${JSON.stringify(ended)}`,
      );
    }
    ended = polled.body;
  }
  return ended;
}

/** The capture request of an answer the test expects accepted; a refusal fails it, named. */
export function accepted(answer: CaptureAnswer): CaptureRequest {
  if (refusedAtOnce(answer)) {
    throw new Error(
      `POST /captures refused the capture at once: ${answer.status} ${JSON.stringify(answer.body)}`,
    );
  }
  return answer;
}

/**
 * A capture the test expects `POST /captures` to accept, polled until its request has ended
 * (see {@link pollCapture}): the request as it ended, `succeeded` or `failed`.
 */
export async function captureAndPoll(
  server: Server,
  body: object,
  headers: Record<string, string> = {},
): Promise<CaptureRequest> {
  return accepted(
    await pollCapture({
      post: () =>
        request(server).post('/api/recovery/captures').set(headers).send(body),
      get: url => request(server).get(`/api/recovery${url}`).set(headers),
    }),
  );
}
