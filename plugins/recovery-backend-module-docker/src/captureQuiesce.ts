import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { formatDuration } from '@backstage-recovery/plugin-recovery-common';

/**
 * The label naming a machine's quiesce command: run in it (`docker exec`, by `sh -c`) before its
 * capture pauses it, so the application flushes what it holds in memory (`sync`, a database's
 * checkpoint). Without it a capture is crash-consistent only: the disk as a power cut leaves it.
 */
export const QUIESCE_LABEL = 'recovery.backstage-recovery.io/quiesce';

/** Longest a quiesce command may run unless recovery.docker.quiesceTimeout says otherwise. */
export const QUIESCE_TIMEOUT_MS = 30_000;

/** What the capture notes of the last output of a failed quiesce command. */
const OUTPUT_CHARS = 200;

/**
 * Runs the machine's quiesce command (QUIESCE_LABEL), if it has one and runs, within `timeoutMs`.
 * Never fails the capture: it goes on crash-consistent, and what went wrong is returned, in
 * words, for the capture to note. Undefined where it succeeded or there is none to run.
 */
export async function quiesce(
  docker: Docker,
  container: Docker.Container,
  info: Docker.ContainerInspectInfo,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<string | undefined> {
  const command = info.Config?.Labels?.[QUIESCE_LABEL];
  // A machine stopped or paused (by someone else) runs nothing: its disk is as still as it gets.
  if (!command || !info.State?.Running || info.State.Paused) return undefined;
  const head = `quiesce command (label ${QUIESCE_LABEL}: ${command})`;
  const tail = 'the capture holds the machine as a power cut would leave it';
  const timeout = AbortSignal.timeout(timeoutMs);
  const stop = signal ? AbortSignal.any([timeout, signal]) : timeout;
  let output = '';
  try {
    const exec = await container.exec({
      Cmd: ['sh', '-c', command],
      AttachStdout: true,
      AttachStderr: true,
      abortSignal: stop,
    });
    const stream = await exec.start({ hijack: true, stdin: false });
    const collected = new PassThrough();
    collected.on('data', chunk => {
      output = (output + chunk.toString()).slice(-OUTPUT_CHARS);
    });
    docker.modem.demuxStream(stream, collected, collected);
    await new Promise<void>((resolve, reject) => {
      const stopped = () => {
        stream.destroy();
        reject(stop.reason);
      };
      if (stop.aborted) {
        stopped();
        return;
      }
      stop.addEventListener('abort', stopped, { once: true });
      stream.on('end', () => {
        stop.removeEventListener('abort', stopped);
        resolve();
      });
      stream.on('error', reject);
    });
    const { ExitCode } = await exec.inspect({ abortSignal: stop });
    if (ExitCode === 0) return undefined;
    const said = output.trim();
    return `${head} exited with code ${ExitCode}${said ? ` (${said})` : ''}: ${tail}`;
  } catch (e) {
    if (timeout.aborted)
      return `${head} did not finish within ${formatDuration(timeoutMs / 1000)} (recovery.docker.quiesceTimeout), and may still run in the machine: ${tail}`;
    if (signal?.aborted) return undefined;
    return `${head} could not be run: ${(e as Error).message}: ${tail}`;
  }
}
