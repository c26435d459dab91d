import { mockServices } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { buildBootPlan } from '@backstage-recovery/plugin-recovery-node';
import { CatalogGraphLoader } from './catalogGraph';
import { boundedCatalog } from '../testing/boundedCatalog';
import { componentEntity, machineEntity } from '../testing/entities';

const machine = machineEntity;
const component = componentEntity;

function loader(entities: Entity[]) {
  return new CatalogGraphLoader(
    catalogServiceMock({ entities }),
    mockServices.auth(),
    {
      rpoSeconds: 86400,
      rtoSeconds: 3600,
    },
  );
}

describe('CatalogGraphLoader.load', () => {
  it('skips a learned dependency on an entity no longer in the catalog, without a problem', async () => {
    const graphs = loader([
      machine('m1'),
      machine('m2'),
      component('app', ['resource:default/m1']),
      component('db', ['resource:default/m2']),
    ]);
    const graph = await graphs.load(
      'component:default/app',
      new Map([
        [
          'component:default/app',
          ['component:default/gone', 'component:default/db'],
        ],
      ]),
    );
    expect(graph.problems).toEqual([]);
    expect([...graph.services.keys()].sort()).toEqual([
      'component:default/app',
      'component:default/db',
    ]);
  });

  it('still reports a declared dependsOn on a missing entity, even if also learned', async () => {
    const graphs = loader([
      machine('m1'),
      component('app', ['resource:default/m1', 'component:default/gone']),
    ]);
    const graph = await graphs.load(
      'component:default/app',
      new Map([['component:default/app', ['component:default/gone']]]),
    );
    const missing = {
      entityRef: 'component:default/app',
      message:
        'component:default/app dependsOn component:default/gone, which is not in the catalog: a recovery plan cannot include it',
    };
    expect(graph.problems).toEqual([missing]);
    expect(graph.missing).toEqual([missing]);
  });

  it('reports a missing dependency as a problem of each entity that names it, apart from the problems that leave the plan whole', async () => {
    const unannotated = {
      ...machine('m2'),
      metadata: { name: 'm2', namespace: 'default' },
    };
    const graphs = loader([
      machine('m1'),
      unannotated,
      component('app', [
        'resource:default/m1',
        'component:default/db',
        'component:default/cache',
      ]),
      component('db', ['resource:default/m2', 'component:default/cache']),
      {
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'System',
        metadata: { name: 'shop', namespace: 'default' },
        spec: {},
        relations: ['app', 'billing'].map(n => ({
          type: 'hasPart',
          targetRef: `component:default/${n}`,
        })),
      },
    ]);
    const graph = await graphs.load('system:default/shop');
    const notIn = (by: string, relation: string, ref: string) => ({
      entityRef: by,
      message: `${by} ${relation} ${ref}, which is not in the catalog: a recovery plan cannot include it`,
    });
    expect(graph.missing).toEqual([
      notIn('system:default/shop', 'hasPart', 'component:default/billing'),
      notIn('component:default/app', 'dependsOn', 'component:default/cache'),
      notIn('component:default/db', 'dependsOn', 'component:default/cache'),
    ]);
    // The machine without annotations is a problem too, but not a missing dependency.
    expect(graph.problems).toEqual(
      expect.arrayContaining([
        ...graph.missing,
        expect.objectContaining({ entityRef: 'resource:default/m2' }),
      ]),
    );
    expect(graph.problems).toHaveLength(graph.missing.length + 2);
  });
});

