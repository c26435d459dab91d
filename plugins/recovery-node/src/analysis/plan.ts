/** Step 6 of the dependency analysis: the machine boot plan (which machine waits for which, and waves). */
import type { InferredMachineWait } from '@backstage-recovery/plugin-recovery-common';
import type { KernelTable } from './correlate';
import {
  bottleneckEdges,
  breakCycles,
  byName,
  Cycle,
  Edge,
  generationCount,
  generations,
  roundScore,
  timedGenerations,
} from './graph';
import { dependenciesOf, Explained } from './select';
import { lowerBound } from './sorted';
import { initializedWithin, machinePairs, Timeline } from './timeline';

/** Share of a service's initializations its dependencies on a machine must explain to make that a hard edge of the machine plan. */
const PLAN_SHARE = 0.6;
/**
 * Or: restarts in which the service followed the dependency (with at least PLAN_RESTART_SHARE of
 * its initializations explained). Reboots of a machine that the machine followed in most of its
 * chances are hard edges too.
 */
const PLAN_RESTARTS = 2;
const PLAN_RESTART_SHARE = 0.2;
/**
 * Both only where the best explanation of the service's starts without that machine (timing and
 * what restarts say) is worse by this many nats, a likelihood ratio of 20: with few boots, a root
 * on another machine often explains a service about as well as its true dependencies, roots on
 * its own machine, do; and a sibling in a cascade restarts just before the service as often as
 * the dependency they share.
 */
const PLAN_MARGIN = 3;
/**
 * Waves by which the hard edges may run deeper than the longest chain of dependencies (counted
 * in machine changes, plus one) before the chain stops bounding the reported weaker edges: in
 * tiers, missed chain edges leave the chain up to two waves short.
 */
const CHAIN_SLACK = 3;
/**
 * A longest chain of dependencies whose machine changes (plus one) reach this share of the
 * machines: they stand in one deep stack, each hosting services of many levels, and the chain
 * bounds the plan no more than where the hard edges run deeper than it.
 */
const STACKED_SHARE = 0.4;
/** And at least this many waves: in a small site, a chain through a few machines is no stack. */
const STACKED_MIN_WAVES = 6;
/** Services of a machine whose reported dependencies on another machine make that a hard edge of the plan. */
const SHOWN_BY = 2;
/**
 * A knocked-out service follows a reboot where it failed this long before to this long after the
 * machine's first restart (the machine was down while it booted again).
 */
const KNOCKOUT_BEFORE = 10 * 60_000;
const KNOCKOUT_AFTER = 5 * 60_000;

export interface MachineCycle {
  machines: string[];
  dropped: { machine: string; waitsFor: string; score: number };
}

export interface MachinePlanInput {
  method: 'full' | 'plain';
  /** Accepted dependencies, acyclic, in the order's agreement. */
  edges: Edge[];
  /** Dependencies the selection found (`full`), by dependent × n + dependency. */
  explained?: Map<number, Explained>;
  threshold: number;
  /** How long (ms) after the start of its boot each service typically initializes. */
  offset: Float64Array;
}

/**
 * Why a machine waits for another in the plan.
 *
 * @public
 */
export interface MachineWait {
  waitsFor: string;
  /**
   * `dependency`: a dependency reported above the threshold; `under threshold`: one the analysis
   * found but scored under it, kept to order the boot where it deepens nothing; `reboots`: the
   * machine's services came back after `waitsFor`'s own reboots (see `rebootsFollowed`).
   */
  reason: 'dependency' | 'under threshold' | 'reboots';
  /** The strongest dependency of a service of the machine on one of `waitsFor`'s behind it. */
  service?: string;
  dependsOn?: string;
  score?: number;
}

export interface MachinePlan {
  /** Topological generations of machines, each machine placed within its slack by its timing. */
  waves: string[][];
  /** Which machines each machine waits for. */
  waitsFor: Map<string, string[]>;
  /** Why, for each machine, in the order of its `waitsFor`. */
  because: Map<string, MachineWait[]>;
  machineCycles: MachineCycle[];
  /** Machine edges of the plan that rest on reboots the machine followed. */
  rebootsFollowed: InferredMachineWait[];
  warnings: string[];
}

