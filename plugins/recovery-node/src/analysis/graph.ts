/**
 * Graph helpers of the dependency analysis: cycle breaking, topological generations,
 * transitive reduction, critical path and the merge of declared and inferred dependencies.
 * An edge `{service, dependsOn}` means `service` waits for `dependsOn`.
 */

/**
 * An edge of the dependency graph: `service` waits for `dependsOn`, with the edge's score.
 *
 * @public
 */
export interface Edge {
  service: string;
  dependsOn: string;
  score: number;
}

/**
 * A dependency cycle and the edge dropped to break it.
 *
 * @public
 */
export interface Cycle {
  /** The cycle broken, starting at the dropped edge's `service`, each depending on the next. */
  services: string[];
  /** The weakest edge, dropped to break it. */
  dropped: Edge;
}

/**
 * Compares two names by UTF-16 code units: an order that does not depend on the locale.
 *
 * @public
 */
export const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * A list in a message: its first five items, then an ellipsis for the rest.
 *
 * @public
 */
export const listed = (items: string[]) =>
  `${items.slice(0, 5).join(', ')}${items.length > 5 ? ', …' : ''}`;

/**
 * `1 warning`, `2 warnings`: a count in a message.
 *
 * @public
 */
export const counted = (n: number, noun: string) =>
  `${n} ${noun}${n === 1 ? '' : 's'}`;

/** Scores are reported to 4 decimals, and compared as reported. */
export const roundScore = (x: number) => Math.round(x * 1e4) / 1e4;

/** Weaker first: lower score, then by names; a total order so results are deterministic. */
export function compareEdgeStrength(a: Edge, b: Edge): number {
  return (
    a.score - b.score ||
    byName(a.service, b.service) ||
    byName(a.dependsOn, b.dependsOn)
  );
}

/** A graph's nodes as ids in name order (comparing ids compares names), its edges as their ends' ids. */
interface IndexedGraph {
  names: string[];
  from: Int32Array;
  to: Int32Array;
  /** Edges dropped so far: a part still lists them, and skips them. */
  gone: Uint8Array;
  /** Scratch: each node's position in the part being built or split. */
  local: Int32Array;
}

function indexed(nodes: string[], edges: Edge[]): IndexedGraph {
  const id = new Map<string, number>();
  for (const name of nodes) id.set(name, 0);
  for (const e of edges) id.set(e.service, 0).set(e.dependsOn, 0);
  const names = [...id.keys()].sort(byName);
  names.forEach((name, i) => id.set(name, i));
  const from = new Int32Array(edges.length);
  const to = new Int32Array(edges.length);
  edges.forEach((e, k) => {
    from[k] = id.get(e.service)!;
    to[k] = id.get(e.dependsOn)!;
  });
  return {
    names,
    from,
    to,
    gone: new Uint8Array(edges.length),
    local: new Int32Array(names.length),
  };
}

/**
 * A strongly connected part of an indexed graph while its cycles are broken: its nodes (ids,
 * ascending) and edges (indices), and what each node waits for, in name order: for the node at
 * position i of `nodes`, `target[start[i] .. start[i + 1]]` (positions too), through `edge`.
 * Kept from round to round while dropping an edge leaves it strongly connected, and only then
 * split: most drops in a large cycle leave the rest of it one.
 */
class Part {
  readonly start: Int32Array;
  readonly target: Int32Array;
  readonly edge: Int32Array;
  /** Where the weakest edge still in `edges` is, for edges in strength order. */
  next = 0;
  // A search's marks (`mark[i] === stamp`), the position it reached each from, its queue: made
  // at the first search (most parts are split at once, never searched).
  private search?: { mark: Int32Array; prev: Int32Array; queue: Int32Array };
  private stamp = 0;

  /** `edges` lie inside `nodes`; none is gone. */
  constructor(
    private readonly g: IndexedGraph,
    readonly nodes: number[],
    readonly edges: number[],
  ) {
    const { from, to, local } = g;
    const n = nodes.length;
    nodes.forEach((v, i) => (local[v] = i));
    // Two stable counting sorts: by what an edge waits for, then by whose it is.
    const byTo = new Int32Array(n + 1);
    for (const k of edges) byTo[local[to[k]] + 1]++;
    for (let i = 0; i < n; i++) byTo[i + 1] += byTo[i];
    const sorted = new Int32Array(edges.length);
    for (const k of edges) sorted[byTo[local[to[k]]]++] = k;
    this.start = new Int32Array(n + 1);
    for (const k of edges) this.start[local[from[k]] + 1]++;
    for (let i = 0; i < n; i++) this.start[i + 1] += this.start[i];
    const fill = this.start.slice(0, n);
    this.target = new Int32Array(edges.length);
    this.edge = new Int32Array(edges.length);
    for (const k of sorted) {
      const slot = fill[local[from[k]]]++;
      this.target[slot] = local[to[k]];
      this.edge[slot] = k;
    }
  }

