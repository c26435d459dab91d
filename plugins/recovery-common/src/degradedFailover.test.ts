import { downInFailover, downSince } from './degradedFailover';

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