/**
 * Step 6 of the analysis: a machine waits for the machines hosting what its services depend on.
 * The plan's hard edges come from a service's dependencies on a machine that its starts clearly
 * need (explained worse without it) and that together explain a clear share of them or that it
 * followed in restarts, and from reboots of a machine that the machine followed: a false machine
 * edge lengthens the plan. The other dependencies order machines under a depth cap, which the
 * reported ones pass where the hard edges show that machines gather depth across their services.
 */
export function planMachines(
  tl: Timeline,
  kernel: KernelTable,
  input: MachinePlanInput,
): MachinePlan {
  const { machineNames } = tl;
  const warnings: string[] = [];
  const planEdges =
    input.method === 'full' ? clearlyNeeded(tl, input) : input.edges;
  // Why each machine edge is in the plan, by machine \0 machine waited for: the first reason it
  // joined by (the strongest dependency, for dependencies).
  const reasons = new Map<string, MachineWait>();
  const mbroken = hardMachineEdges(tl, input, planEdges, reasons);
  const machineCycles = machineCyclesOf(mbroken.cycles, warnings);
  if (input.method === 'plain') {
    const waitsFor = waitsForOf(machineNames, mbroken.edges);
    return {
      waves: generations(machineNames, mbroken.edges),
      waitsFor,
      because: becauseOf(waitsFor, reasons),
      machineCycles,
      rebootsFollowed: [],
      warnings,
    };
  }
  const plan = new PlanEdges(machineNames, mbroken.edges, reasons);
  const underThreshold = underThresholdEdges(tl, input);
  const longest = longestChain(tl, [...input.edges, ...underThreshold]);
  // Machines that followed another machine's own reboots in most of their chances: hard edges
  // (unless one closes a cycle). Once is enough: with the follows that a dependency elsewhere
  // explains left out, under 1% of them join machines that wait for nothing on each other.
  const n = tl.serviceNames.length;
  const followed = followedMachines(
    tl,
    kernel,
    dependenciesOf(input.explained!, n),
  );
  for (const e of followed)
    plan.add(e, Number.MAX_VALUE, { waitsFor: e.dependsOn, reason: 'reboots' });
  const planEdgeSet = new Set(planEdges);
  addShownBySeveral(tl, input, planEdgeSet, plan);
  const hardDepth = leaveOutLoneBottleneck(plan, longest, warnings);
  addWeakerEdges(tl, input, plan, {
    weaker: [
      ...input.edges.filter(e => !planEdgeSet.has(e)),
      ...underThreshold,
    ],
    hardDepth,
    longest,
  });
  const waitsFor = waitsForOf(machineNames, plan.edges);
  return {
    waves: timedWaves(tl, kernel, input, plan.edges),
    waitsFor,
    because: becauseOf(waitsFor, reasons),
    machineCycles,
    rebootsFollowed: rebootsKept(followed, waitsFor),
    warnings,
  };
}

/** The machine cycles broken, each with a warning. */
function machineCyclesOf(cycles: Cycle[], warnings: string[]): MachineCycle[] {
  const machineCycles = cycles.map(c => ({
    machines: c.services,
    dropped: {
      machine: c.dropped.service,
      waitsFor: c.dropped.dependsOn,
      score: c.dropped.score,
    },
  }));
  for (const c of machineCycles) {
    warnings.push(
      `machine cycle ${[...c.machines, c.machines[0]].join(' → ')}: dropped ${c.dropped.machine} waits for ${c.dropped.waitsFor} (score ${c.dropped.score})`,
    );
  }
  return machineCycles;
}

/** The machine reboots followed that the plan kept as machine waits, by machine. */
function rebootsKept(
  followed: Array<Edge & { followed: number; chances: number }>,
  waitsFor: Map<string, string[]>,
): InferredMachineWait[] {
  return followed
    .filter(e => waitsFor.get(e.service)!.includes(e.dependsOn))
    .map(e => ({
      machine: e.service,
      waitsFor: e.dependsOn,
      followed: e.followed,
      chances: e.chances,
    }))
    .sort(
      (x, y) => byName(x.machine, y.machine) || byName(x.waitsFor, y.waitsFor),
    );
}

/** Why a machine waits for `waitsFor`: a dependency, reported or under the threshold. */
function dependencyReason(
  e: Edge,
  waitsFor: string,
  threshold: number,
): MachineWait {
  return {
    waitsFor,
    reason: e.score >= threshold ? 'dependency' : 'under threshold',
    service: e.service,
    dependsOn: e.dependsOn,
    score: e.score,
  };
}

