import { machineStateOf, RESTART_LOOP_WINDOW_MS } from './machineState';

const ZERO = '0001-01-01T00:00:00Z';

describe('machineStateOf', () => {
  it('records a running machine with its start, and its health check where it has one', () => {
    const running = {
      Status: 'running',
      Running: true,
      Paused: false,
      Restarting: false,
      OOMKilled: false,
      Dead: false,
      ExitCode: 0,
      StartedAt: '2026-12-06T00:00:00.1Z',
      FinishedAt: ZERO,
    };
    expect(machineStateOf(running)).toEqual({
      status: 'running',
      since: '2026-12-06T00:00:00.1Z',
    });
    expect(
      machineStateOf({
        ...running,
        Health: {
          Status: 'healthy',
          FailingStreak: 0,
          Log: [{ ExitCode: 0, Output: 'ok' }],
        },
      }),
    ).toEqual({
      status: 'running',
      since: '2026-12-06T00:00:00.1Z',
      health: 'healthy',
    });
  });

  it('records an unhealthy machine with its failing streak and the last failing output, on one line and trimmed', () => {
    const long = `wget: can't connect\n  to remote host (127.0.0.1): Connection refused ${'x'.repeat(400)}`;
    const state = machineStateOf({
      Status: 'running',
      Running: true,
      StartedAt: '2026-12-06T00:00:00Z',
      Health: {
        Status: 'unhealthy',
        FailingStreak: 3,
        Log: [
          { ExitCode: 1, Output: long },
          { ExitCode: 1, Output: 'older' },
        ].reverse(),
      },
    });
    expect(state).toMatchObject({
      status: 'running',
      health: 'unhealthy',
      failingStreak: 3,
    });
    expect(state!.healthOutput).toMatch(
      /^wget: can't connect to remote host \(127\.0\.0\.1\): Connection refused x+…$/,
    );
    expect(state!.healthOutput).toHaveLength(200);
    // Still starting after a failure: that failure said.
    expect(
      machineStateOf({
        Status: 'running',
        Running: true,
        Health: {
          Status: 'starting',
          FailingStreak: 1,
          Log: [{ ExitCode: 1, Output: 'not yet\n' }],
        },
      }),
    ).toEqual({
      status: 'running',
      health: 'starting',
      failingStreak: 1,
      healthOutput: 'not yet',
    });
  });

  it('records a stopped machine with its exit code, whether memory ran out, and since when; not its stale health', () => {
    expect(
      machineStateOf({
        Status: 'exited',
        Running: false,
        OOMKilled: true,
        ExitCode: 137,
        StartedAt: '2026-12-06T00:00:00Z',
        FinishedAt: '2026-12-06T01:00:00.5Z',
        Health: {
          Status: 'unhealthy',
          FailingStreak: 9,
          Log: [{ ExitCode: 1, Output: 'down' }],
        },
      }),
    ).toEqual({
      status: 'exited',
      exitCode: 137,
      oomKilled: true,
      since: '2026-12-06T01:00:00.5Z',
    });
    expect(
      machineStateOf({
        Status: 'restarting',
        Restarting: true,
        Running: true,
        ExitCode: 1,
        FinishedAt: '2026-12-06T01:00:00Z',
      }),
    ).toEqual({
      status: 'restarting',
      exitCode: 1,
      since: '2026-12-06T01:00:00Z',
    });
    // Never started: no code, no time.
    expect(
      machineStateOf({
        Status: 'created',
        ExitCode: 0,
        StartedAt: ZERO,
        FinishedAt: ZERO,
      }),
    ).toEqual({ status: 'created' });
  });

  it('records a crash loop caught up between two crashes as restarting, with the count and its last exit', () => {
    // `--restart always sh -c 'httpd; sleep 3; exit 1'`, inspected in its 3 s up: Docker says running.
    const up = {
      Status: 'running',
      Running: true,
      Restarting: false,
      ExitCode: 0,
      StartedAt: '2026-12-06T01:00:00.123456789Z',
      FinishedAt: '2026-12-06T00:59:58.5Z',
      Health: { Status: 'starting' },
    };
    const lookedAt = Date.parse('2026-12-06T01:00:02Z');
    expect(machineStateOf(up, 12, lookedAt)).toEqual({
      status: 'restarting',
      restartCount: 12,
      since: '2026-12-06T00:59:58.5Z',
    });
    // Up longer than the window since its policy last restarted it: running, as it serves, its
    // count kept all the same (the next capture tells how many times it restarted since).
    expect(machineStateOf(up, 12, lookedAt + RESTART_LOOP_WINDOW_MS)).toEqual({
      status: 'running',
      restartCount: 12,
      since: up.StartedAt,
      health: 'starting',
    });
    // Just started, never restarted by its policy (a deploy, `docker restart`): running.
    expect(machineStateOf(up, 0, lookedAt)).toMatchObject({
      status: 'running',
    });
    // Found restarting: the count said with its exit code.
    expect(
      machineStateOf(
        {
          Status: 'restarting',
          Restarting: true,
          Running: true,
          ExitCode: 1,
          FinishedAt: '2026-12-06T01:00:00Z',
        },
        3,
      ),
    ).toEqual({
      status: 'restarting',
      restartCount: 3,
      exitCode: 1,
      since: '2026-12-06T01:00:00Z',
    });
  });

  it('records a machine paused by someone else as paused, with its start', () => {
    expect(
      machineStateOf({
        Status: 'paused',
        Running: true,
        Paused: true,
        StartedAt: '2026-12-06T00:00:00Z',
        FinishedAt: ZERO,
      }),
    ).toEqual({
      status: 'paused',
      since: '2026-12-06T00:00:00Z',
    });
  });

  it('reads the flags of an engine that says no Status, and nothing of one that says no State', () => {
    expect(
      machineStateOf({
        Running: true,
        Paused: true,
        StartedAt: '2026-12-06T00:00:00Z',
      }),
    ).toMatchObject({ status: 'paused' });
    expect(
      machineStateOf({
        Running: false,
        ExitCode: 2,
        StartedAt: '2026-12-06T00:00:00Z',
        FinishedAt: '2026-12-06T00:00:01Z',
      }),
    ).toEqual({
      status: 'exited',
      exitCode: 2,
      since: '2026-12-06T00:00:01Z',
    });
    expect(machineStateOf(undefined)).toBeUndefined();
    expect(machineStateOf({})).toBeUndefined();
  });
});
