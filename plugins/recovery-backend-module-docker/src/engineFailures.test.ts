import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import {
  createServer,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { CaptureRequest } from '@backstage-recovery/plugin-recovery-common';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import request from 'supertest';
import { recoveryPlugin } from '../../recovery-backend/src/plugin';
import { providersModule } from '../../recovery-backend/src/testing/providers';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { createTar } from './lib/tar';
import { fakePrimaryEngine } from './testing/fakePrimaryEngine';

/*
 * An engine that fails a capture, and what the capture's caller is told: an EngineError naming the
 * engine, the machine, its container, the step and the engine's words (503 where the engine could
 * not be reached, 502 where it answered with an error), never the status of the engine's answer;
 * a container that is not there, a NotFoundError (404) as before.
 */

const CONTAINER_ID = 'c'.repeat(64);
const WEB_01: MachineLocator = {
  machineRef: 'resource:default/web-01',
  engine: 'primary',
  container: 'web-01',
};

type Call =
  | 'inspect'
  | 'pause'
  | 'unpause'
  | 'commit'
  | 'save'
  | 'removeImage'
  | 'listImages'
  | 'listContainers';

/**
 * A primary engine over HTTP with one running container, web-01, spoken to by dockerode itself (so
 * its errors are dockerode's): each call answers as dockerd does, or as `fail` says. `removed`: the
 * container is gone (dockerd's 404 to anything of it).
 */
async function failingEngine() {
  const state = {
    paused: false,
    removed: false,
    fail: {} as Partial<
      Record<Call, { status: number; message: string } | 'hang up'>
    >,
    calls: [] as Call[],
  };
  const routes: Array<[string, RegExp, Call]> = [
    ['GET', /^\/containers\/[^/]+\/json$/, 'inspect'],
    ['POST', /^\/containers\/[^/]+\/pause$/, 'pause'],
    ['POST', /^\/containers\/[^/]+\/unpause$/, 'unpause'],
    ['POST', /^\/commit$/, 'commit'],
    ['GET', /^\/images\/.+\/get$/, 'save'],
    ['DELETE', /^\/images\/.+$/, 'removeImage'],
    ['GET', /^\/images\/json$/, 'listImages'],
    ['GET', /^\/containers\/json$/, 'listContainers'],
  ];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url!, 'http://engine');
    const json = (status: number, body: unknown) =>
      res
        .writeHead(status, { 'content-type': 'application/json' })
        .end(JSON.stringify(body));
    const call = routes.find(
      ([method, path]) => method === req.method && path.test(url.pathname),
    )?.[2];
    // Stats and networks: none here (the capture goes on without them).
    if (!call) return json(404, { message: `page not found: ${url.pathname}` });
    state.calls.push(call);
    const failure = state.fail[call];
    if (failure === 'hang up') return req.socket.destroy();
    if (failure) return json(failure.status, { message: failure.message });
    if (
      state.removed &&
      ['inspect', 'pause', 'unpause', 'commit'].includes(call)
    )
      return json(404, { message: 'No such container: web-01' });
    switch (call) {
      case 'inspect':
        return json(200, {
          Id: CONTAINER_ID,
          Name: '/web-01',
          State: { Running: true, Paused: state.paused },
          Config: { Hostname: 'web-01', Env: [], Labels: {} },
          HostConfig: {},
          Mounts: [],
          NetworkSettings: { Networks: {} },
        });
      case 'pause':
      case 'unpause':
        state.paused = call === 'pause';
        return res.writeHead(204).end();
      case 'commit':
        return json(201, { Id: 'sha256:committed' });
      case 'save': {
        const ref = decodeURIComponent(
          /^\/images\/(.+)\/get$/.exec(url.pathname)![1],
        );
        return res.writeHead(200, { 'content-type': 'application/x-tar' }).end(
          createTar([
            {
              type: 'file',
              path: 'manifest.json',
              content: `[{"RepoTags":["${ref}"]}]`,
            },
          ]),
        );
      }
      case 'listImages':
        return json(200, []);
      default:
        return json(200, []);
    }
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    state,
    docker: new Docker({ host: '127.0.0.1', port, protocol: 'http' }),
    port,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}

