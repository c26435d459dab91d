import type { InferredMachineWait, InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { createKernel, KernelOptions } from './kernel';
import { compileServiceMap, ServiceMap } from './mapping';
import { breakCycles, Cycle, Edge, generations, precedenceOrder, timedGenerations, transitiveReduction } from './graph';

export interface AnalysisOptions {
  /** Score a dependency must reach. Default 0.7. */
  threshold?: number;
  /** Point in time of interest (epoch ms, reference clock). Default: the latest event. */
  at?: number;
  /** Half-life (ms) of an initialization's weight with its distance from `at`. Default 90 days; 0 or Infinity disables. */
  halfLife?: number;
  kernel?: KernelOptions;
  /** A failure of the same service on the same machine within this time after a start lowers its weight. Default 2 min. */
  failureWindow?: number;
  /** Weight factor of such a start. Default 0.2. */
  failureFactor?: number;
  /** Below this many samples a dependency has low confidence. Default 5. */
  minSamples?: number;
  /** Name mapping applied to every event's service. */
  map?: ServiceMap;
  /**
   * `full` (default): each initialization explained by the latest of its service's dependencies
   * (which resists start-order confounding and finds several dependencies), scored by the kernel
   * over the initializations each explains, with cycle breaking and transitive reduction;
   * `plain`: the kernel score over all initializations of the dependent, nothing more (the
   * baseline of the benchmark).
   */
  method?: 'full' | 'plain';
  /** Malformed input lines skipped by the parser, reported back as is. */
  skipped?: number;
}

export interface ServiceSummary {
  service: string;
  machines: string[];
  initializations: number;
}

export interface Dependency {
  service: string;
  dependsOn: string;
  /** In [0, 1], rounded to 4 decimals. */
  score: number;
  /** Initializations of `service` behind the score. */
  samples: number;
  confidence: 'high' | 'low';
}

export interface AnalysisResult {
  services: ServiceSummary[];
  /** Direct dependencies (transitive reduction of the accepted ones), sorted. */
  dependencies: Dependency[];
  /** Dependencies first. */
  serviceOrder: string[];
  machineOrder: string[];
  /** Topological generations of machines: a wave's machines can boot in parallel. */
  waves: string[][];
  /** Which machines each machine waits for (after cycle breaking). */
  machineDependencies: Array<{ machine: string; waitsFor: string[] }>;
  /**
   * Machine edges of the plan that rest on restarts: the machine's services restarted after
   * `followed` of the `chances` times `waitsFor` rebooted on its own while it was up.
   */
  rebootsFollowed: InferredMachineWait[];
  cycles: Cycle[];
  machineCycles: Array<{ machines: string[]; dropped: { machine: string; waitsFor: string; score: number } }>;
  /** `matrix[r][c]` > 0: column service `c` initializes first and row `r` depends on it by that score; < 0: the other way. */
  correlation: { services: string[]; matrix: number[][] };
  warnings: string[];
  skipped: number;
  /** The point in time of interest used (epoch ms). */
  at: number;
}

const DAY = 86_400_000;
/** Pairs below this conditional kernel score are no candidate dependencies. */
const CANDIDATE_FLOOR = 0.5;
/** Candidate dependencies per dependent (best kernel scores). */
const MAX_CANDIDATES = 16;
/** Restarts of a service on another machine that a dependent must have followed to make it a candidate whatever its kernel score. */
const FOLLOWED_CANDIDATE = 2;
/** Steps of the dependency search refit the model for this many of the best-screened changes. */
const SCREENED = 3;
/**
 * What a dependency must add to the log-likelihood of its dependent's delays to be selected, in
 * nats per log of the initializations behind it (as in BIC): on another machine, and on the same
 * machine (which cannot lengthen the plan).
 */
const SELECT_GAIN = 1.75;
const LOCAL_GAIN = 0.85;
/** Prior and floor of the dependent's delay sd, and prior weight (in initializations), minutes. */
const PRIOR_SD = 6;
const MIN_SD = 0.5;
const PRIOR_WEIGHT = 1;
/** Share and density (per minute, uniform over an hour) of initializations no dependency explains. */
const BACKGROUND_SHARE = 0.05;
const BACKGROUND_DENSITY = 1 / 60;
const LOG_BACKGROUND = Math.log(BACKGROUND_DENSITY);
/**
 * Shape of the dependent's delay model: a generalized normal with exponent 3, flatter on top and
 * steeper at the edges than a normal (start delays are bounded), with its scale and norm per unit
 * of standard deviation (GAMMA_THIRD is Γ(1/3); Γ(3/3) = 1).
 */
const DELAY_SHAPE = 3;
const GAMMA_THIRD = 2.6789385347077476;
const ALPHA_PER_SD = Math.sqrt(GAMMA_THIRD);
const NORM_PER_SD = DELAY_SHAPE / (2 * ALPHA_PER_SD * GAMMA_THIRD);
/** Density of the delay model at v (minutes), weighted by the share not in the background. */
function delayDensity(v: number, mu: number, sd: number): number {
  const u = Math.abs(v - mu) / (sd * ALPHA_PER_SD);
  return (((1 - BACKGROUND_SHARE) * NORM_PER_SD) / sd) * Math.exp(-u * u * u);
}
/** Share of a service's initializations its dependencies on a machine must explain to make that a hard edge of the machine plan. */
const PLAN_SHARE = 0.6;
/**
 * Or: restarts in which the service followed the dependency (with at least PLAN_RESTART_SHARE of
 * its initializations explained); or reboots of the machine that the machine followed.
 */
const PLAN_RESTARTS = 2;
const PLAN_RESTART_SHARE = 0.2;
/** Share of the services below which initializations around one make it a restart. */
const RESTART_SERVICES = 0.5;
/** Restarts say something only where dependencies are followed this much more often than other candidates. */
const FOLLOW_MARGIN = 0.2;
/**
 * A followed restart counts half: one upstream restart makes its dependents follow each other
 * too, so other candidates are followed more often than epsilon, their average, says.
 */
const FOLLOWED_WEIGHT = 0.5;
/** A dependency must precede its dependent in at least this share of the boots where both initialized. */
const MIN_CONSISTENCY = 0.9;
/** Precedence this consistent (over enough co-boots) constrains the order even without a dependency. */
const ORDER_CONSISTENCY = 0.9;
const round = (x: number) => Math.round(x * 1e4) / 1e4;
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function lowerBound(arr: Float64Array | number[], x: number): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (arr[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Removes adjacent duplicates from a sorted array in place; returns how many. */
function dedupe<T>(list: T[], same: (x: T, y: T) => boolean): number {
  let k = 0;
  for (let i = 0; i < list.length; i++) if (k === 0 || !same(list[k - 1], list[i])) list[k++] = list[i];
  const removed = list.length - k;
  list.length = k;
  return removed;
}

/** A dependency the selection found: kernel score and count of the initializations it explains, how many were restarts, their mean delay (min). */
interface Explained {
  score: number;
  samples: number;
  restarts: number;
  delay: number;
}

/** A no-initialization input is an error of its own kind, so callers can tell it apart. */
export class AnalysisInputError extends Error {}

/**
 * Per-pair accumulators, dense for up to a few thousand services, sparse beyond.
 */
interface PairStore {
  /** The dense matrix (row-major, n × n), when dense. */
  dense?: Float64Array;
  add(a: number, b: number, v: number): void;
  get(a: number, b: number): number;
  forEach(fn: (a: number, b: number, v: number) => void): void;
}

function pairStore(n: number): PairStore {
  if (n <= 3000) {
    const m = new Float64Array(n * n);
    return {
      dense: m,
      add: (a, b, v) => {
        m[a * n + b] += v;
      },
      get: (a, b) => m[a * n + b],
      forEach: fn => {
        for (let i = 0; i < m.length; i++) if (m[i] !== 0) fn(Math.floor(i / n), i % n, m[i]);
      },
    };
  }
  const m = new Map<number, number>();
  return {
    add: (a, b, v) => {
      const k = a * n + b;
      m.set(k, (m.get(k) ?? 0) + v);
    },
    get: (a, b) => m.get(a * n + b) ?? 0,
    forEach: fn => {
      for (const k of [...m.keys()].sort((x, y) => x - y)) fn(Math.floor(k / n), k % n, m.get(k)!);
    },
  };
}

/**
 * Clock offset (reference − machine clock) per machine, from its `clock` events: the reading
 * nearest in time to each event applies (ties: the earlier one).
 */
export function clockCorrector(events: InitializationEvent[]): (machine: string, time: number) => number {
  const readings = new Map<string, Array<{ time: number; offset: number }>>();
  for (const e of events) {
    if (e.type !== 'clock' || typeof e.reference !== 'number') continue;
    if (!readings.has(e.machine)) readings.set(e.machine, []);
    readings.get(e.machine)!.push({ time: e.time, offset: e.reference - e.time });
  }
  const tables = new Map<string, { times: Float64Array; offsets: Float64Array }>();
  for (const [m, list] of readings) {
    list.sort((a, b) => a.time - b.time || a.offset - b.offset);
    tables.set(m, {
      times: Float64Array.from(list, r => r.time),
      offsets: Float64Array.from(list, r => r.offset),
    });
  }
  return (machine, time) => {
    const t = tables.get(machine);
    if (!t) return time;
    const i = lowerBound(t.times, time);
    let best = i;
    if (i >= t.times.length) best = t.times.length - 1;
    else if (i > 0 && time - t.times[i - 1] <= t.times[i] - time) best = i - 1;
    return time + t.offsets[best];
  };
}

/**
 * The tabulated kernel at delay d (ms, non-negative): the nearest entry of a table with one entry
 * every 1 / perStep ms. Multiplying and truncating is markedly faster than Math.round(d / step)
 * in the correlation sweep.
 */
const kernelAt = (table: Float64Array, perStep: number, d: number) => table[(d * perStep + 0.5) | 0];

/**
 * Step 3 of the analysis, on its own so that its hot loop works on locals: one backward sweep
 * over the time-sorted initializations (times T, services S, weights Wt) with the kernel
 * tabulated every `step` ms. See analyzeDependencies for what each accumulator holds.
 */
function correlate(
  T: Float64Array,
  S: Int32Array,
  Wt: Float64Array,
  n: number,
  minDelay: number,
  maxDelay: number,
  table: Float64Array,
  step: number,
) {
  const N = T.length;
  const perStep = 1 / step;
  const ker = pairStore(n);
  const back = pairStore(n);
  const pre = pairStore(n);
  const nBack = pairStore(n);
  const rev = pairStore(n);
  // revW[b]: what the latest b init before the current one adds to rev (see analyzeDependencies).
  const revW = new Float64Array(n);
  const prevT = new Float64Array(n).fill(-Infinity);
  const Wsum = new Float64Array(n);
  const stamp = new Int32Array(n).fill(-1);
  const best = new Float64Array(n);
  const touched = new Int32Array(n);
  const dense = ker.dense && back.dense && pre.dense && nBack.dense && rev.dense;
  for (let i = 0; i < N; i++) {
    const a = S[i];
    const t = T[i];
    const w = Wt[i];
    Wsum[a] += w;
    let nt = 0;
    for (let j = i - 1; j >= 0; j--) {
      const d = t - T[j];
      if (d > maxDelay) break;
      const b = S[j];
      if (b === a) continue;
      const k = d >= minDelay ? kernelAt(table, perStep, d) : 0;
      if (stamp[b] !== i) {
        stamp[b] = i;
        best[b] = k;
        revW[b] = prevT[a] < T[j] - maxDelay ? Wt[j] : 0;
        touched[nt++] = b;
      } else if (k > best[b]) best[b] = k;
    }
    if (dense) {
      const kerD = ker.dense!;
      const backD = back.dense!;
      const preD = pre.dense!;
      const nBackD = nBack.dense!;
      const revD = rev.dense!;
      const row = a * n;
      for (let q = 0; q < nt; q++) {
        const b = touched[q];
        const key = row + b;
        backD[key] += w;
        nBackD[key] += 1;
        revD[key] += revW[b];
        const k = best[b];
        if (k > 0) {
          kerD[key] += w * k;
          preD[key] += w;
        }
      }
    } else {
      for (let q = 0; q < nt; q++) {
        const b = touched[q];
        back.add(a, b, w);
        nBack.add(a, b, 1);
        rev.add(a, b, revW[b]);
        if (best[b] > 0) {
          ker.add(a, b, w * best[b]);
          pre.add(a, b, w);
        }
      }
    }
    prevT[a] = t;
  }
  return { ker, back, pre, nBack, rev, Wsum };
}

/**
 * Derives initialization dependencies, a service order and a machine boot plan from
 * initialization events of earlier boots. Pure and deterministic.
 */
export function analyzeDependencies(
  events: Iterable<InitializationEvent>,
  options: AnalysisOptions = {},
): AnalysisResult {
  const threshold = options.threshold ?? 0.7;
  if (!(threshold > 0 && threshold <= 1)) throw new Error('threshold must be in (0, 1]');
  const halfLife = options.halfLife ?? 90 * DAY;
  const failureWindow = options.failureWindow ?? 120_000;
  const failureFactor = options.failureFactor ?? 0.2;
  const minSamples = options.minSamples ?? 5;
  const method = options.method ?? 'full';
  const exactKernel = createKernel(options.kernel);
  const { minDelay, maxDelay } = exactKernel;
  // Hot loops use a table at 100 ms resolution (deterministic, error < 2e-4 for the defaults).
  const STEP = 100;
  const table = new Float64Array(Math.floor(maxDelay / STEP) + 2);
  for (let q = 0; q < table.length; q++) table[q] = exactKernel(q * STEP);
  const kernel = (d: number) => kernelAt(table, 1 / STEP, d);
  const mapName = compileServiceMap(options.map);
  const warnings: string[] = [];

  // 1. Filter, map, compensate clock skew.
  const all = Array.isArray(events) ? (events as InitializationEvent[]) : [...events];
  const correct = clockCorrector(all);
  const machinesWithClock = new Set(all.filter(e => e.type === 'clock').map(e => e.machine));
  const starts: Array<{ t: number; service: string; machine: string }> = [];
  const failures = new Map<string, number[]>();
  for (const e of all) {
    if (e.type === 'clock') continue;
    const service = mapName(e.service);
    const t = correct(e.machine, e.time);
    if (e.type === 'start') starts.push({ t, service, machine: e.machine });
    else if (e.type === 'failure') {
      const k = `${service}\u0000${e.machine}`;
      if (!failures.has(k)) failures.set(k, []);
      failures.get(k)!.push(t);
    }
  }
  if (!starts.length) throw new AnalysisInputError('no initialization (start) events in the input');
  if (machinesWithClock.size) {
    const without = [...new Set(starts.map(s => s.machine))].filter(m => !machinesWithClock.has(m)).sort(byName);
    if (without.length) {
      warnings.push(
        `no clock readings for ${without.length} machine(s) (${without.slice(0, 5).join(', ')}${without.length > 5 ? ', …' : ''}): their clocks are assumed correct`,
      );
    }
  }
  starts.sort((x, y) => x.t - y.t || byName(x.service, y.service) || byName(x.machine, y.machine));
  // The same record twice (overlapping exports, a file given twice) is one event: duplicates would
  // weigh a boot twice. The backend's store keeps one of each the same way.
  let duplicates = 0;
  for (const list of failures.values()) {
    list.sort((a, b) => a - b);
    duplicates += dedupe(list, (x, y) => x === y);
  }
  duplicates += dedupe(starts, (x, y) => x.t === y.t && x.service === y.service && x.machine === y.machine);
  if (duplicates) warnings.push(`${duplicates} duplicate event(s) ignored (the same machine, service, event and time more than once: overlapping exports?)`);
  let at = options.at;
  if (at === undefined) {
    at = starts[starts.length - 1].t;
    for (const list of failures.values()) at = Math.max(at, list[list.length - 1]);
  }

  // 2. Index services, weights.
  const serviceNames = [...new Set(starts.map(s => s.service))].sort(byName);
  const sid = new Map(serviceNames.map((s, i) => [s, i]));
  const n = serviceNames.length;
  const N = starts.length;
  const T = new Float64Array(N);
  const S = new Int32Array(N);
  const Wt = new Float64Array(N);
  const failedBefore = new Float64Array(N).fill(NaN);
  const machinesOf: Array<Set<string>> = serviceNames.map(() => new Set());
  const initCount = new Int32Array(n);
  const lambda = halfLife > 0 && Number.isFinite(halfLife) ? Math.LN2 / halfLife : 0;
  for (let i = 0; i < N; i++) {
    const s = starts[i];
    const id = sid.get(s.service)!;
    T[i] = s.t;
    S[i] = id;
    machinesOf[id].add(s.machine);
    initCount[id]++;
    let w = lambda ? Math.exp(-lambda * Math.abs(at - s.t)) : 1;
    const f = failures.get(`${s.service}\u0000${s.machine}`);
    if (f) {
      const j = lowerBound(f, s.t);
      if (j < f.length && f[j] - s.t <= failureWindow) w *= failureFactor;
      // A service that failed shortly before starting again was knocked out, most often by a
      // dependency going away: its restart is no reboot of its own machine.
      if (j > 0 && s.t - f[j - 1] <= maxDelay) failedBefore[i] = f[j - 1];
    }
    Wt[i] = w;
  }
  // A reboot of a machine both run on restarts both: their restarts say nothing about each other.
  const shareMachine = (a: number, b: number) => [...machinesOf[a]].some(m => machinesOf[b].has(m));
  // A restart: an initialization around which fewer than half the services initialize (not a
  // whole-site boot).
  const isRestart = new Uint8Array(N);
  {
    const seen = new Int32Array(n);
    let distinct = 0;
    for (let i = 0, lo = 0, hi = 0; i < N; i++) {
      while (hi < N && T[hi] <= T[i] + maxDelay) if (seen[S[hi++]]++ === 0) distinct++;
      while (T[lo] < T[i] - maxDelay) if (--seen[S[lo++]] === 0) distinct--;
      isRestart[i] = distinct < RESTART_SERVICES * n ? 1 : 0;
    }
  }

  // 3. One backward sweep over the time-sorted initializations; only pairs within the window cost
  //    anything, and every update goes to the row of the later initialization's service.
  //    ker[A,B]:  Σ over A's inits of w · best kernel(B before A)
  //    back[A,B]: Σ over A's inits of w where B initialized within [0, max] before
  //    pre[A,B]:  Σ over A's inits of w where B initialized within [min, max] before (precedence)
  //    nBack: back as a count.
  //    rev[B,A]:  Σ over A's inits of the weight of the latest B init before it (in the window): B's
  //               initializations with A after them, seen from A's side; only where A's previous
  //               init is more than the window before that B init (else A was there already, and
  //               this A init is a later boot's, e.g. a machine rebooted again within the hour).
  //    Co-occurrence of A with B (B around A, either side): back[A,B] + rev[B,A], with the weights
  //    of A's initializations.
  const { ker, back, pre, nBack, rev, Wsum } = correlate(T, S, Wt, n, minDelay, maxDelay, table, STEP);
  const co = {
    get: (a: number, b: number) => back.get(a, b) + rev.get(b, a),
  };
  const cnt = {
    get: (a: number, b: number) => nBack.get(a, b) + nBack.get(b, a),
  };

  // 4. Scores. cond(A,B): kernel correlation over A's initializations where B initialized
  //    around it (an A restarting alone, e.g. its own machine rebooting, says nothing about B).
  const cond = (a: number, b: number): number => {
    const k = ker.get(a, b);
    return k > 0 ? k / co.get(a, b) : 0;
  };
  // Precedence consistency: share of A's initializations with B around where B came first (by at
  // least the minimum delay). Independent services start in either order.
  const consistency = (a: number, b: number): number => {
    const c = co.get(a, b);
    return c > 0 ? pre.get(a, b) / c : 0;
  };
  // Explaining away (`full`): A starts some steady delay after the LAST of its dependencies to
  // start (had A needed nothing, it would have started earlier), so each of A's initializations is
  // explained by one service: the latest of A's dependencies in the window. selectDependencies
  // picks, per A, the set of candidates under which A's delays after that latest one are most
  // likely, paying per dependency; a service that merely tends to start earlier than A
  // (start-order confounding) adds nothing a true dependency does not explain better, while
  // several dependencies, each the latest only in some boots, together explain them all. The
  // score of a selected dependency is the kernel correlation over the initializations it
  // explains; its samples, how many.
  const explained = method === 'full' ? selectDependencies() : undefined;
  const score = (a: number, b: number): number => {
    if (method === 'plain') {
      const k = ker.get(a, b);
      return k > 0 ? k / Wsum[a] : 0;
    }
    return explained!.get(a * n + b)?.score ?? 0;
  };
  const samples = (a: number, b: number): number =>
    method === 'plain' ? cnt.get(a, b) : explained!.get(a * n + b)?.samples ?? 0;

  // Restarts outside whole-site boots are near-interventions: when a dependency on another
  // machine restarts while A is up, A restarts after it if it cascades at all (a dependent that
  // loses its dependency fails and comes back), and a service A does not depend on is followed
  // only by chance. How often dependencies are followed (rho) and how often other candidates are
  // (epsilon) is learned from a first selection; where cascades happen (rho clearly above
  // epsilon), each candidate's followed and unfollowed restarts weigh as the log-likelihood ratio
  // of the two. Where restarts never cascade, they say nothing either way.
  function followEvidence(
    candA: number[],
    candB: number[],
    isRestart: Uint8Array,
    first: Map<number, Explained>,
  ): Float64Array | undefined {
    const C = candA.length;
    const timesOf: number[][] = serviceNames.map(() => []);
    const restartsOf: number[][] = serviceNames.map(() => []);
    for (let i = 0; i < N; i++) {
      timesOf[S[i]].push(T[i]);
      if (isRestart[i]) restartsOf[S[i]].push(T[i]);
    }
    const any = (list: number[], from: number, to: number) => {
      const k = lowerBound(list, from);
      return k < list.length && list[k] <= to;
    };
    // What A depends on through the first selection, directly or not: followed through a chain
    // of restarts, neither a dependency nor unrelated.
    const firstDeps: number[][] = serviceNames.map(() => []);
    for (const key of first.keys()) firstDeps[Math.floor(key / n)].push(key % n);
    let ancestorsOf = -1;
    let ancestorSet = new Set<number>();
    const ancestors = (a: number) => {
      if (ancestorsOf === a) return ancestorSet;
      ancestorsOf = a;
      ancestorSet = new Set<number>();
      const stack = [...firstDeps[a]];
      while (stack.length) {
        const b = stack.pop()!;
        if (ancestorSet.has(b)) continue;
        ancestorSet.add(b);
        stack.push(...firstDeps[b]);
      }
      return ancestorSet;
    };
    const followed = new Int32Array(C);
    const unfollowed = new Int32Array(C);
    const counts = [0, 0, 0, 0]; // followed, unfollowed: of first-selected dependencies, of the others
    for (let c = 0; c < C; c++) {
      const a = candA[c];
      const b = candB[c];
      if (shareMachine(a, b)) continue;
      for (const t of restartsOf[b]) {
        if (any(timesOf[a], t - maxDelay, t)) continue; // A was not up
        if (any(timesOf[a], t + minDelay, t + maxDelay)) followed[c]++;
        else unfollowed[c]++;
      }
      const k = first.has(a * n + b) ? 0 : ancestors(a).has(b) ? -1 : 2;
      if (k < 0) continue;
      counts[k] += followed[c];
      counts[k + 1] += unfollowed[c];
    }
    const rho = (counts[0] + 1) / (counts[0] + counts[1] + 2);
    const epsilon = (counts[2] + 1) / (counts[2] + counts[3] + 2);
    if (!(rho > epsilon + FOLLOW_MARGIN)) return undefined;
    const yes = Math.log(rho / epsilon);
    const no = Math.log((1 - rho) / (1 - epsilon));
    return Float64Array.from(followed, (f, c) => FOLLOWED_WEIGHT * f * yes + unfollowed[c] * no);
  }
  function selectDependencies(): Map<number, Explained> {
    // Restarts of B that A followed (B on another machine): in a restart few services initialize,
    // so a dependency that is never the latest in whole-site boots shows here.
    const follows = new Map<number, number>();
    {
      const stampF = new Int32Array(n).fill(-1);
      for (let i = 0; i < N; i++) {
        if (!isRestart[i]) continue;
        const b = S[i];
        for (let j = i + 1; j < N && T[j] - T[i] <= maxDelay; j++) {
          const a = S[j];
          if (a === b || !isRestart[j] || T[j] - T[i] < minDelay || stampF[a] === i) continue;
          stampF[a] = i;
          if (shareMachine(a, b)) continue;
          follows.set(a * n + b, (follows.get(a * n + b) ?? 0) + 1);
        }
      }
    }
    // Candidates of A: precede A consistently; the best by kernel score, and those whose restarts
    // A followed most often.
    const perA: Array<Array<[number, number]>> = serviceNames.map(() => []);
    const followedA: Array<Array<[number, number]>> = serviceNames.map(() => []);
    ker.forEach((a, b) => {
      if (consistency(a, b) < MIN_CONSISTENCY) return;
      const c = cond(a, b);
      if (c >= CANDIDATE_FLOOR) perA[a].push([b, c]);
      const f = follows.get(a * n + b) ?? 0;
      if (f >= FOLLOWED_CANDIDATE) followedA[a].push([b, f]);
    });
    const candA: number[] = [];
    const candB: number[] = [];
    for (let a = 0; a < n; a++) {
      const list = perA[a].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, MAX_CANDIDATES);
      const inList = new Set(list.map(x => x[0]));
      for (const x of followedA[a].sort((x, y) => y[1] - x[1] || x[0] - y[0]).slice(0, MAX_CANDIDATES)) {
        if (!inList.has(x[0])) list.push(x);
      }
      list.sort((x, y) => x[0] - y[0]);
      for (const [b] of list) {
        candA.push(a);
        candB.push(b);
      }
    }
    const C = candA.length;
    const candStart = new Int32Array(n + 1);
    for (let c = 0; c < C; c++) candStart[candA[c] + 1]++;
    for (let a = 0; a < n; a++) candStart[a + 1] += candStart[a];
    // Initializations by service, in time order.
    const svcStart = new Int32Array(n + 1);
    for (let i = 0; i < N; i++) svcStart[S[i] + 1]++;
    for (let a = 0; a < n; a++) svcStart[a + 1] += svcStart[a];
    const svcInits = new Int32Array(N);
    const svcFill = svcStart.slice(0, n);
    for (let i = 0; i < N; i++) svcInits[svcFill[S[i]]++] = i;
    // Each initialization's entries: its candidates' latest starts at least the minimum delay
    // before it and within the window (delay in minutes), found by binary search.
    const offsets = new Int32Array(N + 1);
    let eCand = new Int32Array(1024);
    let eD = new Float64Array(1024);
    let ne = 0;
    for (let i = 0; i < N; i++) {
      const a = S[i];
      const t = T[i];
      for (let c = candStart[a]; c < candStart[a + 1]; c++) {
        const b = candB[c];
        let lo = svcStart[b];
        let hi = svcStart[b + 1];
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (T[svcInits[mid]] <= t - minDelay) lo = mid + 1;
          else hi = mid;
        }
        while (lo > svcStart[b] && svcInits[lo - 1] >= i) lo--; // only initializations before i
        if (lo === svcStart[b]) continue;
        const d = t - T[svcInits[lo - 1]];
        if (d > maxDelay) continue;
        if (ne === eCand.length) {
          const gc = new Int32Array(ne * 2);
          gc.set(eCand);
          eCand = gc;
          const gd = new Float64Array(ne * 2);
          gd.set(eD);
          eD = gd;
        }
        eCand[ne] = c;
        eD[ne++] = d / 60_000;
      }
      offsets[i + 1] = ne;
    }
    // Entries by candidate (counting sort), and initializations by dependent.
    const cStart = new Int32Array(C + 1);
    for (let e = 0; e < ne; e++) cStart[eCand[e] + 1]++;
    for (let c = 0; c < C; c++) cStart[c + 1] += cStart[c];
    const cInit = new Int32Array(ne);
    const cDelay = new Float64Array(ne);
    const fill = cStart.slice(0, C);
    for (let i = 0; i < N; i++) {
      for (let e = offsets[i]; e < offsets[i + 1]; e++) {
        const k = fill[eCand[e]]++;
        cInit[k] = i;
        cDelay[k] = eD[e];
      }
    }

    // Initializations with entries, by dependent (in time order).
    const initStart = new Int32Array(n + 1);
    for (let i = 0; i < N; i++) if (offsets[i + 1] > offsets[i]) initStart[S[i] + 1]++;
    for (let a = 0; a < n; a++) initStart[a + 1] += initStart[a];
    const initsWithEntries = new Int32Array(initStart[n]);
    const initFill = initStart.slice(0, n);
    for (let i = 0; i < N; i++) if (offsets[i + 1] > offsets[i]) initsWithEntries[initFill[S[i]]++] = i;
    const selected = new Uint8Array(C);
    const mu0 = exactKernel.peakDelay / 60_000;
    const localIndex = new Int32Array(N).fill(-1);
    const result = new Map<number, Explained>();
    const bgDensity = BACKGROUND_SHARE * BACKGROUND_DENSITY;
    const screened = new Int32Array(SCREENED);
    const screenedDelta = new Float64Array(SCREENED);
    // Selects A's dependencies among its candidates; `evidence[c]` (nats) is what candidate c's
    // restarts say beyond timing (see below).
    const selectFor = (a: number, evidence?: Float64Array) => {
      const c0 = candStart[a];
      const c1 = candStart[a + 1];
      if (c0 === c1) return;
      // A's initializations with a candidate before them, in local indices.
      const inits = initsWithEntries.subarray(initStart[a], initStart[a + 1]);
      inits.forEach((i, x) => (localIndex[i] = x));
      const m = inits.length;
      const w = Float64Array.from(inits, i => Wt[i]);
      const binding = new Float64Array(m);
      const bindBy = new Int32Array(m);
      const trial = new Float64Array(m);
      const lpBinding = new Float64Array(m);
      // The model of A's delay after its latest selected dependency: delayDensity (minutes) mixed with
      // a uniform background over the window. fit() refits it to delays `d`, weighting each by how
      // likely it is not background under the current model, and returns the log-likelihood.
      let mu = mu0;
      let sd = PRIOR_SD;
      let fitMu = mu;
      let fitSd = sd;
      const fit = (d: Float64Array): number => {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        for (let x = 0; x < m; x++) {
          const v = d[x];
          if (v === Infinity) continue;
          const f = delayDensity(v, mu, sd);
          const r = (w[x] * f) / (f + bgDensity);
          s0 += r;
          s1 += r * v;
          s2 += r * v * v;
        }
        // The prior pulls the mean towards the kernel's peak and keeps the spread from collapsing
        // on few initializations; the spread is measured around the mean, so a delay far from the
        // peak but steady keeps its small spread (and its best explanation).
        fitMu = (s1 + PRIOR_WEIGHT * mu0) / (s0 + PRIOR_WEIGHT);
        const squares = Math.max(0, s2 - 2 * fitMu * s1 + fitMu * fitMu * s0);
        fitSd = Math.max(MIN_SD, Math.sqrt((squares + PRIOR_WEIGHT * PRIOR_SD * PRIOR_SD) / (s0 + PRIOR_WEIGHT)));
        let ll = 0;
        for (let x = 0; x < m; x++) {
          const v = d[x];
          if (v === Infinity) ll += w[x] * LOG_BACKGROUND;
          else {
            ll += w[x] * Math.log(delayDensity(v, fitMu, fitSd) + bgDensity);
          }
        }
        return ll;
      };
      // Delay after the latest selected dependency of initialization x, leaving out `without`;
      // `latestBy` is that dependency.
      let latestBy = -1;
      const latest = (x: number, without: number): number => {
        const i = inits[x];
        let best = Infinity;
        latestBy = -1;
        for (let e = offsets[i]; e < offsets[i + 1]; e++) {
          const c = eCand[e];
          if (selected[c] && c !== without && eD[e] < best) {
            best = eD[e];
            latestBy = c;
          }
        }
        return best;
      };
      const rebind = (x: number) => {
        binding[x] = latest(x, -1);
        bindBy[x] = latestBy;
      };
      // A dependency on another machine constrains the plan (a false one lengthens it), so it
      // must pay more than one on the same machine.
      const cost = new Float64Array(c1 - c0);
      for (let c = c0; c < c1; c++) {
        let local = true;
        for (const mb of machinesOf[candB[c]]) if (!machinesOf[a].has(mb)) local = false;
        cost[c - c0] = (local ? LOCAL_GAIN : SELECT_GAIN) * Math.log(Math.max(2, m)) - (evidence ? evidence[c] : 0);
      }
      // Stepwise search on the penalised log-likelihood: take the best addition, else the best
      // removal, until neither pays. Run from no dependency and from all candidates (several
      // dependencies, each the latest only now and then, pay off together, not one by one); the
      // better end wins.
      const stepwise = (startFull: boolean): number => {
        let penalty = 0;
        for (let c = c0; c < c1; c++) {
          selected[c] = startFull ? 1 : 0;
          if (startFull) penalty += cost[c - c0];
        }
        for (let x = 0; x < m; x++) rebind(x);
        mu = mu0;
        sd = PRIOR_SD;
        let objective = fit(binding) - penalty;
        mu = fitMu;
        sd = fitSd;
        for (let step = 0; step < 4 * (c1 - c0); step++) {
          // Screen every addition and removal by its effect under the current model, then refit
          // the model for the most promising few only.
          const lp = (v: number) => {
            if (v === Infinity) return LOG_BACKGROUND;
            return Math.log(delayDensity(v, mu, sd) + bgDensity);
          };
          for (let x = 0; x < m; x++) lpBinding[x] = lp(binding[x]);
          screened.fill(-1);
          for (let c = c0; c < c1; c++) {
            let delta = 0;
            if (selected[c]) {
              for (let k = cStart[c]; k < cStart[c + 1]; k++) {
                const x = localIndex[cInit[k]];
                if (bindBy[x] === c) delta += w[x] * (lp(latest(x, c)) - lpBinding[x]);
              }
              delta += cost[c - c0];
            } else {
              for (let k = cStart[c]; k < cStart[c + 1]; k++) {
                const x = localIndex[cInit[k]];
                if (cDelay[k] < binding[x]) delta += w[x] * (lp(cDelay[k]) - lpBinding[x]);
              }
              delta -= cost[c - c0];
            }
            // Keep the SCREENED best (ties: lower index), in order.
            let j = SCREENED;
            while (j > 0 && (screened[j - 1] < 0 || delta > screenedDelta[j - 1])) j--;
            if (j < SCREENED) {
              for (let q = SCREENED - 1; q > j; q--) {
                screened[q] = screened[q - 1];
                screenedDelta[q] = screenedDelta[q - 1];
              }
              screened[j] = c;
              screenedDelta[j] = delta;
            }
          }
          let bestC = -1;
          let best = objective;
          let bestMu = mu;
          let bestSd = sd;
          for (let q = 0; q < SCREENED; q++) {
            const c = screened[q];
            if (c < 0) break;
            trial.set(binding);
            let changed = false;
            if (selected[c]) {
              for (let k = cStart[c]; k < cStart[c + 1]; k++) {
                const x = localIndex[cInit[k]];
                if (bindBy[x] === c) {
                  trial[x] = latest(x, c);
                  changed = true;
                }
              }
            } else {
              for (let k = cStart[c]; k < cStart[c + 1]; k++) {
                const x = localIndex[cInit[k]];
                if (cDelay[k] < trial[x]) {
                  trial[x] = cDelay[k];
                  changed = true;
                }
              }
            }
            // A change that moves no initialization's latest dependency leaves the fit as it is.
            const ll = changed ? fit(trial) : objective + penalty;
            const o = ll - penalty + (selected[c] ? cost[c - c0] : -cost[c - c0]);
            if (o > best + 1e-9) {
              best = o;
              bestC = c;
              bestMu = changed ? fitMu : mu;
              bestSd = changed ? fitSd : sd;
            }
          }
          if (bestC < 0) break;
          penalty += selected[bestC] ? -cost[bestC - c0] : cost[bestC - c0];
          selected[bestC] ^= 1;
          for (let k = cStart[bestC]; k < cStart[bestC + 1]; k++) rebind(localIndex[cInit[k]]);
          objective = best;
          mu = bestMu;
          sd = bestSd;
        }
        return objective;
      };
      const fromNone = stepwise(false);
      const kept = selected.slice(c0, c1);
      const fromAll = stepwise(true);
      if (!(fromAll > fromNone)) {
        selected.set(kept, c0);
        for (let x = 0; x < m; x++) rebind(x);
      }
      // Score: kernel correlation over the initializations each selected dependency explains.
      for (let c = c0; c < c1; c++) {
        if (!selected[c]) continue;
        let sw = 0;
        let swk = 0;
        let count = 0;
        let restarts = 0;
        let swd = 0;
        for (let k = cStart[c]; k < cStart[c + 1]; k++) {
          const x = localIndex[cInit[k]];
          if (bindBy[x] !== c) continue;
          sw += w[x];
          swk += w[x] * kernel(cDelay[k] * 60_000);
          swd += w[x] * cDelay[k];
          count++;
          restarts += isRestart[cInit[k]];
        }
        if (sw > 0) result.set(a * n + candB[c], { score: swk / sw, samples: count, restarts, delay: swd / sw });
        selected[c] = 0;
      }
      for (const i of inits) localIndex[i] = -1;
    };
    for (let a = 0; a < n; a++) selectFor(a);
    const evidence = followEvidence(candA, candB, isRestart, result);
    if (evidence) {
      for (let a = 0; a < n; a++) {
        let any = false;
        for (let c = candStart[a]; c < candStart[a + 1]; c++) any ||= evidence[c] !== 0;
        if (!any) continue;
        for (let c = candStart[a]; c < candStart[a + 1]; c++) result.delete(a * n + candB[c]);
        selectFor(a, evidence);
      }
    }
    return result;
  }
  const accepted: Edge[] = [];
  const samplesOf = new Map<string, number>();
  ker.forEach((a, b) => {
    const s = round(score(a, b));
    if (s >= threshold) {
      const e = { service: serviceNames[a], dependsOn: serviceNames[b], score: s };
      accepted.push(e);
      samplesOf.set(`${e.service}\u0000${e.dependsOn}`, samples(a, b));
    }
  });
  accepted.sort((x, y) => byName(x.service, y.service) || byName(x.dependsOn, y.dependsOn));

  // 5. Order: break cycles (weakest evidence first), reduce, generations.
  let edges = accepted;
  let cycles: Cycle[] = [];
  if (method === 'full') {
    const broken = breakCycles(serviceNames, accepted);
    edges = broken.edges;
    cycles = broken.cycles;
  } else {
    // The plain method still needs an order: drop cycles the same way, without reduction.
    const broken = breakCycles(serviceNames, accepted);
    edges = broken.edges;
    cycles = broken.cycles;
  }
  for (const c of cycles) {
    warnings.push(
      `dependency cycle ${[...c.services, c.services[0]].join(' → ')}: dropped ${c.dropped.service} → ${c.dropped.dependsOn} (score ${c.dropped.score})`,
    );
  }
  // Service order: accepted dependencies plus any strongly consistent precedence (which a missed
  // dependency would show), so an order never contradicts what every boot showed.
  // Each constraint weighs as many boots as back it, so a dependency seen a few times gives way
  // to a precedence seen in every boot when the two disagree.
  const constraints: Array<[number, number, number]> = edges.map(e => {
    const a = sid.get(e.service)!;
    const b = sid.get(e.dependsOn)!;
    return [a, b, 2 * e.score * samplesOf.get(`${e.service}\u0000${e.dependsOn}`)!];
  });
  if (method === 'full') {
    pre.forEach((a, b) => {
      const c = cnt.get(a, b);
      const p = consistency(a, b);
      if (c >= minSamples && p >= ORDER_CONSISTENCY) constraints.push([a, b, p * c]);
    });
  }
  // Services the window never saw together (more than maxDelay apart) are ordered by how long
  // after the start of their boot they typically initialize: a boot is a run of initializations
  // without a gap of twice the window.
  const offset = new Float64Array(n);
  for (let i = 0, first = 0; i < N; i++) {
    if (i > 0 && T[i] - T[i - 1] > 2 * maxDelay) first = i;
    offset[S[i]] += (T[i] - T[first]) / initCount[S[i]];
  }
  const serviceOrder =
    method === 'full' ? precedenceOrder(n, constraints, offset).map(i => serviceNames[i]) : generations(serviceNames, edges).flat();
  if (method === 'full') {
    // A dependency the order had to overrule is contradicted by more boots than back it: dropped.
    const pos = new Map(serviceOrder.map((x, i) => [x, i]));
    const kept: Edge[] = [];
    for (const e of edges) {
      if (pos.get(e.dependsOn)! < pos.get(e.service)!) {
        kept.push(e);
        continue;
      }
      cycles.push({ services: [e.service, e.dependsOn], dropped: e });
      warnings.push(
        `dropped ${e.service} → ${e.dependsOn} (score ${e.score}, ${samplesOf.get(`${e.service}\u0000${e.dependsOn}`)} samples): ${e.dependsOn} waits for ${e.service} by the precedence seen in more boots`,
      );
    }
    edges = kept;
  }
  const direct = method === 'full' ? transitiveReduction(serviceNames, edges) : edges;
  const dependencies: Dependency[] = direct.map(e => {
    const samples = samplesOf.get(`${e.service}\u0000${e.dependsOn}`)!;
    return { service: e.service, dependsOn: e.dependsOn, score: e.score, samples, confidence: samples >= minSamples ? 'high' : 'low' };
  });
  // Dependencies the boots show that the kernel scores under the threshold: most often a kernel
  // whose peak does not fit how soon these services start after what they wait for.
  if (explained) {
    const under = [...explained.values()].filter(x => round(x.score) < threshold);
    if (under.length >= 3 && under.length >= 0.25 * explained.size) {
      const delays = under.map(x => x.delay).sort((x, y) => x - y);
      warnings.push(
        `${under.length} of ${explained.size} dependencies the boots show score under the threshold ${threshold}: their services start a median ${delays[delays.length >> 1].toFixed(1)} min after them, where the delay kernel (peak ${(exactKernel.peakDelay / 60_000).toFixed(0)} min) gives them little weight; a kernel that peaks nearer that delay would count them`,
      );
    }
  }
  const low = dependencies.filter(d => d.confidence === 'low');
  if (low.length) {
    warnings.push(
      `${low.length} dependenc${low.length === 1 ? 'y has' : 'ies have'} fewer than ${minSamples} samples (low confidence): ${low
        .slice(0, 5)
        .map(d => `${d.service} → ${d.dependsOn} (${d.samples})`)
        .join(', ')}${low.length > 5 ? ', …' : ''}`,
    );
  }

  // 6. Machines: a machine waits for the machines hosting what its services depend on. The plan's
  //    hard edges come from a service's dependencies on a machine that together explain a clear
  //    share of its initializations, or that it followed in restarts (a false machine edge
  //    lengthens the plan).
  const machineNames = [...new Set(machinesOf.flatMap(s => [...s]))].sort(byName);
  const machinePairs = (a: number, b: number, fn: (ma: string, mb: string) => void) => {
    for (const ma of machinesOf[a]) for (const mb of machinesOf[b]) if (ma !== mb) fn(ma, mb);
  };
  let planEdges = edges;
  if (method === 'full') {
    const explainedBy = new Map<string, number>(); // service \0 machine → initializations explained
    for (const e of edges) {
      const a = sid.get(e.service)!;
      const b = sid.get(e.dependsOn)!;
      for (const mb of machinesOf[b]) {
        const k = `${e.service}\u0000${mb}`;
        explainedBy.set(k, (explainedBy.get(k) ?? 0) + samples(a, b));
      }
    }
    planEdges = edges.filter(e => {
      const a = sid.get(e.service)!;
      const b = sid.get(e.dependsOn)!;
      // A dependency its service followed in restarts is no look-alike of a whole-site boot.
      const followed = explained!.get(a * n + b)?.restarts ?? 0;
      if (followed >= PLAN_RESTARTS && samples(a, b) >= PLAN_RESTART_SHARE * initCount[a]) return true;
      return [...machinesOf[b]].some(mb => explainedBy.get(`${e.service}\u0000${mb}`)! >= PLAN_SHARE * initCount[a]);
    });
  }
  const medge = new Map<string, Edge>();
  for (const e of planEdges) {
    machinePairs(sid.get(e.service)!, sid.get(e.dependsOn)!, (ma, mb) => {
      const k = `${ma}\u0000${mb}`;
      const prev = medge.get(k);
      if (!prev || prev.score < e.score) medge.set(k, { service: ma, dependsOn: mb, score: e.score });
    });
  }
  const mlist = [...medge.values()].sort((x, y) => byName(x.service, y.service) || byName(x.dependsOn, y.dependsOn));
  const mbroken = breakCycles(machineNames, mlist);
  const machineCycles = mbroken.cycles.map(c => ({
    machines: c.services,
    dropped: { machine: c.dropped.service, waitsFor: c.dropped.dependsOn, score: c.dropped.score },
  }));
  for (const c of machineCycles) {
    warnings.push(
      `machine cycle ${[...c.machines, c.machines[0]].join(' → ')}: dropped ${c.dropped.machine} waits for ${c.dropped.waitsFor} (score ${c.dropped.score})`,
    );
  }
  // Accepted dependencies too weak to shape the plan still order machines where they can do so
  // without closing a cycle or making the plan deeper than its hard edges, or than the longest
  // chain of accepted dependencies counted in machine changes: a missed constraint costs a failed
  // boot, a false one a longer recovery.
  const planEdgeSet = new Set(planEdges);
  let rebootsFollowed: AnalysisResult['rebootsFollowed'] = [];
  const machineEdges = [...mbroken.edges];
  if (method === 'full') {
    const depth = (list: Edge[]) => {
      try {
        return generations(machineNames, list).length;
      } catch {
        return Infinity;
      }
    };
    // Dependencies the selection found but the kernel scores under the threshold (services that
    // start sooner after what they wait for than the kernel expects) are not reported; the plan
    // still counts them in the longest chain and tries them last among the weaker edges.
    const underThreshold: Edge[] = [];
    for (const [key, x] of explained!) {
      const score = round(x.score);
      if (score < threshold) underThreshold.push({ service: serviceNames[Math.floor(key / n)], dependsOn: serviceNames[key % n], score });
    }
    underThreshold.sort((x, y) => y.score - x.score || byName(x.service, y.service) || byName(x.dependsOn, y.dependsOn));
    const chainEdges = breakCycles(serviceNames, [...edges, ...underThreshold]).edges;
    const hops = new Int32Array(n);
    const dependsOn: number[][] = serviceNames.map(() => []);
    for (const e of chainEdges) dependsOn[sid.get(e.service)!].push(sid.get(e.dependsOn)!);
    let longest = 0;
    for (const x of generations(serviceNames, chainEdges).flat()) {
      const a = sid.get(x)!;
      for (const b of dependsOn[a]) {
        const change = [...machinesOf[a]].some(m => !machinesOf[b].has(m)) ? 1 : 0;
        hops[a] = Math.max(hops[a], hops[b] + change);
      }
      longest = Math.max(longest, hops[a]);
    }
    // Machines that followed another machine's own reboots: at least PLAN_RESTARTS times, a hard
    // edge (unless it closes a cycle); once, the first of the weaker edges.
    const have = new Set(machineEdges.map(e => `${e.service}\u0000${e.dependsOn}`));
    // Adds a machine edge unless the plan has it or it would make the plan deeper than maxDepth
    // (a cycle makes it infinitely deep).
    const addEdge = (candidate: Edge, maxDepth: number) => {
      const k = `${candidate.service}\u0000${candidate.dependsOn}`;
      if (have.has(k) || depth([...machineEdges, candidate]) > maxDepth) return;
      machineEdges.push(candidate);
      have.add(k);
    };
    const followed = followedMachines();
    rebootsFollowed = followed.map(e => ({ machine: e.service, waitsFor: e.dependsOn, followed: e.followed, chances: e.chances }));
    for (const e of followed) if (e.followed >= PLAN_RESTARTS) addEdge(e, Number.MAX_VALUE);
    const cap = Math.max(depth(machineEdges), longest + 1);
    for (const e of followed) addEdge(e, cap);
    const weaker = edges
      .filter(e => !planEdgeSet.has(e))
      .sort((x, y) => y.score - x.score || byName(x.service, y.service) || byName(x.dependsOn, y.dependsOn));
    weaker.push(...underThreshold);
    for (const e of weaker) {
      machinePairs(sid.get(e.service)!, sid.get(e.dependsOn)!, (ma, mb) => addEdge({ service: ma, dependsOn: mb, score: e.score }, cap));
    }
  }
  // A machine rebooting on its own (restarts no failure of the same service preceded) stops
  // everything it hosts: a machine whose services restart after it, without rebooting itself,
  // waits for something there, whichever service that is (a machine that waits for nothing there
  // follows such a reboot only by chance, and hardly ever twice). A knocked-out service follows
  // the reboot nearest to its failure only. Machine edges followed in most of their chances, most
  // followed first.
  function followedMachines(): Array<Edge & { followed: number; chances: number }> {
    const M = machineNames.length;
    const mIndex = new Map(machineNames.map((m, k) => [m, k]));
    const own: number[][] = machineNames.map(() => []);
    const reboots: Array<{ t: number; machine: number }> = [];
    for (let i = 0; i < N; i++) {
      if (!isRestart[i] || !Number.isNaN(failedBefore[i])) continue;
      const k = mIndex.get(starts[i].machine)!;
      const o = own[k];
      if (o.length && T[i] - o[o.length - 1] <= maxDelay) continue;
      o.push(T[i]);
      reboots.push({ t: T[i], machine: k });
    }
    const rebootAt = reboots.map(r => r.t);
    const rebootingNear = (k: number, t: number) => {
      const j = lowerBound(own[k], t - maxDelay);
      return j < own[k].length && own[k][j] <= t + maxDelay;
    };
    const counted = new Set<number>();
    const followed = new Map<number, number>();
    for (let i = 0; i < N; i++) {
      if (!isRestart[i]) continue;
      const a = mIndex.get(starts[i].machine)!;
      let from = lowerBound(rebootAt, T[i] - maxDelay);
      let to = lowerBound(rebootAt, T[i] - minDelay + 1);
      const f = failedBefore[i];
      if (!Number.isNaN(f)) {
        let nearest = -1;
        for (let e = from; e < to; e++) {
          if (reboots[e].machine !== a && (nearest < 0 || Math.abs(rebootAt[e] - f) < Math.abs(rebootAt[nearest] - f))) nearest = e;
        }
        if (nearest < 0) continue;
        from = nearest;
        to = nearest + 1;
      }
      for (let e = from; e < to; e++) {
        const b = reboots[e].machine;
        if (b === a || counted.has(e * M + a) || rebootingNear(a, rebootAt[e])) continue;
        counted.add(e * M + a);
        followed.set(a * M + b, (followed.get(a * M + b) ?? 0) + 1);
      }
    }
    const out: Array<Edge & { followed: number; chances: number }> = [];
    for (const [key, f] of followed) {
      const a = Math.floor(key / M);
      const b = key % M;
      const chances = own[b].filter(t => !rebootingNear(a, t)).length;
      if (2 * f > chances) out.push({ service: machineNames[a], dependsOn: machineNames[b], score: round(f / chances), followed: f, chances });
    }
    return out.sort((x, y) => y.followed - x.followed || y.score - x.score || byName(x.service, y.service) || byName(x.dependsOn, y.dependsOn));
  }
  // Waves: generations of the plan, each machine placed within its slack by when its first
  // service typically starts in a boot.
  let waves: string[][];
  if (method === 'full') {
    const first = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      for (const m of machinesOf[i]) first.set(m, Math.min(first.get(m) ?? Infinity, offset[i]));
    }
    waves = timedGenerations(machineNames, machineEdges, m => first.get(m) ?? 0);
  } else waves = generations(machineNames, mbroken.edges);
  const waitsFor = new Map<string, string[]>(machineNames.map(m => [m, []]));
  for (const e of machineEdges) waitsFor.get(e.service)!.push(e.dependsOn);

  // 7. Signed correlation matrix.
  const matrix: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  const signed = (r: number, c: number) => {
    const rc = round(score(r, c));
    const cr = round(score(c, r));
    matrix[r][c] = rc >= cr ? rc : -cr;
    matrix[c][r] = cr >= rc ? cr : -rc;
  };
  if (explained) for (const key of explained.keys()) signed(Math.floor(key / n), key % n);
  else ker.forEach((r, c) => signed(r, c));

  return {
    services: serviceNames.map((s, i) => ({ service: s, machines: [...machinesOf[i]].sort(byName), initializations: initCount[i] })),
    dependencies,
    serviceOrder,
    machineOrder: waves.flat(),
    waves,
    machineDependencies: machineNames.map(m => ({ machine: m, waitsFor: waitsFor.get(m)!.sort(byName) })),
    rebootsFollowed: rebootsFollowed
      .filter(x => waitsFor.get(x.machine)!.includes(x.waitsFor))
      .sort((x, y) => byName(x.machine, y.machine) || byName(x.waitsFor, y.waitsFor)),
    cycles,
    machineCycles,
    correlation: { services: serviceNames, matrix },
    warnings,
    skipped: options.skipped ?? 0,
    at,
  };
}
