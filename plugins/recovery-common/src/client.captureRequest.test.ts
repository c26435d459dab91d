import { ResponseError } from '@backstage/errors';
import type { CaptureRequest } from './captureRequest';
import { RecoveryClient } from './client';
import { captureFailure, errorMessage } from './errors';
import type { Capture } from './types';

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), {
    status,
    headers: { 'Content-Type': 'application/json' },
  });

const WEB = 'component:default/web';
const WEB_01 = 'resource:default/web-01';
const DB_01 = 'resource:default/db-01';
const capture = (machineRef: string): Capture => ({
  id: `cap-${machineRef}`,
  machineRef,
  engine: 'primary',
  container: machineRef.split('/')[1],
  imageId: 'sha256:1',
  sizeBytes: 1,
  checksum: 'sha256:2',
  createdAt: '2026-12-22T00:00:00.000Z',
  durationMs: 1,
  adaptations: [],
});
const accepted: CaptureRequest = {
  requestId: 'req 1',
  entityRef: WEB,
  machineRefs: [DB_01, WEB_01],
  status: 'capturing',
  createdAt: '2026-12-22T00:00:00.000Z',
  captures: [],
};

/** A backend that accepts the capture (202), then answers each poll with the next of `polls`. */
function backend(polls: Array<Partial<CaptureRequest>>) {
  const calls: string[] = [];
  const client = new RecoveryClient({
    discoveryApi: { getBaseUrl: async id => `http://backstage.test/api/${id}` },
    fetchApi: {
      fetch: async (input: any, init?: RequestInit) => {
        const url = String(input).replace('http://backstage.test', '');
        calls.push(`${init?.method ?? 'GET'} ${url}`);
        if (init?.method === 'POST') return json(accepted, 202);
        return json({ ...accepted, ...polls.shift() });
      },
    },
    pollIntervalMs: 5,
  });
  return { client, calls };
}

describe('RecoveryClient.captureNow, a capture request polled until it ends', () => {
  it('posts the capture, polls its request while it captures, and resolves with its captures', async () => {
    const { client, calls } = backend([
      { captures: [] },
      { captures: [capture(DB_01)] },
      {
        status: 'succeeded',
        captures: [capture(DB_01), capture(WEB_01)],
        finishedAt: '2026-12-22T00:00:09.000Z',
      },
    ]);
    expect(await client.captureNow(WEB)).toEqual([
      capture(DB_01),
      capture(WEB_01),
    ]);
    expect(calls).toEqual([
      'POST /api/recovery/captures',
      ...Array(3).fill('GET /api/recovery/captures/requests/req%201'),
    ]);
  });

  it('throws a failed request as POST answered it before it was polled: its status, its error and the guards reading it', async () => {
    const failed = {
      name: 'CaptureFailedError',
      message: `capture of ${WEB}: 1 of 2 machines not captured: ...`,
      statusCode: 503,
      failed: [
        {
          machineRef: WEB_01,
          kind: 'unreachable',
          error: { name: 'ServiceUnavailableError', message: 'unreachable' },
        },
      ],
      captures: [capture(DB_01)],
    };
    const { client } = backend([
      {
        status: 'failed',
        captures: [capture(DB_01)],
        statusCode: 503,
        error: failed,
      },
    ]);
    const error = await client.captureNow(WEB).catch(e => e);
    expect(error).toBeInstanceOf(ResponseError);
    expect(error).toMatchObject({
      statusCode: 503,
      statusText: 'Service Unavailable',
      body: { error: failed, response: { statusCode: 503 } },
    });
    expect(errorMessage(error)).toBe(failed.message);
    expect(captureFailure(error)).toEqual({
      failed: failed.failed,
      captures: failed.captures,
    });
  });

  /** A backend whose polls answer, in turn, `answers`: a request, a status with no body, or a network error. */
  function flaky(
    answers: Array<Partial<CaptureRequest> | number | Error>,
    pollRetryMs = 60_000,
  ) {
    const calls: string[] = [];
    const client = new RecoveryClient({
      discoveryApi: {
        getBaseUrl: async id => `http://backstage.test/api/${id}`,
      },
      fetchApi: {
        fetch: async (input: any, init?: RequestInit) => {
          calls.push(`${init?.method ?? 'GET'} ${input}`);
          if (init?.method === 'POST') return json(accepted, 202);
          const answer = answers.length > 1 ? answers.shift() : answers[0];
          if (answer instanceof Error) throw answer;
          if (typeof answer === 'number')
            return new Response('<html>Bad Gateway</html>', {
              status: answer,
            });
          return json({ ...accepted, ...answer });
        },
      },
      pollIntervalMs: 5,
      pollRetryMs,
    });
    return { client, calls };
  }

  it('polls on through a network error and a 502, 503 or 504 of a replica restarting, and resolves with its captures', async () => {
    const { client, calls } = flaky([
      {},
      new TypeError('fetch failed'),
      502,
      503,
      {},
      504,
      { status: 'succeeded', captures: [capture(WEB_01)] },
    ]);
    expect(await client.captureNow(WEB, WEB_01)).toEqual([capture(WEB_01)]);
    expect(calls).toHaveLength(8);
  });

  it('fails once polls kept failing on the way for pollRetryMs, saying the capture may go on and where to look', async () => {
    const { client, calls } = flaky([{}, 503], 100);
    const started = Date.now();
    const error = await client.captureNow(WEB, WEB_01).catch(e => e);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    expect(error.message).toMatch(
      /^capture request req 1 of component:default\/web could not be polled for 0 s \(Request failed with 503 .*\): the capture may still be under way on the backend: see its request \(GET \/captures\/requests\/req%201\) or the captures it took \(GET \/captures\?machineRef=resource:default\/db-01, GET \/captures\?machineRef=resource:default\/web-01\) in the recovery API$/,
    );
    // Backing off: far fewer polls than one every 5 ms.
    expect(calls.length).toBeLessThan(10);
  });

  it('fails at once on a poll answered 404 or another 4xx', async () => {
    for (const status of [404, 403, 400]) {
      const { client, calls } = flaky([{}, status]);
      const error = await client.captureNow(WEB).catch(e => e);
      expect(error).toBeInstanceOf(ResponseError);
      expect(error.statusCode).toBe(status);
      expect(calls).toHaveLength(3);
    }
  });

  it('stops polling once its signal aborts (the capture goes on on the backend)', async () => {
    const { client, calls } = backend(Array(1000).fill({}));
    const stop = new AbortController();
    const polling = client
      .captureNow(WEB, WEB_01, { signal: stop.signal })
      .catch(e => e);
    await vi.waitFor(() => expect(calls.length).toBeGreaterThan(2));
    stop.abort(new Error('left'));
    expect(await polling).toEqual(new Error('left'));
    const polled = calls.length;
    await new Promise(resolve => setTimeout(resolve, 50));
    expect(calls.length).toBe(polled);
  });
});
