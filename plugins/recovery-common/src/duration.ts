const UNITS: Record<string, number> = {
  ms: 0.001,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
};

/**
 * Parses a duration such as `500ms`, `90s`, `15m`, `24h`, `7d` (or a sum: `1h30m`) into seconds.
 * Returns undefined when the text is not a duration, or one too long to be a number (`1e400d`'s
 * digits written out would read as Infinity, which JSON answers as null).
 *
 * @public
 */
export function parseDurationSeconds(text: string): number | undefined {
  const trimmed = text.trim();
  if (!/^(\d+(\.\d+)?(ms|[smhd]))+$/.test(trimmed)) return undefined;
  let total = 0;
  for (const [, value, unit] of trimmed.matchAll(
    /(\d+(?:\.\d+)?)(ms|[smhd])/g,
  )) {
    total += Number(value) * UNITS[unit];
  }
  return Number.isFinite(total) ? total : undefined;
}

/**
 * Seconds for people, as readiness words ages and objectives: `90 s`, `45 min`, `2.5 h`, `3.2 d`.
 *
 * @public
 */
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
 *
 * @public
 */
export function formatSecondsAgainst(value: number, objective: number): string {
  const shown = formatSeconds(value);
  // By amount, not by text: `2 h` reads as met beside an objective worded `120 min`.
  if (
    value <= objective ||
    amountOf(shown) > amountOf(formatSeconds(objective))
  )
    return shown;
  // An excess under a second (a measured RTO has milliseconds) would round to `0 s`, which reads
  // as met: in tenths, rounded up, as the portal's formatAgainst says it.
  const excess = value - objective;
  const worded =
    excess < 1
      ? `${Math.max(1, Math.ceil(excess * 10 - 1e-6)) / 10} s`
      : formatSeconds(excess);
  return `${formatSeconds(objective)} + ${worded}`;
}

const WORDED_UNITS: Record<string, number> = {
  s: 1,
  min: 60,
  h: 3600,
  d: 86400,
};

/** The seconds a formatSeconds text says. */
function amountOf(text: string): number {
  const [value, unit] = text.split(' ');
  return Number(value) * WORDED_UNITS[unit];
}

/**
 * Size for people: `512 bytes`, `1.5 KiB`, `12.0 MiB` (binary units, as Docker and `df -h` say them).
 *
 * @public
 */
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

/*
 * Durations as the portal and the CLI write them (`1d`, `5m`, `2h 5m`, `1m 30s`): one form for a
 * figure wherever a person reads it. formatSeconds, `24 h`, is the readiness reasons' own.
 */

/**
 * `90` → `1m 30s`, `7260` → `2h 1m`, `200000` → `2d 7h`; `—` where unknown.
 *
 * @public
 */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  const secs = s % 60;
  if (days > 0) return hours ? `${days}d ${hours}h` : `${days}d`;
  if (hours > 0) return minutes ? `${hours}h ${minutes}m` : `${hours}h`;
  return secs ? `${minutes}m ${secs}s` : `${minutes}m`;
}

/**
 * A measured duration (a run's RTO; in a run's timeline, its critical path and the machines on
 * it) as the portal (card, run details, run history, overview), the CLI and the timeline write it:
 * in the units of {@link formatDuration}, its seconds to the millisecond they were measured in, so
 * an RTO reads as the steps that add up to it (`2.621s`, not `3s`): `2.621s`, `4m 12.104s`,
 * `1h 0m 40s`; `—` where unknown.
 *
 * @public
 */
export function formatMeasured(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '—';
  // In whole milliseconds, so no unit carries floating point's crumbs.
  const ms = Math.max(0, Math.round(seconds * 1000));
  const parts: Array<[number, string]> = [
    [Math.floor(ms / 86_400_000), 'd'],
    [Math.floor((ms % 86_400_000) / 3_600_000), 'h'],
    [Math.floor((ms % 3_600_000) / 60_000), 'm'],
    [(ms % 60_000) / 1000, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  if (first < 0) return '0s';
  let last = parts.length - 1;
  while (last > first && parts[last][0] === 0) last -= 1;
  return parts
    .slice(first, last + 1)
    .map(([n, unit]) => `${n}${unit}`)
    .join(' ');
}

/**
 * A time as the portal and the readiness notices write it, to the second, in UTC and saying so:
 * `2024-05-01 10:00:01 UTC`; with `clock`, the time of day alone, `10:00:01 UTC` (where the date is
 * given nearby). UTC rather than the reader's zone: times are read beside the backend's logs and
 * the engines' events, and a DR test report reads the same to everyone. `—` where unknown; text
 * that is no time is given back as it came.
 *
 * @public
 */
export function formatUtcTime(
  iso: string | undefined,
  { clock = false }: { clock?: boolean } = {},
): string {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  const utc = new Date(ms).toISOString();
  const time = utc.slice(11, 19);
  return clock ? `${time} UTC` : `${utc.slice(0, 10)} ${time} UTC`;
}

/**
 * A duration read against its objective (a capture's age against the RPO): as
 * {@link formatDuration} says it, unless that would read the same as the objective it exceeds (an
 * hourly capture 40 s late against an RPO of 1h would read `1h`); then every unit down to the
 * second, or the tenth of one, as {@link formatMeasured} writes them: `1h 0m 40s`, `15m 0.4s`.
 * A measured RTO is formatMeasured's own, to the millisecond it was measured in, so it never reads
 * as the objective it exceeds either.
 *
 * @public
 */
export function formatAgainst(
  seconds: number | undefined,
  objectiveSeconds: number,
): string {
  const text = formatDuration(seconds);
  if (
    seconds === undefined ||
    !(seconds > objectiveSeconds) ||
    text !== formatDuration(objectiveSeconds)
  ) {
    return text;
  }
  // Under half a second over, whole seconds would still read as the objective: tenths, rounded
  // up (less a hair of floating point), and at least a tenth over, so that they never do.
  const tenths = Math.round(seconds) <= objectiveSeconds;
  const total = tenths
    ? Math.max(
        Math.ceil(seconds * 10 - 1e-6),
        Math.floor(objectiveSeconds * 10) + 1,
      ) / 10
    : Math.round(seconds);
  return formatMeasured(total);
}
