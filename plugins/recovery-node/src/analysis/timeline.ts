/**
 * Steps 1 and 2 of the dependency analysis: the initializations it works on, mapped to services,
 * on the reference clock, weighed and indexed.
 */
import {
  type InitializationEvent,
  machinesAwaited,
} from '@backstage-recovery/plugin-recovery-common';
import { byName, counted, listed } from './graph';
import { delayText } from './kernel';
import { compileServiceMap, ServiceMap, ServiceMapper } from './mapping';
import { lowerBound } from './sorted';
import {
  byReadingTime,
  MAX_TIME,
  nearestReading,
  pastReachProblem,
  type ClockOffset,
} from '../events/clock';
import { clockReadingProblem } from '../events/parse';

/**
 * Input the analysis cannot take (no start events, more services than it holds, a map or clock
 * reading that makes a name or time invalid): an error of its own kind, so callers can tell it apart.
 *
 * @public
 */
export class AnalysisInputError extends Error {}

/**
 * The input holds no initialization (start) events: the wrong files, or another format.
 *
 * @public
 */
export class NoStartEventsError extends AnalysisInputError {}

/** Share of the services below which initializations around one make it a restart. */
const RESTART_SERVICES = 0.5;

/** Removes adjacent duplicates from a sorted array in place; returns how many. */
function dedupe<T>(list: T[], same: (x: T, y: T) => boolean): number {
  let k = 0;
  for (let i = 0; i < list.length; i++)
    if (k === 0 || !same(list[k - 1], list[i])) list[k++] = list[i];
  const removed = list.length - k;
  list.length = k;
  return removed;
}

type ClockReadings = Map<string, ClockOffset[]>;
/** Readings left out, by machine, each with why. */
type LeftOutReadings = Map<
  string,
  Array<InitializationEvent & { problem: string }>
>;

/**
 * Each machine's clock readings (machine time, offset = reference − machine clock), in time order;
 * and, by machine, those left out as `clockReadingProblem` refuses them (stored before the parsers
 * refused them too), each with why.
 */
