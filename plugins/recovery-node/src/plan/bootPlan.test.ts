import { buildBootPlan, BootPlanCycleError } from './bootPlan';
import type { RecoveryGraph, ServiceNode } from './recoveryGraph';

const svc = (
  ref: string,
  machines: string[],
  dependsOn: string[] = [],
): ServiceNode => ({
  ref,
  machines,
  dependsOn,
  probes: [{ kind: 'tcp', port: 1 }],
});

function graph(
  rootRef: string,
  roots: string[],
  services: ServiceNode[],
): RecoveryGraph {
  const machines = new Map(
    services.flatMap(s => s.machines).map(ref => [ref, { ref }] as const),
  );
  return {
    rootRef,
    roots,
    services: new Map(services.map(s => [s.ref, s])),
    machines,
    problems: [],
    missing: [],
    objectives: { rpoSeconds: 86400, rtoSeconds: 3600 },
  };
}

// The demo site: infra-01 runs dns and directory, data-01 database and files, web-01 web.
const demo = [
  svc('component:dns', ['resource:infra-01']),
  svc('component:directory', ['resource:infra-01'], ['component:dns']),
  svc('component:database', ['resource:data-01'], ['component:dns']),
  svc('component:files', ['resource:data-01'], ['component:directory']),
  svc(
    'component:web',
    ['resource:web-01'],
    ['component:database', 'component:files'],
  ),
];

