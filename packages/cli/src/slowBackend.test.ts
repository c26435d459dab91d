/**
 * `recovery capture` against a backend that answers a capture only once the machine is saved:
 * minutes for a large image, longer than fetch waits for response headers.
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

  beforeAll(async () => {
    server = createServer((req, res) => {
      const json = (status: number, body: unknown) =>
        res
          .writeHead(status, { 'Content-Type': 'application/json' })
          .end(JSON.stringify(body));
      if (req.url === '/api/recovery/plan/component/default/db')
        return json(200, { waves: [['resource:default/db-01']], problems: [] });
      if (req.url === '/api/recovery/readiness') return; // hangs
      if (req.url === '/api/recovery/captures') {
        const capture = {
          id: 'c1',
          machineRef: 'resource:default/db-01',
          sizeBytes: 2048,
          durationMs: 3000,
        };
        return void setTimeout(() => json(201, { items: [capture] }), 1_500);
      }
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
    // A capture is silent until its machine is saved: it is waited for.
    await expect(
      client.captureNow('component:default/db', 'resource:default/db-01'),
    ).resolves.toEqual([expect.objectContaining({ id: 'c1' })]);
  });
});
