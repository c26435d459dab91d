/**
 * Clock readings as the analysis applies them: each start or failure of a machine is moved by the
 * offset of that machine's reading nearest to it in time, wherever in the input the reading is
 * (after the event, in another file). So whether an event can be put on the reference clock is
 * known only once every reading is read: {@link ClockReach} holds on to what it needs till then.
 */
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { lowerBound } from '../analysis/sorted';

/** Furthest time (epoch ms) from 1970 a JS Date can hold, either way; a bigint column holds it too. */
export const MAX_TIME = 8.64e15;

/**
 * Largest offset a clock reading may correct: a machine whose clock battery died boots decades
 * behind, and its reading is what puts it right; a hundred years further is no clock (a corrupt
 * value, a time in microseconds). Yet a machine's nearest reading applies to each of its events,
 * however far: one such reading would move its boots past the dates a Date holds, and every
 * analysis of its system would fail.
 */
export const MAX_CLOCK_OFFSET = 100 * 365.25 * 86_400_000;

/** One reading of a machine's clock: machine time, and offset = reference − machine time. */
export interface ClockOffset {
  time: number;
  offset: number;
}

/** The order in which a machine's readings are searched: by time, then by offset, so ties pick alike everywhere. */
export const byReadingTime = (a: ClockOffset, b: ClockOffset) =>
  a.time - b.time || a.offset - b.offset;

/**
 * Index of the reading nearest in time to `time` (ties: the earlier one) among `times`, a
 * machine's reading times sorted by {@link byReadingTime}; -1 for none.
 */
export function nearestReading(times: ArrayLike<number>, time: number): number {
  if (times.length === 0) return -1;
  const lo = lowerBound(times, time);
  if (lo >= times.length) return times.length - 1;
  return lo > 0 && time - times[lo - 1] <= times[lo] - time ? lo - 1 : lo;
}

const YEAR = 365.25 * 86_400_000;

/** An offset as a person reads it: `+4.0 s`, `-2.5 h`, `+50.0 years`. */
export function offsetText(ms: number): string {
  const sign = ms < 0 ? '-' : '+';
  const a = Math.abs(ms);
  if (a < 3_600_000) return `${sign}${(a / 1000).toFixed(1)} s`;
  if (a < 86_400_000) return `${sign}${(a / 3_600_000).toFixed(1)} h`;
  if (a < YEAR) return `${sign}${(a / 86_400_000).toFixed(1)} days`;
  return `${sign}${(a / YEAR).toFixed(1)} years`;
}

/** A time as messages give it: ISO 8601 where a Date holds it, else the epoch milliseconds. */
export const timeText = (t: number) =>
  Math.abs(t) <= MAX_TIME ? new Date(t).toISOString() : `${t} ms`;

/**
 * Why the clock reading `reading` of `machine` moves its event at `time` past the dates a Date
 * holds, else undefined. `where` names the reading's line (`line 3`, `a.jsonl:3`), where known.
 */
export function pastReachProblem(
  time: number,
  machine: string,
  reading: ClockOffset,
  where?: string,
): string | undefined {
  const moved = time + reading.offset;
  if (Math.abs(moved) <= MAX_TIME) return undefined;
  return (
    `its time ${timeText(time)} (machine time) is past the last date there is (${timeText(Math.sign(moved) * MAX_TIME)}) once moved by ${offsetText(reading.offset)}, ` +
    `the offset of ${machine}'s clock from its reading ${where ? `at ${where} ` : ''}(taken at ${timeText(reading.time)}, machine time): ` +
    "is the event's time, or that reading's 'reference', in the wrong unit?"
  );
}

/**
 * Where an event was read: its input (file name, upload) and line.
 *
 * @public
 */
export interface EventOrigin {
  source: string;
  line: number;
}

/**
 * A start or failure that no clock can put on the reference clock, where it was read and why.
 *
 * @public
 */
export interface OutOfReach {
  event: InitializationEvent;
  origin: EventOrigin;
  message: string;
}

/**
 * Finds the starts and failures that a clock reading of their machine moves past the dates a
 * Date holds, naming the line of each and of the reading. Only an event within
 * {@link MAX_CLOCK_OFFSET} of that limit can be moved past it (the parsers refuse readings further
 * off), so those alone are kept, with every reading, until all inputs are read.
 *
 * @public
 */
export class ClockReach {
  private readonly near: Array<{
    event: InitializationEvent;
    origin: EventOrigin;
  }> = [];
  private readonly readings = new Map<
    string,
    Array<ClockOffset & { origin: EventOrigin }>
  >();

  /** An event as read, in input order. */
  note(event: InitializationEvent, source: string, line: number): void {
    if (event.type === 'clock') {
      if (typeof event.reference !== 'number') return;
      let list = this.readings.get(event.machine);
      if (!list) this.readings.set(event.machine, (list = []));
      list.push({
        time: event.time,
        offset: event.reference - event.time,
        origin: { source, line },
      });
    } else if (Math.abs(event.time) > MAX_TIME - MAX_CLOCK_OFFSET) {
      this.near.push({ event, origin: { source, line } });
    }
  }

  /** The events out of reach, in input order. */
  outOfReach(): OutOfReach[] {
    const found: OutOfReach[] = [];
    if (this.near.length === 0) return found;
    const sorted = new Map<
      string,
      {
        list: Array<ClockOffset & { origin: EventOrigin }>;
        times: Float64Array;
      }
    >();
    for (const { event, origin } of this.near) {
      let machine = sorted.get(event.machine);
      if (!machine) {
        const list = [...(this.readings.get(event.machine) ?? [])].sort(
          byReadingTime,
        );
        sorted.set(
          event.machine,
          (machine = { list, times: Float64Array.from(list, r => r.time) }),
        );
      }
      const i = nearestReading(machine.times, event.time);
      if (i < 0) continue;
      const reading = machine.list[i];
      const where =
        reading.origin.source === origin.source
          ? `line ${reading.origin.line}`
          : `${reading.origin.source}:${reading.origin.line}`;
      const message = pastReachProblem(
        event.time,
        event.machine,
        reading,
        where,
      );
      if (message) found.push({ event, origin, message });
    }
    return found;
  }
}