/**
 * The accepted dependencies that make hard edges of the plan (`full`): their starts clearly need
 * the machine (PLAN_MARGIN), and it explains a clear share of them or they followed it in restarts.
 */
function clearlyNeeded(tl: Timeline, input: MachinePlanInput): Edge[] {
  const { serviceNames, sid, machinesOf, initCount } = tl;
  const { edges, explained } = input;
  const n = serviceNames.length;
  const explainedBy = new Map<string, number>(); // service \0 machine → initializations explained
  for (const e of edges) {
    const a = sid.get(e.service)!;
    const b = sid.get(e.dependsOn)!;
    for (const mb of machinesOf[b]) {
      const k = `${e.service}\u0000${mb}`;
      explainedBy.set(
        k,
        (explainedBy.get(k) ?? 0) + explained!.get(a * n + b)!.samples,
      );
    }
  }
  return edges.filter(e => {
    const a = sid.get(e.service)!;
    const b = sid.get(e.dependsOn)!;
    const x = explained!.get(a * n + b)!;
    if (x.margin < PLAN_MARGIN) return false;
    // A dependency its service followed in restarts is no look-alike of a whole-site boot.
    if (
      x.restarts >= PLAN_RESTARTS &&
      x.samples >= PLAN_RESTART_SHARE * initCount[a]
    )
      return true;
    return [...machinesOf[b]].some(
      mb =>
        explainedBy.get(`${e.service}\u0000${mb}`)! >=
        PLAN_SHARE * initCount[a],
    );
  });
}

/**
 * The machine edges of the plan's dependencies (the strongest dependency behind each), with
 * their reasons, and machine cycles broken.
 */
function hardMachineEdges(
  tl: Timeline,
  { method, explained, threshold }: MachinePlanInput,
  planEdges: Edge[],
  reasons: Map<string, MachineWait>,
) {
  const { serviceNames, sid, machineNames } = tl;
  const n = serviceNames.length;
  const medge = new Map<string, Edge>();
  // How clearly the services behind each machine edge need that machine (their best margin): in
  // a machine cycle, the edge needed least goes first, whatever its kernel score. A look-alike
  // root that starts at the peak delay before a service scores higher than its true dependency.
  const need = new Map<Edge, number>();
  for (const e of planEdges) {
    const margin =
      method === 'full'
        ? explained!.get(sid.get(e.service)! * n + sid.get(e.dependsOn)!)!
            .margin
        : 0;
    for (const [ma, mb] of machinePairs(
      tl,
      sid.get(e.service)!,
      sid.get(e.dependsOn)!,
    )) {
      const k = `${ma}\u0000${mb}`;
      const prev = medge.get(k);
      const edge =
        !prev || prev.score < e.score
          ? { service: ma, dependsOn: mb, score: e.score }
          : prev;
      need.set(edge, Math.max(prev ? need.get(prev)! : -Infinity, margin));
      medge.set(k, edge);
      if (edge !== prev) reasons.set(k, dependencyReason(e, mb, threshold));
    }
  }
  const mlist = [...medge.values()].sort(
    (x, y) => byName(x.service, y.service) || byName(x.dependsOn, y.dependsOn),
  );
  return breakCycles(machineNames, mlist, e => need.get(e)!);
}

/**
 * The machine edges of the full plan as they are added, each with its reason. Accepted
 * dependencies too weak to shape the plan still order machines where they can do so without
 * closing a cycle or making the plan deeper than its hard edges, or than the longest chain of
 * accepted dependencies counted in machine changes: a missed constraint costs a failed boot, a
 * false one a longer recovery.
 */
class PlanEdges {
  readonly edges: Edge[];
  readonly have: Set<string>;

  constructor(
    readonly machineNames: string[],
    hard: Edge[],
    readonly reasons: Map<string, MachineWait>,
  ) {
    this.edges = [...hard];
    this.have = new Set(
      this.edges.map(e => `${e.service}\u0000${e.dependsOn}`),
    );
  }

  depth(list: Edge[] = this.edges): number {
    return generationCount(this.machineNames, list);
  }

  /**
   * Adds a machine edge unless the plan has it or it would make the plan deeper than maxDepth
   * (a cycle makes it infinitely deep).
   */
  add(candidate: Edge, maxDepth: number, reason: MachineWait) {
    const k = `${candidate.service}\u0000${candidate.dependsOn}`;
    if (this.have.has(k) || this.depth([...this.edges, candidate]) > maxDepth)
      return;
    this.edges.push(candidate);
    this.have.add(k);
    this.reasons.set(k, reason);
  }

