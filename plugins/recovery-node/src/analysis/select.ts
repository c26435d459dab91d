/**
 * Step 4 of the dependency analysis: which candidates each service depends on, by explaining
 * away, with what restarts outside whole-site boots add.
 */
import type { Correlation, KernelTable } from './correlate';
import {
  awaitedMachines,
  firstInit,
  initializedWithin,
  shareMachine,
  Timeline,
} from './timeline';

/** A dependency the selection found: kernel score and count of the initializations it explains, how many were restarts, their mean delay (min). */
export interface Explained {
  score: number;
  samples: number;
  restarts: number;
  delay: number;
  /** Nats by which the best explanation without the dependency's awaited machines falls short (Infinity: none awaited). */
  margin: number;
}

/** Pairs below this conditional kernel score are no candidate dependencies. */
export const CANDIDATE_FLOOR = 0.5;
/**
 * Candidate dependencies per dependent (best kernel scores). A deep service has dozens of
 * consistent precedents, and those nearer the kernel's peak outscore a dependency that starts
 * steadily sooner before it. At 16, the true one often fell off the list and a look-alike was taken:
 * where services start 3–8 min after their dependencies (the peak moved to 5.6 min), 8–9% of the
 * independent histories' mostly-latest dependencies were missed; at 24, about 4%.
 */
const MAX_CANDIDATES = 24;
/**
 * Of the MAX_CANDIDATES places, how many go to the candidates after which the dependent starts
 * the steadiest delay (delaySpread), rather than to the next by kernel score.
 */
const STEADY_CANDIDATES = 8;
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
/**
 * The delay model's factors that depend on its sd alone (densityScale, densityWidth), worked out
 * once for a loop over many delays under one model.
 */
const densityScale = (sd: number) =>
  ((1 - BACKGROUND_SHARE) * NORM_PER_SD) / sd;
const densityWidth = (sd: number) => sd * ALPHA_PER_SD;
/**
 * Density of the delay model (mean mu, with the factors of its sd) at v (minutes), weighted by the
 * share not in the background.
 */
function densityWith(
  v: number,
  mu: number,
  scale: number,
  width: number,
): number {
  const u = Math.abs(v - mu) / width;
  return scale * Math.exp(-u * u * u);
}
/** Restarts say something only where dependencies are followed this much more often than other candidates. */
const FOLLOW_MARGIN = 0.2;
/**
 * A followed restart counts half: one upstream restart makes its dependents follow each other
 * too, so other candidates are followed more often than epsilon, their average, says.
 */
const FOLLOWED_WEIGHT = 0.5;
/**
 * A candidate whose record is missing from at most this share of its dependent's whole-site boots
 * (dropped log lines), and present in at least MIN_IMPUTE_FROM, has its median delay imputed there.
 */
const MAX_MISSING = 0.25;
const MIN_IMPUTE_FROM = 3;
/** A dependency must precede its dependent in at least this share of the boots where both initialized. */
const MIN_CONSISTENCY = 0.9;

/**
 * Spread (sd, minutes) of A's delays after the latest B at least the minimum delay before it, over
 * A's whole-site boots; Infinity where B is in that window in fewer than 80% of them. In a site of
 * a thousand services, hundreds start at about the kernel's peak before a deep service and all
 * score alike; the one it waits for precedes it by its own steady delay.
 */
