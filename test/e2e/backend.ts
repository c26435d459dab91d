import {
  isRunActive,
  type CaptureRequest,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  ChildProcess,
  execFile,
  execFileSync,
  spawn,
} from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { until } from './until';

export const REPO_ROOT = resolve(__dirname, '../..');

/**
 * Builds the app the backend serves, as for production, from the sources as they are now: a
 * browser test of an older build would test old code. Its output's tail names a failure.
 */
export function buildApp(): void {
  try {
    execFileSync('npm', ['run', 'build', '-w', 'app'], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_ENV: 'production' },
      encoding: 'utf8',
      stdio: 'pipe',
    });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(
      `building the app failed:\n${stderr?.slice(-3000)}\n${stdout?.slice(-2000)}`,
    );
  }
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
    server.on('error', fail);
  });
}

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const RECOVERY =
  process.env.RECOVERY_HOST_DOCKER_HOST ??
  'unix:///run/recovery-docker/recovery.sock';

/** The engines the tests use: the demo site's (primary) and the hypervisor host. */
export const ENGINES = { primary: PRIMARY, recovery: RECOVERY };

/**
 * Fails, before a test builds anything, where one of the engines (by name: `primary`,
 * `recovery`) does not answer, saying how to start them.
 */
export async function expectEnginesReachable(
  engines: Record<string, { ping(): Promise<unknown> }>,
): Promise<void> {
  for (const [name, docker] of Object.entries(engines)) {
    await docker.ping().catch(e => {
      throw new Error(
        `Docker engine ${name} is not reachable (run scripts/docker-engines.sh start): ${e.message}`,
      );
    });
  }
}

/**
 * Recovery config for the demo on the two test engines. Schedules are pushed out of the way:
 * the tests capture and run themselves.
 */
