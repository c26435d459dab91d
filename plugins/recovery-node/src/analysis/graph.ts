/**
 * Graph helpers of the dependency analysis: cycle breaking, topological generations,
 * transitive reduction, critical path and the merge of declared and inferred dependencies.
 * An edge `{service, dependsOn}` means `service` waits for `dependsOn`.
 */

export interface Edge {
  service: string;
  dependsOn: string;
  score: number;
}

export interface Cycle {
  /** The cycle broken, starting at the dropped edge's `service`, each depending on the next. */
  services: string[];
  /** The weakest edge, dropped to break it. */
  dropped: Edge;
}

export const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A list in a message: its first five items, then an ellipsis for the rest. */
export const listed = (items: string[]) => `${items.slice(0, 5).join(', ')}${items.length > 5 ? ', …' : ''}`;

/** `1 warning`, `2 warnings`: a count in a message. */
export const counted = (n: number, noun: string) => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** Scores are reported to 4 decimals, and compared as reported. */
export const roundScore = (x: number) => Math.round(x * 1e4) / 1e4;

/** Weaker first: lower score, then by names; a total order so results are deterministic. */
export function compareEdgeStrength(a: Edge, b: Edge): number {
  return a.score - b.score || byName(a.service, b.service) || byName(a.dependsOn, b.dependsOn);
}

function adjacency(nodes: string[], edges: Edge[]): Map<string, Edge[]> {
  const adj = new Map<string, Edge[]>();
  for (const n of nodes) adj.set(n, []);
  for (const e of edges) {
    if (!adj.has(e.service)) adj.set(e.service, []);
    if (!adj.has(e.dependsOn)) adj.set(e.dependsOn, []);
    adj.get(e.service)!.push(e);
  }
  for (const list of adj.values()) list.sort((x, y) => byName(x.dependsOn, y.dependsOn));
  return adj;
}

/** Strongly connected components with more than one node (iterative Tarjan), sorted. */
export function stronglyConnected(nodes: string[], edges: Edge[]): string[][] {
  const adj = adjacency(nodes, edges);
  const all = [...adj.keys()].sort(byName);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let counter = 0;
  for (const root of all) {
    if (index.has(root)) continue;
    const work: Array<{ v: string; i: number }> = [{ v: root, i: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length) {
      const frame = work[work.length - 1];
      const succ = adj.get(frame.v)!;
      if (frame.i < succ.length) {
        const w = succ[frame.i++].dependsOn;
        if (!index.has(w)) {
          index.set(w, counter);
          low.set(w, counter++);
          stack.push(w);
          onStack.add(w);
          work.push({ v: w, i: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v)!, index.get(w)!));
        }
      } else {
        work.pop();
        if (work.length) {
          const parent = work[work.length - 1].v;
          low.set(parent, Math.min(low.get(parent)!, low.get(frame.v)!));
        }
        if (low.get(frame.v) === index.get(frame.v)) {
          const comp: string[] = [];
          let w: string;
          do {
            w = stack.pop()!;
            onStack.delete(w);
            comp.push(w);
          } while (w !== frame.v);
          if (comp.length > 1) out.push(comp.sort(byName));
        }
      }
    }
  }
  return out.sort((a, b) => byName(a[0], b[0]));
}

function shortestPath(adj: Map<string, Edge[]>, from: string, to: string, within: Set<string>): string[] {
  const prev = new Map<string, string>([[from, from]]);
  const queue = [from];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    if (v === to) break;
    for (const e of adj.get(v) ?? []) {
      if (within.has(e.dependsOn) && !prev.has(e.dependsOn)) {
        prev.set(e.dependsOn, v);
        queue.push(e.dependsOn);
      }
    }
  }
  const path = [to];
  while (path[path.length - 1] !== from) path.push(prev.get(path[path.length - 1])!);
  return path.reverse();
}

/**
 * Makes the graph acyclic by repeatedly dropping, in every cycle (strongly connected
 * component), its weakest edge (lowest score, ties by name). Self-edges are dropped silently.
 * `protect`, if given, ranks edges that should be dropped last (higher = kept longer).
 */
