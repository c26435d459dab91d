/**
 * Step 4 of the dependency analysis, its input: each dependent's candidate dependencies, and the
 * delay after each candidate's latest start before each of its initializations (select.ts).
 */
import type { Correlation, KernelTable } from './correlate';
import { firstInit, initializedWithin, Timeline } from './timeline';

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
/**
 * A candidate whose record is missing from at most this share of its dependent's whole-site boots
 * (dropped log lines), and present in at least MIN_IMPUTE_FROM, has its median delay imputed there.
 */
const MAX_MISSING = 0.25;
const MIN_IMPUTE_FROM = 3;
/** A dependency must precede its dependent in at least this share of the boots where both initialized. */
const MIN_CONSISTENCY = 0.9;
/** Candidate dependencies of every dependent, grouped by dependent: candidates of a are candStart[a] … candStart[a + 1] - 1. */
export interface Candidates {
  candA: number[];
  candB: number[];
  /** Whether the candidate is a replicated service's first replica up (else all of its replicas). */
  candFirstUp: boolean[];
  candStart: Int32Array;
}

/**
 * Each initialization's entries (offsets[i] … offsets[i + 1] - 1): a candidate (eCand) and its
 * delay in minutes (eD); per candidate, the records found and the whole-site boots it is missing from.
 */
export interface Entries {
  offsets: Int32Array;
  eCand: Int32Array;
  eD: Float64Array;
  ne: number;
  found: Int32Array;
  missing: Int32Array;
}

/** The entries by candidate (cStart[c] … cStart[c + 1] - 1), and the dependents' initializations that have entries. */
export interface CandidateEntries {
  cStart: Int32Array;
  cInit: Int32Array;
  cDelay: Float64Array;
  cEntry: Int32Array;
  /** 1 where the delay is a missing record's imputed median. */
  imputed: Uint8Array;
  /** Each entry's initialization by its place among its dependent's (inits, a DependentSearch's local index). */
  cX: Int32Array;
  /** Initializations with entries, by dependent (in time order): initStart[a] … initStart[a + 1] - 1. */
  initStart: Int32Array;
  initsWithEntries: Int32Array;
}

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

/**
 * Candidates of A: precede A consistently; the best by kernel score (the last places to the
 * steadiest), and those whose restarts A followed most often. A replicated service is a
 * candidate twice (first replica up, all of them).
 */
export function candidatesOf(
  tl: Timeline,
  corr: Correlation,
  kernel: KernelTable,
  follows: Map<number, number>,
): Candidates {
  const { serviceNames, machinesOf } = tl;
  const { ker, cond, consistency } = corr;
  const n = serviceNames.length;
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
  // A service on several machines (replicas) is a candidate twice: its dependent may wait for the
  // first replica up (a client that takes any) or for all of them; the delays say which.
  const candFirstUp: boolean[] = [];
  const addCandidate = (a: number, b: number, firstUp: boolean) => {
    candA.push(a);
    candB.push(b);
    candFirstUp.push(firstUp);
  };
  for (let a = 0; a < n; a++) {
    const list = candidateList(tl, kernel, a, perA[a], followedA[a]);
    for (const [b] of list) {
      const replicated = machinesOf[b].size > 1;
      if (!replicated || allReplicasBefore(tl, kernel, a, b))
        addCandidate(a, b, false);
      if (replicated) addCandidate(a, b, true);
    }
  }
  const C = candA.length;
  const candStart = new Int32Array(n + 1);
  for (let c = 0; c < C; c++) candStart[candA[c] + 1]++;
  for (let a = 0; a < n; a++) candStart[a + 1] += candStart[a];
  return { candA, candB, candFirstUp, candStart };
}

/**
 * A's candidate services, by index: the best by kernel score (`scored`, [b, score]), past the
 * first places the steadiest, and those whose restarts A followed (`followed`, [b, count]).
 */
function candidateList(
  tl: Timeline,
  kernel: KernelTable,
  a: number,
  scored: Array<[number, number]>,
  followed: Array<[number, number]>,
): Array<[number, number]> {
  let list = scored.sort((x, y) => y[1] - x[1] || x[0] - y[0]);
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
  for (const x of followed
    .sort((p, q) => q[1] - p[1] || p[0] - q[0])
    .slice(0, MAX_CANDIDATES)) {
    if (!inList.has(x[0])) list.push(x);
  }
  list.sort((x, y) => x[0] - y[0]);
  return list;
}

/**
 * Whether all of b's replicas precede a as consistently as a dependency must: a dependent that
 * waits for all of them does not start while one is still to come.
 */
