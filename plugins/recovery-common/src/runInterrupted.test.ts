import { interruptionCause, isRunInterrupted } from './runInterrupted';
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
});