function delaySpread(
  tl: Timeline,
  bootTimes: Float64Array,
  b: number,
  { minDelay, maxDelay }: KernelTable,
): number {
  const { svcT, svcStart } = tl;
  const boots = bootTimes.length;
  // Past this many boots without B in the window, fewer than 80% (or 3) can have it: Infinity already.
  const maxMisses = boots - Math.max(3, Math.ceil(0.8 * boots));
  let misses = 0;
  let q = svcStart[b];
  const end = svcStart[b + 1];
  let n = 0;
  let s1 = 0;
  let s2 = 0;
  for (let p = 0; p < boots; p++) {
    const t = bootTimes[p];
    while (q < end && svcT[q] <= t - minDelay) q++;
    const ms = q === svcStart[b] ? Infinity : t - svcT[q - 1];
    if (!(ms <= maxDelay)) {
      if (++misses > maxMisses) return Infinity;
      continue;
    }
    const d = ms / 60_000;
    n++;
    s1 += d;
    s2 += d * d;
  }
  if (n < 3 || n < 0.8 * boots) return Infinity;
  const mean = s1 / n;
  return Math.sqrt(Math.max(0, s2 / n - mean * mean));
}

/** Times of A's initializations in whole-site boots (no restart, no failed attempt), for delaySpread. */
function bootTimesOf(tl: Timeline, a: number): Float64Array {
  const { svcT, svcInits, svcStart, isRestart, failedAttempt } = tl;
  const times: number[] = [];
  for (let p = svcStart[a]; p < svcStart[a + 1]; p++) {
    const i = svcInits[p];
    if (!isRestart[i] && !failedAttempt[i]) times.push(svcT[p]);
  }
  return Float64Array.from(times);
}

/** A selection's dependencies per dependent (the selection is keyed dependent × n + dependency). */
export function dependenciesOf(
  selection: Map<number, Explained>,
  n: number,
): number[][] {
  const deps: number[][] = Array.from({ length: n }, () => []);
  for (const key of selection.keys()) deps[Math.floor(key / n)].push(key % n);
  return deps;
}

/**
 * Restarts of B (outside whole-site boots) that A followed: A was up (no initialization in the
 * window before) and initialized within the window after; B on a machine A does not run on. By
 * dependent × n + dependency. In a restart few services initialize, so a dependency that is never
 * the latest in whole-site boots shows here.
 */
function followedRestarts(
  tl: Timeline,
  { minDelay, maxDelay }: KernelTable,
): Map<number, number> {
  const { T, S, isRestart } = tl;
  const N = T.length;
  const n = tl.serviceNames.length;
  const follows = new Map<number, number>();
  // The services that initialized from the minimum delay to the window after the current restart,
  // kept as the window slides: each restart visits them once each, not every initialization in
  // the window (services restarting in loops fill it by the thousand).
  const count = new Int32Array(n);
  const present: number[] = [];
  const place = new Int32Array(n);
  const enter = (a: number) => {
    if (count[a]++ === 0) {
      place[a] = present.length;
      present.push(a);
    }
  };
  const leave = (a: number) => {
    if (--count[a] === 0) {
      const last = present.pop()!;
      if (last !== a) {
        present[place[a]] = last;
        place[last] = place[a];
      }
    }
  };
  let from = 0;
  let to = 0;
  for (let i = 0; i < N; i++) {
    if (!isRestart[i]) continue;
    // [from, to): after i, from the minimum delay on, up to the window.
    let first = Math.max(from, i + 1);
    while (first < N && T[first] - T[i] < minDelay) first++;
    for (; from < first; from++) if (from < to) leave(S[from]);
    if (to < from) to = from;
    for (; to < N && T[to] - T[i] <= maxDelay; to++) enter(S[to]);
    const b = S[i];
    for (const a of present) {
      if (
        a === b ||
        shareMachine(tl, a, b) ||
        initializedWithin(tl, a, T[i] - maxDelay, T[i])
      )
        continue;
      follows.set(a * n + b, (follows.get(a * n + b) ?? 0) + 1);
    }
  }
  return follows;
}

/**
 * Restarts outside whole-site boots are near-interventions: when a dependency on another
 * machine restarts while A is up, A restarts after it if it cascades at all (a dependent that
 * loses its dependency fails and comes back), and a service A does not depend on is followed
 * only by chance. How often dependencies are followed (rho) and how often other candidates are
 * (epsilon) is learned from a first selection; where cascades happen (rho clearly above
 * epsilon), each candidate's followed and unfollowed restarts weigh as the log-likelihood ratio
 * of the two. Where restarts never cascade, they say nothing either way.
 */