  private searching() {
    const n = this.nodes.length;
    this.search ??= {
      mark: new Int32Array(n),
      prev: new Int32Array(n),
      queue: new Int32Array(n),
    };
    return { ...this.search, stamp: ++this.stamp };
  }

  /** The position of node `v` in `nodes`. */
  at(v: number): number {
    let lo = 0;
    let hi = this.nodes.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.nodes[mid] < v) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** A shortest path (positions) from `from` to `to`, breadth first in name order. */
  path(from: number, to: number): number[] {
    const { start, target, edge } = this;
    const { mark, prev, queue, stamp } = this.searching();
    const { gone } = this.g;
    mark[from] = stamp;
    prev[from] = from;
    queue[0] = from;
    for (let head = 0, tail = 1; head < tail && mark[to] !== stamp; head++) {
      const v = queue[head];
      for (let i = start[v]; i < start[v + 1]; i++) {
        const w = target[i];
        if (mark[w] === stamp || gone[edge[i]]) continue;
        mark[w] = stamp;
        prev[w] = v;
        queue[tail++] = w;
      }
    }
    const path = [to];
    while (path[path.length - 1] !== from)
      path.push(prev[path[path.length - 1]]);
    return path.reverse();
  }

  /** Whether `to` is reached from `from` (positions). */
  reaches(from: number, to: number): boolean {
    const { start, target, edge } = this;
    const { mark, queue, stamp } = this.searching();
    const { gone } = this.g;
    mark[from] = stamp;
    queue[0] = from;
    for (let top = 1; top > 0;) {
      const v = queue[--top];
      for (let i = start[v]; i < start[v + 1]; i++) {
        const w = target[i];
        if (mark[w] === stamp || gone[edge[i]]) continue;
        if (w === to) return true;
        mark[w] = stamp;
        queue[top++] = w;
      }
    }
    return false;
  }

  /**
   * Its strongly connected components of more than one node (iterative Tarjan), ordered by their
   * first node; each keeps its edges in this part's order.
   */
  split(): Part[] {
    const { start, target, edge, nodes, g } = this;
    const n = nodes.length;
    const index = new Int32Array(n).fill(-1);
    const low = new Int32Array(n);
    const onStack = new Uint8Array(n);
    const stack = new Int32Array(n);
    const callNode = new Int32Array(n);
    const callSlot = new Int32Array(n);
    const component = new Int32Array(n);
    const size: number[] = [];
    let counter = 0;
    let sp = 0;
    let depth = 0;
    const enter = (v: number) => {
      index[v] = low[v] = counter++;
      stack[sp++] = v;
      onStack[v] = 1;
      callNode[depth] = v;
      callSlot[depth++] = start[v];
    };
    for (let root = 0; root < n; root++) {
      if (index[root] >= 0) continue;
      enter(root);
      while (depth) {
        const v = callNode[depth - 1];
        if (callSlot[depth - 1] < start[v + 1]) {
          const slot = callSlot[depth - 1]++;
          if (g.gone[edge[slot]]) continue;
          const w = target[slot];
          if (index[w] < 0) enter(w);
          else if (onStack[w] && index[w] < low[v]) low[v] = index[w];
          continue;
        }
        depth--;
        if (depth && low[v] < low[callNode[depth - 1]])
          low[callNode[depth - 1]] = low[v];
        if (low[v] === index[v]) {
          let w: number;
          do {
            w = stack[--sp];
            onStack[w] = 0;
            component[w] = size.length;
          } while (w !== v);
          size.push(0);
        }
      }
    }
    for (let i = 0; i < n; i++) size[component[i]]++;
    const parts = new Map<number, { nodes: number[]; edges: number[] }>();
    nodes.forEach((v, i) => {
      const c = component[i];
      if (size[c] < 2) return;
      const into = parts.get(c);
      if (into) into.nodes.push(v);
      else parts.set(c, { nodes: [v], edges: [] });
    });
    const { from, to, local, gone } = g;
    nodes.forEach((v, i) => (local[v] = i));
    for (const k of this.edges) {
      const c = component[local[from[k]]];
      if (!gone[k] && c === component[local[to[k]]] && size[c] > 1)
        parts.get(c)!.edges.push(k);
    }
    return [...parts.values()].map(p => new Part(g, p.nodes, p.edges));
  }
}

