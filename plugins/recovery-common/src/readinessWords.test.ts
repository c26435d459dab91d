import {
  READINESS_RISK_RANK,
  READINESS_STATUS_LABELS,
  runModeName,
  runStartedBy,
} from './readinessWords';
import type { ReadinessStatus } from './types';

describe('readiness words', () => {
  it('rank statuses most at risk first, each once', () => {
    const byRisk = (Object.keys(READINESS_RISK_RANK) as ReadinessStatus[]).sort(
      (a, b) => READINESS_RISK_RANK[a] - READINESS_RISK_RANK[b],
    );
    expect(byRisk).toEqual(['not-recoverable', 'at-risk', 'unknown', 'ready']);
    expect(new Set(Object.values(READINESS_RISK_RANK)).size).toBe(4);
  });

  it('word every status', () => {
    expect(READINESS_STATUS_LABELS).toEqual({
      ready: 'ready',
      'at-risk': 'at risk',
      'not-recoverable': 'not recoverable',
      unknown: 'unknown',
    });
  });

  it("say who started a run in one word for the scheduler's, as the portal and the CLI both do", () => {
    expect(runStartedBy({ trigger: 'schedule' })).toBe('scheduled');
    expect(
      runStartedBy({ trigger: 'user', createdBy: 'user:default/ada' }),
    ).toBe('user:default/ada');
    expect(
      runStartedBy(
        { trigger: 'user', createdBy: 'user:default/ada' },
        ref => ref.split('/')[1],
      ),
    ).toBe('ada');
    expect(runStartedBy({ trigger: 'user' })).toBe('a user');
    // `by` before a user only: the scheduler's reads `scheduled` in any sentence.
    expect(runStartedBy({ trigger: 'user' }, undefined, 'by ')).toBe(
      'by a user',
    );
    expect(runStartedBy({ trigger: 'schedule' }, undefined, 'by ')).toBe(
      'scheduled',
    );
  });

  it('call a run by its mode, capitalized to start a sentence', () => {
    expect(runModeName('test')).toBe('test recovery');
    expect(runModeName('failover')).toBe('failover');
    expect(runModeName('test', true)).toBe('Test recovery');
    expect(runModeName('failover', true)).toBe('Failover');
  });
});
