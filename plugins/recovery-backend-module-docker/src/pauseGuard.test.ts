import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { armPauseGuard, PAUSE_GUARD_LOG, pauseGuardScript } from './pauseGuard';
import { alive } from './testing/processes';

const CONTAINER = 'c'.repeat(64);

/** A Docker engine on a unix socket that knows one container, paused or not, and notes the calls. */
async function fakeEngine(dir: string, paused: boolean) {
  const state = { paused, calls: [] as string[] };
  const socketPath = join(dir, 'engine.sock');
  const server: Server = createServer((req, res) => {
    state.calls.push(`${req.method} ${req.url}`);
    if (req.method === 'GET' && req.url === `/containers/${CONTAINER}/json`) {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(
          JSON.stringify({ Id: CONTAINER, State: { Paused: state.paused } }),
        );
    } else if (
      req.method === 'POST' &&
      req.url === `/containers/${CONTAINER}/unpause`
    ) {
      state.paused = false;
      res.writeHead(204).end();
    } else {
      res.writeHead(404).end('{"message":"no such thing"}');
    }
  });
  server.listen(socketPath);
  await once(server, 'listening');
  return { state, socketPath, close: () => new Promise(r => server.close(r)) };
}

async function until(what: () => boolean, ms = 5_000) {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise(r => setTimeout(r, 20));
  }
}

/** The guard as the backend starts it, with pipes the test holds: closing stdin is the backend dying. */
async function startGuard(config: object): Promise<ChildProcess> {
  const child = spawn(process.execPath, [pauseGuardScript()], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: {},
  });
  child.stdin!.write(`${JSON.stringify(config)}\n`);
  const [line] = (await once(
    createInterface({ input: child.stdout! }),
    'line',
  )) as [string];
  expect(line).toBe('armed');
  return child;
}