/** The whole indexed graph as one part (its edges need not make it strongly connected). */
const whole = (g: IndexedGraph) =>
  new Part(
    g,
    g.names.map((_, v) => v),
    Array.from(g.from, (_, k) => k),
  );

/** Strongly connected components with more than one node, sorted. */
export function stronglyConnected(nodes: string[], edges: Edge[]): string[][] {
  const g = indexed(
    nodes,
    edges.filter(e => e.service !== e.dependsOn),
  );
  return whole(g)
    .split()
    .map(p => p.nodes.map(v => g.names[v]));
}

/**
 * Makes the graph acyclic by repeatedly dropping, in every cycle (strongly connected
 * component), its weakest edge (lowest score, ties by name). Self-edges are dropped silently.
 * `protect`, if given, ranks edges that should be dropped last (higher = kept longer).
 * `cycles` come round by round, each round's by the first name in their component.
 */
export function breakCycles(
  nodes: string[],
  edges: Edge[],
  protect: (e: Edge) => number = () => 0,
): { edges: Edge[]; cycles: Cycle[] } {
  const kept = edges.filter(e => e.service !== e.dependsOn);
  const g = indexed(nodes, kept);
  const { from, to, gone, names } = g;
  let round = whole(g).split();
  // Dropping an edge splits no component but its own: only the edges on a cycle are weighed.
  const rank: number[] = kept.map(() => 0);
  const onCycle = round.flatMap(part => part.edges);
  for (const k of onCycle) rank[k] = protect(kept[k]);
  const weaker = (k: number, w: number) =>
    rank[k] < rank[w] ||
    (rank[k] === rank[w] && compareEdgeStrength(kept[k], kept[w]) < 0);
  // Where ranks and scores are numbers (not NaN), that is a total order: each part's edges are
  // sorted by it once (by input order where equal) and the weakest is the first not dropped.
  // Otherwise each round looks at all its edges in input order, first of the weakest kept.
  const ordered = onCycle.every(
    k => isNumber(rank[k]) && isNumber(kept[k].score),
  );
  if (ordered) {
    for (const part of round) {
      part.edges.sort(
        (a, b) =>
          (rank[a] < rank[b] ? -1 : rank[a] > rank[b] ? 1 : 0) ||
          kept[a].score - kept[b].score ||
          from[a] - from[b] ||
          to[a] - to[b] ||
          a - b,
      );
    }
  }
  const weakestOf = (part: Part) => {
    if (ordered) {
      while (gone[part.edges[part.next]]) part.next++;
      return part.edges[part.next];
    }
    let w = -1;
    for (const k of part.edges) if (!gone[k] && (w < 0 || weaker(k, w))) w = k;
    return w;
  };
  const cycles: Cycle[] = [];
  while (round.length) {
    const next: Part[] = [];
    for (const part of round) {
      const w = weakestOf(part);
      gone[w] = 1;
      const service = part.at(from[w]);
      const dependsOn = part.at(to[w]);
      const path = part.path(dependsOn, service).map(i => names[part.nodes[i]]);
      cycles.push({
        services: [kept[w].service, ...path.slice(0, -1)],
        dropped: { ...kept[w] },
      });
      // Still strongly connected where what the edge joined is still joined another way.
      if (part.reaches(service, dependsOn)) next.push(part);
      else next.push(...part.split());
    }
    round = next.sort((a, b) => a.nodes[0] - b.nodes[0]);
  }
  return { edges: kept.filter((_, k) => !gone[k]), cycles };
}

const isNumber = (x: unknown) => typeof x === 'number' && !Number.isNaN(x);

/**
 * The one implementation of topological generations (waves): each node's generation, one past the
 * latest of what it waits on (Kahn's order over ids). Nodes are `nodes`, then those only edges
 * name; a self-edge is no edge and names no node; a repeated edge changes nothing. `placed` short
 * of the node count: a cycle leaves the rest unplaced.
 */
