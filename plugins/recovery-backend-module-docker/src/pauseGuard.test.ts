import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { armPauseGuard, PAUSE_GUARD_LOG, PAUSE_GUARD_SCRIPT } from './pauseGuard';

const CONTAINER = 'c'.repeat(64);

/** A Docker engine on a unix socket that knows one container, paused or not, and notes the calls. */
async function fakeEngine(dir: string, paused: boolean) {
  const state = { paused, calls: [] as string[] };
  const socketPath = join(dir, 'engine.sock');
  const server: Server = createServer((req, res) => {
    state.calls.push(`${req.method} ${req.url}`);
    if (req.method === 'GET' && req.url === `/containers/${CONTAINER}/json`) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Id: CONTAINER, State: { Paused: state.paused } }));
    } else if (req.method === 'POST' && req.url === `/containers/${CONTAINER}/unpause`) {
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

/** Whether a process runs (a zombie, exited but not reaped yet, does not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
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
  const child = spawn(process.execPath, [PAUSE_GUARD_SCRIPT], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
  child.stdin!.write(`${JSON.stringify(config)}\n`);
  const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
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
  const configFor = (socketPath: string, limitMs = 60_000) => ({
    engineId: 'primary',
    containerId: CONTAINER,
    machineRef: 'resource:default/web-01',
    limitMs,
    logFile: join(dir, PAUSE_GUARD_LOG),
    connection: { socketPath },
  });

  it('exits quietly, touching nothing, once released', async () => {
    const engine = await fakeEngine(dir, true);
    const guard = await armPauseGuard({
      engineId: 'primary',
      containerId: CONTAINER,
      machineRef: 'resource:default/web-01',
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
    const key = '-----BEGIN PRIVATE KEY-----\nsecret-key-material\n-----END PRIVATE KEY-----\n';
    const guard = await armPauseGuard({
      engineId: 'primary',
      containerId: CONTAINER,
      machineRef: 'resource:default/web-01',
      connection: { host: '127.0.0.1', port: 1, protocol: 'https', key, cert: 'cert', ca: 'ca' },
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
    const guard = await startGuard(configFor(engine.socketPath));
    const exited = once(guard, 'exit');
    const closedAt = Date.now();
    guard.stdin!.end();
    const [code] = await exited;
    expect(code).toBe(0);
    expect(Date.now() - closedAt).toBeLessThan(2_000);
    expect(engine.state.calls).toEqual([`GET /containers/${CONTAINER}/json`, `POST /containers/${CONTAINER}/unpause`]);
    expect(engine.state.paused).toBe(false);
    const log = await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8');
    expect(log).toMatch(/pause guard of resource:default\/web-01 .*the backend went away .*: unpaused the container\n$/);
    await engine.close();
  });

  it('leaves a container no longer paused as it is', async () => {
    const engine = await fakeEngine(dir, false);
    const guard = await startGuard(configFor(engine.socketPath));
    const exited = once(guard, 'exit');
    guard.stdin!.end();
    await exited;
    expect(engine.state.calls).toEqual([`GET /containers/${CONTAINER}/json`]);
    expect(await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8')).toContain('the container is not paused, left as it is');
    await engine.close();
  });

  it('unpauses it past its limit even while the backend holds it', async () => {
    const engine = await fakeEngine(dir, true);
    const started = Date.now();
    const guard = await startGuard(configFor(engine.socketPath, 300));
    const [code] = await once(guard, 'exit');
    expect(code).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(engine.state.paused).toBe(false);
    expect(await readFile(join(dir, PAUSE_GUARD_LOG), 'utf8')).toContain('still paused 0 s after the capture began: unpaused the container');
    await engine.close();
  });

  it('tries again while the engine does not answer', async () => {
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
});
