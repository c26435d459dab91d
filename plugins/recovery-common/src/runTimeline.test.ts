import type { RunStep } from './types';
import { isRunActive, timelineSteps } from './runTimeline';

describe('timelineSteps', () => {
  it("says a machine's failure once, on the machine's line, and keeps the run's other errors", () => {
    const steps: RunStep[] = [
      { at: '2026-12-04T10:00:00.000Z', level: 'info', message: 'Wave 1: booting resource:default/web-01' },
      { at: '2026-12-04T10:01:00.000Z', machineRef: 'resource:default/web-01', level: 'error', message: 'resource:default/web-01 failed: no answer' },
      { at: '2026-12-04T10:01:00.000Z', level: 'error', message: 'resource:default/web-01 failed: no answer' },
      { at: '2026-12-04T10:01:01.000Z', level: 'error', message: 'Lab teardown failed: engine gone' },
    ];
    expect(timelineSteps(steps)).toEqual([steps[0], steps[1], steps[3]]);
  });
});

describe('isRunActive', () => {
  it('is true while a run is pending or running, false once it ended or where there is none', () => {
    expect((['pending', 'running', 'succeeded', 'failed'] as const).map(status => isRunActive({ status }))).toEqual([true, true, false, false]);
    expect(isRunActive(undefined)).toBe(false);
  });
});