describe("CatalogGraphLoader.load and buildBootPlan: a machine's own annotations", () => {
  const P = 'recovery.backstage-recovery.io/';
  const annotate = (
    entity: Entity,
    annotations: Record<string, string>,
  ): Entity => ({
    ...entity,
    metadata: {
      ...entity.metadata,
      annotations: { ...entity.metadata.annotations, ...annotations },
    },
  });

  it("gates a machine on its own probes, with its services' (each probe once), also recovered on its own or hosting no annotated service", async () => {
    const graphs = loader([
      annotate(machine('db-01'), {
        [`${P}probes`]: 'tcp:5432, http:8080/health, udp:53',
      }),
      annotate(machine('cache-01'), { [`${P}probes`]: 'tcp:6379' }),
      machine('web-01'),
      annotate(component('db', ['resource:default/db-01']), {
        [`${P}probes`]: 'TCP:5432',
      }),
      component('cache', ['resource:default/cache-01']),
      annotate(
        component('web', [
          'resource:default/web-01',
          'component:default/db',
          'component:default/cache',
        ]),
        { [`${P}probes`]: 'http:80' },
      ),
    ]);
    const probesOf = async (ref: string) =>
      Object.fromEntries(
        buildBootPlan(await graphs.load(ref)).machines.map(m => [
          m.machineRef.replace('resource:default/', ''),
          m.probes,
        ]),
      );
    // Each says whose it is: db-01's tcp:5432, declared by db too, is the machine's.
    const db01 = [
      {
        kind: 'http',
        port: 8080,
        path: '/health',
        of: 'resource:default/db-01',
      },
      { kind: 'tcp', port: 5432, of: 'resource:default/db-01' },
    ];
    expect(await probesOf('component:default/web')).toEqual({
      'cache-01': [
        { kind: 'tcp', port: 6379, of: 'resource:default/cache-01' },
      ],
      'db-01': db01,
      'web-01': [
        { kind: 'http', port: 80, path: '/', of: 'component:default/web' },
      ],
    });
    expect(await probesOf('resource:default/db-01')).toEqual({
      'db-01': db01,
    });
    // A probe of its own that does not parse is a problem of the machine, as a service's is.
    const graph = await graphs.load('component:default/db');
    expect(graph.problems).toEqual([
      expect.objectContaining({
        entityRef: 'resource:default/db-01',
        annotation: `${P}probes`,
        message: expect.stringContaining('probe "udp:53"'),
      }),
    ]);
  });

  it('names engine and container annotations put on entities that are no machine, and where they belong', async () => {
    const graphs = loader([
      machine('m1'),
      annotate(
        component('app', ['resource:default/m1', 'resource:default/db']),
        { [`${P}engine`]: 'primary' },
      ),
      // A machine typed otherwise: a service to the plan, so its annotations are not read.
      annotate(
        { ...machine('db'), spec: { type: 'vm' } },
        { [`${P}probes`]: 'tcp:5432' },
      ),
    ]);
    const graph = await graphs.load('component:default/app');
    expect(graph.problems.map(p => [p.entityRef, p.annotation])).toEqual([
      ['component:default/app', `${P}engine`],
      ['resource:default/db', `${P}engine`],
      ['resource:default/db', `${P}container`],
    ]);
    expect(graph.problems[2].message).toBe(
      `resource:default/db is a Resource of type vm, not a machine: ${P}container "db" is read only on a machine Resource (spec.type: machine), so it is ignored here; ` +
        'move it to the machine Resource resource:default/db runs on (its dependsOn), or, if resource:default/db is itself a machine, set its spec.type to machine',
    );
    // Not missing dependencies: the plan is whole without them.
    expect(graph.missing).toEqual([]);
    expect(buildBootPlan(graph).machines.map(m => m.machineRef)).toEqual([
      'resource:default/m1',
    ]);
  });
});

