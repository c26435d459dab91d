/**
 * Step 2 of the dependency analysis: clock skew compensated. Each machine's clock readings, the
 * correction (offset) they give its events, and what is wrong with them: readings left out,
 * events they move out of reach, readings that contradict each other, clocks far off or unread.
 */
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { byName, counted, listed } from './graph';
import { DAY, iso } from './time';
import type { Start } from './timelineEvents';
import {
  byReadingTime,
  MAX_TIME,
  nearestReading,
  pastReachProblem,
  type ClockOffset,
} from '../events/clock';
import { clockReadingProblem } from '../events/parse';

export type ClockReadings = Map<string, ClockOffset[]>;
/** Readings left out, by machine, each with why. */
export type LeftOutReadings = Map<
  string,
  Array<InitializationEvent & { problem: string }>
>;

/**
 * Each machine's clock readings (machine time, offset = reference − machine clock), in time order;
 * and, by machine, those left out as `clockReadingProblem` refuses them (stored before the parsers
 * refused them too), each with why.
 */
export function clockReadings(events: InitializationEvent[]): {
  readings: ClockReadings;
  leftOut: LeftOutReadings;
} {
  const readings: ClockReadings = new Map();
  const leftOut: LeftOutReadings = new Map();
  for (const e of events) {
    if (e.type !== 'clock' || typeof e.reference !== 'number') continue;
    const problem = clockReadingProblem(e.time, e.reference);
    if (problem) {
      if (!leftOut.has(e.machine)) leftOut.set(e.machine, []);
      leftOut.get(e.machine)!.push({ ...e, problem });
      continue;
    }
    if (!readings.has(e.machine)) readings.set(e.machine, []);
    readings
      .get(e.machine)!
      .push({ time: e.time, offset: e.reference - e.time });
  }
  for (const list of readings.values()) list.sort(byReadingTime);
  return { readings, leftOut };
}

/**
 * Clock offset (reference − machine clock) per machine, from its `clock` events: the reading
 * nearest in time to each event applies (ties: the earlier one).
 *
 * @public
 */
export function clockCorrector(
  events: InitializationEvent[],
): (machine: string, time: number) => number {
  return correctorOf(clockReadings(events).readings);
}

/**
 * The corrector of readings already collected (buildTimeline also checks them for conflicts), and
 * which reading it applies to a machine's event at a time (undefined: the machine has none).
 */
export function correctorOf(readings: ClockReadings): ((
  machine: string,
  time: number,
) => number) & {
  readingFor: (machine: string, time: number) => ClockOffset | undefined;
} {
  const tables = new Map<
    string,
    { times: Float64Array; offsets: Float64Array }
  >();
  for (const [m, list] of readings) {
    tables.set(m, {
      times: Float64Array.from(list, r => r.time),
      offsets: Float64Array.from(list, r => r.offset),
    });
  }
  const readingFor = (machine: string, time: number) => {
    const t = tables.get(machine);
    if (!t) return undefined;
    const best = nearestReading(t.times, time);
    return { time: t.times[best], offset: t.offsets[best] };
  };
  const correct = (machine: string, time: number) => {
    const t = tables.get(machine);
    if (!t) return time;
    return time + t.offsets[nearestReading(t.times, time)];
  };
  return Object.assign(correct, { readingFor });
}

/** Two readings of one machine's clock this close in time should not disagree by more than … */
const CLOCK_READINGS_CLOSE = 10 * 60_000;
/** … this much: a clock does not drift a minute in ten, so one of them is wrong. */
const CLOCK_READINGS_AGREE = 60_000;

/** A stored time as ISO 8601 where a date holds it, else as it is. */
const shownTime = (t: number) => (Math.abs(t) <= MAX_TIME ? iso(t) : String(t));

/** One warning per machine with readings left out (`clockReadings`): how many, and the first by time. */
export function leftOutClockReadings(leftOut: LeftOutReadings): string[] {
  return [...leftOut.keys()].sort(byName).map(m => {
    const list = leftOut
      .get(m)!
      .sort((a, b) => a.time - b.time || a.reference! - b.reference!);
    const [first] = list;
    const which =
      list.length > 1
        ? `${counted(list.length, 'clock reading')} of ${m} left out, the first at`
        : `clock reading of ${m} at`;
    return `${which} ${shownTime(first.time)} (machine time)${list.length > 1 ? '' : ' left out'}: ${first.problem.replace(/^a clock reading's /, 'its ')}`;
  });
}

/**
 * One warning per machine with starts or failures left out as its clock reading moves them past
 * the dates a Date holds: how many, and the first by time with the reading that moved it.
 */
export function leftOutPastReach(
  events: InitializationEvent[],
  readingFor: (machine: string, time: number) => ClockOffset | undefined,
): string[] {
  const byMachine = new Map<string, InitializationEvent[]>();
  for (const e of events) {
    if (!byMachine.has(e.machine)) byMachine.set(e.machine, []);
    byMachine.get(e.machine)!.push(e);
  }
  return [...byMachine.keys()].sort(byName).map(m => {
    const list = byMachine.get(m)!;
    const first = list.reduce((a, e) => (e.time < a.time ? e : a));
    const problem = pastReachProblem(
      first.time,
      m,
      readingFor(m, first.time)!,
    )!;
    const which =
      list.length > 1
        ? `${counted(list.length, 'event')} of ${m} left out, the first a ${first.type} of ${first.service}: `
        : `${first.type} of ${first.service} on ${m} left out: `;
    return which + problem;
  });
}