describe('buildBootPlan', () => {
  it('boots the machines a service needs in waves of their dependencies', () => {
    const plan = buildBootPlan(graph('component:web', ['component:web'], demo));
    expect(plan.waves).toEqual([
      ['resource:infra-01'],
      ['resource:data-01'],
      ['resource:web-01'],
    ]);
    const web = plan.machines.find(m => m.machineRef === 'resource:web-01')!;
    expect(web.waitsFor).toEqual(['resource:data-01']);
    expect(web.services).toEqual(['component:web']);
  });

  it('takes only what a service transitively needs', () => {
    const plan = buildBootPlan(
      graph('component:database', ['component:database'], demo),
    );
    expect(plan.waves).toEqual([['resource:infra-01'], ['resource:data-01']]);
    expect(
      plan.machines.find(m => m.machineRef === 'resource:data-01')!.services,
    ).toEqual(['component:database']);
  });

  it('boots independent machines in the same wave', () => {
    const plan = buildBootPlan(
      graph(
        'system:shop',
        ['component:a', 'component:b', 'component:c'],
        [
          svc('component:a', ['resource:m1']),
          svc('component:b', ['resource:m2']),
          svc('component:c', ['resource:m3'], ['component:a', 'component:b']),
        ],
      ),
    );
    expect(plan.waves).toEqual([
      ['resource:m1', 'resource:m2'],
      ['resource:m3'],
    ]);
  });

  it('looks through services that run on no machine of their own', () => {
    const plan = buildBootPlan(
      graph(
        'component:web',
        ['component:web'],
        [
          svc('component:web', ['resource:w'], ['component:api']),
          svc('component:api', [], ['component:db']),
          svc('component:db', ['resource:d']),
        ],
      ),
    );
    expect(plan.waves).toEqual([['resource:d'], ['resource:w']]);
  });

  it('follows machine waits learned from reboots, booting the machines they name', () => {
    // web-01 learned to wait for queue-01, which hosts nothing the plan needs and itself waits
    // for infra-01: both still boot, in order.
    const g = graph('component:web', ['component:web'], demo);
    g.machines.set('resource:web-01', {
      ref: 'resource:web-01',
      waitsFor: ['resource:queue-01'],
    });
    g.machines.set('resource:queue-01', {
      ref: 'resource:queue-01',
      waitsFor: ['resource:infra-01'],
    });
    const plan = buildBootPlan(g);
    expect(plan.waves).toEqual([
      ['resource:infra-01'],
      ['resource:data-01', 'resource:queue-01'],
      ['resource:web-01'],
    ]);
    const web = plan.machines.find(m => m.machineRef === 'resource:web-01')!;
    expect(web.waitsFor).toEqual(['resource:data-01', 'resource:queue-01']);
    expect(
      plan.machines.find(m => m.machineRef === 'resource:queue-01')!.services,
    ).toEqual([]);
  });

  it('names the services of a dependency cycle', () => {
    const cyclic = graph(
      'component:a',
      ['component:a'],
      [
        svc('component:a', ['resource:m1'], ['component:b']),
        svc('component:b', ['resource:m2'], ['component:c']),
        svc('component:c', ['resource:m3'], ['component:a']),
      ],
    );
    expect(() => buildBootPlan(cyclic)).toThrow(BootPlanCycleError);
    expect(() => buildBootPlan(cyclic)).toThrow(
      'Dependency cycle between services: component:a -> component:b -> component:c -> component:a',
    );
  });

  it('says which dependsOn makes each link of a service cycle that runs through an API or a System', () => {
    // a needs the API b provides; b needs the System c is part of; c needs a.
    const cyclic = graph(
      'component:a',
      ['component:a'],
      [
        {
          ...svc('component:a', ['resource:m1'], ['component:b']),
          through: { 'component:b': 'api:orders' },
        },
        {
          ...svc('component:b', ['resource:m2'], ['component:c']),
          through: { 'component:c': 'system:shop' },
        },
        svc('component:c', ['resource:m3'], ['component:a']),
      ],
    );
    expect(() => buildBootPlan(cyclic)).toThrow(
      'Dependency cycle between services: component:a -> component:b -> component:c -> component:a ' +
        '(component:a dependsOn api:orders, which component:b provides; component:b dependsOn system:shop, which has component:c as a part; ' +
        'component:c dependsOn component:a): no boot order satisfies it; remove one of these dependsOn',
    );
  });

  it('names the machines of a cycle that only exists between machines', () => {
    // a on m1 needs b on m2, and c on m2 needs d on m1: no service cycle, but no order.
    const crossed = graph(
      'system:x',
      ['component:a', 'component:c'],
      [
        svc('component:a', ['resource:m1'], ['component:b']),
        svc('component:b', ['resource:m2']),
        svc('component:c', ['resource:m2'], ['component:d']),
        svc('component:d', ['resource:m1']),
      ],
    );
    expect(() => buildBootPlan(crossed)).toThrow(
      'Dependency cycle between machines: resource:m1 -> resource:m2 -> resource:m1',
    );
  });

  it('a machine that hosts a replica of a dependency waits for no other machine of it', () => {
    // api runs on m1 and m2; web on m2 and m3 needs api: m3 waits for both, m2 has api itself.
    const replicated = graph(
      'component:web',
      ['component:web'],
      [
        svc('component:api', ['resource:m1', 'resource:m2']),
        svc('component:web', ['resource:m2', 'resource:m3'], ['component:api']),
      ],
    );
    const plan = buildBootPlan(replicated);
    expect(plan.waves).toEqual([
      ['resource:m1', 'resource:m2'],
      ['resource:m3'],
    ]);
    expect(
      plan.machines.find(m => m.machineRef === 'resource:m3')!.waitsFor,
    ).toEqual(['resource:m1', 'resource:m2']);
    expect(
      plan.machines.find(m => m.machineRef === 'resource:m2')!.waitsFor,
    ).toEqual([]);
  });

  it('boots a deep chain one machine per wave, and a wide wave at once', () => {
    // s0 <- s1 <- … <- s11, each on its own machine; 60 replicas of edge on the last wave but one
    // and a front that needs edge.
    const chain = Array.from({ length: 12 }, (_, i) =>
      svc(
        `component:s${i}`,
        [`resource:c${String(i).padStart(2, '0')}`],
        i > 0 ? [`component:s${i - 1}`] : [],
      ),
    );
    const replicas = Array.from(
      { length: 60 },
      (_, i) => `resource:e${String(i).padStart(2, '0')}`,
    );
    const plan = buildBootPlan(
      graph(
        'component:front',
        ['component:front'],
        [
          ...chain,
          svc('component:edge', replicas, ['component:s11']),
          svc('component:front', ['resource:f'], ['component:edge']),
        ],
      ),
    );
    expect(plan.waves).toHaveLength(14);
    expect(plan.waves.slice(0, 12)).toEqual(chain.map(s => s.machines));
    expect(plan.waves[12]).toEqual(replicas);
    expect(
      plan.machines.find(x => x.machineRef === 'resource:f')!.waitsFor,
    ).toEqual(replicas);
  });

  it('looks through many layers of logical services that share their dependencies, each machine once', () => {
    // 20 layers of two machine-less services, each needing both of the next: 2^20 paths to db.
    const layers = Array.from({ length: 20 }, (_, i) =>
      ['a', 'b'].map(x =>
        svc(
          `component:${x}${i}`,
          [],
          i < 19
            ? [`component:a${i + 1}`, `component:b${i + 1}`]
            : ['component:db'],
        ),
      ),
    ).flat();
    const plan = buildBootPlan(
      graph(
        'component:web',
        ['component:web'],
        [
          ...layers,
          svc('component:db', ['resource:d']),
          svc(
            'component:web',
            ['resource:w'],
            ['component:a0', 'component:b0'],
          ),
        ],
      ),
    );
    expect(plan.waves).toEqual([['resource:d'], ['resource:w']]);
  });

  it('says through which dependsOn a service on a machine of a machine cycle needs another', () => {
    // a on m1 needs the API b provides, on m2; c on m2 needs d on m1.
    const crossed = graph(
      'system:x',
      ['component:a', 'component:c'],
      [
        {
          ...svc('component:a', ['resource:m1'], ['component:b']),
          through: { 'component:b': 'api:orders' },
        },
        svc('component:b', ['resource:m2']),
        svc('component:c', ['resource:m2'], ['component:d']),
        svc('component:d', ['resource:m1']),
      ],
    );
    expect(() => buildBootPlan(crossed)).toThrow(
      'Dependency cycle between machines: resource:m1 -> resource:m2 -> resource:m1 ' +
        '(component:a on resource:m1 needs component:b through api:orders; component:c on resource:m2 needs component:d)',
    );
  });

  it('says why each machine of a machine cycle waits for the next', () => {
    const crossed = graph(
      'system:x',
      ['component:a', 'component:c'],
      [
        svc('component:a', ['resource:m1'], ['component:b']),
        svc('component:b', ['resource:m2']),
        svc('component:c', ['resource:m3']),
      ],
    );
    crossed.machines.set('resource:m2', {
      ref: 'resource:m2',
      dependsOn: ['resource:m3'],
    });
    crossed.machines.set('resource:m3', {
      ref: 'resource:m3',
      waitsFor: ['resource:m1'],
    });
    expect(() => buildBootPlan(crossed)).toThrow(
      'Dependency cycle between machines: resource:m1 -> resource:m2 -> resource:m3 -> resource:m1 ' +
        '(component:a on resource:m1 needs component:b; resource:m2 dependsOn resource:m3; resource:m3 waited for resource:m1 in its reboots): ' +
        'no boot order satisfies it; remove one of these dependencies, or move one of these services to another machine',
    );
  });

  it('takes a service or machine that depends on itself as depending on nothing, as the catalog does', () => {
    const g = graph(
      'component:web',
      ['component:web'],
      [
        svc('component:db', ['resource:d'], ['component:db']),
        svc('component:web', ['resource:w'], ['component:web', 'component:db']),
      ],
    );
    g.machines.set('resource:d', {
      ref: 'resource:d',
      dependsOn: ['resource:d'],
      waitsFor: ['resource:d'],
    });
    const plan = buildBootPlan(g);
    expect(plan.waves).toEqual([['resource:d'], ['resource:w']]);
    expect(plan.machines.map(m => m.waitsFor)).toEqual([[], ['resource:d']]);
  });

  it('is deterministic whatever the input order', () => {
    const a = buildBootPlan(graph('component:web', ['component:web'], demo));
    const b = buildBootPlan(
      graph('component:web', ['component:web'], [...demo].reverse()),
    );
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
  });

  it('merges the probes of the services a machine runs', () => {
    const plan = buildBootPlan(
      graph(
        'component:b',
        ['component:b'],
        [
          {
            ...svc('component:a', ['resource:m']),
            probes: [{ kind: 'tcp', port: 53 }],
          },
          {
            ...svc('component:b', ['resource:m'], ['component:a']),
            probes: [
              { kind: 'http', port: 80, path: '/' },
              { kind: 'tcp', port: 53 },
            ],
          },
        ],
      ),
    );
    expect(plan.machines[0].probes).toEqual([
      { kind: 'http', port: 80, path: '/', of: 'component:b' },
      { kind: 'tcp', port: 53, of: 'component:a' },
    ]);
  });

  it('says whose each probe is: the machine where it declares it, else the first service by ref', () => {
    const services = [
      {
        ...svc('component:shipping', ['resource:m']),
        probes: [
          { kind: 'tcp', port: 8082 },
          { kind: 'tcp', port: 5432 },
        ],
      },
      {
        ...svc('component:orders', ['resource:m']),
        probes: [
          { kind: 'tcp', port: 8082 },
          { kind: 'tcp', port: 8081 },
        ],
      },
    ] satisfies ServiceNode[];
    const g = graph(
      'component:orders',
      ['component:orders', 'component:shipping'],
      services,
    );
    g.machines.set('resource:m', {
      ref: 'resource:m',
      probes: [{ kind: 'tcp', port: 5432 }],
    });
    expect(buildBootPlan(g).machines[0].probes).toEqual([
      { kind: 'tcp', port: 5432, of: 'resource:m' },
      { kind: 'tcp', port: 8081, of: 'component:orders' },
      { kind: 'tcp', port: 8082, of: 'component:orders' },
    ]);
  });
});
