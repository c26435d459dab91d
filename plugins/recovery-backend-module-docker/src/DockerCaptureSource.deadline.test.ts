import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import {
  createServer as createHttpServer,
  type ServerResponse,
} from 'node:http';
import {
  createServer,
  type AddressInfo,
  type Server,
  type Socket,
} from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ConfigReader } from '@backstage/config';
import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import { recordingLogger } from '../../recovery-backend/src/testing/logger';
import { captureMachines } from '../../recovery-backend-module-scheduler/src/tasks';
import { readDockerModuleConfig } from './config';
import { DockerCaptureSource } from './DockerCaptureSource';
import { createTar } from './lib/tar';
import { buildCaptureService } from './testing/captureService';
import { untilReal } from './testing/realClock';

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

type Call =
  | 'inspect'
  | 'inspectNetwork'
  | 'pause'
  | 'unpause'
  | 'commit'
  | 'save'
  | 'removeImage'
  | 'listImages'
  | 'inspectImage';

interface Image {
  Id: string;
  RepoTags: string[];
  Comment: string;
}

/**
 * A primary engine over TCP with one running container, `web-01`, and the images its commits made:
 * it answers the Docker API a capture and the sweeps speak, except the calls in `silent`, which it
 * accepts and leaves unanswered (the engine, or the connection, gone silent) until `answerHeld`,
 * when it does them as dockerd does, whether their caller still listens or not.
 */
async function engineGoingSilent() {
  const state = {
    paused: false,
    networks: [] as string[],
    silent: new Set<Call>(),
    calls: [] as Call[],
    images: [] as Image[],
  };
  const held: {
    call: Call;
    url: URL;
    res: ServerResponse;
    callerLeft: boolean;
    answered?: boolean;
  }[] = [];
  const server = createHttpServer((req, res) => {
    const url = new URL(req.url!, 'http://engine');
    const path = url.pathname;
    const route: [RegExp, Call][] = [
      [/^\/containers\/[^/]+\/json$/, 'inspect'],
      [/^\/networks\/[^/]+$/, 'inspectNetwork'],
      [/^\/containers\/[^/]+\/pause$/, 'pause'],
      [/^\/containers\/[^/]+\/unpause$/, 'unpause'],
      [/^\/commit$/, 'commit'],
      [/^\/images\/.+\/get$/, 'save'],
      [/^\/images\/json$/, 'listImages'],
      [/^\/images\/.+\/json$/, 'inspectImage'],
    ];
    const call =
      req.method === 'DELETE' && path.startsWith('/images/')
        ? 'removeImage'
        : route.find(([re]) => re.test(path))?.[1];
    if (!call) {
      // Stats: none here (the capture goes on without a memory figure).
      res
        .writeHead(404, { 'content-type': 'application/json' })
        .end('{"message":"not here"}');
      return;
    }
    state.calls.push(call);
    if (state.silent.has(call)) {
      const h = { call, url, res, callerLeft: false };
      res.on('close', () => {
        if (!res.writableFinished) h.callerLeft = true;
      });
      held.push(h);
      return;
    }
    respond(call, url, res);
  });
  function respond(call: Call, url: URL, res: ServerResponse) {
    const path = url.pathname;
    const json = (status: number, body: unknown) => {
      // Its caller gone, the engine does the call all the same.
      if (!res.destroyed)
        res
          .writeHead(status, { 'content-type': 'application/json' })
          .end(JSON.stringify(body));
    };
    const image = (name: string) =>
      state.images.find(i => i.Id === name || i.RepoTags.includes(name));
    switch (call) {
      case 'inspect':
        return json(200, {
          Id: CONTAINER_ID,
          Name: '/web-01',
          State: { Running: true, Paused: state.paused },
          Config: { Hostname: 'web-01', Env: [], Labels: {} },
          HostConfig: {},
          Mounts: [],
          NetworkSettings: {
            Networks: Object.fromEntries(
              state.networks.map(name => [
                name,
                { IPAddress: '172.29.10.5', Aliases: [] },
              ]),
            ),
          },
        });
      case 'inspectNetwork':
        return json(200, {
          Name: 'prod',
          IPAM: {
            Config: [{ Subnet: '172.29.10.0/24', Gateway: '172.29.10.1' }],
          },
        });
      case 'pause':
      case 'unpause':
        state.paused = call === 'pause';
        return res.writeHead(204).end();
      case 'commit': {
        const made = {
          Id: `sha256:committed-${state.images.length + 1}`,
          RepoTags: [
            `${url.searchParams.get('repo')}:${url.searchParams.get('tag')}`,
          ],
          Comment: url.searchParams.get('comment') ?? '',
        };
        state.images.push(made);
        return json(201, { Id: made.Id });
      }
      case 'removeImage': {
        const ref = decodeURIComponent(/^\/images\/(.+)$/.exec(path)![1]);
        const found = image(ref);
        if (!found) return json(404, { message: `No such image: ${ref}` });
        found.RepoTags = found.RepoTags.filter(t => t !== ref);
        state.images = state.images.filter(i => i.RepoTags.length > 0);
        return json(200, [{ Untagged: ref }]);
      }
      case 'listImages':
        return json(
          200,
          state.images.map(({ Id, RepoTags }) => ({ Id, RepoTags })),
        );
      case 'inspectImage': {
        const found = image(
          decodeURIComponent(/^\/images\/(.+)\/json$/.exec(path)![1]),
        );
        return found
          ? json(200, found)
          : json(404, { message: 'No such image' });
      }
      case 'save': {
        const ref = decodeURIComponent(/^\/images\/(.+)\/get$/.exec(path)![1]);
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
      default:
        throw new Error(`no answer for ${call satisfies never}`);
    }
  }
  await listen(server);
  return {
    state,
    port: (server.address() as AddressInfo).port,
    /** The calls of that name held so far, each with whether its caller has left (its connection closed). */
    held: (call: Call) =>
      held
        .filter(h => h.call === call)
        .map(h => ({ callerLeft: h.callerLeft })),
    /** Does the held calls of that name, and answers those whose caller still listens. */
    answerHeld: (call: Call) => {
      state.silent.delete(call);
      for (const h of held.filter(x => x.call === call && !x.answered)) {
        h.answered = true;
        respond(h.call, h.url, h.res);
      }
    },
    close: () => {
      for (const { res } of held) res.destroy();
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
        docker: {
          engines: Object.entries(ports).map(([id, port]) => ({
            id,
            host: '127.0.0.1',
            port,
            role: 'primary',
          })),
        },
      },
    }),
  ).engines;
}

