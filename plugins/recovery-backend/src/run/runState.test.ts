import {
  ACTIVE_RUN_STATUSES,
  assertMachineTransition,
  assertRunTransition,
  isFinalMachinePhase,
  isTerminalRunStatus,
  measuredRtoSeconds,
  reachedStatus,
  unfinishedMachinePhase,
} from './runState';

describe('run state machine', () => {
  it('allows the forward path of a run and of a machine', () => {
    expect(() => assertRunTransition('pending', 'running')).not.toThrow();
    expect(() => assertRunTransition('running', 'succeeded')).not.toThrow();
    for (const [from, to] of [
      ['waiting', 'restoring'],
      ['restoring', 'starting'],
      ['starting', 'verifying'],
      ['verifying', 'ready'],
      ['verifying', 'failed'],
    ] as const) {
      expect(() => assertMachineTransition('m', from, to)).not.toThrow();
    }
  });

  it('refuses to leave a final state or to skip a gate', () => {
    expect(() => assertRunTransition('succeeded', 'running')).toThrow(
      'A run cannot go from succeeded to running',
    );
    expect(() => assertRunTransition('pending', 'succeeded')).toThrow();
    expect(() =>
      assertMachineTransition('resource:web-01', 'starting', 'ready'),
    ).toThrow('Machine resource:web-01 cannot go from starting to ready');
    expect(() => assertMachineTransition('m', 'ready', 'failed')).toThrow();
    // Only the run's final check fails a machine that was ready, and only as failed.
    expect(() =>
      assertMachineTransition('m', 'ready', 'failed', true),
    ).not.toThrow();
    expect(() =>
      assertMachineTransition('m', 'ready', 'skipped', true),
    ).toThrow();
    expect(isFinalMachinePhase('ready')).toBe(true);
    expect(isTerminalRunStatus('failed')).toBe(true);
    expect(isTerminalRunStatus('running')).toBe(false);
  });

  it('ends a run interrupted from pending or running, for good: a finished status apart from failed', () => {
    for (const from of ['pending', 'running'] as const)
      expect(() => assertRunTransition(from, 'interrupted')).not.toThrow();
    for (const to of ['running', 'failed', 'succeeded'] as const)
      expect(() => assertRunTransition('interrupted', to)).toThrow(
        `A run cannot go from interrupted to ${to}`,
      );
    expect(() => assertRunTransition('failed', 'interrupted')).toThrow();
    expect(isTerminalRunStatus('interrupted')).toBe(true);
    // It holds no host.
    expect(ACTIVE_RUN_STATUSES).toEqual(['pending', 'running']);
    expect(reachedStatus('interrupted')).toBe('been interrupted');
    expect(reachedStatus('failed')).toBe('failed');
  });

  it('skips only a machine the run never started, and for good', () => {
    expect(() =>
      assertMachineTransition('m', 'waiting', 'skipped'),
    ).not.toThrow();
    expect(() => assertMachineTransition('m', 'restoring', 'skipped')).toThrow(
      'Machine m cannot go from restoring to skipped',
    );
    expect(() =>
      assertMachineTransition('m', 'skipped', 'restoring'),
    ).toThrow();
    expect(isFinalMachinePhase('skipped')).toBe(true);
    expect(isFinalMachinePhase('waiting')).toBe(false);
  });

  it('interrupts only a machine in progress, for good: a phase of its own, apart from failed', () => {
    for (const from of ['restoring', 'starting', 'verifying'] as const)
      expect(() =>
        assertMachineTransition('m', from, 'interrupted'),
      ).not.toThrow();
    // One never started is skipped; one ready stays ready.
    for (const from of ['waiting', 'ready', 'failed'] as const)
      expect(() => assertMachineTransition('m', from, 'interrupted')).toThrow(
        `Machine m cannot go from ${from} to interrupted`,
      );
    expect(() =>
      assertMachineTransition('m', 'interrupted', 'failed'),
    ).toThrow();
    expect(isFinalMachinePhase('interrupted')).toBe(true);
    expect(unfinishedMachinePhase('interrupted')).toBe('interrupted');
    expect(unfinishedMachinePhase('failed')).toBe('failed');
  });

  it('measures RTO from the first restore to the last machine ready', () => {
    expect(
      measuredRtoSeconds([
        {
          restoreStartedAt: '2026-01-01T00:00:00.000Z',
          readyAt: '2026-01-01T00:00:05.000Z',
        },
        {
          restoreStartedAt: '2026-01-01T00:00:05.500Z',
          readyAt: '2026-01-01T00:00:12.250Z',
        },
      ]),
    ).toBe(12.25);
    expect(
      measuredRtoSeconds([{ restoreStartedAt: '2026-01-01T00:00:00.000Z' }]),
    ).toBeUndefined();
    expect(measuredRtoSeconds([], '2026-01-01T00:00:00.000Z')).toBeUndefined();
  });

  it('counts the creation of the lab into RTO, unless a restore came before it (a resumed run)', () => {
    const machines = [
      {
        restoreStartedAt: '2026-01-01T00:00:01.000Z',
        readyAt: '2026-01-01T00:00:05.000Z',
      },
    ];
    expect(measuredRtoSeconds(machines, '2026-01-01T00:00:00.400Z')).toBe(4.6);
    expect(measuredRtoSeconds(machines, '2026-01-01T00:00:03.000Z')).toBe(4);
    expect(measuredRtoSeconds([])).toBeUndefined();
  });
});