export function breakCycles(
  nodes: string[],
  edges: Edge[],
  protect: (e: Edge) => number = () => 0,
): { edges: Edge[]; cycles: Cycle[] } {
  let kept = edges.filter(e => e.service !== e.dependsOn);
  const cycles: Cycle[] = [];
  for (;;) {
    const sccs = stronglyConnected(nodes, kept);
    if (!sccs.length) break;
    const drop = new Set<Edge>();
    const adj = adjacency(nodes, kept);
    for (const comp of sccs) {
      const inside = new Set(comp);
      let weakest: Edge | undefined;
      for (const e of kept) {
        if (!inside.has(e.service) || !inside.has(e.dependsOn)) continue;
        if (
          !weakest ||
          protect(e) < protect(weakest) ||
          (protect(e) === protect(weakest) && compareEdgeStrength(e, weakest) < 0)
        ) {
          weakest = e;
        }
      }
      const path = shortestPath(adj, weakest!.dependsOn, weakest!.service, inside);
      cycles.push({ services: [weakest!.service, ...path.slice(0, -1)], dropped: { ...weakest! } });
      drop.add(weakest!);
    }
    kept = kept.filter(e => !drop.has(e));
  }
  return { edges: kept, cycles };
}

/**
 * How many `generations` the graph has (Infinity where it has a cycle), without building them:
 * the longest chain of edges, by index. A plan tries hundreds of machine edges each against the
 * depth of all the others.
 */
