/**
 * Schedules in config that cannot work stop the backend at start, naming the key, under the
 * scheduler a backend really runs (it reads a cron only as it stores the task).
 */
import { schedulerServiceFactory } from '@backstage/backend-defaults/scheduler';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { JsonObject } from '@backstage/types';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryPlugin } from '../../recovery-backend/src/plugin';
import { recoveryModuleScheduler } from './module';

/**
 * What starting the module (with the plugin it schedules its tasks through) with `schedules` under
 * `recovery.schedules` ends with: its error, or 'started'.
 */
async function start(schedules: JsonObject): Promise<string> {
  return startTestBackend({
    features: [
      recoveryPlugin,
      recoveryModuleScheduler,
      schedulerServiceFactory,
      catalogServiceMock.factory({ entities: [] }),
      mockServices.rootConfig.factory({ data: { recovery: { schedules } } }),
    ],
  }).then(
    async backend => {
      await backend.stop();
      return 'started';
    },
    (error: Error) => error.message,
  );
}

describe('schedules in config', () => {
  it.each([
    [
      'a cron the scheduler cannot read',
      {
        nightlyCheck: {
          frequency: { cron: 'every night' },
          timeout: { hours: 4 },
        },
      },
      `Invalid schedule at recovery.schedules.nightlyCheck: frequency.cron "every night" is no cron expression the scheduler reads`,
    ],
    [
      'a negative frequency, which would capture without pause (on SQLite: never again)',
      { capture: { frequency: { hours: -1 }, timeout: { minutes: 50 } } },
      'Invalid schedule at recovery.schedules.capture: frequency must be longer than zero, got {"hours":-1}',
    ],
    [
      'a zero frequency',
      { analysis: { frequency: 'PT0S', timeout: { minutes: 30 } } },
      'Invalid schedule at recovery.schedules.analysis: frequency must be longer than zero, got "PT0S"',
    ],
    [
      'a negative timeout, which stops the task as it starts',
      { analysis: { frequency: { hours: 6 }, timeout: { minutes: -30 } } },
      'Invalid schedule at recovery.schedules.analysis: timeout must be longer than zero, got {"minutes":-30}',
    ],
    [
      'a nightly check timeout within what it keeps for its report, which would start no run',
      {
        nightlyCheck: {
          frequency: { cron: '30 2 * * *' },
          timeout: { seconds: 30 },
        },
      },
      'Invalid schedule at recovery.schedules.nightlyCheck: timeout must be longer than 30 s, got {"seconds":30}',
    ],
    [
      'a negative initial delay',
      {
        capture: {
          frequency: { hours: 1 },
          timeout: { minutes: 50 },
          initialDelay: { minutes: -5 },
        },
      },
      'Invalid schedule at recovery.schedules.capture: initialDelay must not be negative, got {"minutes":-5}',
    ],
    [
      'a timeout missing',
      { capture: { frequency: { hours: 1 } } },
      "Invalid schedule at recovery.schedules.capture: Failed to read duration from config at 'timeout'",
    ],
  ])('refuses %s, naming the key', async (_, schedules, expected) => {
    expect(await start(schedules)).toContain(expected);
  });

  it('takes valid ones', async () => {
    expect(
      await start({
        capture: { frequency: { trigger: 'manual' }, timeout: { minutes: 50 } },
        analysis: {
          frequency: 'PT6H',
          timeout: '30m',
          initialDelay: { seconds: 0 },
        },
        nightlyCheck: {
          frequency: { cron: '30 2 * * 1-5' },
          timeout: { minutes: 45 },
        },
      }),
    ).toBe('started');
  });
});
