/** What a recovery point is written as, for messages that refuse one. */
export const RECOVERY_POINT_FORMAT = 'an ISO 8601 time with its zone, such as 2026-11-02T01:00:00Z or 2026-11-02T03:00:00+02:00';

// Date and time, seconds and their fraction optional, then the zone: Z, or an offset (+02:00, +0200).
const POINT = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2}):?(\d{2}))$/;

/**
 * Reads a recovery point (`POST /runs` `recoveryPoint`, `recovery run --recovery-point`): a date
 * and time of day with its zone (`Z` or an offset), as ISO 8601 and RFC 3339 write it. Returns the
 * instant in UTC (`toISOString`), or undefined for anything else: a time without its zone (whose
 * would it be?), a date alone, a date that does not exist (`2026-02-30`), an hour past 23.
 * Digits past the millisecond are dropped: a capture is timed to the millisecond, so none taken
 * after the point asked is taken for one before it.
 */
export function parseRecoveryPoint(text: string): string | undefined {
  const match = POINT.exec(text);
  if (!match) return undefined;
  const [, year, month, day, hour, minute, second = '0', fraction = '', utc, sign, offsetHours, offsetMinutes] = match;
  const [y, mo, d, h, mi, s] = [year, month, day, hour, minute, second].map(Number);
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59) return undefined;
  const ms = Number(fraction.padEnd(3, '0').slice(0, 3));
  const local = Date.UTC(y, mo - 1, d, h, mi, s, ms);
  // Date.UTC rolls 30 February over into March: such a date does not exist.
  const at = new Date(local);
  if (at.getUTCFullYear() !== y || at.getUTCMonth() !== mo - 1 || at.getUTCDate() !== d) return undefined;
  let offset = 0;
  if (!utc) {
    const [oh, om] = [Number(offsetHours), Number(offsetMinutes)];
    if (oh > 23 || om > 59) return undefined;
    offset = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  const instant = new Date(local - offset);
  return Number.isNaN(instant.getTime()) ? undefined : instant.toISOString();
}
