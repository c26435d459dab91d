import { BootPlanCycleError, buildBootPlan } from './bootPlan';
import type { RecoveryGraph, ServiceNode } from './recoveryGraph';

const svc = (
  ref: string,
  machines: string[],
  dependsOn: string[] = [],
  system?: string,
): ServiceNode => ({
  ref,
  machines,
  dependsOn,
  probes: [],
  ...(system && { system }),
});

function graph(roots: string[], services: ServiceNode[]): RecoveryGraph {
  const machines = new Map(
    services.flatMap(s => s.machines).map(ref => [ref, { ref }] as const),
  );
  return {
    rootRef: roots[0],
    roots,
    services: new Map(services.map(s => [s.ref, s])),
    machines,
    problems: [],
    missing: [],
    objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
  };
}

const SITE = 'system:default/demo-site';
const WALK = 'system:default/walk-sys';

// The walkthrough's catalog: dns (demo-site) and walk-writer (walk-sys) depend on each other, web
// on dns.
const walkthrough = () =>
  graph(
    ['component:web'],
    [
      svc('component:web', ['resource:web-01'], ['component:dns'], SITE),
      svc(
        'component:dns',
        ['resource:infra-01'],
        ['component:walk-writer'],
        SITE,
      ),
      svc(
        'component:walk-writer',
        ['resource:walk-01'],
        ['component:dns'],
        WALK,
      ),
    ],
  );