function generationLevels(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
) {
  const index = new Map<string, number>();
  for (const n of nodes) if (!index.has(n)) index.set(n, index.size);
  const from: number[] = [];
  const to: number[] = [];
  for (const e of edges) {
    if (e.service === e.dependsOn) continue;
    for (const n of [e.service, e.dependsOn])
      if (!index.has(n)) index.set(n, index.size);
    from.push(index.get(e.dependsOn)!);
    to.push(index.get(e.service)!);
  }
  const count = index.size;
  // Edges by their earlier node (counting sort), and how many edges each node still waits on.
  const start = new Int32Array(count + 1);
  const waiting = new Int32Array(count);
  for (let k = 0; k < from.length; k++) {
    start[from[k] + 1]++;
    waiting[to[k]]++;
  }
  for (let v = 0; v < count; v++) start[v + 1] += start[v];
  const next = new Int32Array(from.length);
  const fill = start.slice(0, count);
  for (let k = 0; k < from.length; k++) next[fill[from[k]]++] = to[k];
  const level = new Int32Array(count);
  const queue = new Int32Array(count);
  let placed = 0;
  for (let v = 0; v < count; v++) if (waiting[v] === 0) queue[placed++] = v;
  let depth = 0;
  for (let head = 0; head < placed; head++) {
    const v = queue[head];
    depth = Math.max(depth, level[v] + 1);
    for (let k = start[v]; k < start[v + 1]; k++) {
      const u = next[k];
      level[u] = Math.max(level[u], level[v] + 1);
      if (--waiting[u] === 0) queue[placed++] = u;
    }
  }
  return { index, from, to, level, waiting, placed, depth };
}

export interface Waves {
  /**
   * Wave k: the nodes whose dependencies all lie in waves before k, by `order` then name. With a
   * cycle, the nodes that do not wait on it.
   */
  waves: string[][];
  /**
   * A dependency cycle, where there is one: its nodes in order, each waiting on the next (the last
   * on the first), from the smallest name of those a cycle holds back, each time following the
   * smallest name of what the node waits on among them.
   */
  cycle?: string[];
}

/**
 * Topological generations (waves), deterministic: wave 0 depends on nothing, wave k on something
 * in wave k - 1; ties by `order`, then by name. Nodes only edges name are placed too; a self-edge
 * is no edge. A cycle is reported (`cycle`), not thrown: the boot plan names it, the analysis
 * breaks cycles before.
 */
export function topologicalWaves(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
  order?: (a: string, b: string) => number,
): Waves {
  const { index, from, to, level, waiting, placed, depth } = generationLevels(
    nodes,
    edges,
  );
  const names = [...index.keys()];
  const waves: string[][] = Array.from({ length: depth }, () => []);
  names.forEach((name, v) => {
    if (waiting[v] === 0) waves[level[v]].push(name);
  });
  for (const wave of waves)
    wave.sort((a, b) => (order ? order(a, b) : 0) || byName(a, b));
  if (placed === names.length) return { waves };
  // Every node a cycle holds back waits on another such node: following the smallest one from the
  // smallest comes round to a node already passed, and from there to it again is a cycle.
  const dependencies = new Map<number, number[]>();
  for (let k = 0; k < from.length; k++) {
    if (waiting[to[k]] === 0 || waiting[from[k]] === 0) continue;
    const list = dependencies.get(to[k]);
    if (list) list.push(from[k]);
    else dependencies.set(to[k], [from[k]]);
  }
  const smallest = (ids: Iterable<number>) => {
    let best = -1;
    for (const v of ids) if (best < 0 || names[v] < names[best]) best = v;
    return best;
  };
  const path: number[] = [];
  const onPath = new Map<number, number>();
  let v = smallest(dependencies.keys());
  while (!onPath.has(v)) {
    onPath.set(v, path.length);
    path.push(v);
    v = smallest(dependencies.get(v)!);
  }
  return { waves, cycle: path.slice(onPath.get(v)!).map(u => names[u]) };
}

/**
 * How many `generations` the graph has (Infinity where it has a cycle), without building them:
 * a plan tries hundreds of machine edges each against the depth of all the others.
 */
export function generationCount(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
): number {
  const { index, placed, depth } = generationLevels(nodes, edges);
  return placed < index.size ? Infinity : depth;
}

/**
 * Topological generations (topologicalWaves) of a graph whose cycles are broken: throws if it
 * still has one.
 *
 * @public
 */
