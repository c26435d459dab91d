/**
 * `recovery capture` against a backend whose capture takes longer than fetch waits for an answer
 * (minutes for a large image): the capture request is answered at once and polled, so no request
 * waits on the capture, and every request, a capture's too, gives up on a backend that never answers.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli } from './testing/runCli';
import { backendClient, BackendError } from './remote';

// Node's fetch reads its dispatcher (undici's Agent, 300 s headers timeout) from this global.
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

describe('recovery capture, a capture that takes longer than fetch waits', () => {
  let server: Server;
  let url: string;
  let acceptedAt = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const json = (status: number, body: unknown) =>
        res
          .writeHead(status, { 'Content-Type': 'application/json' })
          .end(JSON.stringify(body));
      if (req.url === '/api/recovery/plan/component/default/db')
        return json(200, { waves: [['resource:default/db-01']], problems: [] });
      if (req.url === '/api/recovery/readiness') return undefined; // hangs
      if (req.url === '/api/recovery/runs') return undefined; // hangs
      const request = {
        requestId: 'q1',
        entityRef: 'component:default/db',
        machineRefs: ['resource:default/db-01'],
        createdAt: '2026-12-22T00:00:00.000Z',
      };
      const capture = {
        id: 'c1',
        machineRef: 'resource:default/db-01',
        sizeBytes: 2048,
        durationMs: 3000,
      };
      if (req.url === '/api/recovery/captures') {
        acceptedAt = Date.now();
        return json(202, { ...request, status: 'capturing', captures: [] });
      }
      // The capture takes 1.5 s; each poll is answered at once.
      if (req.url === '/api/recovery/captures/requests/q1')
        return Date.now() - acceptedAt < 1_500
          ? json(200, { ...request, status: 'capturing', captures: [] })
          : json(200, { ...request, status: 'succeeded', captures: [capture] });
      return json(204, {});
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise(resolve => server.close(resolve));
  });

  it(
    'waits for the answer rather than calling the backend out of reach',
    { timeout: 10_000 },
    async () => {
      // fetch's 300 s, shortened so the test need not wait five minutes. A first fetch makes Node
      // create the dispatcher; a new one of its class gets the short timeout.
      await fetch(`${url}/`);
      const globals = globalThis as unknown as Record<
        symbol,
        { constructor: new (o: object) => unknown }
      >;
      const dispatcher = globals[GLOBAL_DISPATCHER];
      globals[GLOBAL_DISPATCHER] = new dispatcher.constructor({
        headersTimeout: 100,
      }) as typeof dispatcher;
      try {
        const captured = await runCli([
          'capture',
          'db',
          '--url',
          url,
          '--token',
          't',
        ]);
        expect(captured).toMatchObject({ status: 0, stderr: '' });
        expect(captured.stdout).toBe(
          'resource:default/db-01  capture c1  2.0 KiB in 3000 ms  (1 of 1)\n',
        );
      } finally {
        globals[GLOBAL_DISPATCHER] = dispatcher;
      }
    },
  );

  it('gives up on a backend that accepts a request and never answers it, saying so, but waits for a capture', async () => {
    const { client } = backendClient({ url, token: 't' }, {}, 200);
    const silent = await client.listReadiness().catch(e => e);
    expect(silent).toBeInstanceOf(BackendError);
    expect(silent.message).toBe(
      `the Backstage backend at ${url} gave no answer in 0.2 s`,
    );
    const started = await client
      .startRun({ entityRef: 'component:default/db' })
      .catch(e => e);
    expect(started.message).toBe(
      `the Backstage backend at ${url} gave no answer in 0.2 s`,
    );
    // A capture lasts longer than the answer timeout, each of its answers does not: polled till done.
    await expect(
      client.captureNow('component:default/db', 'resource:default/db-01'),
    ).resolves.toEqual([expect.objectContaining({ id: 'c1' })]);
  });
});
