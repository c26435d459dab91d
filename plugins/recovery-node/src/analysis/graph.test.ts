import {
  breakCycles,
  compareEdgeStrength,
  Edge,
  generationCount,
  generations,
  mergeDependencies,
  stronglyConnected,
  topologicalWaves,
} from './graph';
import { seededRandom as random } from '../../../../bench/generate';

const key = (e: { service: string; dependsOn: string }) =>
  `${e.service} -> ${e.dependsOn}`;

/**
 * A random graph: few nodes and many cycles, or a few hundred; scores from a short list (ties)
 * or not; some self-edges and some pairs twice.
 */
function randomGraph(seed: number) {
  const { rnd, pick } = random(seed);
  const large = seed % 8 === 0;
  const n = large ? 40 + Math.floor(rnd() * 80) : 2 + Math.floor(rnd() * 10);
  const names = Array.from(
    { length: n },
    (_, i) =>
      `${pick(['svc', 'db', 'Api', 'é'])}-${Math.floor(rnd() * 1000)}-${i}`,
  );
  const scores =
    seed % 3 === 0 ? [0.7, 0.8, 0.9] : seed % 3 === 1 ? [0.75] : undefined;
  const edges: Edge[] = [];
  const count = Math.ceil(n * (large ? 1 + rnd() * 3 : 0.5 + rnd() * 3));
  for (let k = 0; k < count; k++) {
    const service = pick(names);
    const e = {
      service,
      dependsOn: rnd() < 0.03 ? service : pick(names),
      score: scores ? pick(scores) : Math.round(rnd() * 1000) / 1000,
    };
    edges.push(e);
    if (rnd() < 0.05) edges.push({ ...e, score: pick([e.score, 0.5]) });
  }
  const ranks = new Map(
    edges.map(e => [e, seed % 4 === 0 ? 0 : Math.floor(rnd() * 3)]),
  );
  return { names, edges, protect: (e: Edge) => ranks.get(e)! };
}

/** Nodes `from` reaches along `edges` (itself included), or that reach it (`back`). */
function reach(edges: Edge[], from: string, back = false): Set<string> {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    const [a, b] = back ? [e.dependsOn, e.service] : [e.service, e.dependsOn];
    next.set(a, [...(next.get(a) ?? []), b]);
  }
  const seen = new Set([from]);
  const stack = [from];
  while (stack.length) {
    for (const w of next.get(stack.pop()!) ?? []) {
      if (!seen.has(w)) {
        seen.add(w);
        stack.push(w);
      }
    }
  }
  return seen;
}

/** The edges of the strongly connected component that holds edge `e`. */
function componentOf(edges: Edge[], e: Edge): Edge[] {
  const forward = reach(edges, e.service);
  const backward = reach(edges, e.service, true);
  const inside = (v: string) => forward.has(v) && backward.has(v);
  return edges.filter(x => inside(x.service) && inside(x.dependsOn));
}

/**
 * Replays the cycles broken, in order, on the graph as it was: each is a simple cycle of the edges
 * still there, starting with the dropped edge, which `weakest` of its component is; what is left
 * is the result.
 */
function replay(
  input: Edge[],
  result: {
    edges: Edge[];
    cycles: Array<{ services: string[]; dropped: Edge }>;
  },
  weakest: (dropped: Edge, component: Edge[]) => void,
  protect: (e: Edge) => number = () => 0,
) {
  let graph = input.filter(e => e.service !== e.dependsOn);
  for (const { services, dropped } of result.cycles) {
    expect(new Set(services).size).toBe(services.length);
    expect([services[0], services[1]]).toEqual([
      dropped.service,
      dropped.dependsOn,
    ]);
    const pairs = new Set(graph.map(key));
    services.forEach((s, i) =>
      expect(
        pairs.has(
          key({ service: s, dependsOn: services[(i + 1) % services.length] }),
        ),
      ).toBe(true),
    );
    // A copy: of the edges it can be (a pair given twice with one score), the lowest ranked.
    let at = -1;
    graph.forEach((e, i) => {
      if (
        key(e) === key(dropped) &&
        e.score === dropped.score &&
        (at < 0 || protect(e) < protect(graph[at]))
      )
        at = i;
    });
    expect(at).toBeGreaterThanOrEqual(0);
    weakest(graph[at], componentOf(graph, graph[at]));
    graph = graph.filter((_, i) => i !== at);
  }
  expect(result.edges.map(key)).toEqual(graph.map(key));
  // Acyclic: generations place every node.
  expect(() => generations([], result.edges)).not.toThrow();
}

