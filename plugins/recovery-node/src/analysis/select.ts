/**
 * Step 4 of the dependency analysis: which candidates each service depends on, by explaining
 * away, with what restarts outside whole-site boots add. The candidates and their delays are
 * gathered in candidates.ts, each dependent's search runs in dependentSearch.ts.
 */
import {
  candidatesOf,
  dropUnimputable,
  entriesByCandidate,
  imputeMissing,
  latestStartsBefore,
} from './candidates';
import type { Correlation, KernelTable } from './correlate';
import { DependentSearch, type Selection, SCREENED } from './dependentSearch';
import { initializedWithin, shareMachine, Timeline } from './timeline';

export { CANDIDATE_FLOOR } from './candidates';

/** A dependency the selection found: kernel score and count of the initializations it explains, how many were restarts, their mean delay (min). */
export interface Explained {
  score: number;
  samples: number;
  restarts: number;
  delay: number;
  /** Nats by which the best explanation without the dependency's awaited machines falls short (Infinity: none awaited). */
  margin: number;
}

/** Restarts say something only where dependencies are followed this much more often than other candidates. */
const FOLLOW_MARGIN = 0.2;
/**
 * A followed restart counts half: one upstream restart makes its dependents follow each other
 * too, so other candidates are followed more often than epsilon, their average, says.
 */
const FOLLOWED_WEIGHT = 0.5;
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
  const n = tl.serviceNames.length;
  const follows = followedRestarts(tl, kernel);
  const cands = candidatesOf(tl, corr, kernel, follows);
  const entries = latestStartsBefore(tl, kernel, cands);
  dropUnimputable(entries);
  const byCand = entriesByCandidate(tl, cands.candA.length, entries);
  imputeMissing(entries, byCand);
  const C = cands.candA.length;
  const selection: Selection = {
    tl,
    kernel,
    cands,
    entries,
    byCand,
    mu0: kernel.peakDelay / 60_000,
    selected: new Uint8Array(C),
    excluded: new Uint8Array(C),
    screened: new Int32Array(SCREENED),
    screenedDelta: new Float64Array(SCREENED),
    result: new Map<number, Explained>(),
  };
  for (let a = 0; a < n; a++) selectFor(selection, a);
  const evidence = followEvidence(
    tl,
    kernel,
    cands.candA,
    cands.candB,
    cands.candFirstUp,
    selection.result,
    follows,
  );
  if (evidence) reselectWithRestarts(selection, evidence);
  return selection.result;
}

/** Selects again the dependents whose candidates' restarts say something (evidence), in their stead. */
function reselectWithRestarts(selection: Selection, evidence: Float64Array) {
  const { candB, candStart } = selection.cands;
  const n = selection.tl.serviceNames.length;
  for (let a = 0; a < n; a++) {
    let any = false;
    for (let c = candStart[a]; c < candStart[a + 1]; c++)
      any ||= evidence[c] !== 0;
    if (!any) continue;
    for (let c = candStart[a]; c < candStart[a + 1]; c++)
      selection.result.delete(a * n + candB[c]);
    selectFor(selection, a, evidence);
  }
}

/**
 * Selects A's dependencies among its candidates into the selection's result; `evidence[c]`
 * (nats) is what candidate c's restarts say beyond timing (followEvidence).
 */
function selectFor(selection: Selection, a: number, evidence?: Float64Array) {
  const { candStart } = selection.cands;
  if (candStart[a] === candStart[a + 1]) return;
  const search = new DependentSearch(selection, a, evidence);
  const objective = search.search();
  const margins = search.machineMargins(objective);
  search.record(margins);
}