describe('pause guard', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pause-guard-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const notePath = () => join(dir, '.paused', `primary.${CONTAINER}`);
  /** The capture's note, as CaptureNotes writes it: by default its own capture's, paused. */
  const writeNote = async (
    note: object = { captureId: 'cap-1', phase: 'paused' },
  ) => {
    await mkdir(join(dir, '.paused'), { recursive: true });
    await writeFile(
      notePath(),
      JSON.stringify({
        machineRef: 'resource:default/web-01',
        imageRef: 'x:y',
        filePrefix: 'y',
        pausedAt: new Date().toISOString(),
        ...note,
      }),
    );
  };
  const configFor = (
    socketPath: string,
    limitMs = 60_000,
    more: object = {},
  ) => ({
    engineId: 'primary',
    containerId: CONTAINER,
    machineRef: 'resource:default/web-01',
    captureId: 'cap-1',
    notePath: notePath(),
    limitMs,
    logFile: join(dir, PAUSE_GUARD_LOG),
    connection: { socketPath },
    ...more,
  });
  const guardOptions = {
    captureId: 'cap-1',
    notePath: join(tmpdir(), 'no-note'),
  };

  it('exits quietly, touching nothing, once released', async () => {
    const engine = await fakeEngine(dir, true);
    const guard = await armPauseGuard({
      engineId: 'primary',
      containerId: CONTAINER,
      machineRef: 'resource:default/web-01',
      ...guardOptions,
      connection: { socketPath: engine.socketPath },
      limitMs: 60_000,
      storeDirectory: dir,
    });
    expect(alive(guard.pid)).toBe(true);
    guard.release();
    await until(() => !alive(guard.pid));
    expect(engine.state.calls).toEqual([]);
    expect(engine.state.paused).toBe(true);
    await engine.close();
  });

  it('takes the connection through stdin: no TLS key in its command line', async () => {
    const engine = await fakeEngine(dir, false);
    const key =
      '-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n';
    const guard = await armPauseGuard({
      engineId: 'primary',
      containerId: CONTAINER,
      machineRef: 'resource:default/web-01',
      ...guardOptions,
      connection: {
        host: '127.0.0.1',
        port: 1,
        protocol: 'https',
        key,
        cert: 'cert',
        ca: 'ca',
      },
      limitMs: 60_000,
      storeDirectory: dir,
    });
    const cmdline = readFileSync(`/proc/${guard.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('pauseGuard.cjs');
    expect(cmdline).not.toContain('secret-key-material');
    guard.release();
    await until(() => !alive(guard.pid));
    await engine.close();
  });

  it('unpauses the container at once when the backend goes away without releasing it', async () => {
    const engine = await fakeEngine(dir, true);
    await writeNote();
    const guard = await startGuard(configFor(engine.socketPath, 30_000));
    const exited = once(guard, 'exit');
    const closedAt = Date.now();
    guard.stdin!.end();
    const [code] = await exited;
    expect(code).toBe(0);
    // At once, not at its 30 s limit: only waiting for that takes 10 s.
    expect(Date.now() - closedAt).toBeLessThan(10_000);
    expect(engine.state.calls).toEqual([
      `GET /containers/${CONTAINER}/json`,
      `POST /containers/${CONTAINER}/unpause`,
    ]);
    expect(engine.state.paused).toBe(false);
    const log = await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8');
    expect(log).toMatch(
      /pause guard of resource:default\/web-01 .*the backend went away .*: unpaused the container\n$/,
    );
    await engine.close();
  });

  it('leaves a container no longer paused as it is', async () => {
    const engine = await fakeEngine(dir, false);
    await writeNote();
    const guard = await startGuard(configFor(engine.socketPath));
    const exited = once(guard, 'exit');
    guard.stdin!.end();
    await exited;
    expect(engine.state.calls).toEqual([`GET /containers/${CONTAINER}/json`]);
    expect(await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8')).toContain(
      'the container is not paused, left as it is',
    );
    await engine.close();
  });

  it('unpauses it past its limit even while the backend holds it', async () => {
    const engine = await fakeEngine(dir, true);
    await writeNote();
    const started = Date.now();
    const guard = await startGuard(configFor(engine.socketPath, 300));
    const [code] = await once(guard, 'exit');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(engine.state.paused).toBe(false);
    expect(await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8')).toContain(
      'still paused 0 s after the capture began: unpaused the container',
    );
    await engine.close();
  });

  it('tries again while the engine does not answer', async () => {
    await writeNote();
    const socketPath = join(dir, 'engine.sock');
    const guard = await startGuard(configFor(socketPath));
    const exited = once(guard, 'exit');
    guard.stdin!.end();
    // The engine comes up only after the guard's first try failed.
    await new Promise(r => setTimeout(r, 300));
    const engine = await fakeEngine(dir, true);
    await exited;
    expect(engine.state.paused).toBe(false);
    await engine.close();
  });

  // A pause that is no longer its capture's: the backend unpaused the machine (its retry) and
  // dropped the note, then a person, or a later capture, paused it.
  it.each([
    ['no note (a person paused it)', undefined],
    ["another capture's note", { captureId: 'cap-2', phase: 'paused' }],
    [
      "its capture's note once unpaused (saving)",
      { captureId: 'cap-1', phase: 'saving' },
    ],
  ])('leaves a paused container as it is with %s', async (_what, note) => {
    const engine = await fakeEngine(dir, true);
    if (note) await writeNote(note);
    const guard = await startGuard(configFor(engine.socketPath));
    const exited = once(guard, 'exit');
    guard.stdin!.end();
    const [code] = await exited;
    expect(code).toBe(0);
    expect(engine.state.calls).toEqual([]);
    expect(engine.state.paused).toBe(true);
    expect(await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8')).toContain(
      'the note of capture cap-1 no longer holds the machine',
    );
    await engine.close();
  });

  it('unpauses it where its note cannot be read: production first', async () => {
    const engine = await fakeEngine(dir, true);
    // A directory where the note is: reading it fails, not with ENOENT.
    await mkdir(notePath(), { recursive: true });
    const guard = await startGuard(configFor(engine.socketPath));
    const exited = once(guard, 'exit');
    guard.stdin!.end();
    await exited;
    expect(engine.state.paused).toBe(false);
    expect(await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8')).toContain(
      "unpaused the container (its capture's note could not be read)",
    );
    await engine.close();
  });

  it('refuses to arm without its note and capture', async () => {
    const child = spawn(process.execPath, [pauseGuardScript()], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: {},
    });
    const { notePath: _n, ...config } = configFor(join(dir, 'engine.sock'));
    child.stdin!.write(`${JSON.stringify(config)}\n`);
    const [code] = await once(child, 'exit');
    expect(code).toBe(2);
  });

  // systemd's KillMode=control-group: the whole service SIGTERMed as the backend dies or stops.
  it.each(['SIGTERM', 'SIGINT', 'SIGHUP'] as const)(
    'unpauses the container when sent %s, the backend given a grace first',
    async sig => {
      const engine = await fakeEngine(dir, true);
      await writeNote();
      const guard = await startGuard(
        configFor(engine.socketPath, 60_000, { signalGraceMs: 300 }),
      );
      const exited = once(guard, 'exit');
      const sentAt = Date.now();
      guard.kill(sig);
      await new Promise(r => setTimeout(r, 100));
      // Within the grace: the backend's own unpause comes first.
      expect(engine.state.calls).toEqual([]);
      const [code, signal] = await exited;
      expect([code, signal]).toEqual([0, null]);
      expect(Date.now() - sentAt).toBeGreaterThanOrEqual(300);
      expect(engine.state.paused).toBe(false);
      expect(await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8')).toContain(
        `sent ${sig} while the capture had the machine paused: unpaused the container`,
      );
      await engine.close();
    },
  );

  it('exits quietly when the backend releases it within the grace after a signal', async () => {
    const engine = await fakeEngine(dir, true);
    await writeNote();
    const guard = await startGuard(
      configFor(engine.socketPath, 60_000, { signalGraceMs: 5_000 }),
    );
    const exited = once(guard, 'exit');
    guard.kill('SIGTERM');
    await new Promise(r => setTimeout(r, 100));
    guard.stdin!.end('unpaused\n');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(engine.state.calls).toEqual([]);
    await engine.close();
  });
});
