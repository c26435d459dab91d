/** The timeline indexed by service, and the searches the analysis makes on it. */
import { machinesAwaited } from '@backstage-recovery/plugin-recovery-common';
import type { Timeline } from './timeline';

/** Initializations of each service in time order, and their times (Timeline.svcStart). */
export function byService(T: Float64Array, S: Int32Array, n: number) {
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