export function generations(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
  order?: (a: string, b: string) => number,
): string[][] {
  const { waves, cycle } = topologicalWaves(nodes, edges, order);
  if (cycle) throw new Error('graph has a cycle; break cycles first');
  return waves;
}

/**
 * Edges of a DAG that are not implied by a longer path (transitive reduction).
 * Input must be acyclic.
 *
 * @public
 */
export function transitiveReduction<
  E extends { service: string; dependsOn: string },
>(nodes: string[], edges: E[]): E[] {
  const gens = generations(nodes, edges);
  const ids = new Map<string, number>();
  gens.flat().forEach((n, i) => ids.set(n, i));
  const n = ids.size;
  const words = Math.ceil(n / 32) || 1;
  const reach = new Uint32Array(n * words);
  const deps: number[][] = Array.from({ length: n }, () => []);
  for (const e of edges)
    if (e.service !== e.dependsOn)
      deps[ids.get(e.service)!].push(ids.get(e.dependsOn)!);
  // ids are in topological order (dependencies first): fill reach sets bottom-up.
  for (let v = 0; v < n; v++) {
    for (const d of deps[v]) {
      reach[v * words + (d >>> 5)] |= 1 << (d & 31);
      for (let w = 0; w < words; w++)
        reach[v * words + w] |= reach[d * words + w];
    }
  }
  return edges.filter(e => {
    if (e.service === e.dependsOn) return false;
    const v = ids.get(e.service)!;
    const b = ids.get(e.dependsOn)!;
    for (const c of deps[v]) {
      if (c === b) continue;
      if (reach[c * words + (b >>> 5)] & (1 << (b & 31))) return false;
    }
    return true;
  });
}

/**
 * Transitive closure as a set of `service\0dependsOn` keys. Input must be acyclic.
 *
 * @public
 */
export function transitiveClosure(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
): Set<string> {
  const deps = new Map<string, string[]>();
  for (const e of edges) {
    if (!deps.has(e.service)) deps.set(e.service, []);
    deps.get(e.service)!.push(e.dependsOn);
  }
  const memo = new Map<string, Set<string>>();
  const order = generations(nodes, edges).flat();
  for (const v of order) {
    const s = new Set<string>();
    for (const d of deps.get(v) ?? []) {
      s.add(d);
      for (const x of memo.get(d) ?? []) s.add(x);
    }
    memo.set(v, s);
  }
  const out = new Set<string>();
  for (const [v, s] of memo) for (const d of s) out.add(`${v}\u0000${d}`);
  return out;
}

/**
 * The longest chain of machine waits of a plan, and its duration.
 *
 * @public
 */
export interface CriticalPath {
  /** Machines on the longest chain, first to boot first. */
  path: string[];
  /** Sum of their durations (same unit as the input). */
  duration: number;
}

/**
 * Throws on a boot duration that is not a finite number of 0 or more, naming its machine: a typo'd
 * one (a string, -1 for unknown) would otherwise pass for 0 and shorten the critical path.
 *
 * @public
 */
export function checkBootDurations(durations: Record<string, unknown>): void {
  for (const [m, d] of Object.entries(durations)) {
    if (!(typeof d === 'number' && Number.isFinite(d) && d >= 0)) {
      throw new Error(
        `the boot duration of ${m} must be a finite number, 0 or more (got ${typeof d === 'string' ? JSON.stringify(d) : String(d)})`,
      );
    }
  }
}

/**
 * The critical path of a boot plan for given per-machine boot durations (missing = 0; a negative
 * or non-finite one is an error naming its machine). With `edges` (machine waits for machines),
 * the longest dependency chain, with the machines of 0 s on it (ties below); with only `waves`,
 * waves are barriers, so the path takes the slowest machine of every wave (first by name of those
 * as slow).
 *
 * @public
 */
