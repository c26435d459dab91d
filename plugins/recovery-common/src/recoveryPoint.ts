import { readIsoTime } from './isoTime';
import type { Capture } from './types';

/**
 * What a recovery point is written as, for messages that refuse one.
 *
 * @public
 */
export const RECOVERY_POINT_FORMAT =
  'an ISO 8601 time with its zone, such as 2026-11-02T01:00:00Z or 2026-11-02T03:00:00+02:00';

/**
 * Reads a recovery point (`POST /runs` `recoveryPoint`, `recovery run --recovery-point`, the card's
 * time typed in): a date and time of day with its zone (`Z` or an offset with its minutes), as
 * {@link readIsoTime} reads it. Returns the instant in UTC (`toISOString`), else what is wrong
 * with the text: a time without its zone (whose would it be?), a date alone, a date that does not
 * exist (`2026-02-30`), an hour past 23 (not `24:00`), a zone of hours alone (`+02`), a time
 * whose UTC year is not 0000 to 9999.
 *
 * @public
 */
export function readRecoveryPoint(
  text: string,
): { point: string } | { problem: string } {
  const time = readIsoTime(text);
  if ('problem' in time) return { problem: time.problem };
  // As RFC 3339 writes it, which has no year before 0000 nor after 9999 (0000-01-01T00:30+01:00 is in year -1).
  if (time.ms < FIRST_TIME) return { problem: 'before the year 0000 in UTC' };
  if (time.ms >= PAST_LAST_TIME)
    return { problem: 'after the year 9999 in UTC' };
  return { point: new Date(time.ms).toISOString() };
}

const FIRST_TIME = Date.parse('0000-01-01T00:00:00Z');
const PAST_LAST_TIME = Date.parse('+010000-01-01T00:00:00Z');

/**
 * A recovery point read as {@link readRecoveryPoint} reads it, in UTC; undefined for anything else.
 *
 * @public
 */
export function parseRecoveryPoint(text: string): string | undefined {
  const read = readRecoveryPoint(text);
  return 'point' in read ? read.point : undefined;
}

/**
 * What a start refused for a recovery point before some machines' kept captures says (errors.ts: recoveryPointTooEarly).
 *
 * @public
 */
export interface RecoveryPointTooEarly {
  /** The point refused, in UTC. */
  recoveryPoint: string;
  /** The machines whose kept captures were all taken after it, each with its oldest one's time. */
  machines: Array<{ machineRef: string; oldestCaptureAt: string }>;
  /** The machines never captured: no point can restore them. */
  neverCaptured: string[];
  /**
   * The earliest point at which every machine has a capture kept (the newest of `machines`'
   * oldest); absent where a machine was never captured.
   */
  earliestRecoveryPoint?: string;
}

/**
 * The earliest point a run refused for `machines` (each with its oldest kept capture) would be
 * admitted at: every other machine had a capture at or before the point refused, which is earlier.
 *
 * @public
 */
export function earliestRecoveryPoint(
  machines: Array<{ oldestCaptureAt: string }>,
): string | undefined {
  const times = machines
    .map(m => Date.parse(m.oldestCaptureAt))
    .filter(t => !Number.isNaN(t));
  return times.length === 0
    ? undefined
    : new Date(Math.max(...times)).toISOString();
}

/**
 * Captures closer than this after the previous one ended are one capture round (a scheduled
 * capture, the card's Capture now: machine after machine), listed as one recovery point.
 */
export const CAPTURE_ROUND_GAP_MS = 60_000;

/**
 * The recovery points the kept captures of a plan's machines allow (each machine's, any order;
 * those found damaged left out, as a run passes over them), newest first, as ISO times: one per capture round, at its last capture, where every machine
 * restores its newest capture of that round or before; none before every machine has a capture,
 * and not the last round, which restores every machine's newest: the latest state (a plain run).
 *
 * @public
 */
export function earlierRecoveryPoints(
  capturesByMachine: Array<
    Array<Pick<Capture, 'createdAt' | 'durationMs' | 'damaged'>>
  >,
): string[] {
  if (capturesByMachine.length === 0) return [];
  // A damaged capture restores nothing: a run passes over it to the machine's next older one.
  const taken = capturesByMachine.map(captures =>
    captures
      .filter(c => !c.damaged)
      .map(c => ({
        at: Date.parse(c.createdAt),
        ms: Math.max(0, c.durationMs || 0),
      }))
      .filter(c => !Number.isNaN(c.at)),
  );
  if (taken.some(t => t.length === 0)) return [];
  // Every machine has a capture at or before a point from the newest of the oldest captures on;
  // from the newest of the newest on, each machine restores its newest: the latest state.
  const earliest = Math.max(...taken.map(t => Math.min(...t.map(c => c.at))));
  const latest = Math.max(...taken.map(t => Math.max(...t.map(c => c.at))));
  const all = taken.flat().sort((a, b) => a.at - b.at);
  const points: number[] = [];
  let roundEnd = -Infinity;
  for (const [i, capture] of all.entries()) {
    // A round's point is its last capture: the next starts a gap or more after all before it ended.
    roundEnd = Math.max(roundEnd, capture.at + capture.ms);
    const next = all[i + 1];
    if (next && next.at - roundEnd < CAPTURE_ROUND_GAP_MS) continue;
    if (capture.at >= earliest && capture.at < latest) points.push(capture.at);
    roundEnd = -Infinity;
  }
  return points.reverse().map(t => new Date(t).toISOString());
}
