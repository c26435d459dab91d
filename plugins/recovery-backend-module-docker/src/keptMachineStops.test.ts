import type Docker from 'dockerode';
import { PassThrough } from 'node:stream';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { followKeptMachineStops } from './keptMachineStops';
import { MACHINE_REF_LABEL, PROBE_LABEL } from './labNames';

/** An engine whose event streams the test writes to, one per connection, answered at `dates`. */
function engine(dates: string[] = []) {
  const streams: PassThrough[] = [];
  const asked: unknown[] = [];
  const docker = {
    getEvents: async (options: unknown) => {
      asked.push(options);
      const stream = Object.assign(new PassThrough(), {
        headers: { date: dates[streams.length] },
      });
      streams.push(stream);
      return stream;
    },
  } as unknown as Docker;
  return { docker, streams, asked };
}

/** Each stop at its own time, as the engine stamps it, unless `nano` says when. */
let stamped = 1_700_000_000e9;
const die = (labels: Record<string, string>, nano = (stamped += 1e6)) =>
  `${JSON.stringify({ Type: 'container', Action: 'die', time: Math.floor(nano / 1e9), timeNano: nano, Actor: { ID: 'c1', Attributes: { ...labels, exitCode: '137' } } })}\n`;

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

  it('opens a silent connection again since it was last known alive: a stop it never delivered is heard, none told twice, no resume told', async () => {
    const opened = 1_800_000_000; // the engine's clock, behind the backend's
    const { docker, streams, asked } = engine([
      new Date(opened * 1000).toUTCString(),
      new Date((opened + 20) * 1000).toUTCString(),
    ]);
    const stopped: string[] = [];
    let resumed = 0;
    const stop = followKeptMachineStops(
      docker,
      runId => stopped.push(runId),
      () => resumed++,
      { minBackoffMs: 1, maxBackoffMs: 1, idleReconnectMs: 100 },
    );
    await vi.waitFor(() => expect(streams).toHaveLength(1));
    expect(asked[0]).not.toHaveProperty('since');
    const a = die(
      { [RUN_ID_LABEL]: 'failover-a', [MACHINE_REF_LABEL]: 'm' },
      (opened + 2) * 1e9,
    );
    streams[0].write(a);
    await vi.waitFor(() => expect(stopped).toEqual(['failover-a']));

    // Then silence, the connection dead without a reset (a NAT dropped it): opened again, from
    // the second of its newest stop.
    await vi.waitFor(() => expect(streams).toHaveLength(2), { timeout: 2000 });
    expect(streams[0].destroyed).toBe(true);
    expect(asked[1]).toMatchObject({ since: opened + 2 });
    // The engine replays from there: the stop told already, and one the dead connection never
    // delivered.
    streams[1].write(a);
    streams[1].write(
      die(
        { [RUN_ID_LABEL]: 'failover-b', [MACHINE_REF_LABEL]: 'm' },
        (opened + 9) * 1e9,
      ),
    );
    await vi.waitFor(() =>
      expect(stopped).toEqual(['failover-a', 'failover-b']),
    );

    // Silent again: from that connection's opening, by the engine's clock (its Date).
    await vi.waitFor(() => expect(streams).toHaveLength(3), { timeout: 2000 });
    expect(asked[2]).toMatchObject({ since: opened + 20 });
    expect(stopped).toEqual(['failover-a', 'failover-b']);
    // Nothing went unheard: the supervision need not look at every failover.
    expect(resumed).toBe(0);
    stop();
    await vi.waitFor(() => expect(streams[2].destroyed).toBe(true));
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