/**
 * Readings of one machine's clock that contradict each other (offsets a minute apart within ten
 * minutes): each event still takes its nearest reading, but the input should say which is right.
 */
export function conflictingClockReadings(readings: ClockReadings): string[] {
  const warnings: string[] = [];
  for (const m of [...readings.keys()].sort(byName)) {
    const list = readings.get(m)!;
    let conflicts = 0;
    let first = '';
    // The highest and lowest offsets of the readings close before each one, as monotonic queues
    // of their indices: a clock read every second has 600 such readings, each compared with all.
    const high = new Int32Array(list.length);
    const low = new Int32Array(list.length);
    let [highFrom, highTo, lowFrom, lowTo] = [0, 0, 0, 0];
    for (let i = 1, lo = 0; i < list.length; i++) {
      while (list[i].time - list[lo].time > CLOCK_READINGS_CLOSE) lo++;
      const o = list[i - 1].offset;
      while (highTo > highFrom && list[high[highTo - 1]].offset <= o) highTo--;
      high[highTo++] = i - 1;
      while (lowTo > lowFrom && list[low[lowTo - 1]].offset >= o) lowTo--;
      low[lowTo++] = i - 1;
      while (highFrom < highTo && high[highFrom] < lo) highFrom++;
      while (lowFrom < lowTo && low[lowFrom] < lo) lowFrom++;
      if (lo === i) continue;
      // The widest disagreement with any reading close before it.
      const widest = Math.max(
        list[high[highFrom]].offset - list[i].offset,
        list[i].offset - list[low[lowFrom]].offset,
      );
      if (widest > CLOCK_READINGS_AGREE && !conflicts++) {
        // The first reading that far off, for the message.
        let far = lo;
        for (let j = lo + 1; j < i; j++)
          if (
            Math.abs(list[j].offset - list[i].offset) >
            Math.abs(list[far].offset - list[i].offset)
          )
            far = j;
        const s = (x: number) =>
          `${x >= 0 ? '+' : ''}${(x / 1000).toFixed(1)} s`;
        first = `offset ${s(list[far].offset)} at ${iso(list[far].time)} and ${s(list[i].offset)} at ${iso(list[i].time)}`;
      }
    }
    if (conflicts) {
      warnings.push(
        `clock readings of ${m} contradict each other ${conflicts === 1 ? 'once' : `${conflicts} times`} (${first}, machine time): each event takes the reading nearest to it`,
      );
    }
  }
  return warnings;
}

/** Machines with clock readings: a machine whose every reading was left out has its clock read no more than one without any. */
export function machinesWithClockOf(
  all: InitializationEvent[],
  readings: ClockReadings,
  leftOut: LeftOutReadings,
): Set<string> {
  return new Set(
    all
      .filter(
        e =>
          e.type === 'clock' &&
          (readings.has(e.machine) || !leftOut.has(e.machine)),
      )
      .map(e => e.machine),
  );
}

/**
 * Clocks read a year or more off the reference (said apart: ahead, or behind), readings of machines
 * no other event names, and machines without clock readings where others have them.
 */
export function clockWarnings(
  readings: ClockReadings,
  machinesWithClock: Set<string>,
  starts: Start[],
  all: InitializationEvent[],
): string[] {
  const warnings: string[] = [];
  // A clock line for a machine of which no event of any kind (start, failure, anything but clock
  // lines) is known corrects nothing: most often the machine is spelt otherwise in its events.
  const named = new Set<string>();
  for (const e of all) if (e.type !== 'clock') named.add(e.machine);
  const unused = [...machinesWithClock].filter(m => !named.has(m)).sort(byName);
  if (unused.length) {
    warnings.push(
      `clock readings for ${unused.length} machine(s) of which no other event is known (${listed(unused)}): they correct nothing (is the machine spelt otherwise in its events?)`,
    );
  }
  // A clock years ahead of its reference is most often a reference in seconds (read as
  // milliseconds: 1970); one years behind it, a clock reset (a dead battery), which a reference
  // in seconds cannot give.
  const ahead: string[] = [];
  const behind: string[] = [];
  for (const [machine, list] of readings) {
    if (list.some(r => r.offset < -365 * DAY)) ahead.push(machine);
    if (list.some(r => r.offset > 365 * DAY)) behind.push(machine);
  }
  ahead.sort(byName);
  behind.sort(byName);
  if (ahead.length) {
    warnings.push(
      `the clock readings of ${ahead.length} machine(s) (${listed(ahead)}) put their clocks more than a year ahead of the reference: is a 'reference' in seconds?`,
    );
  }
  if (behind.length) {
    warnings.push(
      `the clock readings of ${behind.length} machine(s) (${listed(behind)}) put their clocks more than a year behind the reference: a clock reset (a dead clock battery), or a 'reference' in the future?`,
    );
  }
  if (machinesWithClock.size) {
    const without = [...new Set(starts.map(s => s.machine))]
      .filter(m => !machinesWithClock.has(m))
      .sort(byName);
    if (without.length) {
      warnings.push(
        `no clock readings for ${without.length} machine(s) (${listed(without)}): their clocks are assumed correct`,
      );
    }
  }
  return warnings;
}
