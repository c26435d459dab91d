import type { SchedulerServiceTaskScheduleDefinition } from '@backstage/backend-plugin-api';
import type { Config } from '@backstage/config';
import { durationToMilliseconds, type HumanDuration } from '@backstage/types';
import {
  readDurationSettingMs,
  readTaskSchedule,
  type ServiceMap,
} from '@backstage-recovery/plugin-recovery-node';
import { createRequire } from 'node:module';
import type { RunServiceOptions } from './run/RunService';
import type { AnalysisServiceOptions } from './service/AnalysisService';

// The recovery backend plugin's own settings (`recovery.*` but the modules' engines and schedules),
// read and checked in one place at start: a wrong value stops the backend naming its key, rather
// than failing the first request or run that needs it. The schema is config.d.ts.

/**
 * The recovery backend plugin's settings, read by {@link readRecoveryConfig}.
 */
export interface RecoveryConfig {
  /** Objectives of entities without rpo/rto annotations (`recovery.objectives`). */
  objectives: { rpoSeconds: number; rtoSeconds: number };
  /** `recovery.objectives.maxTestAge`: how old a last test recovery may be, in seconds. */
  maxTestAgeSeconds: number;
  /** `recovery.analysis`. */
  analysis: Omit<AnalysisServiceOptions, 'pageSize' | 'deleteBatchSize'>;
  /** `recovery.captureStore.keepLast` and `recovery.captures.timeout`. */
  captures: {
    keepLast: number;
    /** Undefined where not set: the capture service's default applies. */
    timeoutMs?: number;
  };
  /** `recovery.hypervisorHost` and `recovery.runs`. */
  runs: Omit<RunServiceOptions, 'heartbeatIntervalMs' | 'staleAfterMs'>;
  /** Readiness notices to owners; undefined where `recovery.notifications.enabled` is false. */
  notifications?: { schedule: SchedulerServiceTaskScheduleDefinition };
  /** `recovery.events.maxRequestSize`, in bytes. */
  eventsMaxRequestSize: number;
  /** `recovery.runs.retention`: finished runs older than this are deleted (RunRetention keeps some). */
  runRetentionMs: number;
}

/** Key of the readiness notices' schedule, named by scheduleTaskFrom's errors too. */
export const NOTIFICATIONS_SCHEDULE_KEY = 'recovery.notifications.schedule';

/**
 * Reads and checks the recovery backend plugin's settings. `hypervisorHostIds` are the hosts the
 * modules registered (they are initialised before the plugin): `recovery.hypervisorHost` must
 * name one of them. Throws an Error naming the key of the first wrong value.
 */
export function readRecoveryConfig(
  config: Config,
  hypervisorHostIds: string[],
): RecoveryConfig {
  const serviceNames = config.getOptional<ServiceMap['services']>(
    'recovery.analysis.serviceMap',
  );
  const objectives = {
    rpoSeconds:
      durationMs(config, 'recovery.objectives.rpo', { hours: 24 }) / 1000,
    rtoSeconds:
      durationMs(config, 'recovery.objectives.rto', { hours: 1 }) / 1000,
  };
  const analysis: RecoveryConfig['analysis'] = {
    threshold: config.getOptionalNumber('recovery.analysis.threshold') ?? 0.7,
    serviceMap: serviceNames && { services: serviceNames },
    halfLifeMs: readDurationSettingMs(config, 'recovery.analysis.halfLife'),
    kernelShape: config.getOptionalString('recovery.analysis.kernelShape'),
    kernelPeakMs: readDurationSettingMs(config, 'recovery.analysis.kernelPeak'),
    // Boots 180 days older than the newest teach a stale order (and weigh ≤ 1/4 at the default half-life).
    eventRetentionMs: durationMs(config, 'recovery.analysis.eventRetention', {
      days: 180,
    }),
    keepAnalyses: keepLast(
      config,
      'recovery.analysis.keepLast',
      20,
      'analyses kept per system',
    ),
  };
  const captures = {
    keepLast: keepLast(
      config,
      'recovery.captureStore.keepLast',
      5,
      'captures kept per machine',
    ),
    timeoutMs: readDurationSettingMs(config, 'recovery.captures.timeout'),
  };
  const stepTimeoutMs = durationMs(config, 'recovery.runs.stepTimeout', {
    minutes: 10,
  });
  const runs: RecoveryConfig['runs'] = {
    hypervisorHost: designatedHost(config, hypervisorHostIds),
    machineReadyTimeoutMs: durationMs(
      config,
      'recovery.runs.machineReadyTimeout',
      { minutes: 2 },
    ),
    probeIntervalMs: durationMs(config, 'recovery.runs.probeInterval', {
      seconds: 1,
    }),
    stepTimeoutMs,
    minReadyMs: durationMs(config, 'recovery.runs.minReadyTime', {
      seconds: 5,
    }),
    allowTestHooks:
      config.getOptionalBoolean('recovery.runs.allowTestHooks') ?? false,
  };
  const maxTestAgeSeconds =
    durationMs(config, 'recovery.objectives.maxTestAge', { days: 7 }) / 1000;
  // A schedule is checked only where notices are sent, as before they were read at all.
  const notifications =
    (config.getOptionalBoolean('recovery.notifications.enabled') ?? true)
      ? {
          schedule: readTaskSchedule(config, NOTIFICATIONS_SCHEDULE_KEY, {
            frequency: { minutes: 15 },
            timeout: { minutes: 10 },
            initialDelay: { minutes: 1 },
          }),
        }
      : undefined;
  return {
    objectives,
    maxTestAgeSeconds,
    analysis,
    captures,
    runs,
    notifications,
    eventsMaxRequestSize: maxEventsRequestSize(config),
    // Ninety nights of nightly checks to look back on; the runs readiness rests on stay longer.
    runRetentionMs: durationMs(config, 'recovery.runs.retention', { days: 90 }),
  };
}