export function criticalPath(
  plan: {
    waves: string[][];
    edges?: Array<{ machine: string; waitsFor: string[] }>;
  },
  durations: Record<string, number>,
): CriticalPath {
  checkBootDurations(durations);
  const dur = (m: string) =>
    Object.prototype.hasOwnProperty.call(durations, m) ? durations[m] : 0;
  if (!plan.edges) {
    const path: string[] = [];
    let duration = 0;
    for (const wave of plan.waves) {
      if (!wave.length) continue;
      let best = wave[0];
      for (const m of wave)
        if (dur(m) > dur(best) || (dur(m) === dur(best) && m < best)) best = m;
      path.push(best);
      duration += dur(best);
    }
    return { path, duration };
  }
  const waits = new Map<string, Set<string>>();
  for (const e of plan.edges) {
    if (!waits.has(e.machine)) waits.set(e.machine, new Set());
    for (const w of e.waitsFor)
      if (w !== e.machine) waits.get(e.machine)!.add(w);
  }
  // Of equally long chains, the one of more machines: a machine that takes 0 s still lies on the
  // chain it waits for (or that waits for it), and is on the path. Then, from its end back, each
  // machine first by name. Both depend on the plan alone, not on the order it lists anything in.
  type Chain = { finish: number; machines: number; from?: string };
  const longer = (a: Chain, b: Chain) =>
    a.finish > b.finish || (a.finish === b.finish && a.machines > b.machines);
  const chains = new Map<string, Chain>();
  const nodes = [...new Set([...plan.waves.flat(), ...waits.keys()])];
  const edgeList = [...waits].flatMap(([machine, ws]) =>
    [...ws].map(w => ({ service: machine, dependsOn: w })),
  );
  for (const m of generations(nodes, edgeList).flat()) {
    let before: Chain = { finish: 0, machines: 0 };
    let from: string | undefined;
    for (const w of [...(waits.get(m) ?? [])].sort(byName)) {
      const chain = chains.get(w);
      if (chain && longer(chain, before)) {
        before = chain;
        from = w;
      }
    }
    chains.set(m, {
      finish: before.finish + dur(m),
      machines: before.machines + 1,
      from,
    });
  }
  let end: string | undefined;
  for (const m of [...chains.keys()].sort(byName)) {
    if (end === undefined || longer(chains.get(m)!, chains.get(end)!)) end = m;
  }
  const path: string[] = [];
  for (let m = end; m !== undefined; m = chains.get(m)!.from) path.push(m);
  return {
    path: path.reverse(),
    duration: end === undefined ? 0 : chains.get(end)!.finish,
  };
}

/**
 * A dependency a boot plan follows: declared in the catalog, inferred, or both.
 *
 * @public
 */
export interface PlannedEdge {
  service: string;
  dependsOn: string;
  source: 'declared' | 'inferred' | 'both';
  /** Inferred score, when inferred. */
  score?: number;
}

/**
 * Declared and inferred dependencies merged into the acyclic edges of a plan.
 *
 * @public
 */
export interface MergedDependencies {
  /** Acyclic edges of the plan, sorted by service then dependsOn. */
  edges: PlannedEdge[];
  /**
   * Edges dropped to break cycles, as breakCycles dropped them: round by round, each round one per
   * component. In a component inferred-only edges go first, weakest first.
   */
  dropped: PlannedEdge[];
  disagreements: {
    /** Inferred (score >= threshold) but not declared. */
    inferredNotDeclared: Array<{
      service: string;
      dependsOn: string;
      score: number;
    }>;
    /** Declared, but no inferred edge or inferred path supports it. */
    declaredNotObserved: Array<{ service: string; dependsOn: string }>;
  };
}

/**
 * Merges declared (catalog) dependencies with inferred ones into one acyclic plan. Inferred edges
 * below `threshold` are ignored. Cycles are broken by dropping inferred-only edges first
 * (weakest first), declared ones only when a cycle consists of declared edges alone.
 *
 * @public
 */
