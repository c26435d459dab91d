import {
  downInFailover,
  downSince,
  withoutNetworkSince,
} from './degradedFailover';

describe('downSince', () => {
  const since = '2026-11-02T09:00:00.000Z';

  it("says 'down since' the host's stop time, 'noticed down at' the time supervision found it stopped", () => {
    expect(downSince({ since, sinceIs: 'stopped' })).toBe(
      `down since ${since}`,
    );
    expect(downSince({ since, sinceIs: 'noticed' })).toBe(
      `noticed down at ${since}`,
    );
    expect(downSince({ since, sinceIs: 'noticed' }, '09:00 UTC')).toBe(
      'noticed down at 09:00 UTC',
    );
  });

  it("says 'down since' for a failover degraded before what the time is was kept", () => {
    expect(downSince({ since })).toBe(`down since ${since}`);
  });
});

describe('downInFailover', () => {
  it('names the machine that could not be brought back, then those waiting for it', () => {
    expect(
      downInFailover({
        supervision: {
          restarts: 1,
          lastRestartAt: '2026-11-02T09:00:00.000Z',
          degraded: {
            since: '2026-11-02T09:00:00.000Z',
            machineRef: 'db',
            message: 'stopped with exit code 3',
            notStarted: ['web'],
          },
        },
      }),
    ).toEqual(['db', 'web']);
    expect(downInFailover({})).toEqual([]);
  });
});

describe('a degraded failover with machines left running without network', () => {
  const since = '2026-11-02T09:00:00.000Z';
  const degraded = {
    since,
    machineRef: 'data',
    message: 'stopped with exit code 3',
    withoutNetwork: [
      { machineRef: 'sidecar', of: 'data', since },
      { machineRef: 'agent', of: 'sidecar', since },
    ],
  };

  it('counts them down with the machine whose namespace they share', () => {
    expect(
      downInFailover({
        supervision: { restarts: 1, lastRestartAt: since, degraded },
      }),
    ).toEqual(['data', 'sidecar', 'agent']);
  });

  it("says since when each runs without network, and that its namespace's owner stopped (or is without network too)", () => {
    const [sidecar, agent] = degraded.withoutNetwork;
    expect(withoutNetworkSince(sidecar, degraded)).toBe(
      `sidecar running without network since ${since}, its namespace's owner data stopped`,
    );
    expect(
      withoutNetworkSince(agent, degraded, '09:00 UTC', ref => `<${ref}>`),
    ).toBe(
      "<agent> running without network since 09:00 UTC, its namespace's owner <sidecar> without network too",
    );
  });

  it("says its namespace's owner was restarted outside supervision, not that it stopped: it runs", () => {
    const left = {
      machineRef: 'sidecar',
      of: 'data',
      since,
      ownerRestarted: true,
    };
    expect(withoutNetworkSince(left, { withoutNetwork: [left] })).toBe(
      `sidecar running without network since ${since}, its namespace's owner data was restarted outside supervision`,
    );
  });
});
