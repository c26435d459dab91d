import type { RecoveryRun, RunStep } from './types';
import { isRunActive, timelineSteps } from './runTimeline';

type TimelineRun = Pick<RecoveryRun, 'status' | 'steps' | 'error'>;

const WEB = 'resource:default/web-01';
const booting: RunStep = {
  at: '2026-12-04T10:00:00.000Z',
  level: 'info',
  message: `Wave 1: booting ${WEB}`,
};
const tornDown: RunStep = {
  at: '2026-12-04T10:01:05.000Z',
  level: 'info',
  message: 'Lab torn down: removed 1 container, 1 network',
};

describe('timelineSteps', () => {
  it("says a machine's failure once, on the machine's line, and keeps the run's other errors", () => {
    const steps: RunStep[] = [
      booting,
      {
        at: '2026-12-04T10:01:00.000Z',
        machineRef: WEB,
        level: 'error',
        message: `${WEB} failed: no answer`,
      },
      {
        at: '2026-12-04T10:01:00.000Z',
        level: 'error',
        message: `${WEB} failed: no answer`,
      },
      {
        at: '2026-12-04T10:01:01.000Z',
        level: 'error',
        message: 'Teardown failed: engine gone',
      },
    ];
    const failed: TimelineRun = {
      status: 'failed',
      error: { machineRef: WEB, message: `${WEB} failed: no answer` },
      steps,
    };
    expect(timelineSteps(failed)).toEqual([steps[0], steps[1], steps[3]]);
    // Under way (its lab being torn down): the machine's line says it already.
    expect(
      timelineSteps({ status: 'running', steps: steps.slice(0, 3) }),
    ).toEqual([steps[0], steps[1]]);
  });

  it("leaves a run's failure as a whole to its outcome once the run has ended with it, and shows it while the run is still under way", () => {
    const failure: RunStep = {
      at: '2026-12-04T10:01:00.000Z',
      level: 'error',
      message: 'Lab network could not be created: subnet 10.1.0.0/24 overlaps',
    };
    const tearingDown: TimelineRun = {
      status: 'running',
      steps: [booting, failure],
    };
    expect(timelineSteps(tearingDown)).toEqual([booting, failure]);
    const failed: TimelineRun = {
      status: 'failed',
      error: { message: failure.message },
      steps: [booting, failure, tornDown],
    };
    expect(timelineSteps(failed)).toEqual([booting, tornDown]);
    // An interruption is said by the outcome too.
    const interruption: RunStep = {
      at: '2026-12-04T10:01:00.000Z',
      level: 'error',
      message: 'Interrupted: preempted by failover run-2',
    };
    expect(
      timelineSteps({
        status: 'failed',
        error: { message: interruption.message },
        steps: [booting, interruption],
      }),
    ).toEqual([booting]);
    // A run error its outcome does not say stays: this driver's, after another replica failed the run.
    const stopped: RunStep = {
      at: '2026-12-04T10:02:00.000Z',
      level: 'error',
      message: 'Stopped driving: the run was already finished elsewhere',
    };
    expect(
      timelineSteps({ ...failed, steps: [booting, failure, stopped] }),
    ).toEqual([booting, stopped]);
  });

  it("holds a run's errors back, with the steps after them, while the run is under way for a view that cannot take a line back, then shows those its outcome does not say", () => {
    const failure: RunStep = {
      at: '2026-12-04T10:01:00.000Z',
      level: 'error',
      message: 'Lab network could not be created: no room',
    };
    const warning: RunStep = {
      at: '2026-12-04T10:00:01.000Z',
      level: 'warning',
      message: 'The lab could not use production addresses',
    };
    const machineFailure: RunStep = {
      at: '2026-12-04T10:00:30.000Z',
      machineRef: WEB,
      level: 'error',
      message: `${WEB} failed: no answer`,
    };
    const appendOnly = { appendOnly: true };
    expect(
      timelineSteps(
        {
          status: 'running',
          steps: [booting, warning, machineFailure, failure],
        },
        appendOnly,
      ),
    ).toEqual([booting, warning, machineFailure]);
    expect(
      timelineSteps(
        {
          status: 'failed',
          error: { message: failure.message },
          steps: [booting, failure, tornDown],
        },
        appendOnly,
      ),
    ).toEqual([booting, tornDown]);
    // A failed teardown of a run that succeeded: held, with what came after it, until the end, then said in order.
    const teardownFailed: RunStep = {
      at: '2026-12-04T10:01:02.000Z',
      level: 'error',
      message: 'Teardown failed: engine gone',
    };
    const after: RunStep = {
      at: '2026-12-04T10:01:03.000Z',
      level: 'info',
      message: 'Lab left for the cleanup task',
    };
    expect(
      timelineSteps(
        { status: 'running', steps: [booting, teardownFailed, after] },
        appendOnly,
      ),
    ).toEqual([booting]);
    expect(
      timelineSteps(
        { status: 'succeeded', steps: [booting, teardownFailed, after] },
        appendOnly,
      ),
    ).toEqual([booting, teardownFailed, after]);
    // Without the option (the portal, which re-renders), shown as it comes.
    expect(
      timelineSteps({
        status: 'running',
        steps: [booting, teardownFailed, after],
      }),
    ).toEqual([booting, teardownFailed, after]);
  });
});

describe('isRunActive', () => {
  it('is true while a run is pending or running, false once it ended or where there is none', () => {
    expect(
      (['pending', 'running', 'succeeded', 'failed'] as const).map(status =>
        isRunActive({ status }),
      ),
    ).toEqual([true, true, false, false]);
    expect(isRunActive(undefined)).toBe(false);
  });
});