  remove(e: Edge) {
    this.edges.splice(this.edges.indexOf(e), 1);
    this.have.delete(`${e.service}\u0000${e.dependsOn}`);
  }
}

/**
 * Dependencies the selection found but the kernel scores under the threshold (services that
 * start sooner after what they wait for than the kernel expects) are not reported; the plan
 * still counts them in the longest chain and tries them with the weaker edges.
 */
function underThresholdEdges(
  tl: Timeline,
  { explained, threshold }: MachinePlanInput,
): Edge[] {
  const { serviceNames } = tl;
  const n = serviceNames.length;
  const underThreshold: Edge[] = [];
  for (const [key, x] of explained!) {
    const score = roundScore(x.score);
    if (score < threshold)
      underThreshold.push({
        service: serviceNames[Math.floor(key / n)],
        dependsOn: serviceNames[key % n],
        score,
      });
  }
  return underThreshold;
}

/** The longest chain of dependencies (cycles broken), counted in machine changes. */
function longestChain(tl: Timeline, dependencies: Edge[]): number {
  const { serviceNames, sid } = tl;
  const n = serviceNames.length;
  const chainEdges = breakCycles(serviceNames, dependencies).edges;
  const hops = new Int32Array(n);
  const dependsOn: number[][] = serviceNames.map(() => []);
  for (const e of chainEdges)
    dependsOn[sid.get(e.service)!].push(sid.get(e.dependsOn)!);
  let longest = 0;
  for (const x of generations(serviceNames, chainEdges).flat()) {
    const a = sid.get(x)!;
    for (const b of dependsOn[a]) {
      // A machine change where some machine of a waits for one of b's (the plan's own rule).
      const change = machinePairs(tl, a, b).length > 0 ? 1 : 0;
      hops[a] = Math.max(hops[a], hops[b] + change);
    }
    longest = Math.max(longest, hops[a]);
  }
  return longest;
}

/**
 * A machine wait that reported dependencies of two or more of its services show is a hard edge
 * too: each alone may be a look-alike, but look-alikes on the same other machine for several
 * services are rare.
 */
function addShownBySeveral(
  tl: Timeline,
  { edges, threshold }: MachinePlanInput,
  planEdgeSet: Set<Edge>,
  plan: PlanEdges,
) {
  const { sid } = tl;
  const dependents = new Map<
    string,
    { edge: Edge; strongest: Edge; services: Set<string> }
  >();
  for (const e of edges) {
    if (planEdgeSet.has(e)) continue;
    for (const [ma, mb] of machinePairs(
      tl,
      sid.get(e.service)!,
      sid.get(e.dependsOn)!,
    )) {
      const k = `${ma}\u0000${mb}`;
      const d = dependents.get(k) ?? {
        edge: { service: ma, dependsOn: mb, score: e.score },
        strongest: e,
        services: new Set<string>(),
      };
      d.edge.score = Math.max(d.edge.score, e.score);
      if (e.score > d.strongest.score) d.strongest = e;
      d.services.add(e.service);
      dependents.set(k, d);
    }
  }
  const shown = [...dependents.values()].filter(
    d => d.services.size >= SHOWN_BY,
  );
  shown.sort(
    (x, y) =>
      y.services.size - x.services.size ||
      byName(x.edge.service, y.edge.service) ||
      byName(x.edge.dependsOn, y.edge.dependsOn),
  );
  for (const d of shown)
    plan.add(
      d.edge,
      Number.MAX_VALUE,
      dependencyReason(d.strongest, d.edge.dependsOn, threshold),
    );
}

/**
 * Where machines gather depth across the services they host, many machine waits carry each
 * level. Hard edges CHAIN_SLACK or more waves past the longest chain, all of that resting on
 * one machine wait, show a look-alike there instead (a service on a machine of a later tier
 * that starts as a dependency would): that wait is left out, with a warning. From one wave past,
 * true waits of small tiered sites do the same. Returns the depth of the hard edges.
 */
