import { readRecoverySignal, recoverySignalChannel } from './signals';

describe('recovery signals', () => {
  it("names an entity's channel whatever the case of its ref, as refs compare", () => {
    expect(recoverySignalChannel('Component:default/Web')).toBe(
      recoverySignalChannel('component:default/web'),
    );
    expect(recoverySignalChannel('component:default/web')).toBe(
      'recovery:entity:component:default/web',
    );
  });

  it('reads a run or capture request signal, and nothing else that comes on the channel', () => {
    expect(readRecoverySignal({ kind: 'run', id: 'r1' })).toEqual({
      kind: 'run',
      id: 'r1',
    });
    expect(
      readRecoverySignal({ kind: 'captureRequest', id: 'q1', extra: 1 }),
    ).toEqual({ kind: 'captureRequest', id: 'q1' });
    for (const other of [
      null,
      'run',
      { kind: 'run' },
      { kind: 'notice', id: 'n1' },
      { kind: 'run', id: 7 },
    ])
      expect(readRecoverySignal(other)).toBeUndefined();
  });
});