function allReplicasBefore(
  tl: Timeline,
  { minDelay, maxDelay }: KernelTable,
  a: number,
  b: number,
): boolean {
  const { T, svcStart, svcInits } = tl;
  let seen = 0;
  let after = 0;
  for (let q = svcStart[a]; q < svcStart[a + 1]; q++) {
    const t = T[svcInits[q]];
    if (!initializedWithin(tl, b, t - maxDelay, t - minDelay)) continue;
    seen++;
    if (initializedWithin(tl, b, t, t + maxDelay)) after++;
  }
  return seen - after >= MIN_CONSISTENCY * seen;
}

/**
 * Each initialization's entries: its candidates' latest starts at least the minimum delay before
 * it and within the window (for the first replica up: the earliest), delay in minutes; and a NaN
 * entry for a candidate missing from a whole-site boot altogether.
 */
export function latestStartsBefore(
  tl: Timeline,
  { minDelay, maxDelay }: KernelTable,
  { candB, candFirstUp, candStart }: Candidates,
): Entries {
  const { T, S, isRestart, svcStart, svcInits, svcT } = tl;
  const N = T.length;
  const C = candB.length;
  const offsets = new Int32Array(N + 1);
  const store = { eCand: new Int32Array(1024), eD: new Float64Array(1024) };
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
    if (ne === store.eCand.length) growEntries(store, ne);
    store.eCand[ne] = c;
    store.eD[ne++] = d;
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
        if (e < end && store.eCand[e] === c) e++;
        else if (!initializedWithin(tl, candB[c], t - maxDelay, t + maxDelay)) {
          push(c, NaN);
          missing[c]++;
        }
      }
    }
    offsets[i + 1] = ne;
  }
  return { offsets, eCand: store.eCand, eD: store.eD, ne, found, missing };
}

/** Doubles the entry arrays, full at `ne`. */
function growEntries(
  store: { eCand: Int32Array; eD: Float64Array },
  ne: number,
) {
  const gc = new Int32Array(ne * 2);
  gc.set(store.eCand);
  store.eCand = gc;
  const gd = new Float64Array(ne * 2);
  gd.set(store.eD);
  store.eD = gd;
}

/**
 * Where a candidate's records are missing from more than MAX_MISSING of the initializations
 * it has entries for, or it has fewer than MIN_IMPUTE_FROM records, its absence is no lost
 * record (a renamed or since-added service): those initializations stay unexplained by it.
 */
function imputable({ found, missing }: Entries, c: number): boolean {
  return (
    found[c] >= MIN_IMPUTE_FROM &&
    missing[c] <= MAX_MISSING * (found[c] + missing[c])
  );
}

/** Drops the missing entries of candidates whose absence is no lost record (imputable), in place. */
export function dropUnimputable(entries: Entries) {
  const { offsets, eCand, eD } = entries;
  const N = offsets.length - 1;
  let kept = 0;
  for (let i = 0, e = 0; i < N; i++) {
    for (; e < offsets[i + 1]; e++) {
      if (Number.isNaN(eD[e]) && !imputable(entries, eCand[e])) continue;
      eCand[kept] = eCand[e];
      eD[kept++] = eD[e];
    }
    offsets[i + 1] = kept;
  }
  entries.ne = kept;
}

/** Entries by candidate (counting sort), and initializations by dependent. */
export function entriesByCandidate(
  tl: Timeline,
  C: number,
  { offsets, eCand, eD, ne }: Entries,
): CandidateEntries {
  const { S } = tl;
  const N = tl.T.length;
  const n = tl.serviceNames.length;
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
  const imputed = new Uint8Array(ne);
  // Initializations with entries, by dependent (in time order).
  const initStart = new Int32Array(n + 1);
  for (let i = 0; i < N; i++)
    if (offsets[i + 1] > offsets[i]) initStart[S[i] + 1]++;
  for (let a = 0; a < n; a++) initStart[a + 1] += initStart[a];
  const initsWithEntries = new Int32Array(initStart[n]);
  const initFill = initStart.slice(0, n);
  for (let i = 0; i < N; i++)
    if (offsets[i + 1] > offsets[i]) initsWithEntries[initFill[S[i]]++] = i;
  // Each entry's initialization by its place among its dependent's (DependentSearch's local index), found
  // once here rather than through an array of all initializations at every look in the search.
  const cX = new Int32Array(ne);
  const place = new Int32Array(N);
  for (let p = 0; p < initsWithEntries.length; p++)
    place[initsWithEntries[p]] = p - initStart[S[initsWithEntries[p]]];
  for (let k = 0; k < ne; k++) cX[k] = place[cInit[k]];
  return {
    cStart,
    cInit,
    cDelay,
    cEntry,
    imputed,
    cX,
    initStart,
    initsWithEntries,
  };
}

/** A missing record takes the candidate's median delay. */
export function imputeMissing(entries: Entries, byCand: CandidateEntries) {
  const { found, missing, eD } = entries;
  const { cStart, cDelay, cEntry, imputed } = byCand;
  const C = cStart.length - 1;
  for (let c = 0; c < C; c++) {
    if (missing[c] === 0 || !imputable(entries, c)) continue;
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
}
