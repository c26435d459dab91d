import { mockServices } from '@backstage/backend-test-utils';
import { readTaskSchedule, scheduleDurationMs } from './schedules';

const fallback = { frequency: { minutes: 15 }, timeout: { minutes: 10 } };
const read = (schedule: unknown, minTimeoutMs?: number) =>
  readTaskSchedule(
    mockServices.rootConfig({ data: { task: schedule } as any }),
    'task',
    fallback,
    minTimeoutMs,
  );

describe('task schedules', () => {
  it('reads durations given as human durations or luxon Durations', () => {
    expect(scheduleDurationMs({ hours: 4 })).toBe(4 * 3_600_000);
    expect(scheduleDurationMs({ minutes: 1, seconds: 30 })).toBe(90_000);
    // ISO periods in config come back as luxon Durations.
    expect(
      scheduleDurationMs(
        read({ frequency: { minutes: 5 }, timeout: 'PT30S' }).timeout,
      ),
    ).toBe(30_000);
  });

  it('takes the fallback where config has none, and the config where it has one', () => {
    expect(readTaskSchedule(mockServices.rootConfig(), 'task', fallback)).toBe(
      fallback,
    );
    expect(
      read({ frequency: { cron: '0 * * * *' }, timeout: { minutes: 5 } }),
    ).toMatchObject({ frequency: { cron: '0 * * * *' } });
  });

  it('refuses a schedule that cannot work, naming the key, the field and the value', () => {
    expect(() =>
      read({ frequency: { minutes: 0 }, timeout: { minutes: 5 } }),
    ).toThrow(
      'Invalid schedule at task: frequency must be longer than zero, got {"minutes":0}',
    );
    expect(() =>
      read({ frequency: { minutes: 5 }, timeout: { seconds: -1 } }),
    ).toThrow(
      'Invalid schedule at task: timeout must be longer than zero, got {"seconds":-1}',
    );
    expect(() =>
      read({ frequency: { minutes: 5 }, timeout: { seconds: 30 } }, 30_000),
    ).toThrow('timeout must be longer than 30 s, got {"seconds":30}');
    expect(() =>
      read({
        frequency: { minutes: 5 },
        timeout: { minutes: 1 },
        initialDelay: { minutes: -1 },
      }),
    ).toThrow(
      'Invalid schedule at task: initialDelay must not be negative, got {"minutes":-1}',
    );
    expect(() => read({ frequency: { minutes: 5 } })).toThrow(
      /^Invalid schedule at task: .*timeout/,
    );
  });
});
