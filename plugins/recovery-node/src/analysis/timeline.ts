/**
 * Steps 1 and 2 of the dependency analysis: the initializations it works on, mapped to services,
 * on the reference clock, weighed and indexed. Each concern in a file of its own: the events read
 * (timelineEvents), clock skew (timelineClocks), the names (timelineNames), the weights
 * (timelineWeights) and the index by service (timelineIndex).
 */
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { byName } from './graph';
import { compileServiceMap, ServiceMap, ServiceMapper } from './mapping';
import {
  clockReadings,
  clockWarnings,
  conflictingClockReadings,
  correctorOf,
  leftOutClockReadings,
  leftOutPastReach,
  machinesWithClockOf,
} from './timelineClocks';
import {
  epochWarnings,
  neverStarted,
  readEvents,
  refuseWithoutStarts,
  serviceMapWarnings,
  sortAndDedupe,
} from './timelineEvents';
import { byService } from './timelineIndex';
import { machineWarnings, serviceNamesOf } from './timelineNames';
import { restarts, timelineClock, weigh } from './timelineWeights';

export { DAY } from './time';
export { clockCorrector } from './timelineClocks';
export { AnalysisInputError, NoStartEventsError } from './timelineEvents';
export {
  awaitedMachines,
  firstInit,
  initializedWithin,
  machinePairs,
  shareMachine,
} from './timelineIndex';

export interface TimelineOptions {
  /** A map, or its mapper already compiled. */
  map?: ServiceMap | ServiceMapper;
  /** Point in time of interest; default the latest event. */
  at?: number;
  /** `at`'s setting as warnings name it, where the user sets one (`--at`). */
  atSetting?: string;
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
  warnings.push(...clockWarnings(readings, machinesWithClock, starts, all));
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
