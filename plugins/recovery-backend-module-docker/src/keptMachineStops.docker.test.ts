import type Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { buildDemoImage, DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
import { followKeptMachineStops } from './keptMachineStops';
import { MACHINE_REF_LABEL } from './labNames';

// The watch of kept machines' stops on a real engine whose first connection goes deaf (as one a
// NAT dropped without a reset): the stop made meanwhile is heard once the watch opens it again.
const PRIMARY =
  process.env.RECOVERY_PRIMARY_DOCKER_HOST ??
  'unix:///run/recovery-docker/primary.sock';
const docker = dockerFromHost(PRIMARY);
const suffix = `${process.pid}-${Date.now().toString(36)}`;

const created: Docker.Container[] = [];
// Built here, not left to a file that happens to run first.
beforeAll(async () => {
  await buildDemoImage(docker);
});

afterAll(async () => {
  for (const c of created) await c.remove({ force: true }).catch(() => {});
});

describe('followKeptMachineStops on a real engine', () => {
  it('hears a stop its dead connection never delivered, once it opens it again since that one opened', async () => {
    const runId = `kept-stops-${suffix}`;
    const machine = await docker.createContainer({
      name: `kept-stops-${suffix}`,
      Image: DEMO_IMAGE,
      Cmd: ['sleep', '1000'],
      Labels: { [RUN_ID_LABEL]: runId, [MACHINE_REF_LABEL]: 'm' },
    });
    created.push(machine);
    await machine.start();
    // The first connection answers (its Date the engine's), then nothing comes through it; the
    // next opens only once the kill is made, so the stop can come by no other connection.
    let connections = 0;
    let killMade!: () => void;
    const killed = new Promise<void>(resolve => {
      killMade = resolve;
    });
    const deafFirst = Object.assign(Object.create(docker) as Docker, {
      getEvents: async (options: object) => {
        if (connections > 0) {
          await killed;
          connections++;
          return docker.getEvents(options);
        }
        const stream = (await docker.getEvents(
          options,
        )) as unknown as IncomingMessage;
        connections++;
        stream.destroy();
        return Object.assign(new PassThrough(), {
          headers: stream.headers,
        }) as Readable;
      },
    });
    // Each stop with the connection it came by: the deaf one (1) brings none.
    const stopped: Array<[string, number]> = [];
    let resumed = 0;
    const stop = followKeptMachineStops(
      deafFirst,
      id => stopped.push([id, connections]),
      () => resumed++,
      { idleReconnectMs: 5_000 },
    );
    try {
      await vi.waitFor(() => expect(connections).toBe(1), { timeout: 60_000 });
      await machine.kill();
      // Killed while only the deaf connection was open: the next must replay the stop.
      expect(connections).toBe(1);
      killMade();
      await vi.waitFor(
        () => expect(stopped.map(([id]) => id)).toEqual([runId]),
        {
          timeout: 30_000,
          interval: 100,
        },
      );
      expect(stopped[0][1]).toBeGreaterThanOrEqual(2);
      expect(resumed).toBe(0);
    } finally {
      killMade();
      stop();
    }
  });
});
