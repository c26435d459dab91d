import {
  cancellerIn,
  interruptedRunWords,
  interruptionCause,
  isRunInterrupted,
} from './runInterrupted';
import { INTERRUPTED_PREFIX } from './types';

describe('isRunInterrupted', () => {
  it('takes a run as interrupted by its status alone, never by its words', () => {
    const error = {
      message: `${INTERRUPTED_PREFIX}the backend is shutting down`,
    };
    const interrupted = { status: 'interrupted' as const, error };
    // A failure whose words start as an interruption's (a host's own) is a failed recovery.
    const failed = { status: 'failed' as const, error };
    expect(isRunInterrupted(interrupted)).toBe(true);
    expect(isRunInterrupted(failed)).toBe(false);
    for (const status of ['pending', 'running', 'succeeded', 'failed'] as const)
      expect(isRunInterrupted({ status })).toBe(false);
  });

  it('says why an interrupted run stopped without the prefix its message starts with', () => {
    expect(
      interruptionCause({
        error: { message: `${INTERRUPTED_PREFIX}preempted by failover run-7` },
      }),
    ).toBe('preempted by failover run-7');
    expect(interruptionCause({})).toBe('interrupted');
  });

  it('says a run someone cancelled as cancelled by them, any other interruption by its cause', () => {
    expect(
      interruptedRunWords({
        error: {
          message: `${INTERRUPTED_PREFIX}cancelled by user:default/dr at 2026-12-07T01:00:00.000Z; the backend driving this run stopped`,
          cancelledBy: 'user:default/dr',
        },
      }),
    ).toBe('cancelled by user:default/dr');
    expect(
      interruptedRunWords({
        error: { message: `${INTERRUPTED_PREFIX}preempted by failover run-7` },
      }),
    ).toBe('interrupted: preempted by failover run-7');
    expect(interruptedRunWords({})).toBe('interrupted');
  });
});

describe('cancellerIn', () => {
  it('reads back who the words of interruptedRunWords say cancelled the run, the ref as written, wherever the words stand', () => {
    for (const cancelledBy of [
      'user:default/jane',
      'user:ops/first.last',
      'User:Default/Jane',
      'user:jane',
    ]) {
      const words = interruptedRunWords({
        error: { message: `${INTERRUPTED_PREFIX}cancelled`, cancelledBy },
      });
      expect(
        cancellerIn(
          `run r9 ${words} (not started again; a cancelled run counts for no one)`,
        ),
      ).toBe(cancelledBy);
      expect(cancellerIn(`run r7 of component:default/shop ${words}.`)).toBe(
        cancelledBy,
      );
    }
    expect(
      cancellerIn(
        `run r9 ${interruptedRunWords({ error: { message: `${INTERRUPTED_PREFIX}the backend is shutting down` } })}`,
      ),
    ).toBeUndefined();
  });
});