function followEvidence(
  tl: Timeline,
  { maxDelay }: KernelTable,
  candA: number[],
  candB: number[],
  candFirstUp: boolean[],
  first: Map<number, Explained>,
  follows: Map<number, number>,
): Float64Array | undefined {
  const { serviceNames, T, isRestart, svcStart, svcInits } = tl;
  const n = serviceNames.length;
  const C = candA.length;
  // What A depends on through the first selection, directly or not: followed through a chain
  // of restarts, neither a dependency nor unrelated.
  const firstDeps = dependenciesOf(first, n);
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
    // A dependent that needs any one replica is not knocked out by one restarting.
    if (shareMachine(tl, a, b) || candFirstUp[c]) continue;
    followed[c] = follows.get(a * n + b) ?? 0;
    for (let q = svcStart[b]; q < svcStart[b + 1]; q++) {
      const t = T[svcInits[q]];
      if (isRestart[svcInits[q]] && !initializedWithin(tl, a, t - maxDelay, t))
        unfollowed[c]++;
    }
    unfollowed[c] -= followed[c];
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
  return Float64Array.from(
    followed,
    (f, c) => FOLLOWED_WEIGHT * f * yes + unfollowed[c] * no,
  );
}

/**
 * Explaining away (`full`): A starts some steady delay after the LAST of its dependencies to
 * start (had A needed nothing, it would have started earlier), so each of A's initializations is
 * explained by one service: the latest of A's dependencies in the window. selectDependencies
 * picks, per A, the set of candidates under which A's delays after that latest one are most
 * likely, paying per dependency; a service that merely tends to start earlier than A
 * (start-order confounding) adds nothing a true dependency does not explain better, while
 * several dependencies, each the latest only in some boots, together explain them all. The
 * score of a selected dependency is the kernel correlation over the initializations it
 * explains; its samples, how many.
 */
