const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Parses a duration such as `500ms`, `90s`, `15m`, `24h`, `7d` (or a sum: `1h30m`) into seconds.
 * Returns undefined when the text is not a duration, or one too long to be a number (`1e400d`'s
 * digits written out would read as Infinity, which JSON answers as null).
 */
export function parseDurationSeconds(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|[smhd]))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, value, unit] of trimmed.matchAll(/(\d+(?:\.\d+)?)(ms|[smhd])/g)) {
    total += Number(value) * UNITS[unit];
  }
  return Number.isFinite(total) ? total : undefined;
}

/**
 * A duration setting (`key: text`, e.g. `recovery.runs.stepTimeout: 2m`) in milliseconds, failing
 * start-up with the key's name if malformed. A zero objective, timeout or interval is never
 * meant: it would fail or spin at once.
 */
export function durationSettingMs(key: string, text: string): number {
  const seconds = parseDurationSeconds(text);
  if (seconds === undefined) {
    throw new Error(`Invalid duration "${text}" at ${key}: use e.g. 90s, 15m, 24h`);
  }
  if (seconds <= 0) {
    throw new Error(`Invalid duration "${text}" at ${key}: must be longer than 0s`);
  }
  return seconds * 1000;
}

/** Seconds for people, as readiness words ages and objectives: `90 s`, `45 min`, `2.5 h`, `3.2 d`. */
export function formatSeconds(total: number): string {
  if (total < 120) return `${Math.round(total)} s`;
  if (total < 7200) return `${Math.round(total / 60)} min`;
  if (total < 172800) return `${Math.round(total / 360) / 10} h`;
  return `${Math.round(total / 8640) / 10} d`;
}

/**
 * `value` seconds worded beside an `objective` it is compared with: as formatSeconds, but where
 * a value over the objective would read as the objective itself (`24 h` for a day and a minute),
 * the objective plus the excess (`24 h + 60 s`), so it never reads as met.
 */
export function formatSecondsAgainst(value: number, objective: number): string {
  const shown = formatSeconds(value);
  // By amount, not by text: `2 h` reads as met beside an objective worded `120 min`.
  if (value <= objective || amountOf(shown) > amountOf(formatSeconds(objective))) return shown;
  // An excess under a second (a measured RTO has milliseconds) would round to `0 s`, which reads
  // as met: in tenths, rounded up, as the portal's formatAgainst says it.
  const excess = value - objective;
  const worded = excess < 1 ? `${Math.max(1, Math.ceil(excess * 10 - 1e-6)) / 10} s` : formatSeconds(excess);
  return `${formatSeconds(objective)} + ${worded}`;
}

const WORDED_UNITS: Record<string, number> = { s: 1, min: 60, h: 3600, d: 86400 };

/** The seconds a formatSeconds text says. */
function amountOf(text: string): number {
  const [value, unit] = text.split(' ');
  return Number(value) * WORDED_UNITS[unit];
}

/** Size for people: `512 bytes`, `1.5 KiB`, `12.0 MiB` (binary units, as Docker and `df -h` say them). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} bytes`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
