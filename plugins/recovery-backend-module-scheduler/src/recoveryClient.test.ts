import { mockServices } from '@backstage/backend-test-utils';
import type { DiscoveryService } from '@backstage/backend-plugin-api';
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  HOST_BUSY_ERROR_NAME,
  RecoveryApiError,
  RecoveryBackendClient,
} from './recoveryClient';

// Node's fetch reads its dispatcher (undici's Agent, 300 s headers timeout) from this global.
const GLOBAL_DISPATCHER = Symbol.for('undici.globalDispatcher.1');

describe('RecoveryBackendClient', () => {
  let server: Server;
  let handle: (req: IncomingMessage, body: string, res: ServerResponse) => void;
  let client: RecoveryBackendClient;

  beforeEach(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', chunk => (body += chunk));
      req.on('end', () => handle(req, body, res));
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const discovery = {
      getBaseUrl: async () => `http://127.0.0.1:${port}/api/recovery`,
    } as unknown as DiscoveryService;
    client = new RecoveryBackendClient(discovery, mockServices.auth());
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise(resolve => server.close(resolve));
  });

  it(
    'waits for a capture that answers later than fetch waits for response headers',
    { timeout: 10_000 },
    async () => {
      // fetch's 300 s, shortened so the test need not wait five minutes (undici's timers tick
      // about every second). A first fetch makes Node create the dispatcher; a new one of its
      // class gets the short timeout.
      handle = (_req, _body, res) => res.writeHead(204).end();
      await fetch(
        `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
      );
      handle = (req, body, res) =>
        setTimeout(() => {
          res.writeHead(201, { 'Content-Type': 'application/json' });
          res.end(
            JSON.stringify({
              items: [
                { machineRef: JSON.parse(body).entityRef, path: req.url },
              ],
            }),
          );
        }, 3_000);
      const globals = globalThis as unknown as Record<
        symbol,
        { constructor: new (o: object) => unknown }
      >;
      const dispatcher = globals[GLOBAL_DISPATCHER];
      globals[GLOBAL_DISPATCHER] = new dispatcher.constructor({
        headersTimeout: 100,
      }) as typeof dispatcher;
      try {
        await expect(
          client.capture('resource:default/data-01'),
        ).resolves.toEqual([
          {
            machineRef: 'resource:default/data-01',
            path: '/api/recovery/captures',
          },
        ]);
      } finally {
        globals[GLOBAL_DISPATCHER] = dispatcher;
      }
    },
  );

  it("gives up on a backend that never answers when the task's signal aborts", async () => {
    handle = () => {}; // never answers
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      client.capture('resource:default/data-01', { signal: controller.signal }),
    ).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it("keeps a refusal's status and the name of the backend's error", async () => {
    const seen: string[] = [];
    handle = (req, body, res) => {
      seen.push(
        `${req.method} ${req.url} ${req.headers.authorization?.split(' ')[0]} ${body}`,
      );
      res.writeHead(409, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          error: {
            name: HOST_BUSY_ERROR_NAME,
            message: "Hypervisor host 'h' is busy with run r1",
            runId: 'r1',
          },
        }),
      );
    };
    const refused = await client
      .startRun('component:default/web')
      .catch(e => e);
    expect(refused).toBeInstanceOf(RecoveryApiError);
    expect(refused).toMatchObject({
      status: 409,
      errorName: HOST_BUSY_ERROR_NAME,
      message:
        "POST /runs failed with 409: Hypervisor host 'h' is busy with run r1",
      detail: { runId: 'r1' },
    });
    expect(seen).toEqual([
      'POST /api/recovery/runs Bearer {"entityRef":"component:default/web","mode":"test"}',
    ]);
  });

  it("reads a machine's newest capture, none where it has none", async () => {
    const seen: string[] = [];
    handle = (req, _body, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      const items = req.url!.includes('data-01')
        ? [{ id: 'c2', createdAt: '2026-11-21T02:00:00.000Z' }]
        : [];
      res.end(JSON.stringify({ items }));
    };
    await expect(
      client.latestCapture('resource:default/data-01'),
    ).resolves.toEqual({ id: 'c2', createdAt: '2026-11-21T02:00:00.000Z' });
    await expect(
      client.latestCapture('resource:default/new-01'),
    ).resolves.toBeUndefined();
    expect(seen).toEqual([
      'GET /api/recovery/captures?machineRef=resource%3Adefault%2Fdata-01&limit=1',
      'GET /api/recovery/captures?machineRef=resource%3Adefault%2Fnew-01&limit=1',
    ]);
  });

  it('lists the readiness of every recoverable entity, with its plan, with a service token', async () => {
    const seen: string[] = [];
    handle = (req, _body, res) => {
      seen.push(
        `${req.method} ${req.url} ${req.headers.authorization?.split(' ')[0]}`,
      );
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ items: [{ entityRef: 'system:default/shop' }] }),
      );
    };
    await expect(client.listReadiness()).resolves.toEqual([
      { entityRef: 'system:default/shop' },
    ]);
    expect(seen).toEqual(['GET /api/recovery/readiness?include=plan Bearer']);
  });
});