export function selectDependencies(
  tl: Timeline,
  corr: Correlation,
  kernel: KernelTable,
): Map<number, Explained> {
  const {
    serviceNames,
    T,
    S,
    Wt,
    isRestart,
    machinesOf,
    svcStart,
    svcInits,
    svcT,
  } = tl;
  const { ker, cond, consistency } = corr;
  const { minDelay, maxDelay } = kernel;
  const n = serviceNames.length;
  const N = T.length;
  const follows = followedRestarts(tl, kernel);
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
  // Whether all of b's replicas precede a as consistently as a dependency must: a dependent that
  // waits for all of them does not start while one is still to come.
  const allBefore = (a: number, b: number) => {
    let seen = 0;
    let after = 0;
    for (let q = svcStart[a]; q < svcStart[a + 1]; q++) {
      const t = T[svcInits[q]];
      if (!initializedWithin(tl, b, t - maxDelay, t - minDelay)) continue;
      seen++;
      if (initializedWithin(tl, b, t, t + maxDelay)) after++;
    }
    return seen - after >= MIN_CONSISTENCY * seen;
  };
  const candA: number[] = [];
  const candB: number[] = [];
  // A service on several machines (replicas) is a candidate twice: its dependent may wait for the
  // first replica up (a client that takes any) or for all of them; the delays say which.
  const candFirstUp: boolean[] = [];
  const addCandidate = (a: number, b: number, firstUp: boolean) => {
    candA.push(a);
    candB.push(b);
    candFirstUp.push(firstUp);
  };
  for (let a = 0; a < n; a++) {
    let list = perA[a].sort((x, y) => y[1] - x[1] || x[0] - y[0]);
    // Past the first places by score, the candidates after which A starts the steadiest delay.
    if (list.length > MAX_CANDIDATES) {
      const bootTimes = bootTimesOf(tl, a);
      const steadiest = list
        .slice(MAX_CANDIDATES - STEADY_CANDIDATES)
        .map(([b, c]) => ({
          b,
          c,
          spread: delaySpread(tl, bootTimes, b, kernel),
        }))
        .sort((x, y) => x.spread - y.spread || y.c - x.c || x.b - y.b)
        .slice(0, STEADY_CANDIDATES);
      list = [
        ...list.slice(0, MAX_CANDIDATES - STEADY_CANDIDATES),
        ...steadiest.map(({ b, c }): [number, number] => [b, c]),
      ];
    }
    const inList = new Set(list.map(x => x[0]));
    for (const x of followedA[a]
      .sort((x, y) => y[1] - x[1] || x[0] - y[0])
      .slice(0, MAX_CANDIDATES)) {
      if (!inList.has(x[0])) list.push(x);
    }
    list.sort((x, y) => x[0] - y[0]);
    for (const [b] of list) {
      const replicated = machinesOf[b].size > 1;
      if (!replicated || allBefore(a, b)) addCandidate(a, b, false);
      if (replicated) addCandidate(a, b, true);
    }
  }
  const C = candA.length;
  const candStart = new Int32Array(n + 1);
  for (let c = 0; c < C; c++) candStart[candA[c] + 1]++;
  for (let a = 0; a < n; a++) candStart[a + 1] += candStart[a];
  // Each initialization's entries: its candidates' latest starts at least the minimum delay
  // before it and within the window (for the first replica up: the earliest), delay in minutes,
  // found by binary search.
  const offsets = new Int32Array(N + 1);
  let eCand = new Int32Array(1024);
  let eD = new Float64Array(1024);
  let ne = 0;
  // Per candidate: records found before its dependent, and whole-site boots it is missing from.
  const found = new Int32Array(C);
  const missing = new Int32Array(C);
  // Per candidate: the first of its service's initializations more than the minimum delay before
  // its dependent's current one. The dependent's initializations come in time order, so it only
  // moves on: a walk beside them instead of a binary search at each.
  const later = new Int32Array(C);
  for (let c = 0; c < C; c++) later[c] = svcStart[candB[c]];
  const push = (c: number, d: number) => {
    if (ne === eCand.length) {
      const gc = new Int32Array(ne * 2);
      gc.set(eCand);
      eCand = gc;
      const gd = new Float64Array(ne * 2);
      gd.set(eD);
      eD = gd;
    }
    eCand[ne] = c;
    eD[ne++] = d;
  };
  for (let i = 0; i < N; i++) {
    const a = S[i];
    const t = T[i];
    // Failed attempts are explained by nothing and explain nothing (timeline.failedAttempt).
    if (tl.failedAttempt[i]) {
      offsets[i + 1] = ne;
      continue;
    }
    const limit = t - minDelay;
    for (let c = candStart[a]; c < candStart[a + 1]; c++) {
      const b = candB[c];
      let lo = later[c];
      while (lo < svcStart[b + 1] && svcT[lo] <= limit) lo++;
      later[c] = lo;
      while (lo > svcStart[b] && svcInits[lo - 1] >= i) lo--; // only initializations before i
      if (lo === svcStart[b]) continue;
      let d = t - svcT[lo - 1];
      if (d > maxDelay) continue;
      if (candFirstUp[c]) d = t - svcT[firstInit(tl, b, t - maxDelay)];
      push(c, d / 60_000);
      found[c]++;
    }
    // A candidate missing from a whole-site boot altogether (neither before nor after) most
    // likely lost its record: its delay there is unknown (NaN until imputed), not background.
    const end = ne;
    if (end > offsets[i] && !isRestart[i]) {
      // The entries found are in candidate order: walk them beside the candidates.
      for (let c = candStart[a], e = offsets[i]; c < candStart[a + 1]; c++) {
        if (e < end && eCand[e] === c) e++;
        else if (!initializedWithin(tl, candB[c], t - maxDelay, t + maxDelay)) {
          push(c, NaN);
          missing[c]++;
        }
      }
    }
    offsets[i + 1] = ne;
  }
  // Where a candidate's records are missing from more than MAX_MISSING of the initializations
  // it has entries for, or it has fewer than MIN_IMPUTE_FROM records, its absence is no lost
  // record (a renamed or since-added service): those initializations stay unexplained by it.
  const imputable = (c: number) =>
    found[c] >= MIN_IMPUTE_FROM &&
    missing[c] <= MAX_MISSING * (found[c] + missing[c]);
  let kept = 0;
  for (let i = 0, e = 0; i < N; i++) {
    for (; e < offsets[i + 1]; e++) {
      if (Number.isNaN(eD[e]) && !imputable(eCand[e])) continue;
      eCand[kept] = eCand[e];
      eD[kept++] = eD[e];
    }
    offsets[i + 1] = kept;
  }
  ne = kept;
  // Entries by candidate (counting sort), and initializations by dependent.
  const cStart = new Int32Array(C + 1);
  for (let e = 0; e < ne; e++) cStart[eCand[e] + 1]++;
  for (let c = 0; c < C; c++) cStart[c + 1] += cStart[c];
  const cInit = new Int32Array(ne);
  const cDelay = new Float64Array(ne);
  const cEntry = new Int32Array(ne);
  const fill = cStart.slice(0, C);
  for (let i = 0; i < N; i++) {
    for (let e = offsets[i]; e < offsets[i + 1]; e++) {
      const k = fill[eCand[e]]++;
      cInit[k] = i;
      cDelay[k] = eD[e];
      cEntry[k] = e;
    }
  }
  // A missing record takes the candidate's median delay.
  const imputed = new Uint8Array(ne);
  for (let c = 0; c < C; c++) {
    if (missing[c] === 0 || !imputable(c)) continue;
    const real = new Float64Array(found[c]);
    for (let k = cStart[c], r = 0; k < cStart[c + 1]; k++)
      if (!Number.isNaN(cDelay[k])) real[r++] = cDelay[k];
    const value = real.sort()[real.length >> 1];
    for (let k = cStart[c]; k < cStart[c + 1]; k++) {
      if (!Number.isNaN(cDelay[k])) continue;
      cDelay[k] = eD[cEntry[k]] = value;
      imputed[k] = 1;
    }
  }

  // Initializations with entries, by dependent (in time order).
  const initStart = new Int32Array(n + 1);
  for (let i = 0; i < N; i++)
    if (offsets[i + 1] > offsets[i]) initStart[S[i] + 1]++;
  for (let a = 0; a < n; a++) initStart[a + 1] += initStart[a];
  const initsWithEntries = new Int32Array(initStart[n]);
  const initFill = initStart.slice(0, n);
  for (let i = 0; i < N; i++)
    if (offsets[i + 1] > offsets[i]) initsWithEntries[initFill[S[i]]++] = i;
  const selected = new Uint8Array(C);
  const excluded = new Uint8Array(C);
  const mu0 = kernel.peakDelay / 60_000;
  // Each entry's initialization by its place among its dependent's (selectFor's local index), found
  // once here rather than through an array of all initializations at every look in the search.
  const cX = new Int32Array(ne);
  {
    const place = new Int32Array(N);
    for (let p = 0; p < initsWithEntries.length; p++)
      place[initsWithEntries[p]] = p - initStart[S[initsWithEntries[p]]];
    for (let k = 0; k < ne; k++) cX[k] = place[cInit[k]];
  }
  const result = new Map<number, Explained>();
  const bgDensity = BACKGROUND_SHARE * BACKGROUND_DENSITY;
  const screened = new Int32Array(SCREENED);
  const screenedDelta = new Float64Array(SCREENED);
  // Selects A's dependencies among its candidates; `evidence[c]` (nats) is what candidate c's
  // restarts say beyond timing (followEvidence).
  const selectFor = (a: number, evidence?: Float64Array) => {
    const c0 = candStart[a];
    const c1 = candStart[a + 1];
    if (c0 === c1) return;
    // A's initializations with a candidate before them, in local indices.
    const inits = initsWithEntries.subarray(initStart[a], initStart[a + 1]);
    const m = inits.length;
    const w = Float64Array.from(inits, i => Wt[i]);
    const binding = new Float64Array(m);
    const bindBy = new Int32Array(m);
    // The delay after the latest selected dependency but the binding one: x's delay if that one went.
    const runnerUp = new Float64Array(m);
    const removal = new Float64Array(c1 - c0);
    const trial = new Float64Array(m);
    let lpBinding = new Float64Array(m);
    // densityWith at each binding delay under the current model, for fit()'s unchanged delays.
    let fBinding = new Float64Array(m);
    let fBindingValid = false;
    // fit() leaves the density and log-likelihood of each delay under the model it fitted in the
    // arrays it is given: the binding delays' in fBinding/lpBinding, a trial's in trialF/trialLp,
    // the best trial's so far in bestF/bestLp. The trial taken hands its arrays on to the binding
    // delays, which are its delays: each step's screening finds them scored under its model.
    let trialF = new Float64Array(m);
    let trialLp = new Float64Array(m);
    let bestF = new Float64Array(m);
    let bestLp = new Float64Array(m);
    // The model of A's delay after its latest selected dependency: densityWith (minutes) mixed with
    // a uniform background over the window. fit() refits it to delays `d`, weighting each by how
    // likely it is not background under the current model, and returns the log-likelihood.
    let mu = mu0;
    let sd = PRIOR_SD;
    let fitMu = mu;
    let fitSd = sd;
    const fit = (
      d: Float64Array,
      outF: Float64Array,
      outLp: Float64Array,
    ): number => {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      const scale = densityScale(sd);
      const width = densityWidth(sd);
      for (let x = 0; x < m; x++) {
        const v = d[x];
        if (v === Infinity) continue;
        const f =
          fBindingValid && v === binding[x]
            ? fBinding[x]
            : densityWith(v, mu, scale, width);
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
      fitSd = Math.max(
        MIN_SD,
        Math.sqrt(
          (squares + PRIOR_WEIGHT * PRIOR_SD * PRIOR_SD) / (s0 + PRIOR_WEIGHT),
        ),
      );
      let ll = 0;
      const fitScale = densityScale(fitSd);
      const fitWidth = densityWidth(fitSd);
      for (let x = 0; x < m; x++) {
        const v = d[x];
        if (v === Infinity) {
          outLp[x] = LOG_BACKGROUND;
          ll += w[x] * LOG_BACKGROUND;
        } else {
          outF[x] = densityWith(v, fitMu, fitScale, fitWidth);
          outLp[x] = Math.log(outF[x] + bgDensity);
          ll += w[x] * outLp[x];
        }
      }
      return ll;
    };
    // The delay after the latest selected dependency of initialization x (binding), which one
    // that is (bindBy), and the delay after the next latest (runnerUp).
    const rebind = (x: number) => {
      const i = inits[x];
      let best = Infinity;
      let second = Infinity;
      let by = -1;
      for (let e = offsets[i]; e < offsets[i + 1]; e++) {
        const c = eCand[e];
        if (!selected[c]) continue;
        if (eD[e] < best) {
          second = best;
          best = eD[e];
          by = c;
        } else if (eD[e] < second) second = eD[e];
      }
      binding[x] = best;
      bindBy[x] = by;
      runnerUp[x] = second;
    };
    // A dependency on another machine constrains the plan (a false one lengthens it), so it
    // must pay more than one on the same machines as its dependent. A replica elsewhere pays the
    // full price too: it may be the first up, so it times like a dependency on another machine.
    const cost = new Float64Array(c1 - c0);
    for (let c = c0; c < c1; c++) {
      const b = candB[c];
      const local =
        machinesOf[a].size === machinesOf[b].size &&
        awaitedMachines(tl, a, b).size === 0;
      // A replicated candidate is two hypotheses (first replica or all): it pays for the choice.
      const choice = machinesOf[b].size > 1 ? Math.LN2 : 0;
      cost[c - c0] =
        (local ? LOCAL_GAIN : SELECT_GAIN) * Math.log(Math.max(2, m)) +
        choice -
        (evidence ? evidence[c] : 0);
    }
    // Stepwise search on the penalised log-likelihood: take the best addition, else the best
    // removal, until neither pays. Run from no dependency and from all candidates (several
    // dependencies, each the latest only now and then, pay off together, not one by one); the
    // better end wins.
    const stepwise = (start: (c: number) => boolean): number => {
      let penalty = 0;
      for (let c = c0; c < c1; c++) {
        selected[c] = start(c) && !excluded[c] ? 1 : 0;
        if (selected[c]) penalty += cost[c - c0];
      }
      for (let x = 0; x < m; x++) rebind(x);
      mu = mu0;
      sd = PRIOR_SD;
      let objective = fit(binding, fBinding, lpBinding) - penalty;
      mu = fitMu;
      sd = fitSd;
      for (let step = 0; step < 4 * (c1 - c0); step++) {
        // Screen every addition and removal by its effect under the current model, then refit
        // the model for the most promising few only.
        const scale = densityScale(sd);
        const width = densityWidth(sd);
        const lp = (v: number) => {
          if (v === Infinity) return LOG_BACKGROUND;
          return Math.log(densityWith(v, mu, scale, width) + bgDensity);
        };
        // What removing each selected dependency changes, over the initializations it binds (added
        // in time order, as a loop over its own entries would).
        removal.fill(0);
        for (let x = 0; x < m; x++) {
          if (bindBy[x] >= 0)
            removal[bindBy[x] - c0] += w[x] * (lp(runnerUp[x]) - lpBinding[x]);
        }
        fBindingValid = true;
        screened.fill(-1);
        for (let c = c0; c < c1; c++) {
          if (excluded[c]) continue;
          let delta = 0;
          if (selected[c]) {
            delta = removal[c - c0] + cost[c - c0];
          } else {
            for (let k = cStart[c]; k < cStart[c + 1]; k++) {
              const x = cX[k];
              if (cDelay[k] < binding[x])
                delta += w[x] * (lp(cDelay[k]) - lpBinding[x]);
            }
            delta -= cost[c - c0];
          }
          // Keep the SCREENED best (ties: lower index), in order.
          let j = SCREENED;
          while (j > 0 && (screened[j - 1] < 0 || delta > screenedDelta[j - 1]))
            j--;
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
        let bestChanged = false;
        for (let q = 0; q < SCREENED; q++) {
          const c = screened[q];
          if (c < 0) break;
          trial.set(binding);
          let changed = false;
          if (selected[c]) {
            for (let k = cStart[c]; k < cStart[c + 1]; k++) {
              const x = cX[k];
              if (bindBy[x] === c) {
                trial[x] = runnerUp[x];
                changed = true;
              }
            }
          } else {
            for (let k = cStart[c]; k < cStart[c + 1]; k++) {
              const x = cX[k];
              if (cDelay[k] < trial[x]) {
                trial[x] = cDelay[k];
                changed = true;
              }
            }
          }
          // A change that moves no initialization's latest dependency leaves the fit as it is.
          const ll = changed
            ? fit(trial, trialF, trialLp)
            : objective + penalty;
          const o = ll - penalty + (selected[c] ? cost[c - c0] : -cost[c - c0]);
          if (o > best + 1e-9) {
            best = o;
            bestC = c;
            bestMu = changed ? fitMu : mu;
            bestSd = changed ? fitSd : sd;
            bestChanged = changed;
            if (changed) {
              [bestF, trialF] = [trialF, bestF];
              [bestLp, trialLp] = [trialLp, bestLp];
            }
          }
        }
        fBindingValid = false;
        if (bestC < 0) break;
        // The change taken moves the binding delays to the best trial's (rebind below finds the
        // same delays): its fit scored them under the model taken. A change that moved none keeps
        // the model and the scores.
        if (bestChanged) {
          [fBinding, bestF] = [bestF, fBinding];
          [lpBinding, bestLp] = [bestLp, lpBinding];
        }
        penalty += selected[bestC] ? -cost[bestC - c0] : cost[bestC - c0];
        selected[bestC] ^= 1;
        for (let k = cStart[bestC]; k < cStart[bestC + 1]; k++) rebind(cX[k]);
        objective = best;
        mu = bestMu;
        sd = bestSd;
      }
      return objective;
    };
    const search = () => {
      const fromNone = stepwise(() => false);
      const kept = selected.slice(c0, c1);
      const fromAll = stepwise(() => true);
      if (!(fromAll > fromNone)) {
        selected.set(kept, c0);
        for (let x = 0; x < m; x++) rebind(x);
      }
      return Math.max(fromAll, fromNone);
    };
    const objective = search();
    // For the plan: how much worse the explanation is without the candidates on each machine the
    // plan would await for a selected dependency (a look-alike there costs a longer recovery),
    // searched from the selection without them.
    const margins = new Map<string, number>();
    const chosen = selected.slice(c0, c1);
    for (let c = c0; c < c1; c++) {
      if (!chosen[c - c0]) continue;
      for (const mb of awaitedMachines(tl, a, candB[c])) {
        if (margins.has(mb)) continue;
        for (let c2 = c0; c2 < c1; c2++)
          excluded[c2] = machinesOf[candB[c2]].has(mb) ? 1 : 0;
        margins.set(mb, objective - stepwise(c2 => chosen[c2 - c0] === 1));
        excluded.fill(0, c0, c1);
      }
    }
    selected.set(chosen, c0);
    for (let x = 0; x < m; x++) rebind(x);
    // Score: kernel correlation over the initializations each selected dependency explains.
    let sw = 0;
    let swk = 0;
    let swd = 0;
    let count = 0;
    let restarts = 0;
    for (let c = c0; c < c1; c++) {
      if (selected[c]) {
        for (let k = cStart[c]; k < cStart[c + 1]; k++) {
          const x = cX[k];
          // An imputed delay explains, but is no sample of the dependency's timing.
          if (bindBy[x] !== c || imputed[k]) continue;
          sw += w[x];
          swk += w[x] * kernel.at(cDelay[k] * 60_000);
          swd += w[x] * cDelay[k];
          count++;
          restarts += isRestart[cInit[k]];
        }
        selected[c] = 0;
      }
      // A replicated service's two candidates (first replica up, all) are adjacent: one dependency.
      if (c + 1 < c1 && candB[c + 1] === candB[c]) continue;
      if (sw > 0) {
        let margin = Infinity;
        for (const mb of awaitedMachines(tl, a, candB[c]))
          margin = Math.min(margin, margins.get(mb) ?? Infinity);
        result.set(a * n + candB[c], {
          score: swk / sw,
          samples: count,
          restarts,
          delay: swd / sw,
          margin,
        });
      }
      sw = swk = swd = count = restarts = 0;
    }
  };
  for (let a = 0; a < n; a++) selectFor(a);
  const evidence = followEvidence(
    tl,
    kernel,
    candA,
    candB,
    candFirstUp,
    result,
    follows,
  );
  if (evidence) {
    for (let a = 0; a < n; a++) {
      let any = false;
      for (let c = candStart[a]; c < candStart[a + 1]; c++)
        any ||= evidence[c] !== 0;
      if (!any) continue;
      for (let c = candStart[a]; c < candStart[a + 1]; c++)
        result.delete(a * n + candB[c]);
      selectFor(a, evidence);
    }
  }
  return result;
}
