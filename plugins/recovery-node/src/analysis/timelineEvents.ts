/**
 * Step 1 of the dependency analysis, as the timeline reads it: the starts and failures of the
 * input, mapped to services and put on the reference clock, in time order without duplicates; the
 * input refused where it holds nothing to analyse, and what else it says wrong warned of.
 */
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { byName, counted, listed } from './graph';
import type { ServiceMapper } from './mapping';
import { iso } from './time';
import { MAX_TIME } from '../events/clock';

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

/** Removes adjacent duplicates from a sorted array in place; returns how many. */
function dedupe<T>(list: T[], same: (x: T, y: T) => boolean): number {
  let k = 0;
  for (let i = 0; i < list.length; i++)
    if (k === 0 || !same(list[k - 1], list[i])) list[k++] = list[i];
  const removed = list.length - k;
  list.length = k;
  return removed;
}

/** Event times before this (1973-03-03) are epoch seconds read as milliseconds, most likely. */
const EPOCH_SECONDS_SUSPECT = 1e11;
/**
 * … after this (2200), epoch microseconds (journald's __REALTIME_TIMESTAMP copied into a `time`)
 * read as milliseconds, most likely: still valid dates, after the year 50,000.
 */
const EPOCH_MICROS_SUSPECT = Date.UTC(2200, 0, 1);

/** A start event read: its time on the reference clock, its service (mapped) and machine. */
export interface Start {
  t: number;
  service: string;
  machine: string;
}

/** The events read (clock readings aside): starts and failures (by service \0 machine), on the reference clock. */
export interface EventsRead {
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

/** Starts and failures mapped to their services and put on the reference clock. */
export function readEvents(
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
export function refuseWithoutStarts(
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
export function serviceMapWarnings(mapName: ServiceMapper): string[] {
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
export function epochWarnings(
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

/**
 * Sorts the starts and failures in time order, in place, and drops duplicates: the same record
 * twice (overlapping exports, a file given twice) is one event: duplicates would weigh a boot
 * twice. The backend's store keeps one of each the same way. Returns the warning, if any.
 */
export function sortAndDedupe(
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

/**
 * Services that failed but never started, and machines whose services only failed: no
 * initialization places them, so they are in no order and no wave, which the result would
 * otherwise leave unsaid. (A machine with clock readings alone hosts nothing to boot.)
 */
export function neverStarted(
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