export function mergeDependencies(input: {
  declared: Array<{ service: string; dependsOn: string }>;
  inferred: Array<{ service: string; dependsOn: string; score: number }>;
  threshold?: number;
}): MergedDependencies {
  const threshold = input.threshold ?? 0.7;
  const key = (s: string, d: string) => `${s}\u0000${d}`;
  const merged = new Map<string, PlannedEdge>();
  for (const d of input.declared) {
    if (d.service === d.dependsOn) continue;
    merged.set(key(d.service, d.dependsOn), {
      service: d.service,
      dependsOn: d.dependsOn,
      source: 'declared',
    });
  }
  const inferred = input.inferred.filter(
    e => e.score >= threshold && e.service !== e.dependsOn,
  );
  for (const e of inferred) {
    const k = key(e.service, e.dependsOn);
    const prev = merged.get(k);
    const score = Math.max(e.score, prev?.score ?? -Infinity);
    merged.set(k, {
      service: e.service,
      dependsOn: e.dependsOn,
      source: prev && prev.source !== 'inferred' ? 'both' : 'inferred',
      score,
    });
  }
  const list = [...merged.values()].sort(
    (a, b) => byName(a.service, b.service) || byName(a.dependsOn, b.dependsOn),
  );
  const nodes = [...new Set(list.flatMap(e => [e.service, e.dependsOn]))].sort(
    byName,
  );
  const asEdge = new Map<Edge, PlannedEdge>();
  const edges = list.map(p => {
    // Declared edges carry score 2 so inferred ones are always weaker.
    const e: Edge = {
      service: p.service,
      dependsOn: p.dependsOn,
      score: p.source === 'inferred' ? p.score! : 2,
    };
    asEdge.set(e, p);
    return e;
  });
  const broken = breakCycles(nodes, edges, e =>
    asEdge.get(e)!.source === 'inferred' ? 0 : 1,
  );
  const keptSet = new Set(broken.edges.map(e => asEdge.get(e)!));
  // A cycle's dropped edge is a copy: found again by its ends, one edge per pair.
  const dropped = broken.cycles.map(c =>
    merged.get(key(c.dropped.service, c.dropped.dependsOn))!,
  );

  const inferredNotDeclared = inferred
    .filter(e => merged.get(key(e.service, e.dependsOn))!.source === 'inferred')
    .map(e => ({ service: e.service, dependsOn: e.dependsOn, score: e.score }))
    .sort(
      (a, b) =>
        byName(a.service, b.service) || byName(a.dependsOn, b.dependsOn),
    );
  // Observed: an inferred edge or an inferred path (inferred edges may be transitively reduced).
  const inferredAdj = new Map<string, string[]>();
  for (const e of inferred) {
    if (!inferredAdj.has(e.service)) inferredAdj.set(e.service, []);
    inferredAdj.get(e.service)!.push(e.dependsOn);
  }
  const reachable = (from: string, to: string) => {
    const seen = new Set([from]);
    const stack = [from];
    while (stack.length) {
      const v = stack.pop()!;
      for (const w of inferredAdj.get(v) ?? []) {
        if (w === to) return true;
        if (!seen.has(w)) {
          seen.add(w);
          stack.push(w);
        }
      }
    }
    return false;
  };
  // Each declared pair once, in the list's order: by service, then dependsOn.
  const declaredNotObserved = list
    .filter(d => d.source !== 'inferred' && !reachable(d.service, d.dependsOn))
    .map(d => ({ service: d.service, dependsOn: d.dependsOn }));
  return {
    edges: list.filter(p => keptSet.has(p)),
    dropped,
    disagreements: { inferredNotDeclared, declaredNotObserved },
  };
}

/**
 * A total order of nodes `0..n-1` (dependencies first) respecting as many weighted precedence
 * constraints as possible: Kahn's algorithm over all constraints; when every remaining node still
 * waits for something (a cycle), the node with the least remaining incoming weight goes first
 * (greedy feedback arc set). Among ready nodes, the lowest `key` (then index) goes first.
 * `constraints` are `[node, mustComeAfter, weight]`. Deterministic.
 */
export function precedenceOrder(
  n: number,
  constraints: Array<[number, number, number]>,
  key: ArrayLike<number>,
): number[] {
  const out: number[][] = Array.from({ length: n }, () => []);
  const outW: number[][] = Array.from({ length: n }, () => []);
  const inW = new Float64Array(n);
  const inCount = new Int32Array(n);
  for (const [a, b, w] of constraints) {
    if (a === b) continue;
    out[b].push(a);
    outW[b].push(w);
    inW[a] += w;
    inCount[a]++;
  }
  const less = (x: number, y: number) =>
    key[x] < key[y] || (key[x] === key[y] && x < y);
  const heap: number[] = [];
  const push = (v: number) => {
    heap.push(v);
    let i = heap.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(heap[i], heap[p])) break;
      [heap[i], heap[p]] = [heap[p], heap[i]];
      i = p;
    }
  };
  const pop = () => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && less(heap[l], heap[m])) m = l;
        if (r < heap.length && less(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  };
  const done = new Uint8Array(n);
  for (let v = 0; v < n; v++) if (inCount[v] === 0) push(v);
  const order: number[] = [];
  while (order.length < n) {
    let v: number;
    if (heap.length) v = pop();
    else {
      v = -1;
      for (let u = 0; u < n; u++)
        if (
          !done[u] &&
          (v < 0 || inW[u] < inW[v] || (inW[u] === inW[v] && less(u, v)))
        )
          v = u;
    }
    if (done[v]) continue;
    done[v] = 1;
    order.push(v);
    const list = out[v];
    for (let i = 0; i < list.length; i++) {
      const u = list[i];
      if (done[u]) continue;
      inW[u] -= outW[v][i];
      if (--inCount[u] === 0) push(u);
    }
  }
  return order;
}