/** A duration setting in milliseconds, `fallback` where not set (see readDurationSettingMs). */
function durationMs(
  config: Config,
  key: string,
  fallback: HumanDuration,
): number {
  return readDurationSettingMs(config, key) ?? durationToMilliseconds(fallback);
}

// body-parser reads its `limit` with `bytes`; parsing with the same package keeps the
// checked value and the enforced one identical. It ships no types, hence the require.
const parseBytes = createRequire(__filename)('bytes').parse as (
  value: string | number,
) => number | null;

/**
 * The POST /events body limit, checked at start-up: body-parser would otherwise throw a
 * TypeError without the key on the first request, or silently read `10 megabytes` as 10 bytes
 * (`bytes` falls back to parseInt for units it does not know).
 */
function maxEventsRequestSize(config: Config): number {
  const key = 'recovery.events.maxRequestSize';
  const value = config.getOptional<string | number>(key) ?? '10mb';
  const text = String(value).trim();
  const match = /^(\d+(?:\.\d+)?) *(b|kb|mb|gb|tb|pb)?$/i.exec(text);
  // `bytes` has no `b` unit; a count of bytes must be whole.
  const plain = match && (!match[2] || match[2].toLowerCase() === 'b');
  let parsed: number | null = null;
  if (match && !plain) parsed = parseBytes(`${match[1]}${match[2]}`);
  else if (match && plain && Number.isInteger(Number(match[1])))
    parsed = Number(match[1]);
  if (parsed === null || !Number.isSafeInteger(parsed) || parsed <= 0) {
    throw new Error(
      `Invalid ${key} "${value}": use a positive size such as 512kb, 10mb or 1048576 (bytes)`,
    );
  }
  return parsed;
}

/**
 * How many captures (or analyses) to keep: at least the one just made, or pruning would delete
 * it. `what` names them in the error, e.g. `captures kept per machine`.
 */
function keepLast(
  config: Config,
  key: string,
  fallback: number,
  what: string,
): number {
  const value = config.getOptionalNumber(key) ?? fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(
      `Invalid ${key} ${value}: ${what} must be an integer of at least 1`,
    );
  }
  return value;
}

/**
 * `recovery.hypervisorHost`, checked against the hosts the modules registered: a name none of
 * them gave, a typo say, would otherwise fail every run with a 503.
 */
function designatedHost(
  config: Config,
  registered: string[],
): string | undefined {
  const key = 'recovery.hypervisorHost';
  const host = config.getOptionalString(key);
  if (host !== undefined && !registered.includes(host)) {
    throw new Error(
      `Invalid ${key} "${host}": no module registered a hypervisor host of that id (registered: ${registered.join(', ') || 'none'})`,
    );
  }
  return host;
}
