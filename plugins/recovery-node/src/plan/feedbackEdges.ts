import { byName } from '../analysis/graph';

/** A dependency of a boot plan's graph: `from` waits for `waitsFor`. */
export interface WaitEdge {
  from: string;
  waitsFor: string;
}

/** An edge taken to break cycles, and what made it the one. */
export interface FeedbackEdge<E extends WaitEdge> {
  edge: E;
  /** A shortest cycle through it, from its smallest node, each node before the one it waits for. */
  cycle: string[];
  /** The nodes of the strongly connected part it was taken from, by name. */
  part: string[];
  /** How many edges the part had. */
  partEdges: number;
  /** The part's edges on as many of its cycles as it (see feedbackEdges), in `prefer`'s order: it first. */
  tied: E[];
}

/** Weights closer than this share of the larger are equal: sums of fractions in another order. */
const SAME_WEIGHT = 1e-9;
/** The searches a round makes in a part at most: a larger part is weighed from evenly spaced nodes. */
const MOST_SEARCHES = 64;

/**
 * Edges whose removal leaves `edges` without a cycle, taken greedily: in each strongly connected
 * part, the edge on the most of its cycles (ties: the first by `prefer`); then again in what is
 * left of the parts, round by round, until no cycle is. One wrong edge that closes several cycles
 * is the one taken, not one right edge per cycle. Deterministic: neither the order of `nodes` nor
 * of `edges` matters.
 *
 * Counting every simple cycle would be exponential (a wrong edge from the bottom of a layered site
 * to its top closes one per path between them). What is counted instead is, for each edge of the
 * part, its shortest cycles (the edge and a shortest way back), one per edge, shared evenly among
 * equally short ways back (Brandes' accumulation, as for betweenness): an edge on every cycle
 * counts every edge's; on a single cycle all count the same; where cycles share no edge, an edge
 * counts those of its own cycle. A round searches from each node of a part, breadth first, O(V+E)
 * each; in a part of more than MOST_SEARCHES nodes, from that many evenly spaced ones (the cycles
 * counted are those of the edges into them; an edge on every cycle still counts the most from
 * each), so a round costs O(V+E) however large the part.
 */
export function feedbackEdges<E extends WaitEdge>(
  nodes: string[],
  edges: E[],
  prefer: (a: E, b: E) => number,
): FeedbackEdge<E>[] {
  const names = [
    ...new Set([...nodes, ...edges.flatMap(e => [e.from, e.waitsFor])]),
  ].sort(byName);
  const id = new Map(names.map((name, i) => [name, i]));
  // One edge per pair, none to itself, sorted by their ends: ids compare as names do.
  const byPair = new Map<string, E>();
  for (const e of edges) {
    const key = `${e.from}\u0000${e.waitsFor}`;
    if (e.from !== e.waitsFor && !byPair.has(key)) byPair.set(key, e);
  }
  const list = [...byPair.values()].sort(
    (a, b) => byName(a.from, b.from) || byName(a.waitsFor, b.waitsFor),
  );
  const g = new WaitGraph(
    names.length,
    list.map(e => id.get(e.from)!),
    list.map(e => id.get(e.waitsFor)!),
  );
  const taken: FeedbackEdge<E>[] = [];
  let parts = g.parts(names.map((_, v) => v));
  while (parts.length > 0) {
    const next: number[][] = [];
    for (const part of parts) {
      const weight = g.cycleWeights(part);
      const partEdges = [...weight.keys()];
      let most = 0;
      for (const w of weight.values()) most = Math.max(most, w);
      const tied = partEdges
        .filter(k => most - weight.get(k)! <= SAME_WEIGHT * most)
        .sort((a, b) => prefer(list[a], list[b]));
      const cycle = g.shortestCycle(tied[0], part);
      g.drop(tied[0]);
      taken.push({
        edge: list[tied[0]],
        cycle: cycle.map(v => names[v]),
        part: part.map(v => names[v]),
        partEdges: partEdges.length,
        tied: tied.map(k => list[k]),
      });
      next.push(...g.parts(part));
    }
    parts = next.sort((a, b) => a[0] - b[0]);
  }
  return taken;
}

