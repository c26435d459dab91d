import type {
  RootConfigService,
  SchedulerService,
  SchedulerServiceTaskInvocationDefinition,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { readSchedulerServiceTaskScheduleDefinitionFromConfig } from '@backstage/backend-plugin-api';
import { durationToMilliseconds, HumanDuration } from '@backstage/types';

type ScheduleDuration = SchedulerServiceTaskScheduleDefinition['timeout'];

/**
 * A schedule's duration (timeout, frequency, initial delay) in milliseconds: a luxon Duration or a HumanDuration (months as 30 days).
 *
 * @public
 */
export function scheduleDurationMs(duration: ScheduleDuration): number {
  if ('toMillis' in duration && typeof duration.toMillis === 'function')
    return duration.toMillis();
  return durationToMilliseconds(duration as HumanDuration);
}

/**
 * A task's schedule: the one at `key` in config, else `fallback`. One that cannot work stops the
 * backend at start, naming the key: a frequency of zero or less would run the task without pause
 * (or, on SQLite, never again), a timeout not over `minTimeoutMs` (zero, or what the task keeps for
 * its report) would stop it before it did anything.
 *
 * @public
 */
export function readTaskSchedule(
  config: RootConfigService,
  key: string,
  fallback: SchedulerServiceTaskScheduleDefinition,
  minTimeoutMs = 0,
): SchedulerServiceTaskScheduleDefinition {
  if (!config.has(key)) return fallback;
  const invalid = (what: string) =>
    new Error(`Invalid schedule at ${key}: ${what}`);
  let read: SchedulerServiceTaskScheduleDefinition;
  try {
    read = readSchedulerServiceTaskScheduleDefinitionFromConfig(
      config.getConfig(key),
    );
  } catch (error) {
    throw invalid(String((error as Error).message));
  }
  const given = (field: string) =>
    JSON.stringify(config.get(`${key}.${field}`));
  const { frequency, timeout, initialDelay } = read;
  if (
    !('cron' in frequency) &&
    !('trigger' in frequency) &&
    !(scheduleDurationMs(frequency) > 0)
  ) {
    throw invalid(
      `frequency must be longer than zero, got ${given('frequency')}`,
    );
  }
  if (!(scheduleDurationMs(timeout) > minTimeoutMs)) {
    throw invalid(
      `timeout must be longer than ${minTimeoutMs > 0 ? `${minTimeoutMs / 1000} s` : 'zero'}, got ${given('timeout')}`,
    );
  }
  if (initialDelay && !(scheduleDurationMs(initialDelay) >= 0)) {
    throw invalid(
      `initialDelay must not be negative, got ${given('initialDelay')}`,
    );
  }
  return read;
}

/**
 * Schedules a task whose schedule comes from `key`. The scheduler reads a cron only as it stores
 * the task, and its refusal names neither the key nor the cron (it speaks of an ISO period): said
 * here instead.
 *
 * @public
 */
export async function scheduleTaskFrom(
  scheduler: SchedulerService,
  key: string,
  task: SchedulerServiceTaskScheduleDefinition &
    SchedulerServiceTaskInvocationDefinition,
): Promise<void> {
  try {
    await scheduler.scheduleTask(task);
  } catch (error) {
    const message = String((error as Error)?.message ?? error);
    if (!('cron' in task.frequency) || !message.includes('cadence'))
      throw error;
    throw new Error(
      `Invalid schedule at ${key}: frequency.cron "${task.frequency.cron}" is no cron expression the scheduler reads ` +
        `(minute hour day-of-month month day-of-week, as '30 2 * * *'); it says: ${message}`,
    );
  }
}
