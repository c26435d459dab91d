import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { followKeptMachineStops } from './keptMachineStops';
import { MACHINE_REF_LABEL, PROBE_LABEL } from './labNames';

/** An engine whose event streams the test writes to, one per connection. */
function engine() {
  const streams: PassThrough[] = [];
  const asked: unknown[] = [];
  const docker = {
    getEvents: async (options: unknown) => {
      asked.push(options);
      const stream = new PassThrough();
      streams.push(stream);
      return stream;
    },
  } as unknown as Docker;
  return { docker, streams, asked };
}

const die = (labels: Record<string, string>) =>
  `${JSON.stringify({ Type: 'container', Action: 'die', Actor: { ID: 'c1', Attributes: { ...labels, exitCode: '137' } } })}\n`;

describe('followKeptMachineStops', () => {
  it("tells the run of each kept machine's die, not a probe's; tells of the stream coming back after a break", async () => {
    const { docker, streams, asked } = engine();
    const stopped: string[] = [];
    let resumed = 0;
    const stop = followKeptMachineStops(
      docker,
      runId => stopped.push(runId),
      () => resumed++,
      { minBackoffMs: 1, maxBackoffMs: 1 },
    );
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    expect(asked[0]).toEqual({
      filters: {
        type: ['container'],
        event: ['die'],
        label: [RUN_ID_LABEL, MACHINE_REF_LABEL],
      },
    });
    streams[0].write(
      die({ [RUN_ID_LABEL]: 'failover-a', [MACHINE_REF_LABEL]: 'm' }),
    );
    streams[0].write(
      die({ [RUN_ID_LABEL]: 'failover-a', [PROBE_LABEL]: 'true' }),
    );
    streams[0].write('not json\n');
    await vi.waitFor(() => expect(stopped).toEqual(['failover-a']));
    expect(resumed).toBe(0);

    // The engine restarted: its stream ends; the next connection is told as a resume.
    streams[0].end();
    await vi.waitFor(() => expect(streams).toHaveLength(2));
    await vi.waitFor(() => expect(resumed).toBe(1));
    streams[1].write(
      die({ [RUN_ID_LABEL]: 'failover-b', [MACHINE_REF_LABEL]: 'm' }),
    );
    await vi.waitFor(() =>
      expect(stopped).toEqual(['failover-a', 'failover-b']),
    );

    stop();
    await vi.waitFor(() => expect(streams[1].destroyed).toBe(true));
  });

  it('tells of a resume where the engine could not be reached at first: stops then went unheard', async () => {
    const { docker, streams } = engine();
    const open = docker.getEvents.bind(docker);
    let calls = 0;
    docker.getEvents = (async (options: unknown) => {
      if (calls++ === 0) throw new Error('connect ENOENT /run/docker.sock');
      return open(options as never);
    }) as never;
    let resumed = 0;
    const stop = followKeptMachineStops(
      docker,
      () => {},
      () => resumed++,
      { minBackoffMs: 1, maxBackoffMs: 1 },
    );
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    await vi.waitFor(() => expect(resumed).toBe(1));
    stop();
  });
});
