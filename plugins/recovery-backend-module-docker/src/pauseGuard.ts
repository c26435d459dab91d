import type Docker from 'dockerode';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { resolvePackagePath } from '@backstage/backend-plugin-api';

/**
 * The pause guard's script: plain JavaScript, run by Node as it is (no transform), shipped in the
 * package (its `files`) at the same place whether the module runs from `src` or from `dist`.
 * Resolved when a guard starts, not when the module loads: a failure is then one capture's
 * warning (it pauses without a guard), not a Docker module that cannot be imported.
 */
export function pauseGuardScript(): string {
  return resolvePackagePath(
    '@backstage-recovery/plugin-recovery-backend-module-docker',
    'src/guard/pauseGuard.cjs',
  );
}

/** Where guards say what they did, in the capture store (a guard outlives the backend's logger). */
export const PAUSE_GUARD_LOG = '.pause-guard.log';

/** Longest a capture waits for its guard to be armed before it pauses without one. */
const ARM_WAIT_MS = 5_000;

/** What a guard needs: the machine's container, on which engine, reached how, and its limit. */
export interface PauseGuardOptions {
  engineId: string;
  containerId: string;
  machineRef: string;
  /**
   * The capture's id and the path of its note (CaptureNotes.notePath): the guard unpauses the
   * machine only while that note is there and names this capture, never a pause that is no longer
   * its capture's (a person's, a later capture's, once the backend unpaused it itself).
   */
  captureId: string;
  notePath: string;
  /** Docker's connection options for the engine (socketPath, or host, port, protocol and TLS). */
  connection: Docker.DockerOptions;
  /** From the guard's start: past it, the guard unpauses the container even with the backend alive. */
  limitMs: number;
  /** The capture store, where the guard appends a line of what it did (PAUSE_GUARD_LOG). */
  storeDirectory: string;
}

/** A guard armed: `release` tells it the machine was unpaused (it exits); `pid` for tests. */
export interface PauseGuard {
  readonly pid: number;
  release(): void;
}

/**
 * Starts a pause guard (src/guard/pauseGuard.cjs) for a machine a capture is about to pause, and
 * waits until it holds what it needs: a detached Node process, outside the backend's process group
 * (a watch mode's restart or a Ctrl-C that stops the backend does not stop it), its standard input
 * a pipe from the backend. Should the backend die before it has released the guard, that pipe
 * closes and the guard unpauses the machine at once; past `limitMs` it unpauses it too. Rejects
 * where the guard cannot start or does not answer within ARM_WAIT_MS (it is then stopped).
 */
export async function armPauseGuard(
  options: PauseGuardOptions,
): Promise<PauseGuard> {
  const { connection } = options;
  // Only what the script reads; TLS material is PEM text (config.ts reads files at start-up).
  const pick = (v: unknown) => (Buffer.isBuffer(v) ? v.toString('utf8') : v);
  const config = {
    engineId: options.engineId,
    containerId: options.containerId,
    machineRef: options.machineRef,
    captureId: options.captureId,
    notePath: options.notePath,
    limitMs: options.limitMs,
    logFile: join(options.storeDirectory, PAUSE_GUARD_LOG),
    connection: {
      socketPath: connection.socketPath,
      host: connection.host,
      port: connection.port,
      protocol: connection.protocol,
      ca: pick(connection.ca),
      cert: pick(connection.cert),
      key: pick(connection.key),
    },
  };
  // An empty environment: the backend's NODE_OPTIONS (a transform, a test runner's loader) are not
  // the plain script's; its connection comes through stdin, never argv (no key shows in `ps`).
  let script = 'src/guard/pauseGuard.cjs';
  let child: ChildProcess;
  try {
    script = pauseGuardScript();
    child = spawn(process.execPath, [script], {
      detached: true,
      stdio: ['pipe', 'pipe', 'ignore'],
      env: {},
      windowsHide: true,
    });
  } catch (e) {
    throw new Error(
      `the pause guard (${script}) did not start: ${(e as Error).message}`,
    );
  }
  const stdin = child.stdin!;
  const stdout = child.stdout!;
  // A guard that died (killed by hand) must not fail the backend with an EPIPE.
  stdin.on('error', () => {});
  const armed = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no answer within ${ARM_WAIT_MS / 1000} s`)),
      ARM_WAIT_MS,
    );
    child.once('error', e => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('exit', code => {
      clearTimeout(timer);
      reject(new Error(`it exited with code ${code}`));
    });
    createInterface({ input: stdout }).once('line', line => {
      clearTimeout(timer);
      if (line === 'armed') resolve();
      else reject(new Error(`it answered ${JSON.stringify(line)}`));
    });
  });
  stdin.write(`${JSON.stringify(config)}\n`);
  try {
    await armed;
  } catch (e) {
    child.kill('SIGKILL');
    throw new Error(
      `the pause guard (${script}) did not start: ${(e as Error).message}`,
    );
  }
  child.removeAllListeners('exit');
  child.on('error', () => {});
  // The backend may exit while a guard runs (that is its point): nothing of it holds the event loop.
  stdout.destroy();
  (stdin as unknown as Socket).unref();
  child.unref();
  let released = false;
  return {
    pid: child.pid!,
    release() {
      if (released) return;
      released = true;
      stdin.end('unpaused\n');
    },
  };
}