export function generationCount(nodes: string[], edges: Array<{ service: string; dependsOn: string }>): number {
  const index = new Map<string, number>();
  for (const n of nodes) if (!index.has(n)) index.set(n, index.size);
  const from: number[] = [];
  const to: number[] = [];
  for (const e of edges) {
    // As in generations: a self-edge is no edge, and names no node.
    if (e.service === e.dependsOn) continue;
    for (const n of [e.service, e.dependsOn]) if (!index.has(n)) index.set(n, index.size);
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
  // Kahn's order; each node's generation is one past the latest of what it waits on.
  const level = new Int32Array(count);
  const queue = new Int32Array(count);
  let tail = 0;
  for (let v = 0; v < count; v++) if (waiting[v] === 0) queue[tail++] = v;
  let depth = 0;
  for (let head = 0; head < tail; head++) {
    const v = queue[head];
    depth = Math.max(depth, level[v] + 1);
    for (let k = start[v]; k < start[v + 1]; k++) {
      const u = next[k];
      level[u] = Math.max(level[u], level[v] + 1);
      if (--waiting[u] === 0) queue[tail++] = u;
    }
  }
  return tail < count ? Infinity : depth;
}

/**
 * Topological generations: generation 0 depends on nothing, generation k on something in k-1.
 * Throws if the graph still has a cycle. Each generation sorted by `order` then name.
 */
export function generations(
  nodes: string[],
  edges: Array<{ service: string; dependsOn: string }>,
  order?: (a: string, b: string) => number,
): string[][] {
  const deps = new Map<string, string[]>();
  const dependents = new Map<string, string[]>();
  for (const n of nodes) {
    deps.set(n, []);
    dependents.set(n, []);
  }
  for (const e of edges) {
    if (e.service === e.dependsOn) continue;
    for (const n of [e.service, e.dependsOn]) {
      if (!deps.has(n)) {
        deps.set(n, []);
        dependents.set(n, []);
      }
    }
    deps.get(e.service)!.push(e.dependsOn);
    dependents.get(e.dependsOn)!.push(e.service);
  }
  const remaining = new Map<string, number>();
  for (const [n, d] of deps) remaining.set(n, new Set(d).size);
  const seenEdge = new Set<string>();
  const sort = (list: string[]) => list.sort((a, b) => (order ? order(a, b) : 0) || byName(a, b));
  let current = sort([...deps.keys()].filter(n => remaining.get(n) === 0));
  const out: string[][] = [];
  let placed = 0;
  while (current.length) {
    out.push(current);
    placed += current.length;
    const next: string[] = [];
    for (const n of current) {
      for (const m of dependents.get(n)!) {
        const key = `${m}\u0000${n}`;
        if (seenEdge.has(key)) continue;
        seenEdge.add(key);
        const r = remaining.get(m)! - 1;
        remaining.set(m, r);
        if (r === 0) next.push(m);
      }
    }
    current = sort(next);
  }
  if (placed !== deps.size) throw new Error('graph has a cycle; break cycles first');
  return out;
}

/**
 * Edges of a DAG that are not implied by a longer path (transitive reduction).
 * Input must be acyclic.
 */
export function transitiveReduction<E extends { service: string; dependsOn: string }>(
  nodes: string[],
  edges: E[],
): E[] {
  const gens = generations(nodes, edges);
  const ids = new Map<string, number>();
  gens.flat().forEach((n, i) => ids.set(n, i));
  const n = ids.size;
  const words = Math.ceil(n / 32) || 1;
  const reach = new Uint32Array(n * words);
  const deps: number[][] = Array.from({ length: n }, () => []);
  for (const e of edges) if (e.service !== e.dependsOn) deps[ids.get(e.service)!].push(ids.get(e.dependsOn)!);
  // ids are in topological order (dependencies first): fill reach sets bottom-up.
  for (let v = 0; v < n; v++) {
    for (const d of deps[v]) {
      reach[v * words + (d >>> 5)] |= 1 << (d & 31);
      for (let w = 0; w < words; w++) reach[v * words + w] |= reach[d * words + w];
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

/** Transitive closure as a set of `service\0dependsOn` keys. Input must be acyclic. */
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

export interface CriticalPath {
  /** Machines on the longest chain, first to boot first. */
  path: string[];
  /** Sum of their durations (same unit as the input). */
  duration: number;
}

/**
 * Throws on a boot duration that is not a finite number of 0 or more, naming its machine: a typo'd
 * one (a string, -1 for unknown) would otherwise pass for 0 and shorten the critical path.
 */
export function checkBootDurations(durations: Record<string, unknown>): void {
  for (const [m, d] of Object.entries(durations)) {
    if (!(typeof d === 'number' && Number.isFinite(d) && d >= 0)) {
      throw new Error(`the boot duration of ${m} must be a finite number, 0 or more (got ${typeof d === 'string' ? JSON.stringify(d) : String(d)})`);
    }
  }
}

/**
 * The critical path of a boot plan for given per-machine boot durations (missing = 0; a negative
 * or non-finite one is an error naming its machine). With `edges` (machine waits for machines),
 * the longest dependency chain; with only `waves`, waves are barriers, so the path takes the
 * slowest machine of every wave.
 */
export function criticalPath(
  plan: { waves: string[][]; edges?: Array<{ machine: string; waitsFor: string[] }> },
  durations: Record<string, number>,
): CriticalPath {
  checkBootDurations(durations);
  const dur = (m: string) => (Object.prototype.hasOwnProperty.call(durations, m) ? durations[m] : 0);
  if (!plan.edges) {
    const path: string[] = [];
    let duration = 0;
    for (const wave of plan.waves) {
      if (!wave.length) continue;
      let best = wave[0];
      for (const m of wave) if (dur(m) > dur(best) || (dur(m) === dur(best) && m < best)) best = m;
      path.push(best);
      duration += dur(best);
    }
    return { path, duration };
  }
  const waits = new Map<string, string[]>();
  for (const e of plan.edges) waits.set(e.machine, [...e.waitsFor].sort(byName));
  const finish = new Map<string, number>();
  const prev = new Map<string, string | undefined>();
  const nodes = [...new Set([...plan.waves.flat(), ...waits.keys()])];
  const edgeList = plan.edges.flatMap(e => e.waitsFor.map(w => ({ service: e.machine, dependsOn: w })));
  for (const m of generations(nodes, edgeList).flat()) {
    let start = 0;
    let from: string | undefined;
    for (const w of waits.get(m) ?? []) {
      const f = finish.get(w) ?? 0;
      if (f > start || (f === start && from === undefined && f > 0)) {
        start = f;
        from = w;
      }
    }
    finish.set(m, start + dur(m));
    prev.set(m, from);
  }
  let end: string | undefined;
  for (const [m, f] of [...finish].sort((a, b) => byName(a[0], b[0]))) {
    if (end === undefined || f > finish.get(end)!) end = m;
  }
  const path: string[] = [];
  for (let m = end; m !== undefined; m = prev.get(m)) path.push(m);
  return { path: path.reverse(), duration: end === undefined ? 0 : finish.get(end)! };
}

export interface PlannedEdge {
  service: string;
  dependsOn: string;
  source: 'declared' | 'inferred' | 'both';
  /** Inferred score, when inferred. */
  score?: number;
}

export interface MergedDependencies {
  /** Acyclic edges of the plan, sorted by service then dependsOn. */
  edges: PlannedEdge[];
  /** Edges dropped to break cycles (inferred ones first, weakest first). */
  dropped: PlannedEdge[];
  disagreements: {
    /** Inferred (score >= threshold) but not declared. */
    inferredNotDeclared: Array<{ service: string; dependsOn: string; score: number }>;
    /** Declared, but no inferred edge or inferred path supports it. */
    declaredNotObserved: Array<{ service: string; dependsOn: string }>;
  };
}

/**
 * Merges declared (catalog) dependencies with inferred ones into one acyclic plan. Inferred edges
 * below `threshold` are ignored. Cycles are broken by dropping inferred-only edges first
 * (weakest first), declared ones only when a cycle consists of declared edges alone.
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
    merged.set(key(d.service, d.dependsOn), { service: d.service, dependsOn: d.dependsOn, source: 'declared' });
  }
  const inferred = input.inferred.filter(e => e.score >= threshold && e.service !== e.dependsOn);
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
  const list = [...merged.values()].sort((a, b) => byName(a.service, b.service) || byName(a.dependsOn, b.dependsOn));
  const nodes = [...new Set(list.flatMap(e => [e.service, e.dependsOn]))].sort(byName);
  const asEdge = new Map<Edge, PlannedEdge>();
  const edges = list.map(p => {
    // Declared edges carry score 2 so inferred ones are always weaker.
    const e: Edge = { service: p.service, dependsOn: p.dependsOn, score: p.source === 'inferred' ? p.score! : 2 };
    asEdge.set(e, p);
    return e;
  });
  const broken = breakCycles(nodes, edges, e => (asEdge.get(e)!.source === 'inferred' ? 0 : 1));
  const keptSet = new Set(broken.edges.map(e => asEdge.get(e)!));
  const dropped = broken.cycles.map(c => [...asEdge.entries()].find(([e]) => e.service === c.dropped.service && e.dependsOn === c.dropped.dependsOn)![1]);

  const declaredKeys = new Set(input.declared.map(d => key(d.service, d.dependsOn)));
  const inferredNotDeclared = inferred
    .filter(e => !declaredKeys.has(key(e.service, e.dependsOn)))
    .map(e => ({ service: e.service, dependsOn: e.dependsOn, score: e.score }))
    .sort((a, b) => byName(a.service, b.service) || byName(a.dependsOn, b.dependsOn));
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
  const declaredNotObserved = [...new Map(input.declared.map(d => [key(d.service, d.dependsOn), d])).values()]
    .filter(d => d.service !== d.dependsOn && !reachable(d.service, d.dependsOn))
    .map(d => ({ service: d.service, dependsOn: d.dependsOn }))
    .sort((a, b) => byName(a.service, b.service) || byName(a.dependsOn, b.dependsOn));
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
export function precedenceOrder(n: number, constraints: Array<[number, number, number]>, key: ArrayLike<number>): number[] {
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
  const less = (x: number, y: number) => key[x] < key[y] || (key[x] === key[y] && x < y);
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
      for (let u = 0; u < n; u++) if (!done[u] && (v < 0 || inW[u] < inW[v] || (inW[u] === inW[v] && less(u, v)))) v = u;
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
function slack(nodes: string[], edges: Array<{ service: string; dependsOn: string }>) {
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
export function bottleneckEdges<E extends { service: string; dependsOn: string }>(nodes: string[], edges: E[]): E[] {
  const { asap, alap } = slack(nodes, edges);
  const across = new Map<number, E[]>(); // generation of the dependency → longest-chain edges from it
  for (const e of edges) {
    const k = asap.get(e.dependsOn)!;
    const onLongest = alap.get(e.dependsOn) === k && asap.get(e.service) === k + 1 && alap.get(e.service) === k + 1;
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
    const fixed = asapGens[k].filter(v => alap.get(v) === k).map(timing).sort((x, y) => x - y);
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