function leaveOutLoneBottleneck(
  plan: PlanEdges,
  longest: number,
  warnings: string[],
): number {
  const hardDepth = plan.depth();
  const excess = hardDepth - (longest + 1);
  const lone =
    excess >= CHAIN_SLACK ? bottleneckEdges(plan.machineNames, plan.edges) : [];
  const depthWithout =
    lone.length === 1
      ? plan.depth(plan.edges.filter(e => e !== lone[0]))
      : Infinity;
  if (!(depthWithout <= longest + CHAIN_SLACK)) return hardDepth;
  const [e] = lone;
  plan.remove(e);
  warnings.push(
    `left out: ${e.service} waits for ${e.dependsOn} (score ${e.score}); it alone would make the plan ${excess} wave${excess > 1 ? 's' : ''} deeper than the longest chain of dependencies`,
  );
  return depthWithout;
}

/**
 * The weaker edges join most needed first (by how much worse their services' starts are
 * explained without their machines), under the depth cap where the chain bounds the plan.
 */
function addWeakerEdges(
  tl: Timeline,
  { explained, threshold }: MachinePlanInput,
  plan: PlanEdges,
  {
    weaker,
    hardDepth,
    longest,
  }: { weaker: Edge[]; hardDepth: number; longest: number },
) {
  const { serviceNames, sid, machineNames } = tl;
  const n = serviceNames.length;
  const cap = Math.max(hardDepth, longest + 1);
  // Hard edges alone deeper than the longest chain by more than two waves: machines gather depth
  // across the services they host (a machine with services of several levels), which no chain
  // bounds, and neither do the hard edges (a reported dependency left out of such a plan broke an
  // order the boots showed more often than one let in deepened it past the truth's). There every
  // reported dependency joins the plan unless it closes a cycle, most needed first. So too where
  // the chain itself runs through a large share of the machines (STACKED_SHARE): with few boots
  // the hard edges there miss as many waits as the chain does, and the plan came out waves
  // shallower than the truth, with dependencies' machines in their dependents' waves.
  const stacked =
    longest + 1 >=
    Math.max(STACKED_MIN_WAVES, STACKED_SHARE * machineNames.length);
  const chainBounds = hardDepth <= longest + CHAIN_SLACK && !stacked;
  const marginOf = (e: Edge) =>
    explained!.get(sid.get(e.service)! * n + sid.get(e.dependsOn)!)!.margin;
  const byMargin = (x: Edge, y: Edge) =>
    marginOf(y) - marginOf(x) ||
    y.score - x.score ||
    byName(x.service, y.service) ||
    byName(x.dependsOn, y.dependsOn);
  for (const e of weaker.sort(byMargin)) {
    const maxDepth =
      chainBounds || e.score < threshold ? cap : Number.MAX_VALUE;
    for (const [ma, mb] of machinePairs(
      tl,
      sid.get(e.service)!,
      sid.get(e.dependsOn)!,
    )) {
      plan.add(
        { service: ma, dependsOn: mb, score: e.score },
        maxDepth,
        dependencyReason(e, mb, threshold),
      );
    }
  }
}

/**
 * Waves: generations of the plan, each machine placed within its slack by when its first
 * service typically starts in a boot. Waves whose machines typically start within the kernel's
 * minimum delay of each other cannot be told apart by when they start.
 */
function timedWaves(
  tl: Timeline,
  kernel: KernelTable,
  input: MachinePlanInput,
  machineEdges: Edge[],
): string[][] {
  const { machinesOf, machineNames } = tl;
  const first = new Map<string, number>();
  for (let i = 0; i < tl.serviceNames.length; i++) {
    for (const m of machinesOf[i])
      first.set(m, Math.min(first.get(m) ?? Infinity, input.offset[i]));
  }
  return timedGenerations(
    machineNames,
    machineEdges,
    m => first.get(m) ?? 0,
    kernel.minDelay,
  );
}

function becauseOf(
  waitsFor: Map<string, string[]>,
  reasons: Map<string, MachineWait>,
): Map<string, MachineWait[]> {
  return new Map(
    [...waitsFor].map(([m, list]) => [
      m,
      list.map(w => reasons.get(`${m}\u0000${w}`)!),
    ]),
  );
}

function waitsForOf(
  machineNames: string[],
  edges: Edge[],
): Map<string, string[]> {
  const waitsFor = new Map<string, string[]>(machineNames.map(m => [m, []]));
  for (const e of edges) waitsFor.get(e.service)!.push(e.dependsOn);
  for (const list of waitsFor.values()) list.sort(byName);
  return waitsFor;
}