describe('buildBootPlan breaking cycles', () => {
  it('refuses a cycle unless asked to break it', () => {
    expect(() => buildBootPlan(walkthrough())).toThrow(BootPlanCycleError);
    expect(() => buildBootPlan(walkthrough(), {})).toThrow(BootPlanCycleError);
    // Nothing to break: no list of dropped edges.
    expect(
      buildBootPlan(
        graph(['component:a'], [svc('component:a', ['resource:m1'])]),
        { breakCycles: true },
      ).droppedForCycles,
    ).toBeUndefined();
  });

  it('drops the last by ref of the edges crossing systems, and says which and why', () => {
    const plan = buildBootPlan(walkthrough(), { breakCycles: true });
    expect(plan.droppedForCycles).toEqual([
      {
        level: 'service',
        from: 'component:walk-writer',
        waitsFor: 'component:dns',
        cycle: ['component:dns', 'component:walk-writer'],
        crossesSystems: [WALK, SITE],
        message:
          'Booted component:walk-writer without waiting for component:dns: dependency cycle between services: ' +
          'component:dns -> component:walk-writer -> component:dns; of its dependencies that cross systems, ' +
          'component:walk-writer -> component:dns (system:default/walk-sys to system:default/demo-site) is the last by ref',
      },
    ]);
    // walk-01 no longer waits for infra-01 (nor does the service edge come back as a machine wait).
    expect(plan.waves).toEqual([
      ['resource:walk-01'],
      ['resource:infra-01'],
      ['resource:web-01'],
    ]);
    const walk = plan.machines.find(m => m.machineRef === 'resource:walk-01')!;
    expect(walk.waitsFor).toEqual([]);
  });

  it('drops an edge crossing systems before a later one within a system', () => {
    const within = buildBootPlan(
      graph(
        ['component:a'],
        [
          svc('component:a', ['resource:m1'], ['component:b'], SITE),
          svc('component:b', ['resource:m2'], ['component:c'], WALK),
          svc('component:c', ['resource:m3'], ['component:a'], WALK),
        ],
      ),
      { breakCycles: true },
    );
    // a -> b and c -> a cross, b -> c does not: of the two, c -> a is the last by ref.
    expect(within.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      ['component:c', 'component:a'],
    ]);
    const mixed = buildBootPlan(
      graph(
        ['component:a'],
        [
          svc('component:a', ['resource:m1'], ['component:b'], SITE),
          svc('component:b', ['resource:m2'], ['component:c'], SITE),
          svc('component:c', ['resource:m3'], ['component:a'], WALK),
        ].map(s => (s.ref === 'component:a' ? { ...s, system: WALK } : s)),
      ),
      { breakCycles: true },
    );
    // a and c in walk-sys, b in demo-site: a -> b and b -> c cross; c -> a, last by ref, does not.
    expect(mixed.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      ['component:b', 'component:c'],
    ]);
    expect(mixed.droppedForCycles![0].message).toContain(
      'of its dependencies that cross systems, component:b -> component:c (system:default/demo-site to system:default/walk-sys) is the last by ref',
    );
  });

  it('drops the last edge by ref where none crosses systems, whatever order the catalog lists them in', () => {
    const services = [
      svc('component:a', ['resource:m1'], ['component:b']),
      svc('component:b', ['resource:m2'], ['component:c']),
      svc('component:c', ['resource:m3'], ['component:a']),
    ];
    const plans = [services, [...services].reverse()].map(listed =>
      buildBootPlan(graph(['component:a'], listed), { breakCycles: true }),
    );
    for (const plan of plans) {
      expect(plan.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
        ['component:c', 'component:a'],
      ]);
      expect(plan.droppedForCycles![0].crossesSystems).toBeUndefined();
      expect(plan.droppedForCycles![0].message).toContain(
        'none of its dependencies crosses systems, and component:c -> component:a is the last by ref',
      );
      expect(plan.waves).toEqual([
        ['resource:m3'],
        ['resource:m2'],
        ['resource:m1'],
      ]);
    }
    expect(plans[0]).toEqual(plans[1]);
  });

  it('breaks each of several cycles with one edge, and nothing else', () => {
    // Two cycles: a <-> b, and c -> d -> e -> c; f depends on a and c, and stays waiting for them.
    const plan = buildBootPlan(
      graph(
        ['component:f'],
        [
          svc('component:a', ['resource:m1'], ['component:b']),
          svc('component:b', ['resource:m2'], ['component:a']),
          svc('component:c', ['resource:m3'], ['component:d']),
          svc('component:d', ['resource:m4'], ['component:e']),
          svc('component:e', ['resource:m5'], ['component:c']),
          svc('component:f', ['resource:m6'], ['component:a', 'component:c']),
        ],
      ),
      { breakCycles: true },
    );
    expect(plan.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      ['component:b', 'component:a'],
      ['component:e', 'component:c'],
    ]);
    const f = plan.machines.find(m => m.machineRef === 'resource:m6')!;
    expect(f.waitsFor).toEqual(['resource:m1', 'resource:m3']);
    expect(plan.waves.at(-1)).toEqual(['resource:m6']);
  });

  it('breaks a cycle between machines at a machine edge', () => {
    // a on m1 needs b on m2, c on m2 needs d on m1: no service cycle, a machine one.
    const plan = buildBootPlan(
      graph(
        ['component:a', 'component:c'],
        [
          svc('component:a', ['resource:m1'], ['component:b']),
          svc('component:b', ['resource:m2']),
          svc('component:c', ['resource:m2'], ['component:d']),
          svc('component:d', ['resource:m1']),
        ],
      ),
      { breakCycles: true },
    );
    expect(plan.droppedForCycles).toEqual([
      expect.objectContaining({
        level: 'machine',
        from: 'resource:m2',
        waitsFor: 'resource:m1',
      }),
    ]);
    expect(plan.droppedForCycles![0].message).toMatch(
      /^Booted resource:m2 without waiting for resource:m1: dependency cycle between machines: resource:m1 -> resource:m2 -> resource:m1 \(/,
    );
    expect(plan.waves).toEqual([['resource:m2'], ['resource:m1']]);
    expect(
      plan.machines.find(m => m.machineRef === 'resource:m2')!.waitsFor,
    ).toEqual([]);
  });
});

