import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ConfigReader } from '@backstage/config';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { RecoveryStore } from '../../recovery-backend/src/database/RecoveryStore';
import type { CatalogGraphLoader } from '../../recovery-backend/src/plan/catalogGraph';
import { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import { PlanService } from '../../recovery-backend/src/service/PlanService';
import { ProviderRegistry } from '../../recovery-backend/src/service/ProviderRegistry';
import { captureMachines } from '../../recovery-backend-module-scheduler/src/tasks';
import { readDockerModuleConfig } from './config';
import { DockerCaptureSource } from './DockerCaptureSource';
import { createTar } from './lib/tar';

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });

const CONTAINER_ID = 'c'.repeat(64);

/** A primary engine over TCP that accepts connections and never answers (its host gone silent). */
async function silentEngine() {
  const sockets: Socket[] = [];
  const server = createServer(socket => sockets.push(socket));
  await listen(server);
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => sockets.length,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

type Call = 'inspect' | 'inspectNetwork' | 'pause' | 'unpause' | 'commit' | 'save' | 'removeImage';

/**
 * A primary engine over TCP with one running container, `web-01`: it answers the Docker API a
 * capture speaks, except the calls in `silent`, which it accepts and never answers (the engine,
 * or the connection, gone silent mid-capture).
 */
async function engineGoingSilent() {
  const state = { paused: false, networks: [] as string[], silent: new Set<Call>(), calls: [] as Call[] };
  const held: ServerResponse[] = [];
  const server = createHttpServer((req, res) => {
    const path = new URL(req.url!, 'http://engine').pathname;
    const route: [RegExp, Call][] = [
      [/^\/containers\/[^/]+\/json$/, 'inspect'],
      [/^\/networks\/[^/]+$/, 'inspectNetwork'],
      [/^\/containers\/[^/]+\/pause$/, 'pause'],
      [/^\/containers\/[^/]+\/unpause$/, 'unpause'],
      [/^\/commit$/, 'commit'],
      [/^\/images\/.+\/get$/, 'save'],
    ];
    const call = req.method === 'DELETE' && path.startsWith('/images/') ? 'removeImage' : route.find(([re]) => re.test(path))?.[1];
    if (!call) {
      // Stats: none here (the capture goes on without a memory figure).
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not here"}');
      return;
    }
    state.calls.push(call);
    if (state.silent.has(call)) {
      held.push(res);
      return;
    }
    const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    switch (call) {
      case 'inspect':
        return json(200, {
          Id: CONTAINER_ID,
          Name: '/web-01',
          State: { Running: true, Paused: state.paused },
          Config: { Hostname: 'web-01', Env: [], Labels: {} },
          HostConfig: {},
          Mounts: [],
          NetworkSettings: { Networks: Object.fromEntries(state.networks.map(name => [name, { IPAddress: '172.29.10.5', Aliases: [] }])) },
        });
      case 'inspectNetwork':
        return json(200, { Name: 'prod', IPAM: { Config: [{ Subnet: '172.29.10.0/24', Gateway: '172.29.10.1' }] } });
      case 'pause':
      case 'unpause':
        state.paused = call === 'pause';
        return res.writeHead(204).end();
      case 'commit':
        return json(201, { Id: 'sha256:committed' });
      case 'removeImage':
        return json(200, []);
      case 'save': {
        const ref = decodeURIComponent(/^\/images\/(.+)\/get$/.exec(path)![1]);
        return res
          .writeHead(200, { 'content-type': 'application/x-tar' })
          .end(createTar([{ type: 'file', path: 'manifest.json', content: `[{"RepoTags":["${ref}"]}]` }]));
      }
    }
  });
  await listen(server);
  return {
    state,
    port: (server.address() as AddressInfo).port,
    close: () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
}

function listen(server: Server | ReturnType<typeof createHttpServer>) {
  return new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
}

/** Primary engines as the backend's config names them: `host` and `port`, plain HTTP. */
function enginesAt(ports: Record<string, number>, store: string) {
  return readDockerModuleConfig(
    new ConfigReader({
      recovery: {
        captureStore: { directory: store },
        docker: { engines: Object.entries(ports).map(([id, port]) => ({ id, host: '127.0.0.1', port, role: 'primary' })) },
      },
    }),
  ).engines;
}

const web01 = (engine: string): MachineLocator => ({ machineRef: `resource:default/web-01-${engine}`, engine, container: 'web-01' });

describe('a capture on a primary engine that stops answering', () => {
  let store: string;
  const closing: Array<() => void> = [];
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-deadline-test-'));
  });
  afterEach(() => {
    for (const close of closing.splice(0)) close();
    rmSync(store, { recursive: true, force: true });
  });

  /** The capture service over Docker sources for `ports`' engines, as the modules build them. */
  async function capturing(ports: Record<string, number>, options: { timeoutMs: number; maxPauseMs?: number; answerWaitMs?: number }) {
    const knex = await databases.init('SQLITE_3');
    await RecoveryStore.migrate(knex);
    const providers = new ProviderRegistry();
    const sources: DockerCaptureSource[] = [];
    for (const engine of enginesAt(ports, store)) {
      const source = new DockerCaptureSource(engine.id, new Docker(engine.options), {
        storeDirectory: store,
        maxPauseMs: options.maxPauseMs,
        answerWaitMs: options.answerWaitMs,
      });
      providers.addCaptureSource(source);
      sources.push(source);
      closing.push(() => void source.stopCaptures(0));
    }
    const logger = mockServices.logger.mock();
    const captures = new CaptureService(new RecoveryStore(knex), providers, new PlanService({} as CatalogGraphLoader), logger, 3, options.timeoutMs);
    return { captures, records: new RecoveryStore(knex), logger };
  }

  const notes = () => (existsSync(join(store, '.paused')) ? readdirSync(join(store, '.paused')) : []);
  const files = () => readdirSync(store).filter(f => f !== '.paused' && f !== 'layers');

  it('fails at the capture deadline naming machine, engine and deadline, and the scheduled capture goes on with the next machine', async () => {
    const silent = await silentEngine();
    closing.push(silent.close);
    const answering = await engineGoingSilent();
    closing.push(answering.close);
    const { captures, records } = await capturing({ gone: silent.port, site: answering.port }, { timeoutMs: 300 });

    const api = { capture: async (machineRef: string) => [await captures.captureMachine(web01(machineRef.split('-').pop()!))] };
    const started = performance.now();
    const report = await captureMachines(api as any, ['resource:default/web-01-gone', 'resource:default/web-01-site'], mockServices.logger.mock());
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(silent.connections()).toBeGreaterThan(0);
    expect(report.failed).toEqual([
      {
        entityRef: 'resource:default/web-01-gone',
        message:
          'capture of resource:default/web-01-gone on engine gone did not finish within 0.3 s (recovery.captures.timeout) while inspecting its container: nothing kept',
      },
    ]);
    expect(report.succeeded).toEqual(['resource:default/web-01-site']);
    expect(await records.listCaptures('resource:default/web-01-site')).toHaveLength(1);
    expect(await records.listCaptures('resource:default/web-01-gone')).toEqual([]);
  }, 10_000);

  it('unpauses production and lets go of the machine when the commit never answers: the next capture is taken, not refused as under way', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures, records } = await capturing({ primary: engine.port }, { timeoutMs: 300 });
    // The commit's connection goes silent; the engine answers the others.
    engine.state.silent.add('commit');
    const failure = await captures.captureMachine(web01('primary')).catch(e => e);
    expect(failure.message).toBe(
      'capture of resource:default/web-01-primary on engine primary did not finish within 0.3 s (recovery.captures.timeout) while committing the image: unpaused, nothing kept',
    );
    expect(failure.name).toBe('ServiceUnavailableError');
    expect(engine.state.paused).toBe(false);
    expect(notes()).toEqual([]);
    expect(files()).toEqual([]);
    expect(await records.listCaptures('resource:default/web-01-primary')).toEqual([]);

    engine.state.silent.clear();
    await expect(captures.captureMachine(web01('primary'))).resolves.toMatchObject({ machineRef: 'resource:default/web-01-primary' });
    expect(notes()).toEqual([]);
  }, 10_000);

  it('stops at the deadline where the engine does not answer the look at its networks, before any note or pause', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures } = await capturing({ primary: engine.port }, { timeoutMs: 300 });
    engine.state.networks = ['prod'];
    engine.state.silent.add('inspectNetwork');
    await expect(captures.captureMachine(web01('primary'))).rejects.toThrow(
      'capture of resource:default/web-01-primary on engine primary did not finish within 0.3 s (recovery.captures.timeout) while inspecting its networks: nothing kept',
    );
    expect(engine.state.calls).not.toContain('pause');
    expect(notes()).toEqual([]);
    engine.state.silent.clear();
    const captured = await captures.captureMachine(web01('primary'));
    expect(captured.machineRef).toBe('resource:default/web-01-primary');
  }, 10_000);

  it('says production stays paused where the silent engine does not answer the unpause either, and the next capture unpauses it first', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures, records } = await capturing({ primary: engine.port }, { timeoutMs: 300, answerWaitMs: 200 });
    engine.state.silent = new Set(['commit', 'unpause']);
    const failure = await captures.captureMachine(web01('primary')).catch(e => e);
    expect(failure.message).toMatch(
      /^capture of resource:default\/web-01-primary on engine primary did not finish within 0\.3 s \(recovery\.captures\.timeout\) while committing the image: could not unpause it \(Docker engine 'primary' did not answer the unpause within 0\.2 s\): production stays paused; the backend tries again at \S+Z, nothing kept$/,
    );
    expect(engine.state.paused).toBe(true);
    // Kept, as the machine is paused: by it the backend unpauses it once the engine answers.
    expect(notes()).toEqual([`primary.${CONTAINER_ID}`]);
    expect(files()).toEqual([]);

    // The engine answers again: the machine's next capture settles that note at once, unpausing it.
    engine.state.silent.clear();
    engine.state.calls = [];
    await expect(captures.captureMachine(web01('primary'))).resolves.toMatchObject({ machineRef: 'resource:default/web-01-primary' });
    expect(engine.state.calls.slice(0, 4)).toEqual(['inspect', 'inspect', 'unpause', 'removeImage']);
    expect(engine.state.paused).toBe(false);
    expect(notes()).toEqual([]);
    expect(await records.listCaptures('resource:default/web-01-primary')).toHaveLength(1);
  }, 10_000);

  it('ends at the pause limit, not at the deadline, when the engine answers neither the commit nor the unpause', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures } = await capturing({ primary: engine.port }, { timeoutMs: 60_000, maxPauseMs: 200, answerWaitMs: 200 });
    engine.state.silent = new Set(['commit', 'unpause']);
    const started = performance.now();
    const failure = await captures.captureMachine(web01('primary')).catch(e => e);
    expect(performance.now() - started).toBeLessThan(3_000);
    expect(failure.message).toMatch(
      /^capture of resource:default\/web-01-primary kept production paused past the 200 ms limit \(recovery\.docker\.maxCapturePause\) while committing the image: could not unpause it \(Docker engine 'primary' did not answer the unpause within 0\.2 s\): production stays paused; the backend tries again at \S+Z, nothing kept$/,
    );
    expect(notes()).toEqual([`primary.${CONTAINER_ID}`]);
    engine.state.silent.clear();
    await expect(captures.captureMachine(web01('primary'))).resolves.toMatchObject({ machineRef: 'resource:default/web-01-primary' });
    expect(engine.state.paused).toBe(false);
    expect(notes()).toEqual([]);
  }, 10_000);
});