/** A local TCP port nothing listens on: bound once, then released. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise(resolve => server.close(resolve));
  return port;
}

const context = (step: string) =>
  `capture of resource:default/web-01 (container web-01) failed while ${step}`;

describe('a capture on an engine that fails', () => {
  let store: string;
  let engine: Awaited<ReturnType<typeof failingEngine>>;
  beforeEach(async () => {
    store = mkdtempSync(join(tmpdir(), 'engine-failures-test-'));
    engine = await failingEngine();
  });
  afterEach(() => {
    engine.close();
    rmSync(store, { recursive: true, force: true });
  });

  const capture = (docker: Docker = engine.docker, machine = WEB_01) =>
    new DockerCaptureSource(machine.engine, docker, {
      storeDirectory: store,
    }).capture(machine, { captureId: 'cap-1' });
  /** What the capture left in the store (its archives, its note), besides the layer directory. */
  const left = () =>
    readdirSync(store).filter(
      f =>
        f !== 'layers' &&
        !(f === '.paused' && readdirSync(join(store, f)).length === 0),
    );

  it('answers 502 naming engine, machine, container and step, where the engine answers the commit with a 500; the machine unpaused, nothing kept', async () => {
    engine.state.fail.commit = {
      status: 500,
      message: 'commit failed: no space left on device',
    };
    const error = await capture().catch(e => e);
    expect(error).toMatchObject({
      name: 'EngineFailedError',
      statusCode: 502,
      engine: 'primary',
      message: `${context('committing the image')}: Docker engine 'primary' answered HTTP 500: commit failed: no space left on device`,
    });
    expect(engine.state.paused).toBe(false);
    expect(left()).toEqual([]);
  });

  it("answers 502, not the engine's 409, where the engine refuses the pause (paused by someone else meanwhile)", async () => {
    engine.state.fail.pause = {
      status: 409,
      message: `Container ${CONTAINER_ID} is already paused`,
    };
    await expect(capture()).rejects.toMatchObject({
      name: 'EngineFailedError',
      statusCode: 502,
      message: `${context('pausing it')}: Docker engine 'primary' answered HTTP 409: Container ${CONTAINER_ID} is already paused`,
    });
  });

  it("answers 502, not the engine's 404, for a 404 that is not its container's (the image gone before its save)", async () => {
    engine.state.fail.save = {
      status: 404,
      message: 'reference does not exist',
    };
    await expect(capture()).rejects.toMatchObject({
      name: 'EngineFailedError',
      statusCode: 502,
      message: `${context('saving it into the capture store')}: Docker engine 'primary' answered HTTP 404: reference does not exist`,
    });
    expect(left()).toEqual([]);
  });

  it('answers 502 where the engine fails the very first look at the container', async () => {
    engine.state.fail.inspect = {
      status: 500,
      message: 'containerd: connection error',
    };
    await expect(capture()).rejects.toMatchObject({
      name: 'EngineFailedError',
      statusCode: 502,
      message: `${context('inspecting its container')}: Docker engine 'primary' answered HTTP 500: containerd: connection error`,
    });
  });

  it('still answers 404 naming container and engine for a container that is not there, before and during the capture', async () => {
    engine.state.removed = true;
    const before = await capture().catch(e => e);
    expect(before).toMatchObject({
      name: 'NotFoundError',
      message:
        'machine resource:default/web-01: no container "web-01" on engine primary',
    });
    expect(before.statusCode).toBeUndefined();

    // Removed (docker rm -f) while the capture had it paused: its commit answers 404, and so does a look.
    engine.state.removed = false;
    engine.state.fail.commit = {
      status: 404,
      message: 'No such container: web-01',
    };
    const source = new DockerCaptureSource('primary', engine.docker, {
      storeDirectory: store,
    });
    const during = source.capture(WEB_01, { captureId: 'cap-2' });
    const removing = setInterval(() => {
      if (engine.state.calls.includes('commit')) engine.state.removed = true;
    }, 1);
    try {
      const error = await during.catch(e => e);
      expect(error).toMatchObject({
        name: 'NotFoundError',
        message:
          'capture of resource:default/web-01: container "web-01" was removed from engine primary while committing the image: nothing kept',
      });
      expect(error.statusCode).toBeUndefined();
    } finally {
      clearInterval(removing);
    }
  });

  it('answers 503 naming the engine and its address where the connection is refused, or its socket is not there', async () => {
    const port = await closedPort();
    await expect(
      capture(new Docker({ host: '127.0.0.1', port, protocol: 'http' })),
    ).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
      engine: 'primary',
      message: `${context('inspecting its container')}: Docker engine 'primary' is unreachable at 127.0.0.1:${port} (ECONNREFUSED): is it running, and may the backend use it?`,
    });
    const socketPath = join(store, 'docker.sock');
    await expect(capture(new Docker({ socketPath }))).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
      message: `${context('inspecting its container')}: Docker engine 'primary' is unreachable at ${socketPath} (ENOENT): is it running, and may the backend use it?`,
    });
  });

  it('answers 503 where the connection to the engine times out', async () => {
    const timedOut = Object.assign(
      new Error('connect ETIMEDOUT 10.0.0.9:2376'),
      {
        code: 'ETIMEDOUT',
        syscall: 'connect',
        address: '10.0.0.9',
        port: 2376,
      },
    );
    const { docker } = fakePrimaryEngine({
      'web-01': { paused: false, fails: { inspect: [timedOut] } },
    });
    await expect(capture(docker)).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
      message: `${context('inspecting its container')}: Docker engine 'primary' is unreachable at 10.0.0.9:2376 (ETIMEDOUT): is it running, and may the backend use it?`,
    });
  });

  it('answers 503 where the TLS connection to the engine fails (TLS spoken to a port that does not)', async () => {
    const tls = new Docker({
      host: '127.0.0.1',
      port: engine.port,
      protocol: 'https',
    });
    const error = await capture(tls).catch(e => e);
    expect(error).toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
      engine: 'primary',
    });
    expect(error.message).toMatch(
      new RegExp(
        `^${context('inspecting its container').replace(/[()]/g, '\\$&')}: Docker engine 'primary' is unreachable: the TLS connection failed \\((EPROTO|ERR_SSL_[A-Z_]+): [^:]*\\): ` +
          'does it speak TLS there, and do its certificate and recovery.docker.engines\\[primary\\] ca, cert and key match\\?$',
      ),
    );
  });

  it('answers 503 where the engine breaks the connection off mid-commit; the machine unpaused, nothing kept', async () => {
    engine.state.fail.commit = 'hang up';
    await expect(capture()).rejects.toMatchObject({
      name: 'ServiceUnavailableError',
      statusCode: 503,
      message: `${context('committing the image')}: Docker engine 'primary' is unreachable (ECONNRESET): is it running, and may the backend use it?`,
    });
    expect(engine.state.paused).toBe(false);
    expect(left()).toEqual([]);
  });

  it('answers 502 where the engine answers the unpause with an error, saying production stays paused', async () => {
    engine.state.fail.unpause = {
      status: 500,
      message: 'cannot unpause: the cgroup is busy',
    };
    const source = new DockerCaptureSource('primary', engine.docker, {
      storeDirectory: store,
    });
    try {
      await expect(
        source.capture(WEB_01, { captureId: 'cap-1' }),
      ).rejects.toMatchObject({
        name: 'EngineFailedError',
        statusCode: 502,
        message: expect.stringMatching(
          /^capture of resource:default\/web-01 could not unpause it \(Docker engine 'primary' answered HTTP 500: cannot unpause: the cgroup is busy\): production stays paused \(paused at least \d+ ms so far\); .*\(by hand: docker unpause c{64} \(the container the catalog names web-01\), on engine primary\), nothing kept$/,
        ),
      });
    } finally {
      // Its note's retries, which would unpause it once the engine does.
      delete engine.state.fail.unpause;
      await source.stopCaptures(2_000);
    }
  });
});