describe('CatalogGraphLoader.load and buildBootPlan: what a cycle error says to change', () => {
  it('says which dependsOn makes a service cycle through an API, a System and a component with parts', async () => {
    const relate = (
      entity: Entity,
      ...relations: Array<[string, string]>
    ): Entity => ({
      ...entity,
      relations: relations.map(([type, targetRef]) => ({ type, targetRef })),
    });
    const graphs = loader([
      machine('m1'),
      // web needs the orders API, which app provides; app needs the shop System; shop holds front,
      // a subcomponent of ui, which web needs: no link is a dependsOn on the next service.
      relate(
        component('web', []),
        ['dependsOn', 'resource:default/m1'],
        ['dependsOn', 'api:default/orders'],
      ),
      relate(
        {
          apiVersion: 'backstage.io/v1alpha1',
          kind: 'API',
          metadata: { name: 'orders', namespace: 'default' },
          spec: {},
        },
        ['apiProvidedBy', 'component:default/app'],
      ),
      relate(
        component('app', []),
        ['dependsOn', 'resource:default/m1'],
        ['dependsOn', 'system:default/shop'],
      ),
      relate(
        {
          apiVersion: 'backstage.io/v1alpha1',
          kind: 'System',
          metadata: { name: 'shop', namespace: 'default' },
          spec: {},
        },
        ['hasPart', 'component:default/ui'],
      ),
      relate(
        component('ui', []),
        ['dependsOn', 'resource:default/m1'],
        ['hasPart', 'component:default/front'],
      ),
      relate(
        component('front', []),
        ['dependsOn', 'resource:default/m1'],
        ['dependsOn', 'component:default/web'],
      ),
    ]);
    const graph = await graphs.load('component:default/web');
    expect(graph.services.get('component:default/app')!.through).toEqual({
      'component:default/front': 'system:default/shop',
      'component:default/ui': 'system:default/shop',
    });
    expect(() => buildBootPlan(graph)).toThrow(
      'Dependency cycle between services: component:default/app -> component:default/front -> component:default/web -> component:default/app ' +
        '(component:default/app dependsOn system:default/shop, which has component:default/front as a part; ' +
        'component:default/front dependsOn component:default/web; ' +
        'component:default/web dependsOn api:default/orders, which component:default/app provides): ' +
        'no boot order satisfies it; remove one of these dependsOn',
    );
  });

  it("says through which dependsOn a machine's own dependency makes a machine cycle", async () => {
    // m1 dependsOn the shop System, whose db runs on m2 and needs app, on m1.
    const graphs = loader([
      {
        ...machine('m1'),
        relations: [{ type: 'dependsOn', targetRef: 'system:default/shop' }],
      },
      machine('m2'),
      component('app', ['resource:default/m1']),
      component('db', ['resource:default/m2', 'component:default/app']),
      {
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'System',
        metadata: { name: 'shop', namespace: 'default' },
        spec: {},
        relations: [{ type: 'hasPart', targetRef: 'component:default/db' }],
      },
    ]);
    const graph = await graphs.load('component:default/app');
    expect(() => buildBootPlan(graph)).toThrow(
      'Dependency cycle between machines: resource:default/m1 -> resource:default/m2 -> resource:default/m1 ' +
        '(resource:default/m1 needs component:default/db through system:default/shop; component:default/db on resource:default/m2 needs component:default/app)',
    );
  });
});

