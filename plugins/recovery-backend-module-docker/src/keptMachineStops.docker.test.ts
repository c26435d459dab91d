import type Docker from 'dockerode';
import { PassThrough, type Readable } from 'node:stream';
import type { IncomingMessage } from 'node:http';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { DEMO_IMAGE, dockerFromHost } from '../../../demo/site';
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
    // The first connection answers (its Date the engine's), then nothing comes through it.
    let connections = 0;
    const deafFirst = Object.assign(Object.create(docker) as Docker, {
      getEvents: async (options: object) => {
        const stream = (await docker.getEvents(
          options,
        )) as unknown as IncomingMessage;
        if (connections++ > 0) return stream;
        stream.destroy();
        return Object.assign(new PassThrough(), {
          headers: stream.headers,
        }) as Readable;
      },
    });
    const stopped: string[] = [];
    let resumed = 0;
    const stop = followKeptMachineStops(
      deafFirst,
      id => stopped.push(id),
      () => resumed++,
      { idleReconnectMs: 1_500 },
    );
    try {
      await vi.waitFor(() => expect(connections).toBe(1));
      await machine.kill();
      await new Promise(resolve => setTimeout(resolve, 500));
      expect(stopped).toEqual([]); // the deaf connection

      await vi.waitFor(() => expect(stopped).toEqual([runId]), {
        timeout: 10_000,
        interval: 100,
      });
      expect(connections).toBeGreaterThanOrEqual(2);
      expect(resumed).toBe(0);
    } finally {
      stop();
    }
  });
});
