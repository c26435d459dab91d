/**
 * The initializations weighed: the point in time of interest and the timeline's clock, each
 * initialization's weight, episode and failed attempts, and which are restarts rather than
 * whole-site boots.
 */
import { formatSeconds } from '@backstage-recovery/plugin-recovery-common';
import { lowerBound } from './sorted';
import { DAY, iso } from './time';
import type { TimelineOptions } from './timeline';
import type { Start } from './timelineEvents';

/** Share of the services below which initializations around one make it a restart. */
const RESTART_SERVICES = 0.5;

/** The initializations weighed, arrays indexed by initialization (see Timeline). */
export interface Weighed {
  T: Float64Array;
  S: Int32Array;
  Wt: Float64Array;
  failedBefore: Float64Array;
  failedAttempt: Uint8Array;
  episodeStart: Int32Array;
  machinesOf: Array<Set<string>>;
  initCount: Int32Array;
}

/** The point in time of interest, real and on the timeline's clock, and the half-life on that clock. */
export interface TimelineClock {
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
export function timelineClock(
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

/**
 * Each initialization's weight (decaying with its distance from the point in time of interest,
 * lowered by a failure soon after), its episode, and whether it was a failed attempt or came
 * after a failure of its service (knocked out).
 */
export function weigh(
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
  // point in time of interest, all of it (an `at` far off, or one stray event from a clock years
  // ahead), would otherwise weigh next to nothing against the fixed price of a dependency.
  const newest = new Float64Array(n).fill(-Infinity);
  for (let i = 0; i < N; i++) {
    const id = sid.get(starts[i].service)!;
    S[i] = id;
    newest[id] = Math.max(newest[id], logDecay(starts[i].t));
  }
  const logScale = newest.sort()[n >> 1];
  if (logScale < -Math.LN2) {
    // In whole days as ever (`90 days`); another (`--half-life 12h`, `1d12h`) as formatSeconds says it.
    const halfLifeWorded =
      o.halfLife >= DAY && o.halfLife % DAY === 0
        ? `${o.halfLife / DAY} days`
        : formatSeconds(o.halfLife / 1000);
    warnings.push(
      `most services last initialized more than a half-life (${halfLifeWorded}) away from the point in time of interest ${iso(at)}: weights are taken relative to their newest initializations (an event far after the rest, from a clock far ahead${o.atSetting ? `, or an ${o.atSetting} far from the history` : ''}?)`,
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

/**
 * A restart: an initialization around which (within the window) fewer than half the services
 * initialize, unless it is its service's first in an episode that reaches at least half of them. A whole-site boot of deep
 * chains has quiet stretches where few services start at a time; its initializations there are
 * the boot all the same, not restarts (which would pass the boot's order for restart evidence).
 */
export function restarts(
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
    for (let i = lo; i < hi; i++) {
      if (episode[S[i]] !== lo) {
        episode[S[i]] = lo;
        services++;
      }
    }
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
