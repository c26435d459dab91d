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
