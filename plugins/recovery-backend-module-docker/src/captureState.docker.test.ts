import Docker from 'dockerode';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestDatabases } from '@backstage/backend-test-utils';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { buildDemoImage, DEMO_IMAGE } from '../../../demo/site';
import { CaptureStore } from '../../recovery-backend/src/database/CaptureStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import type { CaptureService } from '../../recovery-backend/src/service/CaptureService';
import { assessReadiness } from '../../recovery-backend/src/service/readiness';
import { DockerCaptureSource } from './DockerCaptureSource';
import { buildCaptureService } from './testing/captureService';
import { until } from './testing/until';

// A production machine that is not serving when captured, on the real primary engine: stopped
// (killed), running with a failing HEALTHCHECK, paused by someone else. Each is captured all the
// same, its state recorded with the capture, and readiness puts it at risk naming it.

const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
if (!PRIMARY.startsWith('unix://'))
  throw new Error(
    `these tests reach the primary engine on a unix socket, not ${PRIMARY}`,
  );
const primary = new Docker({ socketPath: PRIMARY.slice('unix://'.length) });
const suffix = Date.now().toString(36);
const store = mkdtempSync(join(tmpdir(), 'capture-state-store-'));
const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
const containers: string[] = [];
const source = new DockerCaptureSource('primary', primary, {
  storeDirectory: store,
});
let captures: CaptureService;
let captureStore: CaptureStore;

const ms = (n: number) => n * 1_000_000;

/** A machine of the busybox demo image, its health check `check` (a shell command) every 300 ms. */
async function machine(
  name: string,
  cmd: string[],
  check?: string,
): Promise<{ container: Docker.Container; locator: MachineLocator }> {
  containers.push(name);
  const container = await primary.createContainer({
    name,
    Image: DEMO_IMAGE,
    Cmd: cmd,
    HostConfig: { NetworkMode: 'none' },
    ...(check && {
      Healthcheck: {
        Test: ['CMD-SHELL', check],
        Interval: ms(300),
        Timeout: ms(2000),
        Retries: 1,
        StartPeriod: 0,
      },
    }),
  });
  await container.start();
  return {
    container,
    locator: {
      machineRef: `resource:default/${name}`,
      engine: 'primary',
      container: name,
    },
  };
}

const FOREVER = [
  'sh',
  '-c',
  'trap "exit 0" TERM; while :; do sleep 3600 & wait $!; done',
];

beforeAll(async () => {
  await buildDemoImage(primary);
  const knex = await databases.init('SQLITE_3');
  await migrate(knex);
  captureStore = new CaptureStore(knex);
  captures = buildCaptureService({
    store: captureStore,
    sources: [source],
    keepLast: 3,
  });
});

afterAll(async () => {
  for (const name of containers) {
    await primary
      .getContainer(name)
      .remove({ force: true })
      .catch(() => {});
    for (const image of await primary
      .listImages({ filters: { reference: [`recovery-capture/${name}`] } })
      .catch(() => [])) {
      for (const tag of image.RepoTags ?? [])
        await primary
          .getImage(tag)
          .remove()
          .catch(() => {});
    }
  }
  rmSync(store, { recursive: true, force: true });
});