describe('breakCycles on random graphs', () => {
  it('drops from each cycle of the graph at its time its weakest edge, and leaves none', () => {
    let cycles = 0;
    for (let seed = 1; seed <= 160; seed++) {
      const { names, edges, protect } = randomGraph(seed);
      const result = breakCycles(names, edges, protect);
      replay(
        edges,
        result,
        (dropped, component) => {
          const rank = protect(dropped);
          for (const e of component) {
            expect(
              protect(e) > rank ||
                (protect(e) === rank && compareEdgeStrength(e, dropped) >= 0),
            ).toBe(true);
          }
        },
        protect,
      );
      expect(stronglyConnected(names, result.edges)).toEqual([]);
      cycles += result.cycles.length;
    }
    expect(cycles).toBeGreaterThan(1000);
  });

  it('breaks the same cycles whatever order the nodes and edges come in', () => {
    for (let seed = 1; seed <= 80; seed++) {
      const { names, edges, protect } = randomGraph(seed);
      const { shuffled } = random(seed + 1000);
      const a = breakCycles(names, edges, protect);
      const b = breakCycles(shuffled(names), shuffled(edges), protect);
      expect(b.cycles).toEqual(a.cycles);
      expect(b.edges.map(key).sort()).toEqual(a.edges.map(key).sort());
    }
  });

  it('ranks each edge on a cycle once, not once a round: a large catalog takes hundreds of rounds', () => {
    // 600 services over 5,000 edges, 2% of them against the order: one component, hundreds of rounds.
    const { rnd } = random(42);
    const svc = (i: number) =>
      `component:default/svc-${String(i).padStart(4, '0')}`;
    const edges: Edge[] = [];
    while (edges.length < 5000) {
      let [a, b] = [Math.floor(rnd() * 600), Math.floor(rnd() * 600)];
      if (a === b) continue;
      if (a < b !== rnd() < 0.02) [a, b] = [b, a];
      edges.push({
        service: svc(a),
        dependsOn: svc(b),
        score: Math.round(rnd() * 100) / 100,
      });
    }
    let asked = 0;
    const result = breakCycles([], edges, () => {
      asked++;
      return 0;
    });
    expect(result.cycles.length).toBeGreaterThan(100);
    expect(asked).toBeLessThanOrEqual(edges.length);
  });
});

describe('mergeDependencies on random graphs', () => {
  const randomInput = (seed: number) => {
    const { rnd, pick } = random(seed);
    const { names, edges } = randomGraph(seed);
    const declared = edges
      .filter(() => rnd() < 0.6)
      .map(({ service, dependsOn }) => ({ service, dependsOn }));
    // Learned edges that agree with declared ones, contradict them or are new; one per pair, as an
    // analysis gives them (the disagreements list a pair given twice in input order).
    const learned = edges
      .filter(() => rnd() < 0.5)
      .map(e => {
        const [service, dependsOn] = pick([
          [e.service, e.dependsOn],
          [e.dependsOn, e.service],
          [e.dependsOn, pick(names)],
        ]);
        return { service, dependsOn, score: e.score };
      });
    const inferred = [...new Map(learned.map(e => [key(e), e])).values()];
    return { declared, inferred, threshold: pick([0.7, 0.5]) };
  };

  it('drops a declared edge only from a component where no inferred-only edge is left, and leaves no cycle', () => {
    let declaredDropped = 0;
    let inferredDropped = 0;
    for (let seed = 1; seed <= 160; seed++) {
      const input = randomInput(seed);
      const merged = mergeDependencies(input);
      // As the merge ranks them: declared edges (and those both declared and inferred) score 2.
      const asEdge = (p: (typeof merged.edges)[number]): Edge => ({
        service: p.service,
        dependsOn: p.dependsOn,
        score: p.source === 'inferred' ? p.score! : 2,
      });
      const all = [...merged.edges, ...merged.dropped]
        .map(asEdge)
        .sort((a, b) => key(a).localeCompare(key(b)));
      const cycles = merged.dropped.map(d => ({
        services: [d.service, d.dependsOn],
        dropped: asEdge(d),
      }));
      // The cycles' paths are breakCycles' (tested above); here, what was dropped and when.
      let graph = all;
      for (const { dropped } of cycles) {
        const component = componentOf(
          graph,
          graph.find(e => key(e) === key(dropped))!,
        );
        expect(component.length).toBeGreaterThan(1);
        if (dropped.score === 2) {
          declaredDropped++;
          expect(component.filter(e => e.score < 2)).toEqual([]);
        } else {
          inferredDropped++;
          for (const e of component)
            expect(compareEdgeStrength(e, dropped)).toBeGreaterThanOrEqual(0);
        }
        graph = graph.filter(e => key(e) !== key(dropped));
      }
      expect(merged.edges.map(key).sort()).toEqual(graph.map(key).sort());
      expect(() => generations([], merged.edges)).not.toThrow();
    }
    expect(declaredDropped).toBeGreaterThan(50);
    expect(inferredDropped).toBeGreaterThan(50);
  });

  it('is the same whatever order the declared and inferred dependencies come in', () => {
    for (let seed = 1; seed <= 80; seed++) {
      const input = randomInput(seed);
      const { shuffled } = random(seed + 1000);
      expect(
        mergeDependencies({
          ...input,
          declared: shuffled(input.declared),
          inferred: shuffled(input.inferred),
        }),
      ).toEqual(mergeDependencies(input));
    }
  });
});

