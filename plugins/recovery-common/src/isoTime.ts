/**
 * The one reader of an ISO 8601 time with its zone: recovery points (`POST /runs`, the CLI's
 * `--recovery-point`, the card) and the times of initialization events (recovery-node's log
 * parsers, `recovery analyze --at`) both read theirs here.
 */

import { formatUtcTime } from './duration';

/**
 * Forms ISO 8601 allows that not every caller takes.
 *
 * @public
 */
export interface IsoTimeOptions {
  /** Also a zone of whole hours, `+02` (ISO 8601 allows it; RFC 3339 does not). */
  hoursOnlyZone?: boolean;
  /**
   * Also `24:00` (seconds and fraction zero, if given), the end of a day: 00:00 of the next, as
   * ISO 8601:2004 and JavaScript's Date.parse read it.
   */
  endOfDay?: boolean;
  /**
   * Also a leap second, `23:59:60` UTC (in the time's own zone, the minute before the offset's
   * midnight), read as 23:59:59.999: POSIX clocks have no such second, and a log written by a clock
   * that counts it keeps its order with the events around it.
   */
  leapSecond?: boolean;
  /**
   * Also a space between date and time, `2026-11-02 01:00:00+00:00`, as RFC 3339 (section 5.6)
   * allows and as GNU `date --rfc-3339`, Python's `str(datetime)` and PostgreSQL write it.
   */
  spaceSeparator?: boolean;
}

/**
 * A time read: its instant in epoch ms; else what is wrong with the text, `kind` telling text not
 * written as such a time (`form`: no zone, a date alone, anything else) from one that is, of a
 * date, time or zone offset that does not exist (`value`: 2026-02-30, 25:00, +24:00).
 *
 * @public
 */
export type IsoTimeReading =
  { ms: number } | { kind: 'form' | 'value'; problem: string };

// Date and time of day, seconds and their fraction optional (`.` or `,`), then the zone: Z, or an
// offset (+02:00, +0200, or +02 where hoursOnlyZone).
const ISO_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)$/;
const DATE_ALONE = /^\d{4}-\d{2}-\d{2}$/;
const WITHOUT_ZONE =
  /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?$/;
const SPACE_FOR_T = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}/;
/** The space of {@link SPACE_FOR_T}, for a `T` where the caller takes it (`spaceSeparator`). */
const SPACE_SEPARATOR = /^(\d{4}-\d{2}-\d{2}) (?=\d{2}:\d{2})/;

const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];

const form = (problem: string): IsoTimeReading => ({ kind: 'form', problem });
const value = (problem: string): IsoTimeReading => ({ kind: 'value', problem });

/**
 * Reads an ISO 8601 date and time of day with its zone (extended format: `2026-11-02T03:00:00+02:00`;
 * `T` and `Z` in either case; seconds optional; a fraction after `.` or `,`, digits past the
 * millisecond dropped, never rounded up, so no capture taken after a time is read as taken before
 * it). Refused: a time without its zone (whose would it be?), a date alone, and dates, times and
 * offsets that do not exist, which Date.parse would roll over (2026-02-30 into March).
 *
 * @public
 */
export function readIsoTime(
  text: string,
  options: IsoTimeOptions = {},
): IsoTimeReading {
  // Checked before the replace: event times are read by the million.
  const written =
    options.spaceSeparator && text.charCodeAt(10) === 32
      ? text.replace(SPACE_SEPARATOR, '$1T')
      : text;
  const match = ISO_TIME.exec(written);
  if (!match) return form(formProblem(written));
  const [
    ,
    year,
    month,
    day,
    hour,
    minute,
    second = '00',
    fraction = '',
    utc,
    sign,
    offsetHours,
    offsetMinutes,
  ] = match;
  if (!utc && offsetMinutes === undefined && !options.hoursOnlyZone) {
    return form(
      `its zone ${sign}${offsetHours} gives hours alone: write ${sign}${offsetHours}:00`,
    );
  }
  const [y, mo, d, h, mi, s] = [year, month, day, hour, minute, second].map(
    Number,
  );
  if (mo < 1 || mo > 12) return value(`month ${month} does not exist`);
  const days =
    mo === 2 ? (leapYear(y) ? 29 : 28) : [4, 6, 9, 11].includes(mo) ? 30 : 31;
  if (d < 1 || d > days)
    return value(
      `${year}-${month}-${day} does not exist: ${MONTHS[mo - 1]} ${year} has ${days} days`,
    );
  const endOfDay = h === 24 && mi === 0 && s === 0 && /^0*$/.test(fraction);
  if (h > 23 && !(endOfDay && options.endOfDay)) {
    return value(
      h === 24 && mi + s === 0
        ? `hour 24: write 00:00 of the next day`
        : `hour ${hour} does not exist (00 to 23)`,
    );
  }
  if (mi > 59) return value(`minute ${minute} does not exist (00 to 59)`);
  if (s > 60) return value(`second ${second} does not exist (00 to 59)`);
  let offsetMs = 0;
  if (!utc) {
    const [oh, om] = [Number(offsetHours), Number(offsetMinutes ?? 0)];
    if (oh > 23 || om > 59)
      return value(
        `zone offset ${sign}${offsetHours}:${offsetMinutes ?? '00'} does not exist (at most 23:59 either way)`,
      );
    offsetMs = (sign === '-' ? -1 : 1) * (oh * 60 + om) * 60_000;
  }
  // Not Date.UTC, which reads years 0 to 99 as 1900 to 1999; hour 24 rolls over into the next day.
  const at = new Date(0);
  at.setUTCFullYear(y, mo - 1, d);
  at.setUTCHours(
    h,
    mi,
    Math.min(s, 59),
    s === 60 ? 999 : Number(fraction.padEnd(3, '0').slice(0, 3)),
  );
  const ms = at.getTime() - offsetMs;
  if (s === 60) {
    // Leap seconds are inserted at the end of a UTC day only, whatever zone a time is written in.
    const utcMinute = new Date(ms).toISOString().slice(11, 16);
    if (utcMinute !== '23:59')
      return value(
        `second 60 does not exist (00 to 59; 60 only for a leap second, at 23:59:60 UTC)`,
      );
    if (!options.leapSecond)
      return value(
        `second 60 is a leap second: write 23:59:59 or 00:00:00 of the next day`,
      );
  }
  return { ms };
}

const leapYear = (y: number) => (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;

/** What keeps text the time pattern does not match from being an ISO 8601 time with its zone. */
function formProblem(text: string): string {
  if (text.trim() !== text) return 'spaces around it';
  if (DATE_ALONE.test(text))
    return 'a date alone: give the time of day and its zone too';
  if (SPACE_FOR_T.test(text))
    return 'a space between date and time: ISO 8601 puts a T there';
  if (WITHOUT_ZONE.test(text))
    return 'no zone: end it with Z (UTC) or an offset such as +02:00';
  return 'not a date and time of day';
}

/** An instant as the backend writes one in its messages: `2026-12-07T02:14:13.549Z`. */
const ISO_INSTANT =
  /\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})(?!\w)/g;

/**
 * A backend's message (a timeline step, a readiness reason, a warning, a failure) with each ISO
 * time in it written as the portal and the CLI write times, `2026-12-07 02:14:13 UTC`, the rest
 * as it came: an ISO time beside the reader's own times reads as another clock.
 *
 * @public
 */
export function readableTimes(message: string): string {
  return message.replace(ISO_INSTANT, iso => formatUtcTime(iso));
}
