import { isJobMachine, shownMachinePhase } from './jobMachine';
import type { BootPlan } from './types';

const plan: Pick<BootPlan, 'machines'> = {
  machines: [
    {
      machineRef: 'resource:default/init-01',
      wave: 0,
      services: [],
      waitsFor: [],
      probes: [],
      job: true,
    },
    {
      machineRef: 'resource:default/db-01',
      wave: 1,
      services: [],
      waitsFor: ['resource:default/init-01'],
      probes: [],
    },
  ],
};

describe('job machines in words', () => {
  it('say a job the run counted ready completed; any other phase, and any other machine, as it is', () => {
    const init = 'resource:default/init-01';
    const db = 'resource:default/db-01';
    expect(isJobMachine(plan, init)).toBe(true);
    expect(isJobMachine(plan, db)).toBe(false);
    expect(shownMachinePhase(plan, { machineRef: init, phase: 'ready' })).toBe(
      'completed',
    );
    expect(
      shownMachinePhase(plan, { machineRef: init, phase: 'verifying' }),
    ).toBe('verifying');
    expect(shownMachinePhase(plan, { machineRef: db, phase: 'ready' })).toBe(
      'ready',
    );
    // A plan kept before jobs were says none.
    expect(
      shownMachinePhase(undefined, { machineRef: init, phase: 'ready' }),
    ).toBe('ready');
  });
});