describe('topologicalWaves', () => {
  const edges = (...pairs: string[]) =>
    pairs.map(pair => {
      const [service, dependsOn] = pair.split('>');
      return { service, dependsOn };
    });

  it('places each node one wave after the latest it waits on, by name; nodes only edges name too, self-edges and repeats change nothing', () => {
    const given = edges('c>a', 'c>b', 'd>c', 'a>a', 'c>a', 'e>a');
    expect(topologicalWaves(['d', 'b', 'a'], given)).toEqual({
      waves: [['a', 'b'], ['c', 'e'], ['d']],
    });
    expect(
      topologicalWaves(['d', 'b', 'a'], given, (x, y) =>
        x === 'e' ? -1 : y === 'e' ? 1 : 0,
      ).waves,
    ).toEqual([['a', 'b'], ['e', 'c'], ['d']]);
    expect(topologicalWaves(['z'], [])).toEqual({ waves: [['z']] });
    expect(topologicalWaves([], [])).toEqual({ waves: [] });
  });

  it('reports one cycle in order, from the smallest name a cycle holds back, following the smallest name it waits on', () => {
    // a waits on the cycle b -> c -> b without being on it; e waits on d alone.
    expect(
      topologicalWaves(
        ['a', 'b', 'c', 'd', 'e'],
        edges('a>b', 'b>c', 'c>b', 'c>d', 'e>d'),
      ),
    ).toEqual({
      waves: [['d'], ['e']],
      cycle: ['b', 'c'],
    });
    // From b: c waits on e and d, so the cycle followed is c -> d -> c, not b -> c -> e -> b.
    expect(
      topologicalWaves(
        [],
        edges('b>c', 'c>e', 'e>b', 'c>d', 'd>c', 'q>p', 'p>q'),
      ).cycle,
    ).toEqual(['c', 'd']);
    expect(() => generations([], edges('b>c', 'c>b'))).toThrow(
      'graph has a cycle; break cycles first',
    );
    expect(generationCount([], edges('b>c', 'c>b'))).toBe(Infinity);
  });

  it('on random graphs: the waves of the definition, and a real cycle exactly where the definition leaves nodes out', () => {
    let cyclic = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const { names, edges: given } = randomGraph(seed);
      const nodes = names.filter((_, i) => i % 3 !== 0);
      // The definition, wave by wave: a node goes once all it waits on (itself aside) went before.
      const waitsOn = new Map<string, Set<string>>(
        names.map(n => [n, new Set()]),
      );
      for (const e of given)
        if (e.service !== e.dependsOn) waitsOn.get(e.service)!.add(e.dependsOn);
      const named = names.filter(
        n =>
          nodes.includes(n) ||
          given.some(
            e =>
              e.service !== e.dependsOn &&
              (e.service === n || e.dependsOn === n),
          ),
      );
      const placed = new Set<string>();
      const expected: string[][] = [];
      for (;;) {
        const wave = named
          .filter(
            n =>
              !placed.has(n) && [...waitsOn.get(n)!].every(d => placed.has(d)),
          )
          .sort();
        if (!wave.length) break;
        expected.push(wave);
        wave.forEach(n => placed.add(n));
      }
      const result = topologicalWaves(nodes, given);
      expect(result.waves, `seed ${seed}`).toEqual(expected);
      expect(generationCount(nodes, given)).toBe(
        placed.size === named.length ? expected.length : Infinity,
      );
      if (placed.size === named.length) {
        expect(result.cycle).toBeUndefined();
        expect(generations(nodes, given)).toEqual(expected);
        continue;
      }
      cyclic++;
      const held = named.filter(n => !placed.has(n));
      // The walk the cycle is reported by: from the smallest held back, each time the smallest it waits on.
      const path = [held.sort()[0]];
      while (path.indexOf(path[path.length - 1]) === path.length - 1) {
        path.push(
          [...waitsOn.get(path[path.length - 1])!]
            .filter(d => !placed.has(d))
            .sort()[0],
        );
      }
      const cycle = path.slice(path.indexOf(path[path.length - 1]), -1);
      expect(result.cycle, `seed ${seed}`).toEqual(cycle);
      cycle.forEach((n, i) =>
        expect(waitsOn.get(n)!.has(cycle[(i + 1) % cycle.length])).toBe(true),
      );
      expect(() => generations(nodes, given)).toThrow('graph has a cycle');
    }
    expect(cyclic).toBeGreaterThan(50);
  });
});
