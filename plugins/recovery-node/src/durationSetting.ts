import { type Config, readDurationFromConfig } from '@backstage/config';
import { toError } from '@backstage/errors';
import { durationToMilliseconds } from '@backstage/types';
import { parseDurationSeconds } from '@backstage-recovery/plugin-recovery-common';

const FORMS = 'use e.g. 90s, 1h30m, PT15M or { minutes: 15 }';

/**
 * A duration setting (`recovery.runs.stepTimeout` say) in milliseconds; undefined where `key` is
 * not set. It takes what the schedules beside it take, as Backstage reads them
 * (readDurationFromConfig): an ISO 8601 duration (`PT1H`), an object of units
 * (`{ minutes: 5 }`) or an `ms` text (`2 minutes`); and sums of units (`1h30m`, `500ms`), which
 * Backstage does not read. Anything else stops start-up naming the key and the value, as does a
 * duration of zero or less: no objective, timeout or interval of zero is meant, it would fail or
 * spin at once.
 *
 * @public
 */
export function readDurationSettingMs(
  config: Config,
  key: string,
): number | undefined {
  if (!config.has(key)) return undefined;
  const value = config.get(key);
  const invalid = (why: string) =>
    new Error(`Invalid duration ${JSON.stringify(value)} at ${key}: ${why}`);
  const seconds =
    typeof value === 'string' ? parseDurationSeconds(value) : undefined;
  let ms: number;
  if (seconds !== undefined) {
    ms = seconds * 1000;
  } else if (typeof value === 'string' || isObject(value)) {
    try {
      ms = durationToMilliseconds(readDurationFromConfig(config, { key }));
    } catch (error) {
      throw invalid(`${FORMS} (${reasonOf(error)})`);
    }
  } else {
    throw invalid(FORMS);
  }
  if (!Number.isFinite(ms)) throw invalid(`${FORMS} (too long)`);
  if (ms <= 0) throw invalid('must be longer than 0s');
  return ms;
}

function isObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** readDurationFromConfig's reason, without its own naming of the key, which ours gives. */
function reasonOf(error: unknown): string {
  return toError(error).message.replace(/^.*? at '[^']*', (Error: )?/, '');
}