function clockReadings(events: InitializationEvent[]): {
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
function correctorOf(readings: ClockReadings): ((
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
/** Event times before this (1973-03-03) are epoch seconds read as milliseconds, most likely. */
const EPOCH_SECONDS_SUSPECT = 1e11;
/**
 * … after this (2200), epoch microseconds (journald's __REALTIME_TIMESTAMP copied into a `time`)
 * read as milliseconds, most likely: still valid dates, after the year 50,000.
 */
const EPOCH_MICROS_SUSPECT = Date.UTC(2200, 0, 1);

const iso = (t: number) => new Date(t).toISOString();
/** A stored time as ISO 8601 where a date holds it, else as it is. */
const shownTime = (t: number) => (Math.abs(t) <= MAX_TIME ? iso(t) : String(t));
/** Services one analysis takes (6,000 took 1.5 GB; 24,000 overflowed a Map of pairs). */
const MAX_SERVICES = 5000;
export const DAY = 86_400_000;

/** One warning per machine with readings left out (`clockReadings`): how many, and the first by time. */
function leftOutClockReadings(leftOut: LeftOutReadings): string[] {
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
function leftOutPastReach(
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
function conflictingClockReadings(readings: ClockReadings): string[] {
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

export interface TimelineOptions {
  /** A map, or its mapper already compiled. */
  map?: ServiceMap | ServiceMapper;
  /** Point in time of interest; default the latest event. */
  at?: number;
  /** Half-life (ms) of an initialization's weight; 0 or Infinity: no decay. */
  halfLife: number;
  failureWindow: number;
  failureFactor: number;
  /** The delay kernel's window: how far apart two initializations can still be related. */
  maxDelay: number;
  /**
   * Real ms per ms of the timeline (`timeScaleOf`), default 1: the timeline's times, the failure
   * window and the kernel's are on a clock slowed by it; `at` and the half-life stay real.
   */
  timeScale?: number;
}

/**
 * The initializations the analysis works on: mapped to services, on the reference clock, without
 * duplicates, in time order (arrays indexed by initialization), with their weights, and indexed by
 * service.
 */
export interface Timeline {
  serviceNames: string[];
  sid: Map<string, number>;
  machineNames: string[];
  /** Time (ms, reference clock, slowed by the time scale), service index and machine of each initialization. */
  T: Float64Array;
  S: Int32Array;
  machine: string[];
  /** Weight: decays with the distance from `at`, lowered by a failure soon after. */
  Wt: Float64Array;
  /** Time of the failure of the same service earlier in its episode (a knocked-out service), else NaN. */
  failedBefore: Float64Array;
  /**
   * 1 where a failure of the same service followed within the failure window: an attempt, not an
   * initialization. A service restarting until what it needs is up makes such attempts before its
   * dependencies start, so they say nothing of the order it needs.
   */
  failedAttempt: Uint8Array;
  /** 1 where an initialization is no part of a whole-site boot (`restarts`). */
  isRestart: Uint8Array;
  /** Index of the first initialization of each one's episode: a run of initializations without a gap of twice the window. */
  episodeStart: Int32Array;
  machinesOf: Array<Set<string>>;
  initCount: Int32Array;
  /** Initializations of service s, in time order: svcInits[svcStart[s]] … svcInits[svcStart[s + 1] - 1]. */
  svcStart: Int32Array;
  svcInits: Int32Array;
  /** Their times, svcT[k] = T[svcInits[k]]: the searches by service read one array in order. */
  svcT: Float64Array;
  /** The point in time of interest, real. */
  at: number;
  /** Real ms per ms of T (see TimelineOptions). */
  timeScale: number;
  warnings: string[];
}

/** A start event read: its time on the reference clock, its service (mapped) and machine. */
interface Start {
  t: number;
  service: string;
  machine: string;
}

/** The events read (clock readings aside): starts and failures (by service \0 machine), on the reference clock. */
interface EventsRead {
  starts: Start[];
  failures: Map<string, number[]>;
  /** Per machine, its latest and earliest start or failure (machine time). */
  latestOf: Map<string, number>;
  earliestOf: Map<string, number>;
  /**
   * Starts and failures a clock reading moves past the dates a Date holds. The parsers refuse
   * them at their line once every reading is read; the backend's store gets readings from other
   * pushes later, and its analysis leaves such an event out, with a warning, rather than failing.
   */
  outOfReach: InitializationEvent[];
}

/** The initializations weighed, arrays indexed by initialization (see Timeline). */
interface Weighed {
  T: Float64Array;
  S: Int32Array;
  Wt: Float64Array;
  failedBefore: Float64Array;
  failedAttempt: Uint8Array;
  episodeStart: Int32Array;
  machinesOf: Array<Set<string>>;
  initCount: Int32Array;
}

/** Steps 1 and 2 of the analysis: filter, map, compensate clock skew, weigh, index. */
export function buildTimeline(
  events: Iterable<InitializationEvent>,
  o: TimelineOptions,
): Timeline {
  const mapName =
    typeof o.map === 'function' ? o.map : compileServiceMap(o.map);
  const warnings: string[] = [];
  const all = Array.isArray(events)
    ? (events as InitializationEvent[])
    : [...events];
  const { readings, leftOut } = clockReadings(all);
  const correct = correctorOf(readings);
  const machinesWithClock = machinesWithClockOf(all, readings, leftOut);
  const read = readEvents(all, mapName, correct);
  const { starts, failures } = read;
  const outOfReachWarnings = leftOutPastReach(
    read.outOfReach,
    correct.readingFor,
  );
  refuseWithoutStarts(all, read, outOfReachWarnings);
  warnings.push(...neverStarted(starts, failures));
  warnings.push(...serviceMapWarnings(mapName));
  warnings.push(...conflictingClockReadings(readings));
  warnings.push(...epochWarnings(all, read));
  // A reading past any clock's offset would move the machine's boots out of reach.
  warnings.push(...leftOutClockReadings(leftOut));
  warnings.push(...outOfReachWarnings);
  warnings.push(...clockWarnings(readings, machinesWithClock, starts));
  warnings.push(...sortAndDedupe(starts, failures));
  const clock = timelineClock(starts, failures, o);
  const { at, timeScale: scale } = clock;
  const serviceNames = serviceNamesOf(starts, warnings);
  const sid = new Map(serviceNames.map((s, i) => [s, i]));
  const w = weigh(starts, failures, sid, o, clock, warnings);
  const machineNames = [...new Set(w.machinesOf.flatMap(s => [...s]))].sort(
    byName,
  );
  warnings.push(
    ...machineWarnings(w.T, starts, machineNames, o, clock, machinesWithClock),
  );
  const n = serviceNames.length;
  const isRestart = restarts(w.T, w.S, n, o.maxDelay, w.episodeStart);
  return {
    serviceNames,
    sid,
    machineNames,
    ...w,
    machine: starts.map(s => s.machine),
    isRestart,
    ...byService(w.T, w.S, n),
    at,
    timeScale: scale,
    warnings,
  };
}

/** Machines with clock readings: a machine whose every reading was left out has its clock read no more than one without any. */
function machinesWithClockOf(
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

/** The point in time of interest, real and on the timeline's clock, and the half-life on that clock. */
interface TimelineClock {
  at: number;
  atClock: number;
  halfLife: number;
  timeScale: number;
}

/**
 * The point in time of interest (default: the latest start or failure) and, on a slowed clock
 * (TimelineOptions.timeScale), the starts and failures moved onto it, in place. From here on,
 * times are on the timeline's clock; `at` stays real for what is said of it.
 */
function timelineClock(
  starts: Start[],
  failures: Map<string, number[]>,
  o: TimelineOptions,
): TimelineClock {
  let at = o.at;
  if (at === undefined) {
    at = starts[starts.length - 1].t;
    for (const list of failures.values())
      at = Math.max(at, list[list.length - 1]);
  }
  const scale = o.timeScale ?? 1;
  let atClock = at;
  let halfLife = o.halfLife;
  if (scale !== 1) {
    const origin = starts[0].t;
    const slowed = (t: number) => (t - origin) / scale;
    for (const s of starts) s.t = slowed(s.t);
    for (const list of failures.values())
      list.forEach((t, j) => (list[j] = slowed(t)));
    atClock = slowed(at);
    halfLife /= scale;
  }
  return { at, atClock, halfLife, timeScale: scale };
}

/** Machine names that look alike, and machines whose services never start near another's. */
function machineWarnings(
  T: Float64Array,
  starts: Start[],
  machineNames: string[],
  o: TimelineOptions,
  { timeScale }: TimelineClock,
  machinesWithClock: Set<string>,
): string[] {
  return [
    ...lookAlikeNames(
      'machines',
      machineNames,
      'where they are one, correct the logs that name it otherwise',
    ),
    ...alone(
      T,
      starts.map(s => s.machine),
      machineNames,
      o.maxDelay,
      timeScale,
      machinesWithClock,
    ),
  ];
}

/** Starts and failures mapped to their services and put on the reference clock. */
function readEvents(
  all: InitializationEvent[],
  mapName: ServiceMapper,
  correct: (machine: string, time: number) => number,
): EventsRead {
  const starts: Start[] = [];
  const failures = new Map<string, number[]>();
  const latestOf = new Map<string, number>();
  const earliestOf = new Map<string, number>();
  const outOfReach: InitializationEvent[] = [];
  for (const e of all) {
    if (e.type === 'clock') continue;
    const service = mapName(e.service);
    // A regex replacement of empty groups only ($1 of an empty match) leaves no name; one that
    // repeats a long name, a name longer than the event store holds.
    const problem = mapName.problem(e.service);
    if (problem) throw new AnalysisInputError(problem);
    if (service.trim() === '')
      throw new AnalysisInputError(
        `a ${e.type} event of ${e.machine} names no service (${JSON.stringify(e.service)})`,
      );
    const t = correct(e.machine, e.time);
    if (!(Math.abs(t) <= MAX_TIME)) {
      outOfReach.push(e);
      continue;
    }
    latestOf.set(
      e.machine,
      Math.max(latestOf.get(e.machine) ?? -Infinity, e.time),
    );
    earliestOf.set(
      e.machine,
      Math.min(earliestOf.get(e.machine) ?? Infinity, e.time),
    );
    if (e.type === 'start') starts.push({ t, service, machine: e.machine });
    else if (e.type === 'failure') {
      const k = `${service}\u0000${e.machine}`;
      if (!failures.has(k)) failures.set(k, []);
      failures.get(k)!.push(t);
    }
  }
  return { starts, failures, latestOf, earliestOf, outOfReach };
}

/** Throws where no start is left to analyse, saying what the input held instead. */
function refuseWithoutStarts(
  all: InitializationEvent[],
  { starts, failures, outOfReach }: EventsRead,
  outOfReachWarnings: string[],
) {
  if (!starts.length && outOfReach.some(e => e.type === 'start')) {
    throw new AnalysisInputError(
      `no start event left to analyse: ${outOfReachWarnings.join('; ')}`,
    );
  }
  if (!starts.length) {
    // Failures or clock readings alone are events too: say which the input held instead.
    const failureCount = [...failures.values()].reduce(
      (k, list) => k + list.length,
      0,
    );
    const clockCount = all.length - failureCount - outOfReach.length;
    const held = [
      failureCount && counted(failureCount, 'failure'),
      clockCount && counted(clockCount, 'clock reading'),
    ].filter(Boolean);
    throw new NoStartEventsError(
      `no initialization (start) events in the input${held.length ? `, only ${held.join(' and ')}` : ''}`,
    );
  }
}

/** Map entries that matched no name, and entries an earlier one shadows. */
function serviceMapWarnings(mapName: ServiceMapper): string[] {
  const warnings: string[] = [];
  const unused = mapName.unused();
  if (unused.length) {
    warnings.push(
      `${unused.length} service map ${unused.length === 1 ? 'entry' : 'entries'} matched no name in the input (${listed(unused.map(key => `'${key}'`))}): misspelt, or names these logs do not carry?`,
    );
  }
  for (const { key, name, by } of mapName.shadowed()) {
    warnings.push(
      `service map entry '${key}' maps nothing: the names it matches go to an earlier entry ('${name}' to '${by}'); exact names come first, then regex keys in the map's order`,
    );
  }
  return warnings;
}

/** Event times that look like seconds or microseconds read as milliseconds, for all or some machines. */
function epochWarnings(
  all: InitializationEvent[],
  { outOfReach, latestOf, earliestOf }: EventsRead,
): string[] {
  const warnings: string[] = [];
  const left = new Set(outOfReach);
  const kept = (e: InitializationEvent) => left.size === 0 || !left.has(e);
  const latest = all.reduce(
    (t, e) => (kept(e) ? Math.max(t, e.time) : t),
    -Infinity,
  );
  if (latest < EPOCH_SECONDS_SUSPECT) {
    warnings.push(
      `every event time is before 1973 (the latest: ${iso(latest)}): jsonl epoch times are read as milliseconds (journald's as microseconds, docker's as nanoseconds); if the input gives seconds, its delays are a thousand times too short`,
    );
  } else {
    // One export in seconds among others in milliseconds: its machines' events land in 1970.
    const early = [...latestOf]
      .filter(([, t]) => t < EPOCH_SECONDS_SUSPECT)
      .map(([m]) => m)
      .sort(byName);
    if (early.length) {
      warnings.push(
        `every event of ${early.length} machine(s) (${listed(early)}) is before 1973 while the others' are not: jsonl epoch times are read as milliseconds (journald's as microseconds, docker's as nanoseconds); if their input gives seconds, correct it`,
      );
    }
  }
  const earliest = all.reduce(
    (t, e) => (kept(e) ? Math.min(t, e.time) : t),
    Infinity,
  );
  if (earliest > EPOCH_MICROS_SUSPECT) {
    warnings.push(
      `every event time is after 2200 (the earliest: ${iso(earliest)}): jsonl epoch times are read as milliseconds (journald's as microseconds, docker's as nanoseconds); if the input gives microseconds, its delays are a thousand times too long`,
    );
  } else {
    // One export in microseconds among others in milliseconds: its machines' events land far ahead.
    const late = [...earliestOf]
      .filter(([, t]) => t > EPOCH_MICROS_SUSPECT)
      .map(([m]) => m)
      .sort(byName);
    if (late.length) {
      warnings.push(
        `every event of ${late.length} machine(s) (${listed(late)}) is after 2200 while the others' are not: jsonl epoch times are read as milliseconds (journald's as microseconds, docker's as nanoseconds); if their input gives microseconds, correct it`,
      );
    }
  }
  return warnings;
}

/** Clocks read a year or more off the reference, and machines without clock readings where others have them. */
function clockWarnings(
  readings: ClockReadings,
  machinesWithClock: Set<string>,
  starts: Start[],
): string[] {
  const warnings: string[] = [];
  // A clock reading's `reference` in seconds (or a clock decades off) puts the machine years away.
  const farOff = [...readings]
    .filter(([, list]) => list.some(r => Math.abs(r.offset) > 365 * DAY))
    .map(([m]) => m)
    .sort(byName);
  if (farOff.length) {
    warnings.push(
      `the clock readings of ${farOff.length} machine(s) (${listed(farOff)}) put their clocks more than a year off the reference: is a 'reference' in seconds?`,
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

/**
 * Sorts the starts and failures in time order, in place, and drops duplicates: the same record
 * twice (overlapping exports, a file given twice) is one event: duplicates would weigh a boot
 * twice. The backend's store keeps one of each the same way. Returns the warning, if any.
 */
function sortAndDedupe(
  starts: Start[],
  failures: Map<string, number[]>,
): string[] {
  starts.sort(
    (x, y) =>
      x.t - y.t || byName(x.service, y.service) || byName(x.machine, y.machine),
  );
  let duplicates = 0;
  for (const list of failures.values()) {
    list.sort((a, b) => a - b);
    duplicates += dedupe(list, (x, y) => x === y);
  }
  duplicates += dedupe(
    starts,
    (x, y) => x.t === y.t && x.service === y.service && x.machine === y.machine,
  );
  return duplicates
    ? [
        `${duplicates} duplicate event(s) ignored (the same machine, service, event and time more than once: overlapping exports?)`,
      ]
    : [];
}

/** The services by name; throws past MAX_SERVICES, and warns of look-alike names. */
function serviceNamesOf(starts: Start[], warnings: string[]): string[] {
  const serviceNames = [...new Set(starts.map(s => s.service))].sort(byName);
  if (serviceNames.length > MAX_SERVICES) {
    throw new AnalysisInputError(
      `${serviceNames.length} distinct services (the analysis takes at most ${MAX_SERVICES}: its pair statistics grow with the square), e.g. ${serviceNames
        .slice(0, 3)
        .join(
          ', ',
        )}: map transient units to one service (a map entry such as "/^session-\\d+\\.scope$/": "session.scope") or leave them out of the input`,
    );
  }
  warnings.push(
    ...lookAlikeNames(
      'services',
      serviceNames,
      'where they are one, map them to one name',
    ),
  );
  return serviceNames;
}

/**
 * Each initialization's weight (decaying with its distance from the point in time of interest,
 * lowered by a failure soon after), its episode, and whether it was a failed attempt or came
 * after a failure of its service (knocked out).
 */
function weigh(
  starts: Start[],
  failures: Map<string, number[]>,
  sid: Map<string, number>,
  o: TimelineOptions,
  { at, atClock, halfLife }: TimelineClock,
  warnings: string[],
): Weighed {
  const n = sid.size;
  const N = starts.length;
  const T = new Float64Array(N);
  const S = new Int32Array(N);
  const Wt = new Float64Array(N);
  const failedBefore = new Float64Array(N).fill(NaN);
  const failedAttempt = new Uint8Array(N);
  const machinesOf: Array<Set<string>> = Array.from(
    { length: n },
    () => new Set<string>(),
  );
  const initCount = new Int32Array(n);
  const lambda =
    halfLife > 0 && Number.isFinite(halfLife) ? Math.LN2 / halfLife : 0;
  // In logs: a point in time of interest far enough off underflows every weight to 0.
  const logDecay = (t: number) => -lambda * Math.abs(atClock - t);
  // Weights are relative to the newest initializations of most services: evidence far from the
  // point in time of interest, all of it (an --at far off, or one stray event from a clock years
  // ahead), would otherwise weigh next to nothing against the fixed price of a dependency.
  const newest = new Float64Array(n).fill(-Infinity);
  for (let i = 0; i < N; i++) {
    const id = sid.get(starts[i].service)!;
    S[i] = id;
    newest[id] = Math.max(newest[id], logDecay(starts[i].t));
  }
  const logScale = newest.sort()[n >> 1];
  if (logScale < -Math.LN2) {
    warnings.push(
      `most services last initialized more than a half-life (${(o.halfLife / DAY).toFixed(0)} days) away from the point in time of interest ${iso(at)}: weights are taken relative to their newest initializations (an event far after the rest, from a clock far ahead, or an --at far from the history?)`,
    );
  }
  const episodeStart = episodesOf(starts, o.maxDelay);
  const w: Weighed = {
    T,
    S,
    Wt,
    failedBefore,
    failedAttempt,
    episodeStart,
    machinesOf,
    initCount,
  };
  const attempts = new LoopingAttempts(w, o.failureFactor);
  for (let i = 0; i < N; i++) {
    const s = starts[i];
    const id = S[i];
    T[i] = s.t;
    machinesOf[id].add(s.machine);
    initCount[id]++;
    let weight = Math.exp(Math.min(0, logDecay(s.t) - logScale));
    const key = `${s.service}\u0000${s.machine}`;
    attempts.start(key, i, o.failureWindow);
    const f = failures.get(key);
    if (f) {
      const j = lowerBound(f, s.t);
      if (j < f.length && f[j] - s.t <= o.failureWindow) {
        weight *= o.failureFactor;
        failedAttempt[i] = 1;
      }
      // A service that failed earlier in the same episode was knocked out, most often by a
      // dependency going away: its restart is no reboot of its own machine. It comes back only
      // once what it needs is back, which down a deep chain is hours after its failure.
      if (j > 0 && f[j - 1] >= starts[episodeStart[i]].t - 2 * o.maxDelay)
        failedBefore[i] = f[j - 1];
    }
    Wt[i] = weight;
  }
  return w;
}

/** Index of the first initialization of each one's episode: a run of initializations without a gap of twice the window. */
function episodesOf(starts: Start[], maxDelay: number): Int32Array {
  const N = starts.length;
  const episodeStart = new Int32Array(N);
  for (let i = 1; i < N; i++)
    episodeStart[i] =
      starts[i].t - starts[i - 1].t > 2 * maxDelay ? i : episodeStart[i - 1];
  return episodeStart;
}

/**
 * A unit that exits without a failure record (exit 0, `Restart=always`) restarts in a loop
 * until what it needs is up, and its loop would pass for starts before that: where three or
 * more starts of a service on a machine come each within the failure window of the next, all
 * but the last came to nothing, as a start a failure follows. Two can be a boot and a restart.
 */
class LoopingAttempts {
  // Each service's latest start on each machine so far, the one before it, and how many starts
  // in a row came within the failure window of the next.
  private readonly previousStart = new Map<
    string,
    { last: number; before: number; run: number }
  >();

  constructor(
    private readonly w: Weighed,
    private readonly failureFactor: number,
  ) {}

  /** Start i of the service on a machine (key), its time already in T; marks looping ones as attempts. */
  start(key: string, i: number, failureWindow: number) {
    const { T } = this.w;
    const previous = this.previousStart.get(key);
    if (previous && T[i] - T[previous.last] <= failureWindow) {
      previous.run++;
      if (previous.run === 3) this.attempt(previous.before);
      if (previous.run >= 3) this.attempt(previous.last);
      previous.before = previous.last;
      previous.last = i;
    } else this.previousStart.set(key, { last: i, before: -1, run: 1 });
  }

  private attempt(i: number) {
    const { Wt, failedAttempt } = this.w;
    if (failedAttempt[i]) return;
    Wt[i] *= this.failureFactor;
    failedAttempt[i] = 1;
  }
}

/** Initializations of each service in time order, and their times (Timeline.svcStart). */
function byService(T: Float64Array, S: Int32Array, n: number) {
  const N = T.length;
  const svcStart = new Int32Array(n + 1);
  for (let i = 0; i < N; i++) svcStart[S[i] + 1]++;
  for (let a = 0; a < n; a++) svcStart[a + 1] += svcStart[a];
  const svcInits = new Int32Array(N);
  const svcFill = svcStart.slice(0, n);
  for (let i = 0; i < N; i++) svcInits[svcFill[S[i]]++] = i;
  const svcT = new Float64Array(N);
  for (let k = 0; k < N; k++) svcT[k] = T[svcInits[k]];
  return { svcStart, svcInits, svcT };
}

/**
 * Services that failed but never started, and machines whose services only failed: no
 * initialization places them, so they are in no order and no wave, which the result would
 * otherwise leave unsaid. (A machine with clock readings alone hosts nothing to boot.)
 */
function neverStarted(
  starts: Array<{ service: string; machine: string }>,
  failures: Map<string, number[]>,
): string[] {
  const started = new Set(starts.map(s => s.service));
  const startedOn = new Set(starts.map(s => s.machine));
  const failedOnly = new Map<string, string[]>();
  const idle = new Set<string>();
  for (const key of failures.keys()) {
    const [service, machine] = key.split('\u0000');
    if (!started.has(service))
      failedOnly.set(service, [...(failedOnly.get(service) ?? []), machine]);
    if (!startedOn.has(machine)) idle.add(machine);
  }
  const services = [...failedOnly.keys()]
    .sort(byName)
    .map(x => `${x} (${failedOnly.get(x)!.sort(byName).join(', ')})`);
  const warnings: string[] = [];
  if (services.length) {
    warnings.push(
      `${counted(services.length, 'service')} failed but never started, left out of the analysis: ${listed(services)}`,
    );
  }
  if (idle.size) {
    warnings.push(
      `${counted(idle.size, 'machine')} whose services only failed, in no wave: ${listed([...idle].sort(byName))}`,
    );
  }
  return warnings;
}

/**
 * Machines none of whose initializations had another machine's within the window, before or
 * after: nothing in the history orders them against the others, so the plan puts them in the
 * first wave. With several machines that is most often a clock hours off without clock readings.
 */
function alone(
  T: Float64Array,
  machine: string[],
  machineNames: string[],
  window: number,
  scale: number,
  withClock: Set<string>,
): string[] {
  if (machineNames.length < 2) return [];
  const near = new Set<string>();
  // Forward, then backward: the nearest initialization passed, and the nearest of another machine than its.
  for (const order of [1, -1]) {
    let last = -1;
    let lastOther = -1;
    for (let k = 0; k < T.length; k++) {
      const i = order > 0 ? k : T.length - 1 - k;
      const other =
        last >= 0 && machine[last] !== machine[i] ? last : lastOther;
      if (other >= 0 && Math.abs(T[i] - T[other]) <= window)
        near.add(machine[i]);
      if (last >= 0 && machine[last] !== machine[i]) lastOther = last;
      last = i;
    }
  }
  const lonely = machineNames.filter(m => !near.has(m));
  if (!lonely.length) return [];
  const unread = lonely.filter(m => !withClock.has(m));
  return [
    `${counted(lonely.length, 'machine')} never started a service within ${delayText(window * scale)} of another machine's, so nothing orders ${lonely.length === 1 ? 'it' : 'them'} against the others: ${listed(lonely)}${unread.length ? ` (a clock hours off? ${listed(unread)} ${unread.length === 1 ? 'has' : 'have'} no clock readings)` : ''}`,
  ];
}

/**
 * Names (sorted) that differ only in case, Unicode form (`café` composed and decomposed, a
 * full-width letter) or surrounding spaces (`" nginx"` of a hand-made line), which print alike or nearly: analysed apart, their dependencies read as a
 * name depending on itself and their machines as one machine in two waves, so a warning names them.
 */
function lookAlikeNames(
  what: 'services' | 'machines',
  names: string[],
  advice: string,
): string[] {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    const key = name.normalize('NFKC').toLowerCase().trim();
    const group = groups.get(key);
    if (group) group.push(name);
    else groups.set(key, [name]);
  }
  const alike = [...groups.values()].filter(g => g.length > 1);
  if (!alike.length) return [];
  // Names that print the same are shown with their code points beyond ASCII.
  const shown = (group: string[]) => {
    const same =
      new Set(group.map(x => x.normalize('NFC'))).size < group.length;
    return group
      .map(x =>
        same
          ? JSON.stringify(x).replace(
              /[^\x20-\x7e]/g,
              c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
            )
          : JSON.stringify(x),
      )
      .join(', ');
  };
  const more =
    alike.length > 5 ? ` and ${counted(alike.length - 5, 'more group')}` : '';
  return [
    `${what} whose names differ only in case, Unicode form or surrounding spaces are analysed as different ${what}: ${alike.slice(0, 5).map(shown).join('; ')}${more} (${advice})`,
  ];
}

/**
 * A restart: an initialization around which (within the window) fewer than half the services
 * initialize, unless it is its service's first in an episode that reaches at least half of them. A whole-site boot of deep
 * chains has quiet stretches where few services start at a time; its initializations there are
 * the boot all the same, not restarts (which would pass the boot's order for restart evidence).
 */
function restarts(
  T: Float64Array,
  S: Int32Array,
  n: number,
  maxDelay: number,
  episodeStart: Int32Array,
): Uint8Array {
  const N = T.length;
  const isRestart = new Uint8Array(N);
  const seen = new Int32Array(n);
  let distinct = 0;
  for (let i = 0, lo = 0, hi = 0; i < N; i++) {
    while (hi < N && T[hi] <= T[i] + maxDelay)
      if (seen[S[hi++]]++ === 0) distinct++;
    while (T[lo] < T[i] - maxDelay) if (--seen[S[lo++]] === 0) distinct--;
    isRestart[i] = distinct < RESTART_SERVICES * n ? 1 : 0;
  }
  const episode = seen.fill(-1); // the episode (its first index) in which each service last initialized
  for (let lo = 0; lo < N;) {
    let hi = lo + 1;
    while (hi < N && episodeStart[hi] === lo) hi++;
    let services = 0;
    for (let i = lo; i < hi; i++)
      if (episode[S[i]] !== lo) ((episode[S[i]] = lo), services++);
    if (services >= RESTART_SERVICES * n) {
      for (let i = lo; i < hi; i++) {
        if (episode[S[i]] === lo) {
          episode[S[i]] = -1;
          isRestart[i] = 0;
        }
      }
    }
    lo = hi;
  }
  return isRestart;
}

/** Position in `svcInits` of service s's first initialization at t or later (after t, with `after`). */
export function firstInit(
  tl: Timeline,
  s: number,
  t: number,
  after = false,
): number {
  const { svcT, svcStart } = tl;
  let lo = svcStart[s];
  let hi = svcStart[s + 1];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const u = svcT[mid];
    if (u < t || (after && u === t)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Whether service s initialized within [from, to]. */
export function initializedWithin(
  tl: Timeline,
  s: number,
  from: number,
  to: number,
): boolean {
  const k = firstInit(tl, s, from);
  return k < tl.svcStart[s + 1] && tl.svcT[k] <= to;
}

/** A reboot of a machine both run on restarts both: their restarts say nothing about each other. */
export const shareMachine = (tl: Timeline, a: number, b: number) =>
  [...tl.machinesOf[a]].some(m => tl.machinesOf[b].has(m));

/** Each machine of a with each machine of b it waits for in the plan (by `machinesAwaited`). */
export function machinePairs(
  tl: Timeline,
  a: number,
  b: number,
): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const ma of tl.machinesOf[a])
    for (const mb of machinesAwaited(ma, tl.machinesOf[b]))
      pairs.push([ma, mb]);
  return pairs;
}

/** The machines of b that some machine of a waits for in the plan. */
export const awaitedMachines = (tl: Timeline, a: number, b: number) =>
  new Set(machinePairs(tl, a, b).map(([, mb]) => mb));