describe('CatalogGraphLoader.recoverableEntities', () => {
  it('lists the services that run on machines and their systems, not a machine that depends on another', async () => {
    const relate = (
      entity: Entity,
      ...relations: Array<[string, string]>
    ): Entity => ({
      ...entity,
      relations: relations.map(([type, targetRef]) => ({ type, targetRef })),
    });
    const graphs = loader([
      // m1 dependsOn m0, as the catalog holds it: m0 is a dependencyOf m1.
      relate(machine('m0'), ['dependencyOf', 'resource:default/m1']),
      relate(
        machine('m1'),
        ['dependsOn', 'resource:default/m0'],
        ['dependencyOf', 'component:default/app'],
      ),
      relate(
        component('app', ['resource:default/m1']),
        ['dependsOn', 'resource:default/m1'],
        ['partOf', 'system:default/shop'],
      ),
      {
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'System',
        metadata: { name: 'shop', namespace: 'default' },
        spec: {},
        relations: [{ type: 'hasPart', targetRef: 'component:default/app' }],
      },
    ]);
    expect(await graphs.recoverableEntities()).toEqual([
      'component:default/app',
      'system:default/shop',
    ]);
  });

  it('lists a service whose plan reaches machines only through other services, Systems and APIs, as far away as they are; not what no plan walks to a machine', async () => {
    const relate = (
      entity: Entity,
      ...relations: Array<[string, string]>
    ): Entity => ({
      ...entity,
      relations: [
        ...(entity.relations ?? []),
        ...relations.map(([type, targetRef]) => ({ type, targetRef })),
      ],
    });
    const entity = (kind: string, name: string): Entity => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind,
      metadata: { name, namespace: 'default' },
      spec: {},
    });
    const graphs = loader([
      relate(machine('m-kill'), ['dependencyOf', 'component:default/svc-fo']),
      // svc-fo runs on m-kill and provides an API; svc-nomachine, in a System of no machine of
      // its own, dependsOn svc-fo alone.
      relate(
        component('svc-fo', ['resource:default/m-kill']),
        ['dependencyOf', 'component:default/svc-nomachine'],
        ['providesApi', 'api:default/fo-api'],
        ['dependencyOf', 'system:default/depends'],
        ['dependencyOf', 'api:default/depends'],
        ['dependencyOf', 'domain:default/depends'],
      ),
      relate(
        component('svc-nomachine', ['component:default/svc-fo']),
        ['partOf', 'system:default/nomachine'],
        ['dependencyOf', 'component:default/far'],
      ),
      relate(
        entity('System', 'nomachine'),
        ['hasPart', 'component:default/svc-nomachine'],
        ['dependencyOf', 'component:default/via-system'],
      ),
      relate(component('via-system', ['system:default/nomachine'])),
      relate(component('far', ['component:default/svc-nomachine'])),
      relate(
        entity('API', 'fo-api'),
        ['apiProvidedBy', 'component:default/svc-fo'],
        ['dependencyOf', 'component:default/via-api'],
      ),
      relate(component('via-api', ['api:default/fo-api'])),
      // Neither a System's own dependsOn nor an API's is walked; a Domain is not.
      relate(entity('System', 'depends'), [
        'dependsOn',
        'component:default/svc-fo',
      ]),
      relate(entity('API', 'depends'), [
        'dependsOn',
        'component:default/svc-fo',
      ]),
      relate(entity('Domain', 'depends'), [
        'dependsOn',
        'component:default/svc-fo',
      ]),
    ]);
    expect(await graphs.recoverableEntities()).toEqual([
      'component:default/far',
      'component:default/svc-fo',
      'component:default/svc-nomachine',
      'component:default/via-api',
      'component:default/via-system',
      'system:default/nomachine',
    ]);
  });

  it("lists a recoverable system's parts on no machine too, for the overview to show them covered by nothing; not its machines, nor a system with no part on one", async () => {
    const relate = (
      entity: Entity,
      ...relations: Array<[string, string]>
    ): Entity => ({
      ...entity,
      relations: relations.map(([type, targetRef]) => ({ type, targetRef })),
    });
    const system = (name: string, ...parts: string[]): Entity => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'System',
      metadata: { name, namespace: 'default' },
      spec: {},
      relations: parts.map(targetRef => ({ type: 'hasPart', targetRef })),
    });
    const graphs = loader([
      relate(
        machine('m1'),
        ['dependencyOf', 'component:default/app'],
        ['partOf', 'system:default/shop'],
      ),
      relate(
        component('app', ['resource:default/m1']),
        ['dependsOn', 'resource:default/m1'],
        ['partOf', 'system:default/shop'],
      ),
      relate(component('nomachine', []), ['partOf', 'system:default/shop']),
      system(
        'shop',
        'component:default/app',
        'component:default/nomachine',
        'resource:default/m1',
        'api:default/shop-api',
      ),
      relate(component('saas', []), ['partOf', 'system:default/elsewhere']),
      system('elsewhere', 'component:default/saas'),
    ]);
    expect(await graphs.recoverableEntities()).toEqual([
      'component:default/app',
      'component:default/nomachine',
      'system:default/shop',
    ]);
  });
});

describe('CatalogGraphLoader.withMemo', () => {
  it('asks the catalog once per ref, loads at once waiting on the same answer; the loader it came from keeps nothing', async () => {
    const catalog = catalogServiceMock({
      entities: [
        machine('m1'),
        component('db', ['resource:default/m1']),
        component('app', ['component:default/db']),
      ],
    });
    const asked: string[] = [];
    const getEntitiesByRefs = catalog.getEntitiesByRefs.bind(catalog);
    catalog.getEntitiesByRefs = async (request, options) => {
      asked.push(...request.entityRefs);
      return getEntitiesByRefs(request, options);
    };
    const graphs = new CatalogGraphLoader(catalog, mockServices.auth(), {
      rpoSeconds: 86400,
      rtoSeconds: 3600,
    });
    const memo = graphs.withMemo();
    const [app, db] = await Promise.all([
      memo.load('component:default/app'),
      memo.load('component:default/db'),
    ]);
    expect([...app.machines.keys()]).toEqual(['resource:default/m1']);
    expect(db.services.get('component:default/db')?.machines).toEqual([
      'resource:default/m1',
    ]);
    expect(asked.sort()).toEqual([
      'component:default/app',
      'component:default/db',
      'resource:default/m1',
    ]);

    asked.length = 0;
    await graphs.load('component:default/db');
    expect(asked).toEqual(['component:default/db', 'resource:default/m1']);
  });
});