/** A graph of ids, edge k: `from[k]` waits for `to[k]`, sorted by both; edges are dropped from it. */
class WaitGraph {
  private readonly outStart: Int32Array;
  private readonly gone: Uint8Array;
  // Scratch: which part a node is in (`inPart[v] === partStamp`), and a search's state.
  private readonly inPart: Int32Array;
  private partStamp = 0;
  private readonly dist: Int32Array;
  private readonly reachedBy: Int32Array;
  private readonly queue: Int32Array;

  constructor(
    n: number,
    private readonly from: number[],
    private readonly to: number[],
  ) {
    // Sorted by (from, to): the edges out of a node are a run, in the order of what they wait for.
    this.outStart = new Int32Array(n + 1);
    for (const v of from) this.outStart[v + 1]++;
    for (let v = 0; v < n; v++) this.outStart[v + 1] += this.outStart[v];
    this.gone = new Uint8Array(from.length);
    this.inPart = new Int32Array(n);
    this.dist = new Int32Array(n);
    this.reachedBy = new Int32Array(n);
    this.queue = new Int32Array(n);
  }

  drop(k: number): void {
    this.gone[k] = 1;
  }

  private enter(part: number[]): void {
    this.partStamp++;
    for (const v of part) this.inPart[v] = this.partStamp;
  }

  /** Whether edge k is left, within the part entered last. */
  private live(k: number): boolean {
    return (
      !this.gone[k] &&
      this.inPart[this.from[k]] === this.partStamp &&
      this.inPart[this.to[k]] === this.partStamp
    );
  }

  /** Strongly connected components of `part` of more than one node (iterative Tarjan), each sorted. */
  parts(part: number[]): number[][] {
    this.enter(part);
    const { outStart, to } = this;
    const index = new Map<number, number>();
    const low = new Map<number, number>();
    const onStack = new Set<number>();
    const stack: number[] = [];
    const found: number[][] = [];
    const visit = (v: number) => {
      index.set(v, index.size);
      low.set(v, index.get(v)!);
      stack.push(v);
      onStack.add(v);
    };
    for (const root of part) {
      if (index.has(root)) continue;
      visit(root);
      const calls: Array<[number, number]> = [[root, outStart[root]]];
      while (calls.length > 0) {
        const top = calls[calls.length - 1];
        const v = top[0];
        if (top[1] < outStart[v + 1]) {
          const k = top[1]++;
          if (!this.live(k)) continue;
          const w = to[k];
          if (!index.has(w)) {
            visit(w);
            calls.push([w, outStart[w]]);
          } else if (onStack.has(w))
            low.set(v, Math.min(low.get(v)!, index.get(w)!));
          continue;
        }
        calls.pop();
        if (calls.length > 0) {
          const parent = calls[calls.length - 1][0];
          low.set(parent, Math.min(low.get(parent)!, low.get(v)!));
        }
        if (low.get(v) === index.get(v)) {
          const component: number[] = [];
          let w: number;
          do {
            w = stack.pop()!;
            onStack.delete(w);
            component.push(w);
          } while (w !== v);
          if (component.length > 1) found.push(component.sort((a, b) => a - b));
        }
      }
    }
    return found.sort((a, b) => a[0] - b[0]);
  }