describe('the state of a machine when captured, on the primary engine', () => {
  it('captures a killed machine, recording that it exited with code 137 and since when; readiness names it', async () => {
    const { container, locator } = await machine(`killed-${suffix}`, FOREVER);
    // As the kernel's OOM killer or a `docker kill` leaves it.
    await container.kill({ signal: 'SIGKILL' });
    await container.wait();
    const { State } = await container.inspect();
    expect(State.ExitCode).toBe(137);
    const capture = await captures.captureMachine(locator);
    expect(capture.machineState).toEqual({
      status: 'exited',
      exitCode: 137,
      restartCount: 0,
      since: State.FinishedAt,
    });
    expect(capture.pausedMs).toBe(0);
    const stored = (
      await captureStore.latestCaptures([locator.machineRef])
    ).get(locator.machineRef)!;
    expect(stored.machineState).toEqual(capture.machineState);
    const readiness = assessReadiness({
      entityRef: 'component:default/killed',
      ownMachines: [],
      problems: [],
      objectives: { rpoSeconds: 3600, rtoSeconds: 600 },
      captures: [
        { machineRef: locator.machineRef, latest: stored, ageSeconds: 1 },
      ],
      lastRun: undefined,
      maxTestAgeSeconds: 86_400,
    });
    expect(readiness.status).toBe('at-risk');
    expect(readiness.reasons).toContain(
      `${locator.machineRef} was exited (code 137, since ${State.FinishedAt}) when captured at ${capture.createdAt}: the capture holds a machine that was not serving; a recovery would restore it so, until a capture of it is taken while it runs and is not unhealthy`,
    );
  });

  it("captures a running machine whose HEALTHCHECK fails, recording it unhealthy with the check's last output; one that passes, healthy", async () => {
    const sick = await machine(
      `unhealthy-${suffix}`,
      FOREVER,
      'echo "db-01:5432: connection refused"; exit 1',
    );
    const well = await machine(`healthy-${suffix}`, FOREVER, 'true');
    await until(
      'the failing check said unhealthy',
      async () =>
        (await sick.container.inspect()).State.Health?.Status === 'unhealthy',
      30_000,
    );
    await until(
      'the passing check said healthy',
      async () =>
        (await well.container.inspect()).State.Health?.Status === 'healthy',
      30_000,
    );
    const { State } = await sick.container.inspect();
    const capture = await captures.captureMachine(sick.locator);
    expect(capture.machineState).toMatchObject({
      status: 'running',
      since: State.StartedAt,
      health: 'unhealthy',
      healthOutput: 'db-01:5432: connection refused',
    });
    expect(capture.machineState!.failingStreak).toBeGreaterThanOrEqual(1);
    // Paused for its copy, as any running machine: the pause is the capture's, not its state.
    expect(capture.pausedMs).toBeGreaterThan(0);
    expect(
      (await captureStore.listCaptures(sick.locator.machineRef, 1))[0]
        .machineState,
    ).toEqual(capture.machineState);
    expect((await captures.captureMachine(well.locator)).machineState).toEqual({
      status: 'running',
      restartCount: 0,
      since: expect.any(String),
      health: 'healthy',
    });
  });

  it('captures a crash-looping machine (restart always) between two of its runs, without a pause, recording it restarting', async () => {
    const name = `looping-${suffix}`;
    containers.push(name);
    const container = await primary.createContainer({
      name,
      Image: DEMO_IMAGE,
      Cmd: ['sh', '-c', 'exit 5'],
      HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'always' } },
    });
    await container.start();
    // A few runs in, the engine waits a second or more before the next: restarting, said running.
    const looping = await until(
      'four runs in, restarting',
      async () => {
        const info = await container.inspect();
        return info.State.Restarting && info.RestartCount >= 4
          ? info
          : undefined;
      },
      30_000,
    );
    expect(looping!.State.Running).toBe(true);
    // Between two runs all through the capture: restarting before and after, no restart between.
    // One of its runs may overlap it on a loaded engine: up between crashes (the next test's
    // case, no exit code), so taken again.
    const machineRef = `resource:default/${name}`;
    let capture: Awaited<ReturnType<typeof captures.captureMachine>>;
    for (let attempt = 1; ; attempt++) {
      const before = await container.inspect();
      capture = await captures.captureMachine({
        machineRef,
        engine: 'primary',
        container: name,
      });
      const after = await container.inspect();
      if (
        before.State.Restarting &&
        after.State.Restarting &&
        before.RestartCount === after.RestartCount
      )
        break;
      expect(attempt).toBeLessThan(5);
    }
    // The attempts taken again go, as retention would take them: only the last is kept.
    for (const taken of await captureStore.pruneCaptures(machineRef, 1))
      await source.discard({ captureId: taken.id, artifact: taken.artifact });
    expect(
      (await captureStore.listCaptures(machineRef, 10)).map(c => c.id),
    ).toEqual([capture.id]);
    expect(capture.machineState).toMatchObject({
      status: 'restarting',
      exitCode: 5,
    });
    expect(capture.pausedMs).toBe(0);
    expect((await container.inspect()).State.Paused).toBe(false);
  });

  it('captures a crash-looping machine caught up between two crashes as restarting, with the count and its last exit', async () => {
    const name = `up-looping-${suffix}`;
    containers.push(name);
    const container = await primary.createContainer({
      name,
      Image: DEMO_IMAGE,
      Cmd: ['sh', '-c', 'sleep 8; exit 1'],
      HostConfig: { NetworkMode: 'none', RestartPolicy: { Name: 'always' } },
    });
    await container.start();
    // Restarted by its policy once, and up again: Docker says running.
    const up = await until(
      'restarted once and up again',
      async () => {
        const info = await container.inspect();
        return info.RestartCount >= 1 && info.State.Status === 'running'
          ? info
          : undefined;
      },
      30_000,
    );
    const capture = await captures.captureMachine({
      machineRef: `resource:default/${name}`,
      engine: 'primary',
      container: name,
    });
    expect(capture.machineState).toEqual({
      status: 'restarting',
      restartCount: up!.RestartCount,
      since: up!.State.FinishedAt,
    });
  });

  it('captures a machine paused by someone else as it is, recording it paused, and leaves it paused', async () => {
    const { container, locator } = await machine(`paused-${suffix}`, FOREVER);
    await container.pause();
    const capture = await captures.captureMachine(locator);
    expect(capture.machineState).toMatchObject({ status: 'paused' });
    expect((await container.inspect()).State.Paused).toBe(true);
    await container.unpause();
  });
});