describe('CatalogGraphLoader on a catalog read a page at a time', () => {
  const relate = (
    entity: Entity,
    ...relations: Array<[string, string]>
  ): Entity => ({
    ...entity,
    relations: [
      ...(entity.relations ?? []),
      ...relations.map(([type, targetRef]) => ({ type, targetRef })),
    ],
  });
  const names = ['1', '2', '3', '4', '5', '6', '7'];
  const m = (n: string) => `resource:default/m${n}`;
  const s = (n: string) => `component:default/s${n}`;
  // Seven services, each on a machine of its own and owned by a team of its own; the first four,
  // and docs on no machine, are the parts of the system shop.
  const shopParts = [...names.slice(0, 4).map(s), 'component:default/docs'];
  const entities: Entity[] = [
    ...names.map(n => relate(machine(`m${n}`), ['dependencyOf', s(n)])),
    ...names.map(n =>
      relate(
        component(`s${n}`, [m(n)]),
        ['ownedBy', `group:default/team-${n}`],
        ...(Number(n) <= 4
          ? [['partOf', 'system:default/shop'] as [string, string]]
          : []),
      ),
    ),
    relate(component('docs', []), ['partOf', 'system:default/shop']),
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'System',
      metadata: { name: 'shop', namespace: 'default' },
      spec: {},
      relations: shopParts.map(targetRef => ({ type: 'hasPart', targetRef })),
    },
  ];
  // A catalog that lists three entities a page at most, read three at a time.
  const pagedLoader = () => {
    const { catalog, answered } = boundedCatalog(entities, 3);
    const graphs = new CatalogGraphLoader(
      catalog,
      mockServices.auth(),
      { rpoSeconds: 86400, rtoSeconds: 3600 },
      3,
    );
    return { graphs, answered };
  };

  it('lists every recoverable entity, the machines a page at a time to the last, each read once', async () => {
    const { graphs, answered } = pagedLoader();
    expect(await graphs.recoverableEntities()).toEqual(
      [...names.map(s), 'component:default/docs', 'system:default/shop'].sort(),
    );
    // The seven machines in pages of three, then their services and the system by ref.
    expect(answered.slice(0, 3).map(page => page.length)).toEqual([3, 3, 1]);
    const machinesRead = answered
      .flat()
      .filter(ref => ref?.startsWith('resource:'));
    expect(machinesRead.sort()).toEqual(names.map(m));
  });

  it('names every machine and service by what their logs may call them, each machine once', async () => {
    const { graphs } = pagedLoader();
    expect(await graphs.machineLogNames()).toEqual(
      new Map(names.map(n => [`m${n}`, [m(n)]])),
    );
    const serviceNames = await graphs.serviceLogNames();
    expect(serviceNames.size).toBe(2 * (7 + 7 + 1));
    for (const n of names)
      for (const name of [`m${n}`, m(n), `s${n}`, s(n)])
        expect(serviceNames).toContain(name);
  });

  it('reads owners, what is held and what a plan walks, by ref', async () => {
    const { graphs } = pagedLoader();
    const refs = [...names.map(s), 'component:default/gone'];
    expect(await graphs.ownersOf(refs)).toEqual(
      new Map<string, string[]>([
        ...names.map((n): [string, string[]] => [
          s(n),
          [`group:default/team-${n}`],
        ]),
        ['component:default/gone', []],
      ]),
    );
    expect(await graphs.heldRefs(refs)).toEqual(names.map(s));
    const graph = await graphs.load('system:default/shop');
    expect(graph.roots.sort()).toEqual([...shopParts].sort());
    expect([...graph.machines.keys()].sort()).toEqual(names.slice(0, 4).map(m));
  });
});