// The DR walkthrough's site: web waits for database and files, both for dns; and one wrong
// declared edge, dns dependsOn web, which closes two cycles.
const site = (services = walkSite()) => graph(['component:web'], services);
function walkSite(): ServiceNode[] {
  return [
    svc('component:dns', ['resource:infra-01'], ['component:web']),
    svc('component:database', ['resource:data-01'], ['component:dns']),
    svc('component:files', ['resource:files-01'], ['component:dns']),
    svc(
      'component:web',
      ['resource:web-01'],
      ['component:database', 'component:files'],
    ),
  ];
}

describe('buildBootPlan breaking cycles with as few edges as it takes', () => {
  it('drops the one edge every cycle shares, not one right edge per cycle', () => {
    const plan = buildBootPlan(site(), { breakCycles: true });
    expect(plan.droppedForCycles).toEqual([
      {
        level: 'service',
        from: 'component:dns',
        waitsFor: 'component:web',
        cycle: ['component:database', 'component:dns', 'component:web'],
        message:
          'Booted component:dns without waiting for component:web: dependency cycle between services: ' +
          'component:database -> component:dns -> component:web -> component:database; it is on more of the cycles ' +
          'between component:database, component:dns, component:files, component:web than any other dependency',
      },
    ]);
    // dns first, web last: web waits for what it needs.
    expect(plan.waves).toEqual([
      ['resource:infra-01'],
      ['resource:data-01', 'resource:files-01'],
      ['resource:web-01'],
    ]);
    expect(
      plan.machines.find(m => m.machineRef === 'resource:web-01')!.waitsFor,
    ).toEqual(['resource:data-01', 'resource:files-01']);
  });

  it('drops the one wrong edge of a layered site, however many paths it closes a cycle with', () => {
    // Three layers of three services, each waiting for every service of the layer below; the
    // bottom one wrongly waits for the top: 27 cycles, all through that edge.
    const layer = (k: number) => [0, 1, 2].map(i => `component:l${k}-${i}`);
    const services = [0, 1, 2].flatMap(k =>
      layer(k).map((ref, i) =>
        svc(ref, [`resource:m${k}-${i}`], k > 0 ? layer(k - 1) : []),
      ),
    );
    services.push(svc('component:top', ['resource:top'], layer(2)));
    services.push(svc('component:base', ['resource:base'], ['component:top']));
    services
      .filter(s => s.ref.startsWith('component:l0-'))
      .forEach(s => s.dependsOn.push('component:base'));
    const plan = buildBootPlan(graph(['component:top'], services), {
      breakCycles: true,
    });
    expect(plan.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      ['component:base', 'component:top'],
    ]);
    expect(plan.waves.map(w => w.length)).toEqual([1, 3, 3, 3, 1]);
  });

  it('drops one edge of each of two cycles that share a node but no edge', () => {
    // a <-> b and a <-> c: one part, two cycles, no edge on both.
    const plan = buildBootPlan(
      graph(
        ['component:a'],
        [
          svc('component:a', ['resource:m1'], ['component:b', 'component:c']),
          svc('component:b', ['resource:m2'], ['component:a']),
          svc('component:c', ['resource:m3'], ['component:a']),
        ],
      ),
      { breakCycles: true },
    );
    expect(plan.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      ['component:c', 'component:a'],
      ['component:b', 'component:a'],
    ]);
    // All four are on as many cycles: the rule of a single cycle.
    expect(plan.droppedForCycles![0].message).toBe(
      'Booted component:c without waiting for component:a: dependency cycle between services: component:a -> component:c -> component:a; ' +
        'none of its dependencies crosses systems, and component:c -> component:a is the last by ref',
    );
    expect(plan.waves).toEqual([
      ['resource:m2', 'resource:m3'],
      ['resource:m1'],
    ]);
  });

  it('of edges on as many cycles, drops the one the boot history contradicts', () => {
    // a waits for b, b for c, c for a: by ref c -> a would go; the boots show a up before b.
    const services = [
      svc('component:a', ['resource:m1'], ['component:b']),
      svc('component:b', ['resource:m2'], ['component:c']),
      svc('component:c', ['resource:m3'], ['component:a']),
    ];
    const history = {
      serviceOrder: ['component:a', 'component:c', 'component:b'],
    };
    const plan = buildBootPlan(graph(['component:a'], services), {
      breakCycles: true,
      history,
    });
    expect(plan.droppedForCycles).toEqual([
      expect.objectContaining({
        from: 'component:a',
        waitsFor: 'component:b',
        message:
          'Booted component:a without waiting for component:b: dependency cycle between services: ' +
          'component:a -> component:b -> component:c -> component:a; the boot history contradicts it ' +
          '(the analysis of earlier boots orders component:a before component:b)',
      }),
    ]);
    expect(plan.waves).toEqual([
      ['resource:m1'],
      ['resource:m3'],
      ['resource:m2'],
    ]);
    // History about other services, or none, says nothing: the last by ref goes.
    for (const other of [{}, { serviceOrder: ['component:x', 'component:a'] }])
      expect(
        buildBootPlan(graph(['component:a'], services), {
          breakCycles: true,
          history: other,
        }).droppedForCycles!.map(e => [e.from, e.waitsFor]),
      ).toEqual([['component:c', 'component:a']]);
    // It does not outweigh the cycles an edge is on: the walkthrough's boots, contradicting web ->
    // files as well, still lose dns -> web alone.
    expect(
      buildBootPlan(site(), {
        breakCycles: true,
        history: {
          serviceOrder: [
            'component:web',
            'component:files',
            'component:dns',
            'component:database',
          ],
        },
      }).droppedForCycles!.map(e => [e.from, e.waitsFor]),
    ).toEqual([['component:dns', 'component:web']]);
  });

  it('of machine edges on as many cycles, drops the one the machine order contradicts, then a learned one', () => {
    // a on m1 needs b on m2, c on m2 needs d on m1: by ref m2 -> m1 would go.
    const machineCycle = () =>
      graph(
        ['component:a', 'component:c'],
        [
          svc('component:a', ['resource:m1'], ['component:b']),
          svc('component:b', ['resource:m2']),
          svc('component:c', ['resource:m2'], ['component:d']),
          svc('component:d', ['resource:m1']),
        ],
      );
    const contradicted = buildBootPlan(machineCycle(), {
      breakCycles: true,
      history: { machineOrder: ['resource:m1', 'resource:m2'] },
    });
    expect(contradicted.droppedForCycles).toEqual([
      expect.objectContaining({
        level: 'machine',
        from: 'resource:m1',
        waitsFor: 'resource:m2',
      }),
    ]);
    expect(contradicted.droppedForCycles![0].message).toMatch(
      /; the boot history contradicts it \(the analysis of earlier boots orders resource:m1 before resource:m2\)$/,
    );
    // a -> b learned from the boots, c -> d declared: the machine wait only a learned edge makes goes.
    const learned = buildBootPlan(machineCycle(), {
      breakCycles: true,
      history: {
        learned: [{ service: 'component:a', dependsOn: 'component:b' }],
      },
    });
    expect(learned.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      ['resource:m1', 'resource:m2'],
    ]);
    expect(learned.droppedForCycles![0].message).toMatch(
      /; it is learned from the boot history, not declared$/,
    );
  });

  it('makes the same plan whatever order the catalog and the history list things in', () => {
    const permutations = <T>(items: T[]): T[][] =>
      items.length <= 1
        ? [items]
        : items.flatMap((item, i) =>
            permutations([...items.slice(0, i), ...items.slice(i + 1)]).map(
              rest => [item, ...rest],
            ),
          );
    const plans = permutations(walkSite()).flatMap(services =>
      [false, true].map(reversed =>
        buildBootPlan(
          site(
            services.map(s => ({
              ...s,
              dependsOn: reversed ? [...s.dependsOn].reverse() : s.dependsOn,
            })),
          ),
          { breakCycles: true },
        ),
      ),
    );
    expect(plans).toHaveLength(48);
    for (const plan of plans) expect(plan).toEqual(plans[0]);
    expect(plans[0].droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      ['component:dns', 'component:web'],
    ]);
  });
});
