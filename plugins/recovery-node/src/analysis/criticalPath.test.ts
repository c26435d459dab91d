import { criticalPath } from './graph';
import { seededRandom } from '../../../../bench/generate';

type Edges = Array<{ machine: string; waitsFor: string[] }>;

describe('critical path ties', () => {
  it('holds a machine of 0 s that waits for the chain, or that the chain waits for', () => {
    const waves = [['a'], ['b']];
    const edges = [{ machine: 'b', waitsFor: ['a'] }];
    // b waits for a and takes 0 s: it is ready when a is, at the end of the same chain.
    expect(criticalPath({ waves, edges }, { a: 5, b: 0 })).toEqual({
      path: ['a', 'b'],
      duration: 5,
    });
    expect(criticalPath({ waves, edges }, { a: 0, b: 5 })).toEqual({
      path: ['a', 'b'],
      duration: 5,
    });
    // Missing counts 0, as given 0 does.
    expect(criticalPath({ waves, edges }, { a: 5 })).toEqual({
      path: ['a', 'b'],
      duration: 5,
    });
    expect(criticalPath({ waves, edges }, {})).toEqual({
      path: ['a', 'b'],
      duration: 0,
    });
  });

  it('of equally long chains takes the one of more machines, then from its end back each machine first by name', () => {
    const waves = [['p', 'x'], ['y']];
    // x → y (3 + 2) and p alone (5): as long; x → y holds more machines.
    expect(
      criticalPath(
        { waves, edges: [{ machine: 'y', waitsFor: ['x'] }] },
        { p: 5, x: 3, y: 2 },
      ),
    ).toEqual({ path: ['x', 'y'], duration: 5 });
    // c waits for a and b, as long as each other: a, first by name.
    const fork = {
      waves: [['b', 'a'], ['c']],
      edges: [{ machine: 'c', waitsFor: ['b', 'a'] }],
    };
    expect(criticalPath(fork, { a: 4, b: 4, c: 1 })).toEqual({
      path: ['a', 'c'],
      duration: 5,
    });
    // Two ends as long, of as many machines: the one first by name.
    const two = {
      waves: [
        ['m1', 'n1'],
        ['m2', 'n2'],
      ],
      edges: [
        { machine: 'n2', waitsFor: ['n1'] },
        { machine: 'm2', waitsFor: ['m1'] },
      ],
    };
    expect(criticalPath(two, { m1: 1, m2: 1, n1: 1, n2: 1 })).toEqual({
      path: ['m1', 'm2'],
      duration: 2,
    });
  });

  it('is the same path whatever order the plan lists its waves, edges and waits in', () => {
    const { rnd, pick, shuffled } = seededRandom(11);
    for (let trial = 0; trial < 200; trial++) {
      // A few waves of machines, each waiting for some of the waves before; few distinct
      // durations, 0 among them, so that chains tie often.
      const waves: string[][] = [];
      const edges: Edges = [];
      const durations: Record<string, number> = {};
      for (let w = 0; w < 2 + Math.floor(rnd() * 4); w++) {
        const wave = Array.from(
          { length: 1 + Math.floor(rnd() * 4) },
          (_, i) => `m${w}-${i}`,
        );
        for (const m of wave) {
          durations[m] = pick([0, 0, 1, 2]);
          const earlier = waves.flat();
          const waitsFor =
            earlier.length > 0 && w > 0
              ? [
                  ...new Set(
                    Array.from({ length: 1 + Math.floor(rnd() * 3) }, () =>
                      pick(earlier),
                    ),
                  ),
                ]
              : [];
          if (waitsFor.length > 0) edges.push({ machine: m, waitsFor });
        }
        waves.push(wave);
      }
      const result = criticalPath({ waves, edges }, durations);
      // Listed in another order, a machine's waits split over two entries: the same answer.
      const split = shuffled(edges).flatMap(e =>
        e.waitsFor.length > 1 && rnd() < 0.5
          ? [
              { machine: e.machine, waitsFor: e.waitsFor.slice(0, 1) },
              { machine: e.machine, waitsFor: shuffled(e.waitsFor.slice(1)) },
            ]
          : [{ machine: e.machine, waitsFor: shuffled(e.waitsFor) }],
      );
      expect(
        criticalPath(
          { waves: shuffled(waves.map(shuffled)), edges: shuffled(split) },
          durations,
        ),
      ).toEqual(result);
      // A real chain of waits, as long as its durations add up to, and longest of all.
      const waits = (m: string) =>
        edges.find(e => e.machine === m)?.waitsFor ?? [];
      for (let i = 1; i < result.path.length; i++)
        expect(waits(result.path[i])).toContain(result.path[i - 1]);
      expect(result.path.reduce((sum, m) => sum + durations[m], 0)).toBe(
        result.duration,
      );
      const longest = (m: string): number =>
        durations[m] + Math.max(0, ...waits(m).map(longest));
      expect(result.duration).toBe(Math.max(...waves.flat().map(longest)));
      // Not to be lengthened at either end: its first machine waits for none, none waits for its last.
      expect(waits(result.path[0])).toEqual([]);
      expect(
        edges.filter(e =>
          e.waitsFor.includes(result.path[result.path.length - 1]),
        ),
      ).toEqual([]);
    }
  });
});