describe('the hypervisor host on an engine that fails', () => {
  it("answers 502 naming the host and the run's lab, not the engine's status, where the engine fails a teardown", async () => {
    const engine = await failingEngine();
    const store = mkdtempSync(join(tmpdir(), 'engine-failures-test-'));
    try {
      engine.state.fail.listContainers = {
        status: 500,
        message: 'layer store: input/output error',
      };
      const host = new DockerHypervisorHost('dr-host', engine.docker, {
        storeDirectory: store,
      });
      await expect(host.teardown('run-1')).rejects.toMatchObject({
        name: 'EngineFailedError',
        statusCode: 502,
        engine: 'dr-host',
        message:
          "tearing down the lab of run run-1 failed: Docker engine 'dr-host' answered HTTP 500: layer store: input/output error",
      });
    } finally {
      engine.close();
      rmSync(store, { recursive: true, force: true });
    }
  });
});

describe('a capture request (POST /captures) on an engine that fails', () => {
  const P = 'recovery.backstage-recovery.io/';
  const machine = (name: string, engineId: string): Entity => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name,
      namespace: 'default',
      annotations: { [`${P}engine`]: engineId, [`${P}container`]: 'web-01' },
    },
    spec: { type: 'machine' },
  });
  const service = (name: string, on: string): Entity => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name, namespace: 'default' },
    spec: { type: 'service' },
    relations: [{ type: 'dependsOn', targetRef: `resource:default/${on}` }],
  });

  let store: string;
  let engine: Awaited<ReturnType<typeof failingEngine>>;
  let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
  beforeAll(async () => {
    store = mkdtempSync(join(tmpdir(), 'engine-failures-test-'));
    engine = await failingEngine();
    const down = new Docker({
      host: '127.0.0.1',
      port: await closedPort(),
      protocol: 'http',
    });
    ({ server } = await startTestBackend({
      features: [
        recoveryPlugin,
        providersModule({
          captureSources: [
            new DockerCaptureSource('primary', engine.docker, {
              storeDirectory: store,
            }),
            new DockerCaptureSource('down', down, { storeDirectory: store }),
          ],
        }),
        catalogServiceMock.factory({
          entities: [
            machine('web-01', 'primary'),
            service('web', 'web-01'),
            machine('db-01', 'down'),
            service('db', 'db-01'),
          ],
        }),
      ],
    }));
  });
  afterAll(() => {
    engine.close();
    rmSync(store, { recursive: true, force: true });
  });
  beforeEach(() => {
    engine.state.fail = {};
    engine.state.removed = false;
  });

  /** POST /captures: accepted at once (202, its request at Location), then polled until it ends. */
  const captureOf = async (entityRef: string): Promise<CaptureRequest> => {
    const posted = await request(server)
      .post('/api/recovery/captures')
      .send({ entityRef });
    expect({ status: posted.status, body: posted.body }).toMatchObject({
      status: 202,
      body: { entityRef, status: 'capturing', captures: [] },
    });
    const path = `/api/recovery/captures/requests/${posted.body.requestId}`;
    expect(posted.headers.location).toBe(path);
    for (;;) {
      const polled = await request(server).get(path);
      expect(polled.status).toBe(200);
      if (polled.body.status !== 'capturing') return polled.body;
      await new Promise(resolve => setTimeout(resolve, 10));
    }
  };
  const captureWeb = () => captureOf('component:default/web');

  it("fails the capture request on the engine's failures with 502 or 503, never with the engine's own status", async () => {
    const captured = await captureWeb();
    expect({ status: captured.status, error: captured.error }).toEqual({
      status: 'succeeded',
      error: undefined,
    });
    expect(captured.captures.map(c => c.machineRef)).toEqual([
      WEB_01.machineRef,
    ]);

    const cases: Array<[Call, { status: number; message: string }, string]> = [
      [
        'commit',
        { status: 500, message: 'commit failed: no space left on device' },
        'committing the image',
      ],
      [
        'pause',
        { status: 409, message: 'Container web-01 is already paused' },
        'pausing it',
      ],
      [
        'save',
        { status: 404, message: 'reference does not exist' },
        'saving it into the capture store',
      ],
    ];
    for (const [call, failure, step] of cases) {
      engine.state.fail = { [call]: failure };
      const res = await captureWeb();
      expect({
        call,
        status: res.status,
        statusCode: res.statusCode,
        error: res.error,
      }).toEqual({
        call,
        status: 'failed',
        statusCode: 502,
        error: {
          name: 'EngineFailedError',
          statusCode: 502,
          message: `capture of resource:default/web-01 failed; caused by EngineFailedError: ${context(step)}: Docker engine 'primary' answered HTTP ${failure.status}: ${failure.message}`,
          cause: {
            name: 'EngineFailedError',
            statusCode: 502,
            engine: 'primary',
            message: `${context(step)}: Docker engine 'primary' answered HTTP ${failure.status}: ${failure.message}`,
          },
        },
      });
    }

    const unreachable = await captureOf('component:default/db');
    expect(unreachable).toMatchObject({ status: 'failed', statusCode: 503 });
    expect(unreachable.error).toMatchObject({
      name: 'ServiceUnavailableError',
      message: expect.stringMatching(
        /^capture of resource:default\/db-01 failed; caused by ServiceUnavailableError: capture of resource:default\/db-01 \(container web-01\) failed while inspecting its container: Docker engine 'down' is unreachable at 127\.0\.0\.1:\d+ \(ECONNREFUSED\): is it running, and may the backend use it\?$/,
      ),
    });
  });

  it('fails the capture request with 502 (not 404: the entity is there, its engine lacks it) naming container and engine for a container that is not there', async () => {
    engine.state.removed = true;
    const res = await captureWeb();
    expect(res).toMatchObject({ status: 'failed', statusCode: 502 });
    expect(res.error).toMatchObject({
      name: 'NotFoundError',
      message:
        'capture of resource:default/web-01 failed; caused by NotFoundError: machine resource:default/web-01: no container "web-01" on engine primary',
    });
  });
});