export function demoRecoveryConfig(
  dataDir: string,
  runs: Record<string, unknown> = {},
) {
  const socketOf = (host: string) => host.replace(/^unix:\/\//, '');
  // Config merges with app-config.yaml's: its initialDelay (captures 20 s after start) stays
  // unless replaced, and a scheduled capture would race the tests' own.
  const never = {
    frequency: { cron: '0 0 1 1 *' },
    timeout: { minutes: 5 },
    initialDelay: { days: 365 },
  };
  return {
    recovery: {
      hypervisorHost: 'recovery',
      captureStore: { directory: join(dataDir, 'captures'), keepLast: 2 },
      runs: {
        machineReadyTimeout: '40s',
        probeInterval: '500ms',
        minReadyTime: '2s',
        ...runs,
      },
      schedules: { capture: never, analysis: never, nightlyCheck: never },
      docker: {
        engines: [
          {
            id: 'primary',
            socketPath: socketOf(PRIMARY),
            role: 'primary',
            requireMachineLabel: true,
          },
          {
            id: 'recovery',
            socketPath: socketOf(RECOVERY),
            role: 'hypervisor',
          },
        ],
      },
    },
  };
}

export interface RunningBackend {
  baseUrl: string;
  token: string;
  output: () => string;
  stop: () => Promise<void>;
  /** The backend's process id. */
  pid: number;
  /** When its process was spawned (Date.now()). */
  spawnedAt: number;
  /**
   * Kills the backend's process with SIGKILL (an OOM kill, a node drained): no shutdown hook
   * runs. Resolves once it has exited.
   */
  kill: () => Promise<void>;
  api: <T = any>(
    method: string,
    path: string,
    body?: unknown,
  ) => Promise<{ status: number; body: T; headers: Headers }>;
}

/**
 * Starts the real backend package (packages/backend) with the repository's app-config.yaml
 * plus the given overrides, and waits until the recovery plugin answers.
 */
export async function startBackend(options: {
  dataDir: string;
  config: Record<string, unknown>;
  serveApp?: boolean;
  readyTimeoutMs?: number;
  /** The catalog file to read instead of the repository's catalog-info.yaml. */
  catalogFile?: string;
  /** The entity whose plan answering means the catalog has ingested the file (default: the demo's web). */
  readyEntity?: string;
}): Promise<RunningBackend> {
  const port = await freePort();
  const spawnedAt = Date.now();
  const token = `e2e-${Math.random().toString(36).slice(2)}`;
  const baseUrl = `http://127.0.0.1:${port}`;
  const overrides = {
    ...options.config,
    // The backend serves the built app itself, as in production.
    ...(options.serveApp && { app: { baseUrl } }),
    backend: {
      baseUrl,
      listen: { port, host: '127.0.0.1' },
      database: {
        client: 'better-sqlite3',
        connection: { directory: join(options.dataDir, 'sqlite') },
      },
      auth: {
        externalAccess: [
          { type: 'static', options: { token, subject: 'e2e-tests' } },
        ],
      },
    },
    catalog: {
      locations: [
        {
          type: 'file',
          target: options.catalogFile ?? join(REPO_ROOT, 'catalog-info.yaml'),
        },
      ],
    },
  };
  const configFile = join(options.dataDir, 'app-config.e2e.json');
  writeFileSync(configFile, JSON.stringify(overrides, null, 2));

  let output = '';
  const child: ChildProcess = spawn(
    process.execPath,
    [
      '-r',
      require.resolve('@backstage/cli/config/nodeTransform.cjs'),
      join(REPO_ROOT, 'packages/backend/src/index.ts'),
      '--config',
      join(REPO_ROOT, 'app-config.yaml'),
      '--config',
      configFile,
    ],
    {
      cwd: join(REPO_ROOT, 'packages/backend'),
      env: { ...process.env, NODE_ENV: 'development', LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stdout!.on('data', d => (output += d));
  child.stderr!.on('data', d => (output += d));
  const exited = new Promise<number | null>(ok =>
    child.on('exit', code => ok(code)),
  );
  // Killed by a signal, a process has no exit code: its signal says it is gone.
  const alive = () => child.exitCode === null && child.signalCode === null;

  const api: RunningBackend['api'] = async (method, path, body) => {
    const res = await fetch(`${baseUrl}/api/recovery${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        // A string goes as it is (log lines for /events), anything else as JSON.
        ...(body !== undefined && {
          'Content-Type':
            typeof body === 'string' ? 'text/plain' : 'application/json',
        }),
      },
      body:
        body === undefined || typeof body === 'string'
          ? body
          : JSON.stringify(body),
    });
    const text = await res.text();
    return {
      status: res.status,
      body: text ? JSON.parse(text) : undefined,
      headers: res.headers,
    };
  };

  const stop = async () => {
    if (alive()) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
  };

  const kill = async () => {
    if (alive()) {
      child.kill('SIGKILL');
      await exited;
    }
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 180_000);
  for (;;) {
    if (!alive()) {
      throw new Error(
        `backend exited with ${child.exitCode ?? child.signalCode}:\n${output.slice(-4000)}`,
      );
    }
    try {
      // Ready when the catalog has ingested the file and the plugin can plan from it.
      const res = await api(
        'GET',
        `/plan/${(options.readyEntity ?? 'component:default/web').replace(/[:]/, '/')}`,
      );
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(
        `backend not ready after ${options.readyTimeoutMs ?? 180_000} ms:\n${output.slice(0, 6000)}\n...\n${output.slice(-3000)}`,
      );
    }
    await new Promise(r => setTimeout(r, 500));
  }
  return {
    baseUrl,
    token,
    output: () => output,
    stop,
    api,
    pid: child.pid!,
    spawnedAt,
    kill,
  };
}

/**
 * Waits until a run has ended, whatever its final status (succeeded, failed, interrupted), up to
 * 5 minutes, and returns it.
 */
export async function waitForRun(
  backend: RunningBackend,
  runId: string,
): Promise<RecoveryRun> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    const { body } = await backend.api<RecoveryRun>('GET', `/runs/${runId}`);
    if (!isRunActive(body)) return body;
    if (Date.now() > deadline)
      throw new Error(`run ${runId} still ${body.status}`);
    await new Promise(r => setTimeout(r, 500));
  }
}

/**
 * `POST /captures`, as it must answer: 202 at once, its capture request `capturing` with nothing
 * captured yet, at the path its Location names. Returns the request as accepted.
 */
export async function requestCapture(
  backend: RunningBackend,
  body: { entityRef: string; machineRef?: string },
): Promise<CaptureRequest> {
  const posted = await backend.api<CaptureRequest>('POST', '/captures', body);
  expect({ status: posted.status, body: posted.body }).toMatchObject({
    status: 202,
    body: { entityRef: body.entityRef, status: 'capturing', captures: [] },
  });
  expect(posted.headers.get('location')).toBe(
    `/api/recovery/captures/requests/${posted.body.requestId}`,
  );
  return posted.body;
}

/**
 * A capture request polled (`GET /captures/requests/:id`) until it ends, up to `timeoutMs`:
 * `succeeded` with its captures, or `failed` with the status and error that stopped it.
 */
export async function captureRequestEnd(
  backend: RunningBackend,
  requestId: string,
  timeoutMs = 600_000,
): Promise<CaptureRequest> {
  return until(
    `capture request ${requestId} ended`,
    async () => {
      const { status, body } = await backend.api<CaptureRequest>(
        'GET',
        `/captures/requests/${requestId}`,
      );
      if (status !== 200)
        throw new Error(
          `capture request ${requestId}: answered ${status} ${JSON.stringify(body)}`,
        );
      return body.status !== 'capturing' && body;
    },
    timeoutMs,
    250,
  );
}

/** A capture as a client takes it: accepted (requestCapture), then polled until it ends. */
export async function capture(
  backend: RunningBackend,
  body: { entityRef: string; machineRef?: string },
): Promise<CaptureRequest> {
  const { requestId } = await requestCapture(backend, body);
  return captureRequestEnd(backend, requestId);
}

/** The real recovery CLI (packages/cli) against the backend: its exit status and what it wrote. */
export function recoveryCli(
  backend: RunningBackend,
  ...args: string[]
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise(resolvePromise => {
    execFile(
      process.execPath,
      [
        join(REPO_ROOT, 'packages/cli/bin/recovery'),
        ...args,
        '--url',
        backend.baseUrl,
        '--token',
        backend.token,
      ],
      { cwd: REPO_ROOT },
      (error, stdout, stderr) =>
        resolvePromise({
          status: error ? ((error as { code?: number }).code ?? 1) : 0,
          stdout,
          stderr,
        }),
    );
  });
}