/** Each node's earliest and latest generation (its slack); a node on a longest chain has none. */
function slack(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
) {
  const asapGens = generations(nodes, edges);
  const D = asapGens.length;
  const asap = new Map<string, number>();
  asapGens.forEach((g, k) => g.forEach(v => asap.set(v, k)));
  const revGens = generations(
    [...asap.keys()],
    edges.map(e => ({ service: e.dependsOn, dependsOn: e.service })),
  );
  const alap = new Map<string, number>();
  revGens.forEach((g, k) => g.forEach(v => alap.set(v, D - 1 - k)));
  return { asapGens, asap, alap };
}

/**
 * The edges that every longest chain passes through: removing one of them makes the generations
 * fewer. An edge on a longest chain joins two nodes without slack in consecutive generations; it
 * is on every one where no other such edge joins the same two generations. Input must be acyclic.
 */
export function bottleneckEdges<
  E extends { service: string; dependsOn: string },
>(nodes: string[], edges: E[]): E[] {
  const { asap, alap } = slack(nodes, edges);
  const across = new Map<number, E[]>(); // generation of the dependency → longest-chain edges from it
  for (const e of edges) {
    const k = asap.get(e.dependsOn)!;
    const onLongest =
      alap.get(e.dependsOn) === k &&
      asap.get(e.service) === k + 1 &&
      alap.get(e.service) === k + 1;
    if (!onLongest) continue;
    const list = across.get(k);
    if (list) list.push(e);
    else across.set(k, [e]);
  }
  return [...across.values()].filter(list => list.length === 1).map(([e]) => e);
}

/**
 * Topological generations with each node placed, within its slack, by timing: the number of
 * generations is that of the longest chain; nodes on a longest chain are fixed and anchor each
 * generation at the median `timing` of its fixed nodes; every other node goes to the latest
 * generation whose anchor it reaches (past the midpoint from the previous anchor), clamped between its earliest
 * (after all it depends on) and latest (before all that depends on it) possible generation.
 * A node with undetected dependencies is then no longer pulled to the front just for lack of
 * evidence, nor one with undetected dependents to the back. An anchor less than `resolution`
 * past the previous one tells its generation apart by nothing but noise, so timing alone reaches
 * no further: where every generation starts alike, a free node stays at the front. Input must be
 * acyclic.
 * A variant kept beside topologicalWaves (and built on it, through `slack`): it moves nodes
 * within their slack by timing, where waves put every node as early as it can go.
 */
export function timedGenerations(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
  timing: (node: string) => number,
  resolution = 0,
): string[][] {
  const { asapGens, alap } = slack(nodes, edges);
  const D = asapGens.length;
  if (D <= 1) return asapGens;
  const anchor: number[] = [];
  for (let k = 0; k < D; k++) {
    const fixed = asapGens[k]
      .filter(v => alap.get(v) === k)
      .map(timing)
      .sort((x, y) => x - y);
    anchor.push(fixed.length ? fixed[(fixed.length - 1) >> 1] : NaN);
  }
  const deps = new Map<string, string[]>();
  for (const e of edges) {
    if (e.service === e.dependsOn) continue;
    if (!deps.has(e.service)) deps.set(e.service, []);
    deps.get(e.service)!.push(e.dependsOn);
  }
  const wave = new Map<string, number>();
  for (const v of asapGens.flat()) {
    let lb = 0;
    for (const d of deps.get(v) ?? []) lb = Math.max(lb, wave.get(d)! + 1);
    const t = timing(v);
    let target = 0;
    let prev = NaN;
    for (let k = 0; k < D; k++) {
      if (Number.isNaN(anchor[k]) || anchor[k] < prev + resolution) continue;
      const cut = Number.isNaN(prev) ? anchor[k] : (prev + anchor[k]) / 2;
      if (t >= cut) target = k;
      prev = anchor[k];
    }
    wave.set(v, Math.min(alap.get(v)!, Math.max(lb, target)));
  }
  const out: string[][] = Array.from({ length: D }, () => []);
  for (const [v, k] of wave) out[k].push(v);
  return out.map(g => g.sort(byName)).filter(g => g.length);
}