  /**
   * Per edge of a strongly connected part (edge ids), how many of the part's shortest cycles it is
   * on (see feedbackEdges). From each node v, breadth first: the number of shortest ways to each
   * node, then, back from the farthest, each edge's share of the ways from v back to where an edge
   * into v starts.
   */
  cycleWeights(part: number[]): Map<number, number> {
    this.enter(part);
    // The part alone, its nodes numbered 0..n-1 in its order, its edges by whose they are.
    const n = part.length;
    const at = new Map(part.map((v, i) => [v, i]));
    const ids: number[] = [];
    const outStart = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) {
      for (let k = this.outStart[part[i]]; k < this.outStart[part[i] + 1]; k++)
        if (this.live(k)) ids.push(k);
      outStart[i + 1] = ids.length;
    }
    const m = ids.length;
    const to = Int32Array.from(ids, k => at.get(this.to[k])!);
    const from = Int32Array.from(ids, k => at.get(this.from[k])!);
    // And by what they wait for.
    const inStart = new Int32Array(n + 1);
    for (let k = 0; k < m; k++) inStart[to[k] + 1]++;
    for (let i = 0; i < n; i++) inStart[i + 1] += inStart[i];
    const into = new Int32Array(m);
    const fill = inStart.slice(0, n);
    for (let k = 0; k < m; k++) into[fill[to[k]]++] = k;
    const weight = new Float64Array(m);
    const dist = new Int32Array(n);
    const paths = new Float64Array(n);
    const credit = new Float64Array(n);
    const closes = new Uint8Array(n);
    const queue = new Int32Array(n);
    /** Per distance, what the numbers of ways at it were divided by: they grow as a product. */
    const scale = new Float64Array(n + 1);
    const searches = Math.min(n, MOST_SEARCHES);
    for (let s = 0; s < searches; s++) {
      const v = Math.floor((s * n) / searches);
      dist.fill(-1);
      // The unit each edge into v shares among the shortest ways from v back to where it starts.
      for (let i = inStart[v]; i < inStart[v + 1]; i++)
        closes[from[into[i]]] = 1;
      dist[v] = 0;
      paths[v] = 1;
      scale[0] = 1;
      queue[0] = v;
      let tail = 1;
      for (let head = 0; head < tail; head++) {
        const u = queue[head];
        // The first of its distance: the ways to all of it are counted; scaled to at most 1.
        if (head > 0 && dist[queue[head - 1]] < dist[u]) {
          let most = 0;
          for (let i = head; i < tail; i++)
            most = Math.max(most, paths[queue[i]]);
          for (let i = head; i < tail; i++) paths[queue[i]] /= most;
          scale[dist[u]] = most;
        }
        for (let k = outStart[u]; k < outStart[u + 1]; k++) {
          const w = to[k];
          if (dist[w] < 0) {
            dist[w] = dist[u] + 1;
            paths[w] = 0;
            queue[tail++] = w;
          }
          if (dist[w] === dist[u] + 1) paths[w] += paths[u];
        }
      }
      for (let i = tail - 1; i >= 0; i--) {
        const u = queue[i];
        credit[u] = 0;
        for (let k = outStart[u]; k < outStart[u + 1]; k++) {
          const w = to[k];
          if (dist[w] !== dist[u] + 1) continue;
          // Of the ways to w, the share through u (undoing the scaling of w's distance).
          const share =
            (paths[u] / paths[w] / scale[dist[w]]) * (closes[w] + credit[w]);
          weight[k] += share;
          credit[u] += share;
        }
      }
      // Each edge into v is on all of its own shortest cycles.
      for (let i = inStart[v]; i < inStart[v + 1]; i++) {
        weight[into[i]] += 1;
        closes[from[into[i]]] = 0;
      }
    }
    return new Map(ids.map((k, i) => [k, weight[i]]));
  }

  /** A shortest cycle through edge k (breadth first in name order), from its smallest node. */
  shortestCycle(k: number, part: number[]): number[] {
    this.enter(part);
    const { outStart, from, to, dist, reachedBy, queue } = this;
    const start = to[k];
    for (const u of part) dist[u] = -1;
    dist[start] = 0;
    queue[0] = start;
    for (let head = 0, tail = 1; head < tail && dist[from[k]] < 0; head++) {
      const u = queue[head];
      for (let e = outStart[u]; e < outStart[u + 1]; e++) {
        if (!this.live(e) || dist[to[e]] >= 0) continue;
        dist[to[e]] = dist[u] + 1;
        reachedBy[to[e]] = e;
        queue[tail++] = to[e];
      }
    }
    // Back from where the edge starts to where it leads, then reversed: each node before what it waits for.
    const nodes = [from[k]];
    for (let u = from[k]; u !== start; u = from[reachedBy[u]])
      nodes.push(from[reachedBy[u]]);
    nodes.reverse();
    const first = nodes.indexOf(nodes.reduce((a, b) => Math.min(a, b)));
    return [...nodes.slice(first), ...nodes.slice(0, first)];
  }
}
