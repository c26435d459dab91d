import {
  describeMachineState,
  machineNotServing,
  machineStateWorthSaying,
  notServingWhenCaptured,
  trimHealthOutput,
} from './machineState';

describe('a machine state when captured', () => {
  it('is not serving when anything but running, or running unhealthy; unknown says nothing', () => {
    expect(machineNotServing({ status: 'running' })).toBe(false);
    expect(machineNotServing({ status: 'running', health: 'healthy' })).toBe(
      false,
    );
    expect(machineNotServing({ status: 'running', health: 'starting' })).toBe(
      false,
    );
    expect(machineNotServing({ status: 'running', health: 'unhealthy' })).toBe(
      true,
    );
    for (const status of [
      'paused',
      'exited',
      'restarting',
      'created',
      'dead',
      'removing',
    ] as const)
      expect(machineNotServing({ status })).toBe(true);
    expect(machineNotServing(undefined)).toBe(false);
    // A health check not decided yet is said, but not taken for a machine not serving.
    expect(
      machineStateWorthSaying({ status: 'running', health: 'starting' }),
    ).toBe(true);
    expect(
      machineStateWorthSaying({ status: 'running', health: 'healthy' }),
    ).toBe(false);
    expect(machineStateWorthSaying(undefined)).toBe(false);
  });

  it('says the state in words: code, since when, memory, health and its last failing output', () => {
    expect(
      describeMachineState({
        status: 'exited',
        exitCode: 137,
        oomKilled: true,
        since: '2026-12-06T01:00:00Z',
      }),
    ).toBe(
      'exited (code 137, killed for want of memory, since 2026-12-06T01:00:00Z)',
    );
    expect(
      describeMachineState({
        status: 'restarting',
        exitCode: 1,
        since: '2026-12-06T01:00:00Z',
      }),
    ).toBe('restarting (last exit code 1, last exited 2026-12-06T01:00:00Z)');
    // The count its restart policy kept: a crash loop says so.
    expect(
      describeMachineState({
        status: 'restarting',
        restartCount: 12,
        since: '2026-12-06T01:00:00Z',
      }),
    ).toBe(
      'restarting repeatedly (restarted 12 times by its restart policy, last exited 2026-12-06T01:00:00Z)',
    );
    expect(
      describeMachineState({ status: 'restarting', restartCount: 1 }),
    ).toBe('restarting (restarted once by its restart policy)');
    expect(
      describeMachineState({
        status: 'running',
        health: 'unhealthy',
        failingStreak: 1,
        healthOutput: 'refused',
      }),
    ).toBe(
      'running but unhealthy (1 failing health check in a row; the last said: "refused")',
    );
    expect(
      describeMachineState({ status: 'running', health: 'starting' }),
    ).toBe('running, its health check not passed yet');
    expect(
      describeMachineState({ status: 'paused', since: '2026-12-06T01:00:00Z' }),
    ).toBe('paused by someone else');
    expect(describeMachineState({ status: 'created' })).toBe(
      'created but never started',
    );
    expect(describeMachineState({ status: 'running' })).toBe('running');
  });

  it('words a capture of a machine not serving, naming machine, state and time; nothing for one serving', () => {
    const capture = {
      machineRef: 'resource:default/web-01',
      createdAt: '2026-12-06T01:02:03.000Z',
    };
    expect(
      notServingWhenCaptured({
        ...capture,
        machineState: { status: 'exited', exitCode: 137 },
      }),
    ).toBe(
      'resource:default/web-01 was exited (code 137) when captured at 2026-12-06T01:02:03.000Z: the capture holds a machine that was not serving',
    );
    expect(
      notServingWhenCaptured({
        ...capture,
        machineState: { status: 'running', health: 'healthy' },
      }),
    ).toBeUndefined();
    expect(notServingWhenCaptured(capture)).toBeUndefined();
  });

  it('keeps a health check output on one line, trimmed', () => {
    expect(trimHealthOutput('  a\n\tb  ')).toBe('a b');
    const trimmed = trimHealthOutput('y'.repeat(500));
    expect(trimmed).toHaveLength(200);
    expect(trimmed.endsWith('…')).toBe(true);
  });
});
