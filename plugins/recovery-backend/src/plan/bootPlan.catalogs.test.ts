/**
 * Boot plans of catalogs shaped as platform teams write them: entities with `spec` as written in
 * catalog-info.yaml and relations as the catalog's BuiltinKindsEntityProcessor computes them from it
 * (refs completed with the entity's namespace and lower-cased, both directions), planned through
 * PlanService. Each plan is checked for what the README promises: every machine in wave k waits
 * only for machines of earlier waves, what is needed boots, nothing else does, and problems and
 * cycle errors name the entities and what to change.
 */
import { mockServices } from '@backstage/backend-test-utils';
import {
  type Entity,
  parseEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type {
  InferredDependency,
  InferredMachineWait,
} from '@backstage-recovery/plugin-recovery-common';
import { CatalogGraphLoader } from './catalogGraph';
import type { Inference } from './inference';
import { PlanService, type PlannedRecovery } from '../service/PlanService';

const P = 'recovery.backstage-recovery.io/';

interface Written {
  kind: string;
  /** `[namespace/]name`, or a full ref. */
  ref: string;
  spec?: Record<string, unknown>;
  annotations?: Record<string, string>;
}

/** What the catalog's BuiltinKindsEntityProcessor relates, per kind: field, default kind, relation, its reverse. */
const RELATED: Record<
  string,
  Array<[string, string | undefined, string, string]>
> = {
  Component: [
    ['subcomponentOf', 'Component', 'partOf', 'hasPart'],
    ['providesApis', 'API', 'providesApi', 'apiProvidedBy'],
    ['consumesApis', 'API', 'consumesApi', 'apiConsumedBy'],
    ['dependsOn', undefined, 'dependsOn', 'dependencyOf'],
    ['dependencyOf', undefined, 'dependencyOf', 'dependsOn'],
    ['system', 'System', 'partOf', 'hasPart'],
  ],
  API: [['system', 'System', 'partOf', 'hasPart']],
  Resource: [
    ['dependsOn', undefined, 'dependsOn', 'dependencyOf'],
    ['dependencyOf', undefined, 'dependencyOf', 'dependsOn'],
    ['system', 'System', 'partOf', 'hasPart'],
  ],
  System: [['domain', 'Domain', 'partOf', 'hasPart']],
  Domain: [['subdomainOf', 'Domain', 'partOf', 'hasPart']],
};

/** Entities as the catalog serves them: the spec as written, the relations it computed from all of them. */
function catalogOf(...written: Written[]): Entity[] {
  const relations = new Map<
    string,
    Array<{ type: string; targetRef: string }>
  >();
  const relate = (from: string, type: string, to: string) =>
    relations.set(from, [
      ...(relations.get(from) ?? []),
      { type, targetRef: to },
    ]);
  const entities = written.map(({ kind, ref, spec = {}, annotations }) => {
    const { namespace, name } = parseEntityRef(ref, {
      defaultKind: kind,
      defaultNamespace: 'default',
    });
    return {
      apiVersion: 'backstage.io/v1alpha1',
      kind,
      metadata: { name, namespace, ...(annotations && { annotations }) },
      spec,
    } as Entity;
  });
  for (const entity of entities) {
    const self = stringifyEntityRef(entity);
    for (const [field, defaultKind, outgoing, incoming] of RELATED[
      entity.kind
    ] ?? []) {
      for (const target of [entity.spec?.[field] ?? []].flat() as string[]) {
        // dependsOn has no default kind: the catalog refuses `dependsOn: [web]`.
        const ref = stringifyEntityRef(
          parseEntityRef(target, {
            defaultKind,
            defaultNamespace: entity.metadata.namespace,
          }),
        );
        relate(self, outgoing, ref);
        relate(ref, incoming, self);
      }
    }
  }
  return entities.map(e => ({
    ...e,
    relations: relations.get(stringifyEntityRef(e)) ?? [],
  }));
}

const host = (ref: string, spec: Record<string, unknown> = {}): Written => ({
  kind: 'Resource',
  ref,
  spec: { type: 'machine', ...spec },
  annotations: {
    [`${P}engine`]: 'primary',
    [`${P}container`]: parseEntityRef(ref, { defaultKind: 'resource' }).name,
  },
});
const service = (ref: string, spec: Record<string, unknown> = {}): Written => ({
  kind: 'Component',
  ref,
  spec: { type: 'service', ...spec },
});
const database = (
  ref: string,
  spec: Record<string, unknown> = {},
): Written => ({ kind: 'Resource', ref, spec: { type: 'database', ...spec } });

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;

interface Learned {
  dependencies?: InferredDependency[];
  machineWaits?: InferredMachineWait[];
}

async function planOf(
  ref: string,
  entities: Entity[],
  learned?: Learned,
): Promise<PlannedRecovery> {
  const graphs = new CatalogGraphLoader(
    catalogServiceMock({ entities }),
    mockServices.auth(),
    { rpoSeconds: 86400, rtoSeconds: 3600 },
  );
  const inference: Inference | undefined = learned && {
    id: 'a1',
    createdAt: '2026-01-01T00:00:00Z',
    dependencies: learned.dependencies ?? [],
    machineWaits: learned.machineWaits ?? [],
    warnings: [],
    names: new Map(),
    observed: new Set(entities.map(stringifyEntityRef)),
    threshold: 0.7,
  };
  const result = await new PlanService(
    graphs,
    inference && {
      inferenceFor: async () => inference,
      inferenceOf: async () => inference,
    },
  ).plan(ref);
  if (result.plan) expectWavesInOrder(result);
  return result;
}

/** Every machine in wave k waits only for machines of earlier waves, and each machine is in one wave. */
function expectWavesInOrder({ plan }: PlannedRecovery) {
  const waveOf = new Map(plan!.machines.map(x => [x.machineRef, x.wave]));
  expect(plan!.waves.flat().sort()).toEqual([...waveOf.keys()].sort());
  expect(waveOf.size).toBe(plan!.machines.length);
  plan!.waves.forEach((wave, k) =>
    wave.forEach(ref => expect(waveOf.get(ref)).toBe(k)),
  );
  for (const x of plan!.machines) {
    for (const y of x.waitsFor) {
      if (!(waveOf.get(y)! < x.wave))
        throw new Error(
          `${x.machineRef} (wave ${x.wave}) waits for ${y} (wave ${waveOf.get(y)})`,
        );
    }
  }
}

/** A plan's machines as `wave machine: services | waits for`, names only, in boot order. */
const machinesOf = (result: PlannedRecovery) =>
  result.plan!.machines.map(
    x =>
      `${x.wave} ${short(x.machineRef)}: ${x.services.map(short).join(',')} | ${x.waitsFor.map(short).join(',')}`,
  );
/** A ref without its kind, and without its namespace where that is `default`. */
const short = (ref: string) =>
  ref.replace(/^[^:]+:/, '').replace(/^default\//, '');
const messages = (problems: Array<{ message: string }>) =>
  problems.map(p => p.message);

describe('boot plans of catalogs as platform teams write them', () => {
  it('waits for every provider of an API, each on its own machine, and names an API no component provides', async () => {
    const entities = catalogOf(
      host('orders-01'),
      host('orders-02'),
      host('web-01'),
      { kind: 'API', ref: 'orders', spec: { type: 'openapi' } },
      { kind: 'API', ref: 'legacy-billing', spec: { type: 'openapi' } },
      // Two deployments of the orders API, written the two ways the catalog accepts.
      service('orders-eu', {
        dependsOn: ['resource:orders-01'],
        providesApis: ['orders'],
      }),
      service('orders-us', {
        dependsOn: ['resource:default/orders-02'],
        providesApis: ['api:default/orders'],
      }),
      service('web', {
        dependsOn: ['resource:web-01', 'api:orders', 'api:legacy-billing'],
        consumesApis: ['orders'],
      }),
    );
    const result = await planOf(c('web'), entities);
    expect(machinesOf(result)).toEqual([
      '0 orders-01: orders-eu | ',
      '0 orders-02: orders-us | ',
      '1 web-01: web | orders-01,orders-02',
    ]);
    const missing = `${c('web')} dependsOn api:default/legacy-billing, which no Component provides (spec.providesApis): a recovery plan cannot include what it stands for`;
    expect(messages(result.graph.problems)).toEqual([missing]);
    expect(messages(result.graph.missing)).toEqual([missing]);
  });

  it('recovers a System of a Domain with its chains of subcomponents, and names a dependsOn on the Domain and what to change', async () => {
    const entities = catalogOf(
      { kind: 'Domain', ref: 'commerce' },
      { kind: 'System', ref: 'shop', spec: { domain: 'commerce' } },
      { kind: 'System', ref: 'payments', spec: { domain: 'domain:commerce' } },
      host('cart-01'),
      host('worker-01'),
      host('pay-01'),
      host('ledger-01'),
      host('idle-01', { system: 'payments' }),
      // storefront runs on nothing itself: its subcomponent cart does, and cart's subcomponent worker.
      service('storefront', { system: 'shop' }),
      service('cart', {
        subcomponentOf: 'storefront',
        dependsOn: ['resource:cart-01'],
      }),
      service('cart-worker', {
        subcomponentOf: 'component:cart',
        dependsOn: ['resource:worker-01', 'component:pay'],
      }),
      service('pay', { system: 'payments', dependsOn: ['resource:pay-01'] }),
      service('ledger', {
        dependsOn: ['resource:ledger-01', 'component:storefront'],
      }),
      service('report', {
        dependsOn: ['resource:ledger-01', 'domain:commerce'],
      }),
    );
    const shop = await planOf('system:default/shop', entities);
    expect(shop.graph.roots).toEqual([
      c('storefront'),
      c('cart'),
      c('cart-worker'),
    ]);
    // Of the payments System only what cart-worker needs: not its idle machine.
    expect(machinesOf(shop)).toEqual([
      '0 cart-01: cart | ',
      '0 pay-01: pay | ',
      '1 worker-01: cart-worker | pay-01',
    ]);
    expect(shop.graph.problems).toEqual([]);

    // What needs the whole waits for each part down the chain.
    const ledger = await planOf(c('ledger'), entities);
    expect(machinesOf(ledger)).toEqual([
      '0 cart-01: cart | ',
      '0 pay-01: pay | ',
      '1 worker-01: cart-worker | pay-01',
      '2 ledger-01: ledger | cart-01,worker-01',
    ]);

    const report = await planOf(c('report'), entities);
    expect(machinesOf(report)).toEqual(['0 ledger-01: report | ']);
    expect(messages(report.graph.problems)).toEqual([
      `${c('report')} dependsOn domain:default/commerce, a Domain: a recovery plan boots only services and machines, so it leaves domain:default/commerce out; ` +
        `remove that dependsOn from ${c('report')}, or replace it with the Components and Resources it stands for`,
    ]);
    expect(report.graph.missing).toEqual([]);

    const domain = await planOf('domain:default/commerce', entities);
    expect(domain.plan!.machines).toEqual([]);
    expect(messages(domain.graph.problems)).toEqual([
      'domain:default/commerce is a Domain; recovery plans start from a Component, a Resource or a System',
    ]);
  });

  it('boots a database machine after the storage machine it depends on, for the databases of the plan only, and the machine hosting two systems for this one', async () => {
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      { kind: 'System', ref: 'billing' },
      host('san-01'),
      // A machine that is a database server, with a dependsOn of its own on another machine.
      host('db-01', { dependsOn: ['resource:san-01'] }),
      host('app-01'),
      host('batch-01'),
      // Databases that are no machines: each runs on db-01.
      database('orders-db', { system: 'shop', dependsOn: ['resource:db-01'] }),
      database('invoices-db', {
        system: 'billing',
        dependsOn: ['resource:db-01'],
      }),
      // app-01 hosts a service of each system.
      service('shop-app', {
        system: 'shop',
        dependsOn: ['resource:app-01', 'resource:orders-db'],
      }),
      service('billing-app', {
        system: 'billing',
        dependsOn: [
          'resource:app-01',
          'resource:invoices-db',
          'component:invoicer',
        ],
      }),
      service('invoicer', {
        system: 'billing',
        dependsOn: ['resource:batch-01'],
      }),
    );
    const shop = await planOf('system:default/shop', entities);
    expect(machinesOf(shop)).toEqual([
      '0 san-01:  | ',
      '1 db-01: orders-db | san-01',
      '2 app-01: shop-app | db-01',
    ]);
    const billing = await planOf('system:default/billing', entities);
    expect(machinesOf(billing)).toEqual([
      '0 batch-01: invoicer | ',
      '0 san-01:  | ',
      '1 db-01: invoices-db | san-01',
      '2 app-01: billing-app | batch-01,db-01',
    ]);
    // The database machine recovered on its own, and a database that is no machine.
    expect(machinesOf(await planOf(m('db-01'), entities))).toEqual([
      '0 san-01:  | ',
      '1 db-01: db-01 | san-01',
    ]);
    expect(machinesOf(await planOf(m('orders-db'), entities))).toEqual([
      '0 san-01:  | ',
      '1 db-01: orders-db | san-01',
    ]);
  });

  it('reads a dependsOn the same in every form the catalog accepts, and the namespace each form means', async () => {
    const entities = catalogOf(
      host('web-01'),
      host('app-01'),
      host('team-a/web-01'),
      host('team-a/app-01'),
      service('web', { dependsOn: ['resource:web-01'] }),
      // The same names in another namespace.
      service('team-a/web', { dependsOn: ['resource:web-01'] }),
      service('short', { dependsOn: ['resource:app-01', 'component:web'] }),
      service('full', {
        dependsOn: ['resource:default/app-01', 'component:default/web'],
      }),
      service('Capitals', {
        dependsOn: ['Resource:Default/App-01', 'Component:Default/Web'],
      }),
      // Written from the other end: reverse-web says it is a dependency of reverse.
      service('reverse', { dependsOn: ['resource:app-01'] }),
      host('web-02'),
      service('reverse-web', {
        dependencyOf: ['component:reverse'],
        dependsOn: ['resource:web-02'],
      }),
      // In team-a, a ref without namespace is team-a's.
      service('team-a/near', {
        dependsOn: ['resource:app-01', 'component:web'],
      }),
      service('team-a/far', {
        dependsOn: ['resource:team-a/app-01', 'component:default/web'],
      }),
      service('team-a/far-capitals', {
        dependsOn: ['Resource:Team-A/App-01', 'Component:DEFAULT/WEB'],
      }),
    );
    for (const name of ['short', 'full', 'capitals']) {
      expect(machinesOf(await planOf(c(name), entities)), name).toEqual([
        '0 web-01: web | ',
        `1 app-01: ${name} | web-01`,
      ]);
    }
    expect(
      machinesOf(await planOf('Component:Default/Capitals', entities)),
    ).toEqual(['0 web-01: web | ', '1 app-01: capitals | web-01']);
    expect(machinesOf(await planOf(c('reverse'), entities))).toEqual([
      '0 web-02: reverse-web | ',
      '1 app-01: reverse | web-02',
    ]);
    expect(machinesOf(await planOf('component:team-a/near', entities))).toEqual(
      [
        '0 team-a/web-01: team-a/web | ',
        '1 team-a/app-01: team-a/near | team-a/web-01',
      ],
    );
    for (const name of ['far', 'far-capitals']) {
      expect(
        machinesOf(await planOf(`component:team-a/${name}`, entities)),
        name,
      ).toEqual([
        '0 web-01: web | ',
        `1 team-a/app-01: team-a/${name} | web-01`,
      ]);
    }
  });

  it('names the API, the System and the dependsOn that make a cycle, and what to change', async () => {
    // checkout needs the payments API; payments-svc, which provides it, needs the shop System,
    // whose part checkout is.
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('m1'),
      host('m2'),
      { kind: 'API', ref: 'payments' },
      service('checkout', {
        system: 'shop',
        dependsOn: ['resource:m1', 'api:payments'],
      }),
      service('payments-svc', {
        providesApis: ['payments'],
        dependsOn: ['resource:m2', 'system:shop'],
      }),
    );
    const result = await planOf(c('checkout'), entities);
    expect(result.planError).toBe(
      `Dependency cycle between services: ${c('checkout')} -> ${c('payments-svc')} -> ${c('checkout')} ` +
        `(${c('checkout')} dependsOn api:default/payments, which ${c('payments-svc')} provides; ${c('payments-svc')} dependsOn system:default/shop, which has ${c('checkout')} as a part): ` +
        'no boot order satisfies it; remove one of these dependsOn' +
        `. A run can go ahead all the same, booting ${c('payments-svc')} without waiting for ${c('checkout')}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`,
    );
    // Machines of a plan that cannot be made are still the plan's: captured meanwhile.
    expect([...result.graph.machines.keys()]).toEqual([m('m1'), m('m2')]);
  });

  it('drops a learned dependency or machine wait that closes a cycle, saying so; refuses a cycle a declared dependsOn closes, naming it', async () => {
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('m1'),
      host('m2'),
      host('m3'),
      service('web', {
        system: 'shop',
        dependsOn: ['resource:m1', 'component:api'],
      }),
      service('api', { system: 'shop', dependsOn: ['resource:m2'] }),
      service('db', { system: 'shop', dependsOn: ['resource:m3'] }),
    );
    // Only learned edges close these: api -> web against the declared web -> api, and m3 <-> m2.
    const learned = await planOf('system:default/shop', entities, {
      dependencies: [
        { service: c('api'), dependsOn: c('web'), score: 0.8 },
        { service: c('api'), dependsOn: c('db'), score: 0.9 },
      ],
      machineWaits: [
        { machine: m('m3'), waitsFor: m('m2'), followed: 1, chances: 4 },
        { machine: m('m1'), waitsFor: m('m3'), followed: 4, chances: 4 },
      ],
    });
    expect(machinesOf(learned)).toEqual([
      '0 m3: db | ',
      '1 m2: api | m3',
      '2 m1: web | m2,m3',
    ]);
    expect(learned.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('api')} -> ${c('web')} (score 0.80) not followed: it closes the dependency cycle between services: ${c('api')} -> ${c('web')} -> ${c('api')}`,
      `Learned machine wait ${m('m3')} -> ${m('m2')} not followed: it closes the dependency cycle between machines: ${m('m2')} -> ${m('m3')} -> ${m('m2')} ` +
        `(${c('api')} on ${m('m2')} needs ${c('db')}; ${m('m3')} waited for ${m('m2')} in its reboots)`,
    ]);

    // Declared both ways: the catalog's to fix, whatever was learned.
    const declared = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('m1'),
      host('m2'),
      service('web', {
        system: 'shop',
        dependsOn: ['resource:m1', 'component:api'],
      }),
      service('api', {
        system: 'shop',
        dependsOn: ['resource:m2', 'component:web'],
      }),
    );
    const refused = await planOf('system:default/shop', declared, {
      dependencies: [{ service: c('web'), dependsOn: c('api'), score: 0.9 }],
    });
    expect(refused.plan).toBeUndefined();
    expect(refused.planError).toBe(
      `Dependency cycle between services: ${c('api')} -> ${c('web')} -> ${c('api')}: no boot order satisfies it; remove one of these dependsOn` +
        `. A run can go ahead all the same, booting ${c('web')} without waiting for ${c('api')}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`,
    );
  });

  it('follows a learned dependency whose cycle went with a stronger learned one that contradicts the catalog', async () => {
    // The learned a -> b closes a -> b -> y -> x -> a only with the learned y -> x, which the
    // declared x -> y refuses on its own. Once y -> x is dropped, a -> b closes nothing: m1 waits for m2.
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('m1'),
      host('m2'),
      host('m3'),
      host('m4'),
      service('a', { system: 'shop', dependsOn: ['resource:m1'] }),
      service('b', {
        system: 'shop',
        dependsOn: ['resource:m2', 'component:y'],
      }),
      service('x', {
        system: 'shop',
        dependsOn: ['resource:m3', 'component:a', 'component:y'],
      }),
      service('y', { system: 'shop', dependsOn: ['resource:m4'] }),
    );
    const result = await planOf('system:default/shop', entities, {
      dependencies: [
        { service: c('a'), dependsOn: c('b'), score: 0.75 },
        { service: c('y'), dependsOn: c('x'), score: 0.95 },
      ],
    });
    expect(machinesOf(result)).toEqual([
      '0 m4: y | ',
      '1 m2: b | m4',
      '2 m1: a | m2',
      '3 m3: x | m1,m4',
    ]);
    expect(result.plan!.inferred).toEqual([
      { service: c('a'), dependsOn: c('b'), score: 0.75 },
    ]);
    expect(result.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('y')} -> ${c('x')} (score 0.95) not followed: it closes the dependency cycle between services: ${c('y')} -> ${c('x')} -> ${c('y')}`,
    ]);
  });

  it('takes an entity that depends on itself, declared or learned, as depending on nothing', async () => {
    const entities = catalogOf(
      host('m1', { dependsOn: ['resource:m1'] }),
      service('web', { dependsOn: ['resource:m1', 'component:web'] }),
      { kind: 'System', ref: 'shop' },
    );
    const learned = {
      dependencies: [{ service: c('web'), dependsOn: c('web'), score: 0.9 }],
      machineWaits: [
        { machine: m('m1'), waitsFor: m('m1'), followed: 2, chances: 2 },
      ],
    };
    for (const result of [
      await planOf(c('web'), entities),
      await planOf(c('web'), entities, learned),
      await planOf(m('m1'), entities),
    ]) {
      expect(result.plan!.waves).toEqual([[m('m1')]]);
      expect(result.plan!.machines[0].waitsFor).toEqual([]);
      expect(result.graph.problems).toEqual([]);
    }
  });

  it('names machines mapped to one container on one engine, each with the other, and not those of one name on two engines', async () => {
    const on = (ref: string, engine: string, container: string): Written => ({
      kind: 'Resource',
      ref,
      spec: { type: 'machine' },
      annotations: { [`${P}engine`]: engine, [`${P}container`]: container },
    });
    const entities = catalogOf(
      // web-01 copied as web-02, still on web-01's container; api-01 is another engine's `app`.
      on('web-01', 'primary', 'app'),
      on('web-02', 'primary', 'app'),
      on('api-01', 'secondary', 'app'),
      // A container name is case-sensitive on an engine: `App` is another container.
      on('admin-01', 'primary', 'App'),
      service('web', {
        dependsOn: ['resource:web-01', 'resource:web-02', 'component:api'],
      }),
      service('api', { dependsOn: ['resource:api-01', 'resource:admin-01'] }),
    );
    const result = await planOf(c('web'), entities);
    expect(result.plan!.waves).toEqual([
      [m('admin-01'), m('api-01')],
      [m('web-01'), m('web-02')],
    ]);
    const why = (machine: string, other: string) =>
      `Machine ${m(machine)}: ${P}container "app" on engine primary is the container of machine ${m(other)} as well: each captures that one container, and a recovery boots it once as each, on the same production addresses (the second fails on them); point each machine at its own container, or remove the machine that has none`;
    expect(result.graph.problems).toEqual([
      {
        entityRef: m('web-02'),
        annotation: `${P}container`,
        message: why('web-02', 'web-01'),
      },
      {
        entityRef: m('web-01'),
        annotation: `${P}container`,
        message: why('web-01', 'web-02'),
      },
    ]);
    // Recovered on its own, either boots the container once: nothing to say.
    const alone = await planOf(m('web-02'), entities);
    expect(messages(alone.graph.problems)).toEqual([]);
    const api = await planOf(c('api'), entities);
    expect(api.graph.problems).toEqual([]);
  });

  it('warns of learned dependencies and machine waits on what has left the catalog, and plans without them', async () => {
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('m1'),
      host('m2'),
      service('web', {
        system: 'shop',
        dependsOn: ['resource:m1', 'component:api'],
      }),
      service('api', { system: 'shop', dependsOn: ['resource:m2'] }),
    );
    const result = await planOf(c('web'), entities, {
      dependencies: [
        { service: c('web'), dependsOn: c('cache'), score: 0.9 },
        // Of a service that left too: no plan holds it.
        { service: c('old'), dependsOn: c('api'), score: 0.9 },
      ],
      machineWaits: [
        { machine: m('m1'), waitsFor: m('cache-01'), followed: 3, chances: 3 },
        { machine: m('old-01'), waitsFor: m('m2'), followed: 3, chances: 3 },
      ],
    });
    expect(machinesOf(result)).toEqual(['0 m2: api | ', '1 m1: web | m2']);
    expect(result.graph.problems).toEqual([]);
    expect(result.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('web')} -> ${c('cache')} not followed: ${c('cache')} is not a service in the catalog`,
      `Learned machine wait ${m('m1')} -> ${m('cache-01')} not followed: ${m('cache-01')} is not a machine in the catalog`,
    ]);
  });

  it('boots a machine that a machine of the plan learned to wait for, though it hosts nothing the entity needs', async () => {
    // web-01's reboots waited for queue-01, which hosts a service of the same system web does not declare.
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('web-01'),
      host('queue-01'),
      service('web', { system: 'shop', dependsOn: ['resource:web-01'] }),
      service('queue', { system: 'shop', dependsOn: ['resource:queue-01'] }),
    );
    const wait = {
      machine: m('web-01'),
      waitsFor: m('queue-01'),
      followed: 3,
      chances: 3,
    };
    const result = await planOf(c('web'), entities, { machineWaits: [wait] });
    expect(machinesOf(result)).toEqual([
      '0 queue-01:  | ',
      '1 web-01: web | queue-01',
    ]);
    expect(result.plan!.inferredMachineWaits).toEqual([wait]);
    // As the system's own plan does.
    expect(
      machinesOf(
        await planOf('system:default/shop', entities, { machineWaits: [wait] }),
      ),
    ).toEqual(['0 queue-01: queue | ', '1 web-01: web | queue-01']);
  });

  it('lists only the problems of what the plan boots: not of the siblings of a part that depends on its own whole', async () => {
    // web is part of shop and dependsOn shop: it waits for none of its siblings, so batch's
    // missing dependency and bad probe are not web's plan's, nor is batch's machine.
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('web-01'),
      host('batch-01'),
      service('web', {
        system: 'shop',
        dependsOn: ['resource:web-01', 'system:shop'],
      }),
      {
        ...service('batch', {
          system: 'shop',
          dependsOn: ['resource:batch-01', 'component:ledger'],
        }),
        annotations: { [`${P}probes`]: 'udp:53' },
      },
    );
    const web = await planOf(c('web'), entities);
    expect(machinesOf(web)).toEqual(['0 web-01: web | ']);
    expect(web.graph.problems).toEqual([]);
    expect(web.graph.missing).toEqual([]);
    expect([...web.graph.machines.keys()]).toEqual([m('web-01')]);
    // The system's plan boots batch, and lists them.
    const shop = await planOf('system:default/shop', entities);
    expect(messages(shop.graph.missing)).toEqual([
      `${c('batch')} dependsOn ${c('ledger')}, which is not in the catalog: a recovery plan cannot include it`,
    ]);
    expect(shop.graph.problems).toHaveLength(2);

    // Also when a cycle stops web's plan: what is captured meanwhile is web's machines alone.
    const cyclic = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('web-01'),
      host('batch-01'),
      host('auth-01'),
      service('web', {
        system: 'shop',
        dependsOn: ['resource:web-01', 'system:shop', 'component:auth'],
      }),
      service('auth', { dependsOn: ['resource:auth-01', 'component:web'] }),
      service('batch', {
        system: 'shop',
        dependsOn: ['resource:batch-01', 'component:ledger'],
      }),
    );
    const stopped = await planOf(c('web'), cyclic);
    expect(stopped.planError).toMatch(
      /^Dependency cycle between services: component:default\/auth -> component:default\/web -> /,
    );
    expect([...stopped.graph.machines.keys()].sort()).toEqual([
      m('auth-01'),
      m('web-01'),
    ]);
    expect(stopped.graph.missing).toEqual([]);
  });

  it('lists only the problems of what the plan boots: not of what a learned dependency it did not follow leads to', async () => {
    // The learned a -> x closes a cycle with the declared x -> a: not followed, so x, and its
    // dependsOn on what is not in the catalog, are no part of a's plan (no 409 for it).
    const entities = catalogOf(
      { kind: 'System', ref: 'shop' },
      host('m1'),
      host('m2'),
      service('a', { system: 'shop', dependsOn: ['resource:m1'] }),
      service('x', {
        system: 'shop',
        dependsOn: ['resource:m2', 'component:a', 'component:gone'],
      }),
    );
    const result = await planOf(c('a'), entities, {
      dependencies: [{ service: c('a'), dependsOn: c('x'), score: 0.9 }],
    });
    expect(machinesOf(result)).toEqual(['0 m1: a | ']);
    expect(result.graph.missing).toEqual([]);
    expect(result.graph.problems).toEqual([]);
    expect(result.plan!.analysis!.warnings).toEqual([
      expect.stringContaining(
        `Learned dependency ${c('a')} -> ${c('x')} (score 0.90) not followed: it closes`,
      ),
    ]);
  });

  it("still lists the problems of a System the plan waits for, and of the plan's machines", async () => {
    const entities = catalogOf(
      { kind: 'System', ref: 'data' },
      host('web-01'),
      {
        ...host('db-01', { system: 'data' }),
        annotations: { [`${P}engine`]: 'primary' },
      },
      service('web', { dependsOn: ['resource:web-01', 'system:data'] }),
    );
    // data names a part the catalog does not hold: its hasPart relation, as the catalog keeps it.
    const data = entities.find(e => e.metadata.name === 'data')!;
    data.relations!.push({ type: 'hasPart', targetRef: c('warehouse') });
    const result = await planOf(c('web'), entities);
    expect(machinesOf(result)).toEqual([
      '0 db-01: db-01 | ',
      '1 web-01: web | db-01',
    ]);
    expect(result.graph.problems.map(p => p.entityRef)).toEqual([
      m('db-01'),
      'system:default/data',
    ]);
    expect(messages(result.graph.missing)).toEqual([
      `system:default/data hasPart ${c('warehouse')}, which is not in the catalog: a recovery plan cannot include it`,
    ]);
  });
});

describe('boot plans of large catalogs', () => {
  /** Levels of 5 services each on its own machine, each needing two of the level below. */
  function layered(depth: number, width: number, machineEvery = 1): Entity[] {
    const written: Written[] = [{ kind: 'System', ref: 'big' }];
    for (let i = 0; i < depth; i++) {
      for (let j = 0; j < width; j++) {
        const onMachine = i % machineEvery === 0;
        if (onMachine) written.push(host(`m${i}-${j}`));
        const below =
          i > 0
            ? [
                `component:s${i - 1}-${j}`,
                `component:s${i - 1}-${(j + 1) % width}`,
              ]
            : [];
        written.push(
          service(`s${i}-${j}`, {
            system: 'big',
            dependsOn: [
              ...(onMachine ? [`resource:m${i}-${j}`] : []),
              ...below,
            ],
          }),
        );
      }
    }
    return catalogOf(...written);
  }
  /** The plan, and how long it took (ms). */
  async function timed(ref: string, entities: Entity[], learned?: Learned) {
    const started = performance.now();
    const result = await planOf(ref, entities, learned);
    return { result, ms: performance.now() - started };
  }
  // Catalogs 100 times those of the property test (at most 17 machines and 25 services), planned
  // in tens to hundreds of milliseconds here; the bound only catches a plan gone quadratic or worse.
  const QUICK_MS = 3000;

  it('plans 2,000 entities in a chain 200 deep, one wave per level, quickly', async () => {
    const entities = layered(200, 5);
    expect(entities).toHaveLength(2001);
    const { result, ms } = await timed('system:default/big', entities);
    expect(ms).toBeLessThan(QUICK_MS);
    expect(result.plan!.waves).toHaveLength(200);
    result.plan!.waves.forEach((wave, k) =>
      expect(wave).toEqual([0, 1, 2, 3, 4].map(j => m(`m${k}-${j}`))),
    );
    // From the top service: what it needs, down the whole chain, and nothing else.
    const top = await timed(c('s199-0'), entities);
    expect(top.ms).toBeLessThan(QUICK_MS);
    // Level 199 - k needs k + 1 of the level's machines (all 5 from level 195 down).
    expect(top.result.plan!.machines).toHaveLength(1000 - (4 + 3 + 2 + 1));
    expect(top.result.plan!.waves.slice(196).map(w => w.length)).toEqual([
      4, 3, 2, 1,
    ]);
  });

  it('plans the chain with machine-less levels, and with learned dependencies that agree and that close cycles, quickly', async () => {
    const logical = layered(200, 5, 2);
    const { result, ms } = await timed('system:default/big', logical);
    expect(ms).toBeLessThan(QUICK_MS);
    expect(result.plan!.waves).toHaveLength(100);

    const entities = layered(200, 5);
    // Stronger than those against the grain: where both make a cycle, these stay.
    const agree = Array.from({ length: 198 }, (_, i) => ({
      service: c(`s${i + 2}-0`),
      dependsOn: c(`s${i}-3`),
      score: 0.99,
    }));
    const against = Array.from({ length: 100 }, (_, k) => ({
      service: c(`s${k}-${k % 5}`),
      dependsOn: c(`s${199 - k}-${(k + 2) % 5}`),
      score: 0.7 + (k % 28) / 100,
    }));
    const learned = await timed('system:default/big', entities, {
      dependencies: [...agree, ...against],
    });
    expect(learned.ms).toBeLessThan(QUICK_MS);
    // No shallower than the declared chain (planOf checks each wave waits only for earlier ones).
    expect(learned.result.plan!.waves.length).toBeGreaterThanOrEqual(200);
    // Each learned dependency followed, or said not to be for the cycle it closes, named.
    const inferred = learned.result.plan!.inferred!;
    const warnings = learned.result.plan!.analysis!.warnings!;
    expect(inferred.filter(d => d.score === 0.99)).toHaveLength(198);
    expect(inferred.length + warnings.length).toBe(298);
    for (const warning of warnings)
      expect(warning).toMatch(
        / not followed: it closes the dependency cycle between services: \S+ -> /,
      );
  });

  it('plans a fan of 1,000 services on 1,000 machines, all needing one database, quickly', async () => {
    const fan = catalogOf(
      { kind: 'System', ref: 'fan' },
      host('front-01'),
      host('db-01'),
      service('front', {
        system: 'fan',
        dependsOn: [
          'resource:front-01',
          ...Array.from({ length: 1000 }, (_, i) => `component:f${i}`),
        ],
      }),
      database('db', { system: 'fan', dependsOn: ['resource:db-01'] }),
      ...Array.from({ length: 1000 }, (_, i) => [
        host(`fm${i}`),
        service(`f${i}`, {
          system: 'fan',
          dependsOn: [`resource:fm${i}`, 'resource:db'],
        }),
      ]).flat(),
    );
    const { result, ms } = await timed(c('front'), fan);
    expect(ms).toBeLessThan(QUICK_MS);
    expect(result.plan!.waves.map(w => w.length)).toEqual([1, 1000, 1]);
    expect(result.plan!.machines.at(-1)!.waitsFor).toHaveLength(1000);

    // The same fan through one API its 1,000 components provide.
    const api = catalogOf(
      host('front-01'),
      { kind: 'API', ref: 'search' },
      service('front', { dependsOn: ['resource:front-01', 'api:search'] }),
      ...Array.from({ length: 1000 }, (_, i) => [
        host(`fm${i}`),
        service(`f${i}`, {
          providesApis: ['search'],
          dependsOn: [`resource:fm${i}`],
        }),
      ]).flat(),
    );
    const through = await timed(c('front'), api);
    expect(through.ms).toBeLessThan(QUICK_MS);
    expect(through.result.plan!.waves.map(w => w.length)).toEqual([1000, 1]);
  });
});