/**
 * A machine rebooting on its own (restarts no failure of the same service preceded) stops
 * everything it hosts: a machine whose services restart after it, without rebooting itself,
 * waits for something there, whichever service that is (a machine that waits for nothing there
 * follows such a reboot only by chance). A knocked-out service follows the reboot nearest to its
 * failure only, where it failed about when that machine went down, and not where one of its
 * `selected` dependencies on a third machine restarted just before it. Machine edges followed in
 * most of their chances, most followed first.
 */
function followedMachines(
  tl: Timeline,
  { minDelay, maxDelay }: KernelTable,
  selected: number[][],
): Array<Edge & { followed: number; chances: number }> {
  const { machineNames, T, isRestart, failedBefore, machine } = tl;
  const N = T.length;
  const M = machineNames.length;
  const mIndex = new Map(machineNames.map((m, k) => [m, k]));
  const own: number[][] = machineNames.map(() => []);
  const reboots: Array<{ t: number; machine: number }> = [];
  const hosted = new Int32Array(M);
  for (const ms of tl.machinesOf) for (const m of ms) hosted[mIndex.get(m)!]++;
  // A reboot restarts most of what the machine hosts, on its own (not knocked out): one service
  // restarting without a failure before is more often a knocked-out service whose failure record
  // was lost.
  const restartsMost = (i: number, k: number) => {
    const restarted = new Set<number>();
    for (let j = i; j < N && T[j] - T[i] <= maxDelay; j++) {
      if (machine[j] === machineNames[k] && Number.isNaN(failedBefore[j]))
        restarted.add(tl.S[j]);
    }
    return 2 * restarted.size > hosted[k];
  };
  for (let i = 0; i < N; i++) {
    if (!isRestart[i] || !Number.isNaN(failedBefore[i])) continue;
    const k = mIndex.get(machine[i])!;
    const o = own[k];
    if ((o.length && T[i] - o[o.length - 1] <= maxDelay) || !restartsMost(i, k))
      continue;
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
    const a = mIndex.get(machine[i])!;
    let from = lowerBound(rebootAt, T[i] - maxDelay);
    let to = lowerBound(rebootAt, T[i] - minDelay + 1);
    const f = failedBefore[i];
    if (!Number.isNaN(f)) {
      let nearest = -1;
      for (let e = from; e < to; e++) {
        if (
          reboots[e].machine !== a &&
          (nearest < 0 ||
            Math.abs(rebootAt[e] - f) < Math.abs(rebootAt[nearest] - f))
        )
          nearest = e;
      }
      if (nearest < 0) continue;
      // A dependent fails as its dependency goes down, so about when the machine reboots: a
      // failure well before or after it has another cause.
      if (
        f < rebootAt[nearest] - KNOCKOUT_BEFORE ||
        f > rebootAt[nearest] + KNOCKOUT_AFTER
      )
        continue;
      from = nearest;
      to = nearest + 1;
    }
    for (let e = from; e < to; e++) {
      const b = reboots[e].machine;
      if (b === a || counted.has(e * M + a) || rebootingNear(a, rebootAt[e]))
        continue;
      // A dependency elsewhere that restarted just before explains the restart without b.
      const elsewhere = (d: number) =>
        !tl.machinesOf[d].has(machineNames[a]) &&
        !tl.machinesOf[d].has(machineNames[b]);
      if (
        selected[tl.S[i]].some(
          d =>
            elsewhere(d) &&
            initializedWithin(tl, d, T[i] - maxDelay, T[i] - minDelay),
        )
      )
        continue;
      counted.add(e * M + a);
      followed.set(a * M + b, (followed.get(a * M + b) ?? 0) + 1);
    }
  }
  const out: Array<Edge & { followed: number; chances: number }> = [];
  for (const [key, f] of followed) {
    const a = Math.floor(key / M);
    const b = key % M;
    const chances = own[b].filter(t => !rebootingNear(a, t)).length;
    if (2 * f > chances)
      out.push({
        service: machineNames[a],
        dependsOn: machineNames[b],
        score: roundScore(f / chances),
        followed: f,
        chances,
      });
  }
  return out.sort(
    (x, y) =>
      y.followed - x.followed ||
      y.score - x.score ||
      byName(x.service, y.service) ||
      byName(x.dependsOn, y.dependsOn),
  );
}
