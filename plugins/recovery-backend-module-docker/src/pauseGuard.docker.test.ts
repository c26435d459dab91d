import Docker from 'dockerode';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildDemoImage, DEMO_IMAGE } from '../../../demo/site';
import { DockerCaptureSource } from './DockerCaptureSource';
import { PAUSE_GUARD_LOG, pauseGuardScript } from './pauseGuard';
import { alive } from './testing/processes';
import { until } from './testing/until';

// The pause guard on the real primary engine: a backend killed while a capture has production
// paused leaves it paused no longer than the guard takes to notice (not until the next start).

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
if (!PRIMARY.startsWith('unix://'))
  throw new Error(
    `these tests reach the primary engine on a unix socket, not ${PRIMARY}`,
  );
const connection = { socketPath: PRIMARY.slice('unix://'.length) };
const primary = new Docker(connection);
const suffix = Date.now().toString(36);
const store = mkdtempSync(join(tmpdir(), 'pause-guard-store-'));
const containers: string[] = [];
const captureIds: string[] = [];

/** Pause guards running now whose parent is `ppid`. */
function guardsOf(ppid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc').filter(n => /^\d+$/.test(n))) {
    try {
      if (
        !readFileSync(`/proc/${name}/cmdline`, 'utf8').includes(
          pauseGuardScript(),
        )
      )
        continue;
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const [state, parent] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z' && Number(parent) === ppid) pids.push(Number(name));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** A running machine with a large file in its own layer: its commit takes seconds. */
async function machineWithLargeFile(name: string): Promise<Docker.Container> {
  containers.push(name);
  const c = await primary.createContainer({
    name,
    Image: DEMO_IMAGE,
    Cmd: [
      'sh',
      '-c',
      'head -c 400000000 /dev/zero > /large && echo written; trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
    ],
    HostConfig: { NetworkMode: 'none' },
  });
  await c.start();
  await until(
    'the large file written',
    async () =>
      String(await c.logs({ stdout: true, follow: false })).includes('written'),
    60_000,
    200,
  );
  return c;
}

const isPaused = async (c: Docker.Container) =>
  (await c.inspect()).State.Paused;

beforeAll(async () => {
  await buildDemoImage(primary);
});

afterAll(async () => {
  for (const name of containers)
    await primary
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
  for (const id of captureIds) {
    const images = await primary.listImages({
      filters: { reference: [`recovery-capture/*:${id}`] },
    });
    for (const tag of images.flatMap(i => i.RepoTags ?? []))
      await primary
        .getImage(tag)
        .remove()
        .catch(() => {});
  }
  rmSync(store, { recursive: true, force: true });
});

describe('pause guard on the primary engine', () => {
  it('unpauses production at once when the backend is killed mid-pause, not at its pause limit', async () => {
    const name = `guarded-${suffix}`;
    const container = await machineWithLargeFile(name);
    const captureId = `cap-guard-killed-${suffix}`;
    captureIds.push(captureId);
    let stderr = '';
    const child = spawn(
      process.execPath,
      [
        '-r',
        createRequire(__filename).resolve(
          '@backstage/cli/config/nodeTransform.cjs',
        ),
        join(__dirname, 'testing', 'captureInChild.ts'),
      ],
      {
        env: {
          ...process.env,
          GUARD_TEST_SOCKET: connection.socketPath,
          GUARD_TEST_CONTAINER: name,
          GUARD_TEST_STORE: store,
          GUARD_TEST_CAPTURE_ID: captureId,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child.stderr!.on('data', d => (stderr += d));
    const exited = new Promise(resolve => child.once('exit', resolve));
    try {
      await until('the machine paused', () => isPaused(container), 60_000, 20);
    } catch (e) {
      throw new Error(`the capture never paused its machine: ${stderr}`);
    }
    const [guard] = await until(
      "the capture's pause guard",
      // An empty list is no guard yet (and truthy).
      () => {
        const guards = guardsOf(child.pid!);
        return guards.length ? guards : undefined;
      },
      10_000,
      20,
    );
    // Into the commit of the large file (which the engine goes on with, the backend gone).
    await new Promise(r => setTimeout(r, 300));
    expect(await isPaused(container)).toBe(true);
    child.kill('SIGKILL');
    const killedAt = Date.now();
    await exited;
    // Some 0.1 s (the README's figures), however loaded the engine: not at its limit, the
    // capture's 120 s pause limit and more.
    await until(
      'the machine unpaused',
      async () => !(await isPaused(container)),
      10_000,
      20,
    );
    const unpausedWithin = Date.now() - killedAt;
    expect(unpausedWithin).toBeLessThan(10_000);
    expect((await container.inspect()).State.Running).toBe(true);
    // Its work done, the guard is gone too, and says what it did.
    await until('the guard gone', () => !alive(guard), 10_000, 20);
    expect(readFileSync(join(store, PAUSE_GUARD_LOG), 'utf8')).toMatch(
      /pause guard of resource:default\/guarded .*: the backend went away while the capture had the machine paused: unpaused the container\n/,
    );
    // The note stays, by which the next start removes what the killed capture left.
    expect(readdirSync(join(store, '.paused'))).toHaveLength(1);
    // The commit the engine went on with: its tag is the note's to remove, here the test's.
    await until(
      'the commit tagged',
      async () =>
        (
          await primary.listImages({
            filters: { reference: [`recovery-capture/*:${captureId}`] },
          })
        ).length > 0,
      120_000,
      500,
    );
  });

  it('leaves no guard running after a capture', async () => {
    const name = `unguarded-${suffix}`;
    const container = await machineWithLargeFile(name);
    const captureId = `cap-guard-done-${suffix}`;
    captureIds.push(captureId);
    const source = new DockerCaptureSource('primary', primary, {
      storeDirectory: store,
      engineConnection: connection,
    });
    const seen = new Set<number>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        for (const pid of guardsOf(process.pid)) seen.add(pid);
        await new Promise(r => setTimeout(r, 10));
      }
    })();
    const captured = await source.capture(
      {
        machineRef: 'resource:default/unguarded',
        engine: 'primary',
        container: name,
      },
      { captureId },
    );
    watching = false;
    await watch;
    expect(captured.pausedMs).toBeGreaterThan(0);
    expect(await isPaused(container)).toBe(false);
    // It had a guard while paused, and that guard is gone.
    expect(seen.size).toBe(1);
    await until(
      'every guard gone',
      () => [...seen].every(pid => !alive(pid)),
      2_000,
      20,
    );
    expect(guardsOf(process.pid)).toEqual([]);
    await source.discard({
      captureId,
      artifact: captured.artifact,
      volumes: captured.runtime.volumes,
    });
  });
});
