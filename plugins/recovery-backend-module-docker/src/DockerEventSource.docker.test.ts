import type Docker from 'dockerode';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import { DockerEventSource } from './DockerEventSource';
import { sh } from './testing/exec';

// What a real engine sends for an operator's stops, a restart policy's loop, an OOM kill,
// pauses, execs and renames, through the event source as the backend runs it.
const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const primary = dockerFromHost(PRIMARY);
const suffix = `${process.pid}-${Date.now().toString(36)}`;
const MACHINE = 'recovery.backstage-recovery.io/machine';
const SERVICE = 'recovery.backstage-recovery.io/service';

const created: Docker.Container[] = [];
async function create(
  name: string,
  options: Partial<Docker.ContainerCreateOptions>,
): Promise<Docker.Container> {
  const c = await primary.createContainer({
    name: `evrev-${name}-${suffix}`,
    Image: DEMO_IMAGE,
    ...options,
  });
  created.push(c);
  return c;
}

// Built here, not left to a file that happens to run first.
beforeAll(async () => {
  await buildDemoImage(primary);
});

afterAll(async () => {
  for (const c of created) await c.remove({ force: true }).catch(() => {});
});

/** Waits for the engine's first `action` event of `c` since `since` (epoch seconds). */
async function engineEvent(
  c: Docker.Container,
  action: string,
  since: number,
): Promise<void> {
  const stream = (await primary.getEvents({
    since,
    filters: { container: [c.id], event: [action] },
  } as any)) as unknown as Readable;
  try {
    await once(stream, 'data', { signal: AbortSignal.timeout(60_000) });
  } finally {
    stream.destroy();
  }
}

/** Runs the source while `act` drives the engine, until `done` holds of what it delivered. */
async function collect(
  act: () => Promise<void>,
  done: (events: InitializationEvent[]) => boolean,
) {
  const events: InitializationEvent[] = [];
  const abort = new AbortController();
  const running = new DockerEventSource('primary', primary, {
    minBackoffMs: 200,
  }).start(async e => {
    events.push(...e);
  }, abort.signal);
  try {
    // No wait for its connection: it opens since 0, replaying what the engine holds of `act`.
    await act();
    const deadline = Date.now() + 15_000;
    while (!done(events) && Date.now() < deadline)
      await new Promise(r => setTimeout(r, 100));
  } finally {
    abort.abort();
    await running;
  }
  return events;
}

const of = (events: InitializationEvent[], machine: string) =>
  events.filter(e => e.machine === machine).map(e => `${e.service}:${e.type}`);

describe('DockerEventSource on a real engine', () => {
  it("takes an operator's stop, restart and kill for no failure, and pauses, execs and health checks for nothing", async () => {
    const machine = `evrev-ops-machine-${suffix}`;
    // `sleep` as PID 1 ignores SIGTERM: every stop ends in SIGKILL, exit 137.
    // A failing health check: health_status events, and its execs' exec_die with exit code 1.
    const c = await create('ops', {
      Cmd: ['sleep', '1000'],
      Labels: { [MACHINE]: machine, [SERVICE]: 'alpha, beta' },
      Healthcheck: {
        Test: ['CMD-SHELL', 'exit 1'],
        Interval: 100_000_000,
        Retries: 1,
      },
    });
    const events = await collect(
      async () => {
        await c.start();
        await c.stop({ t: 1 });
        await c.start();
        await c.restart({ t: 1 });
        await c.pause();
        await c.unpause();
        // Every check an exec: seconds apart on a loaded engine.
        const deadline = Date.now() + 60_000;
        while (
          (await c.inspect()).State.Health?.Status !== 'unhealthy' &&
          Date.now() < deadline
        )
          await new Promise(r => setTimeout(r, 100));
        expect((await c.inspect()).State.Health?.Status).toBe('unhealthy');
        // A failing exec, ended (not cut short by the kill) however slow the engine.
        expect((await sh(c, 'exit 5')).exitCode).toBe(5);
        await c.kill();
        await c.wait();
        expect((await c.inspect()).State.ExitCode).toBe(137);
        // The next event: all before it has come when it has.
        await c.start();
      },
      seen => of(seen, machine).length >= 8,
    );
    expect(of(events, machine)).toEqual(
      Array(4).fill(['alpha:start', 'beta:start']).flat(),
    );
  });

  it("takes a restart policy's loop and an OOM kill for failures, each start an initialization", async () => {
    const loop = await create('loop', {
      Cmd: ['sh', '-c', 'sleep 0.3; exit 3'],
      HostConfig: {
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 1 },
      },
    });
    // Debian's engine (Docker 20.10, containerd 1.6) misses an OOM kill that comes before its
    // start returned (containerd watches the memory cgroup only then), and keeps OOMKilled false
    // where it handles the exit before the OOM (both seen under load): the shell holds the hog
    // back until /go, and its exit (the hog's 137) until /exit, once the engine told the OOM.
    const oom = await create('oom', {
      Cmd: [
        'sh',
        '-c',
        'until [ -e /go ]; do sleep 0.05; done; tail /dev/zero; code=$?; until [ -e /exit ]; do sleep 0.05; done; exit $code',
      ],
      HostConfig: { Memory: 16 * 1024 * 1024, MemorySwap: 16 * 1024 * 1024 },
    });
    const loopName = `evrev-loop-${suffix}`;
    const oomName = `evrev-oom-${suffix}`;
    const events = await collect(
      async () => {
        await loop.start();
        const since = Math.floor(Date.now() / 1000);
        await oom.start();
        await sh(oom, 'touch /go');
        await engineEvent(oom, 'oom', since);
        await sh(oom, 'touch /exit');
        await oom.wait();
        const state = (await oom.inspect()).State;
        expect([state.OOMKilled, state.ExitCode]).toEqual([true, 137]);
      },
      seen => of(seen, loopName).length >= 4 && of(seen, oomName).length >= 2,
    );
    expect(of(events, loopName)).toEqual([
      `${loopName}:start`,
      `${loopName}:failure`,
      `${loopName}:start`,
      `${loopName}:failure`,
    ]);
    expect(of(events, oomName)).toEqual([
      `${oomName}:start`,
      `${oomName}:failure`,
    ]);
  });

  it('names an unlabelled machine by its name at the time of each event: a rename starts another history', async () => {
    const c = await create('old', { Cmd: ['sleep', '1000'] });
    const oldName = `evrev-old-${suffix}`;
    const newName = `evrev-new-${suffix}`;
    const events = await collect(
      async () => {
        await c.start();
        await c.rename({ name: newName });
        await c.restart({ t: 0 });
      },
      seen => of(seen, newName).length >= 1,
    );
    expect([...of(events, oldName), ...of(events, newName)]).toEqual([
      `${oldName}:start`,
      `${newName}:start`,
    ]);
  });
});