const web01 = (engine: string): MachineLocator => ({
  machineRef: `resource:default/web-01-${engine}`,
  engine,
  container: 'web-01',
});

describe('a capture on a primary engine that stops answering', () => {
  let store: string;
  const closing: Array<() => void> = [];
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-deadline-test-'));
  });
  afterEach(() => {
    vi.useRealTimers();
    for (const close of closing.splice(0)) close();
    rmSync(store, { recursive: true, force: true });
  });

  /** The capture service over Docker sources for `ports`' engines, as the modules build them. */
  async function capturing(
    ports: Record<string, number>,
    options: {
      timeoutMs: number;
      maxPauseMs?: number;
      answerWaitMs?: number;
      sweepWaitMs?: number;
    },
  ) {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const sources: DockerCaptureSource[] = [];
    for (const engine of enginesAt(ports, store)) {
      const source = new DockerCaptureSource(
        engine.id,
        new Docker(engine.options),
        {
          storeDirectory: store,
          maxPauseMs: options.maxPauseMs,
          answerWaitMs: options.answerWaitMs,
          sweepWaitMs: options.sweepWaitMs,
          logger: mockServices.logger.mock(),
        },
      );
      sources.push(source);
      closing.push(() => void source.stopCaptures(0));
    }
    const logger = recordingLogger();
    const captures = buildCaptureService({
      store: new CaptureStore(knex),
      sources,
      logger,
      keepLast: 3,
      timeoutMs: options.timeoutMs,
    });
    return { captures, records: new CaptureStore(knex), logger, sources };
  }

  const notes = () =>
    existsSync(join(store, '.paused'))
      ? readdirSync(join(store, '.paused'))
      : [];
  const files = () =>
    readdirSync(store).filter(f => f !== '.paused' && f !== 'layers');

  it('fails at the capture deadline naming machine, engine and deadline, and the scheduled capture goes on with the next machine', async () => {
    const silent = await silentEngine();
    closing.push(silent.close);
    const answering = await engineGoingSilent();
    closing.push(answering.close);
    const { captures, records } = await capturing(
      { gone: silent.port, site: answering.port },
      { timeoutMs: 300 },
    );

    const api = {
      capture: async (machineRef: string) => [
        await captures.captureMachine(web01(machineRef.split('-').pop()!)),
      ],
    };
    // The deadline's clock moves only as the test says, however loaded the machine running it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const scheduled = captureMachines(
      api as any,
      ['resource:default/web-01-gone', 'resource:default/web-01-site'],
      mockServices.logger.mock(),
    );
    await untilReal(
      () => silent.connections() > 0,
      'the capture on engine gone calling it',
    );
    // The clock moved on by the deadline and no more: the capture on engine gone ends there, and
    // the next one is taken (nothing else it may wait for, such as the 60 s a source is given to
    // stop at the deadline, comes).
    await vi.advanceTimersByTimeAsync(300);
    const report = await scheduled;
    expect(report.failed).toEqual([
      {
        entityRef: 'resource:default/web-01-gone',
        message:
          'capture of resource:default/web-01-gone on engine gone did not finish within 0.3 s (recovery.captures.timeout) while inspecting its container: nothing kept',
      },
    ]);
    expect(report.succeeded).toEqual(['resource:default/web-01-site']);
    expect(
      await records.listCaptures('resource:default/web-01-site'),
    ).toHaveLength(1);
    expect(await records.listCaptures('resource:default/web-01-gone')).toEqual(
      [],
    );
  }, 10_000);

  it('unpauses production and lets go of the machine when the commit never answers: the next capture is taken, not refused as under way', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures, records } = await capturing(
      { primary: engine.port },
      { timeoutMs: 300 },
    );
    // The commit's connection goes silent; the engine answers the others.
    engine.state.silent.add('commit');
    const failure = await captures
      .captureMachine(web01('primary'))
      .catch(e => e);
    expect(failure.message).toBe(
      'capture of resource:default/web-01-primary on engine primary did not finish within 0.3 s (recovery.captures.timeout) while committing the image: unpaused, nothing kept',
    );
    expect(failure.name).toBe('ServiceUnavailableError');
    expect(engine.state.paused).toBe(false);
    expect(notes()).toEqual([]);
    expect(files()).toEqual([]);
    expect(
      await records.listCaptures('resource:default/web-01-primary'),
    ).toEqual([]);

    engine.state.silent.clear();
    await expect(
      captures.captureMachine(web01('primary')),
    ).resolves.toMatchObject({ machineRef: 'resource:default/web-01-primary' });
    expect(notes()).toEqual([]);
  }, 10_000);

  it('stops at the deadline where the engine does not answer the look at its networks, before any note or pause', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures } = await capturing(
      { primary: engine.port },
      { timeoutMs: 300 },
    );
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
    const { captures, records } = await capturing(
      { primary: engine.port },
      { timeoutMs: 300, answerWaitMs: 200 },
    );
    engine.state.silent = new Set(['commit', 'unpause']);
    const failure = await captures
      .captureMachine(web01('primary'))
      .catch(e => e);
    expect(failure.message).toMatch(
      /^capture of resource:default\/web-01-primary on engine primary did not finish within 0\.3 s \(recovery\.captures\.timeout\) while committing the image: could not unpause it \(Docker engine 'primary' did not answer the unpause within 0\.2 s\): production stays paused \(paused at least \d+ ms so far\); the backend tries again in 2 s, then at least every 30 s \(by hand: docker unpause c{64} \(the container the catalog names web-01\), on engine primary\), nothing kept$/,
    );
    // How long production has been paused, as far as the capture knows: at least the unpause's wait.
    const [, pausedMs] = /paused at least (\d+) ms so far/.exec(
      failure.message,
    )!;
    expect(Number(pausedMs)).toBeGreaterThanOrEqual(200);
    expect(engine.state.paused).toBe(true);
    // Kept, as the machine is paused: by it the backend unpauses it once the engine answers.
    expect(notes()).toEqual([`primary.${CONTAINER_ID}`]);
    expect(files()).toEqual([]);

    // The engine answers again: the machine's next capture settles that note at once, unpausing it.
    engine.state.silent.clear();
    engine.state.calls = [];
    await expect(
      captures.captureMachine(web01('primary')),
    ).resolves.toMatchObject({ machineRef: 'resource:default/web-01-primary' });
    expect(engine.state.calls.slice(0, 4)).toEqual([
      'inspect',
      'inspect',
      'unpause',
      'removeImage',
    ]);
    expect(engine.state.paused).toBe(false);
    expect(notes()).toEqual([]);
    expect(
      await records.listCaptures('resource:default/web-01-primary'),
    ).toHaveLength(1);
  }, 10_000);

  it('ends at the pause limit, not at the deadline, when the engine answers neither the commit nor the unpause', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures } = await capturing(
      { primary: engine.port },
      { timeoutMs: 60_000, maxPauseMs: 200, answerWaitMs: 200 },
    );
    engine.state.silent = new Set(['commit', 'unpause']);
    // The clock of the limit and the deadline moves only as the test says.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const failing = captures.captureMachine(web01('primary')).catch(e => e);
    await untilReal(
      () => engine.held('commit').length === 1,
      'the commit, the machine paused',
    );
    // Moved on by the pause limit, 59.8 s short of the deadline: the capture ends.
    await vi.advanceTimersByTimeAsync(200);
    const failure = await failing;
    expect(failure.message).toMatch(
      /^capture of resource:default\/web-01-primary kept production paused past the 200 ms limit \(recovery\.docker\.maxCapturePause\) while committing the image: could not unpause it \(Docker engine 'primary' did not answer the unpause within 0\.2 s\): production stays paused \(paused at least \d+ ms so far\); the backend tries again in 2 s, then at least every 30 s \(by hand: docker unpause c{64} \(the container the catalog names web-01\), on engine primary\), nothing kept$/,
    );
    expect(notes()).toEqual([`primary.${CONTAINER_ID}`]);
    engine.state.silent.clear();
    await expect(
      captures.captureMachine(web01('primary')),
    ).resolves.toMatchObject({ machineRef: 'resource:default/web-01-primary' });
    expect(engine.state.paused).toBe(false);
    expect(notes()).toEqual([]);
  }, 10_000);
  it('removes the tag the engine makes for a commit the capture stopped waiting for (its deadline, a failed unpause), once the engine answers it', async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const { captures, sources } = await capturing(
      { primary: engine.port },
      { timeoutMs: 300 },
    );
    engine.state.silent.add('commit');
    // The clock stands still but for the deadline: what follows the engine's answer comes from
    // that answer, not from a timer.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const failing = captures.captureMachine(web01('primary')).catch(e => e);
    await untilReal(() => engine.held('commit').length === 1, 'the commit');
    await vi.advanceTimersByTimeAsync(300);
    const failure = await failing;
    expect(failure.message).toMatch(
      /did not finish within 0\.3 s \(recovery\.captures\.timeout\) while committing the image: unpaused, nothing kept$/,
    );
    expect(engine.state.images).toEqual([]);
    // The capture stopped waiting, not listening: dockerd tags the image once done, whoever left.
    expect(engine.held('commit')).toEqual([{ callerLeft: false }]);
    engine.answerHeld('commit');
    expect(engine.state.images.map(i => i.RepoTags)).toEqual([
      [expect.stringMatching(/^recovery-capture\/web-01:/)],
    ]);
    await untilReal(
      () => engine.state.images.length === 0,
      'the tag removed on the answer',
    );
    vi.useRealTimers();

    // As the backend shuts down, it stops listening (the look for unrecorded captures takes that tag).
    engine.state.silent = new Set(['commit']);
    const before = engine.held('commit').length;
    await expect(captures.captureMachine(web01('primary'))).rejects.toThrow(
      'while committing the image',
    );
    expect(engine.held('commit')[before]).toEqual({ callerLeft: false });
    await sources[0].stopCaptures(0);
    await vi.waitFor(
      () => expect(engine.held('commit')[before]).toEqual({ callerLeft: true }),
      { timeout: 10_000 },
    );
    engine.answerHeld('commit');
    expect(engine.state.images).toHaveLength(1);
    await captures.removeUnrecorded();
    expect(engine.state.images).toEqual([]);

    // Its unpause unanswered past the pause limit: the capture ends, production paused, and the
    // commit the engine finishes later loses its tag as soon.
    const paused = await capturing(
      { primary: engine.port },
      { timeoutMs: 60_000, maxPauseMs: 200, answerWaitMs: 200 },
    );
    engine.state.silent = new Set(['commit', 'unpause']);
    await expect(
      paused.captures.captureMachine(web01('primary')),
    ).rejects.toThrow('production stays paused');
    engine.answerHeld('commit');
    await vi.waitFor(() => expect(engine.state.images).toEqual([]), {
      timeout: 10_000,
    });
    engine.answerHeld('unpause');
  }, 15_000);

  it("bounds the sweeps' engine calls: a silent engine fails the look for unrecorded captures, a discard and the resume of a note, naming engine and step", async () => {
    const engine = await engineGoingSilent();
    closing.push(engine.close);
    const source = new DockerCaptureSource(
      'primary',
      new Docker({ host: '127.0.0.1', port: engine.port, protocol: 'http' }),
      {
        storeDirectory: store,
        sweepWaitMs: 200,
      },
    );
    closing.push(() => void source.stopCaptures(0));
    const left = {
      Id: 'sha256:left',
      RepoTags: ['recovery-capture/web-01:cap-left'],
      Comment: 'recovery capture cap-left of resource:default/web-01',
    };
    engine.state.images = [left];
    const look = () => source.removeUnrecorded(async () => []);
    const discard = () =>
      source.discard({ captureId: 'cap-left', artifact: 'cap-left.tar' });
    const silentFails: Array<[Call, () => Promise<unknown>, string]> = [
      [
        'listImages',
        look,
        'the list of capture images (looking for unrecorded captures)',
      ],
      [
        'inspectImage',
        look,
        'the look at image sha256:left (looking for unrecorded captures)',
      ],
      [
        'removeImage',
        look,
        'the removal of the tag recovery-capture/web-01:cap-left',
      ],
      [
        'listImages',
        discard,
        "the list of capture cap-left's images (discarding it)",
      ],
      [
        'removeImage',
        discard,
        'the removal of the tag recovery-capture/web-01:cap-left (discarding capture cap-left)',
      ],
    ];
    for (const [call, sweep, step] of silentFails) {
      engine.state.silent = new Set([call]);
      const before = engine.held(call).length;
      await expect(sweep()).rejects.toThrow(
        `Docker engine 'primary' did not answer ${step} within 0.2 s`,
      );
      // One wait: the silent call made once, not tried again.
      expect(engine.held(call)).toHaveLength(before + 1);
    }
    // Notes their backend left, long stale, whose containers' look goes unanswered: the first
    // call waits, the next notes' are not made (each would wait as long).
    engine.state.silent = new Set(['inspect']);
    mkdirSync(join(store, '.paused'));
    for (const [container, captureId] of [
      [CONTAINER_ID, 'cap-old'],
      ['d'.repeat(64), 'cap-older'],
    ]) {
      const note = {
        machineRef: 'resource:default/web-01',
        captureId,
        imageRef: `recovery-capture/web-01:${captureId}`,
        filePrefix: captureId,
        phase: 'paused',
        pausedAt: '2020-01-01T00:00:00.000Z',
      };
      writeFileSync(
        join(store, '.paused', `primary.${container}`),
        JSON.stringify(note),
      );
    }
    await expect(source.resumeInterruptedCaptures()).rejects.toThrow(
      `could not resume 2 interrupted capture(s), whose machines may still be paused (their notes stay, for the next start or capture of the machine): ` +
        `capture cap-old of resource:default/web-01: Docker engine 'primary' did not answer the look at container ${CONTAINER_ID} (resuming capture cap-old) within 0.2 s; ` +
        `capture cap-older of resource:default/web-01: not tried, as engine primary left a call unanswered`,
    );
    // One wait in all: the second note's look never made.
    expect(engine.state.calls.filter(c => c === 'inspect')).toHaveLength(1);

    // Answering again, the look removes what the unrecorded capture left.
    engine.state.silent.clear();
    await expect(look()).resolves.toEqual(['cap-left']);
    expect(engine.state.images).toEqual([]);
  }, 15_000);

  it('ends the scheduled look for unrecorded captures on an engine gone silent, naming it, and still looks at the others', async () => {
    const silent = await silentEngine();
    closing.push(silent.close);
    const answering = await engineGoingSilent();
    closing.push(answering.close);
    answering.state.images = [
      {
        Id: 'sha256:left',
        RepoTags: ['recovery-capture/web-01:cap-left'],
        Comment: 'recovery capture cap-left of resource:default/web-01-site',
      },
    ];
    const { captures, logger } = await capturing(
      { gone: silent.port, site: answering.port },
      { timeoutMs: 300, sweepWaitMs: 200 },
    );
    await captures.removeUnrecorded();
    // One wait on engine gone: its call made once, not tried again.
    expect(silent.connections()).toBe(1);
    expect(logger.lines).toContainEqual({
      level: 'warn',
      message: 'Could not remove what unrecorded captures on the engine left',
      fields: { engine: 'gone' },
      error: expect.objectContaining({
        name: 'ServiceUnavailableError',
        message:
          "Docker engine 'gone' did not answer the list of capture images (looking for unrecorded captures) within 0.2 s",
      }),
    });
    expect(answering.state.images).toEqual([]);
  }, 10_000);
});
