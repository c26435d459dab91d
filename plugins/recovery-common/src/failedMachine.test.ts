import { failedMachine, INTERRUPTED_PREFIX, type RecoveryRun } from './types';

type Machines = RecoveryRun['machines'];
const machine = (
  machineRef: string,
  phase: Machines[number]['phase'],
  message?: string,
) => ({ machineRef, phase, ...(message && { message }) }) as Machines[number];

describe('failedMachine', () => {
  it('blames the machine the run error names', () => {
    const machines = [
      machine('resource:default/db-1', 'ready'),
      machine('resource:default/web-1', 'failed', 'probe http:80 failed'),
    ];
    expect(
      failedMachine({
        error: {
          message: 'probe http:80 failed',
          machineRef: 'resource:default/web-1',
        },
        machines,
      }),
    ).toBe('resource:default/web-1');
  });

  it('blames none for a run-wide error, though the host outage failed the machine it stopped with its words', () => {
    const outage =
      'hypervisor host recovery stopped answering while resource:default/web-1 was booting';
    const machines = [
      machine('resource:default/db-1', 'ready'),
      machine('resource:default/web-1', 'failed', outage),
    ];
    expect(
      failedMachine({ error: { message: outage }, machines }),
    ).toBeUndefined();
  });

  it('falls back, for a run without an error, to the first machine that failed on its own, not one interrupted', () => {
    const machines = [
      machine(
        'resource:default/db-1',
        'interrupted',
        `${INTERRUPTED_PREFIX}the backend is shutting down`,
      ),
      machine('resource:default/web-1', 'failed', 'exited 1'),
    ];
    expect(failedMachine({ machines })).toBe('resource:default/web-1');
  });
});
