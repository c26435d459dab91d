import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { mockCredentials, mockServices } from '@backstage/backend-test-utils';
import {
  type Entity,
  parseEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import type {
  BootPlan,
  InferredDependency,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import type { Inference } from '../plan/inference';
import { PlanService } from './PlanService';
import { catalogHidingFromUsers } from '../testing/catalog';
import { componentEntity, machineEntity } from '../testing/entities';

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;

const machine = machineEntity;
const component = componentEntity;

const system = (parts: string[]): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'System',
  metadata: { name: 'site', namespace: 'default' },
  spec: {},
  relations: parts.map(targetRef => ({ type: 'hasPart', targetRef })),
});

function planner(
  entities: Entity[],
  dependencies: InferredDependency[],
  said: Pick<Inference, 'warnings' | 'names'> = {
    warnings: [],
    names: new Map(),
  },
  hidden: string[] = [],
) {
  const graphs = new CatalogGraphLoader(
    catalogHidingFromUsers(entities, hidden),
    mockServices.auth(),
    {
      rpoSeconds: 86400,
      rtoSeconds: 3600,
    },
  );
  const inference: Inference = {
    id: 'a1',
    createdAt: '2024-05-01T00:00:00Z',
    dependencies,
    machineWaits: [],
    ...said,
    observed: new Set(
      entities.map(e => `${e.kind.toLowerCase()}:default/${e.metadata.name}`),
    ),
    threshold: 0.5,
  };
  return new PlanService(graphs, {
    inferenceFor: async () => inference,
    // Earlier analyses are gone: only this one is kept.
    inferenceOf: async id => (id === inference.id ? inference : undefined),
  });
}

describe('PlanService.plan', () => {
  // a(m1) -learned-> l (no machine) -> c(m2), and d(m2) -> e(m1): m1 and m2 would wait for each other.
  const site = (extra: Entity[] = []) => [
    system([c('a'), c('d')]),
    machine('m1'),
    machine('m2'),
    component('a', [m('m1')]),
    component('l', [c('c')]),
    component('c', [m('m2')]),
    component('d', [m('m2'), c('e')]),
    component('e', [m('m1')]),
    ...extra,
  ];

  it('drops the learned edge that closes a machine cycle through a machine-less service, and only it', async () => {
    const plans = planner(site(), [
      { service: c('a'), dependsOn: c('l'), score: 0.9 },
      // Weaker, both ends on the cycle's machines, but it makes no machine edge (same machine).
      { service: c('e'), dependsOn: c('a'), score: 0.6 },
    ]);
    const result = await plans.plan('system:default/site');
    expect(result.planError).toBeUndefined();
    expect(result.plan!.waves).toEqual([[m('m1')], [m('m2')]]);
    expect(result.plan!.inferred).toEqual([
      { service: c('e'), dependsOn: c('a'), score: 0.6 },
    ]);
    expect(result.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('a')} -> ${c('l')} (score 0.90) not followed: it closes the dependency cycle between machines: ${m('m1')} -> ${m('m2')} -> ${m('m1')} (${c('a')} on ${m('m1')} needs ${c('l')}; ${c('d')} on ${m('m2')} needs ${c('e')})`,
    ]);
  });

  it('reports a cycle of declared edges alone as an error naming the machines', async () => {
    // a -> l is declared here; the learned a -> c makes the same machine edge, so dropping it does not help.
    const entities = site().map(e =>
      e.metadata.name === 'a' ? component('a', [m('m1'), c('l')]) : e,
    );
    const plans = planner(entities, [
      { service: c('a'), dependsOn: c('c'), score: 0.9 },
    ]);
    const result = await plans.plan('system:default/site');
    expect(result.plan).toBeUndefined();
    // Each machine edge with every service dependency that makes it: the declared a -> l as well as the learned a -> c.
    expect(result.planError).toBe(
      `Dependency cycle between machines: ${m('m1')} -> ${m('m2')} -> ${m('m1')} (${c('a')} on ${m('m1')} needs ${c('c')}, ${c('a')} on ${m('m1')} needs ${c('l')}; ${c('d')} on ${m('m2')} needs ${c('e')}): ` +
        'no boot order satisfies it; remove one of these dependencies, or move one of these services to another machine' +
        `. A run can go ahead all the same, booting ${m('m2')} without waiting for ${m('m1')}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`,
    );
  });

  it("keeps a learned edge whose machine edge on the cycle a machine's own dependsOn also makes: dropping it would not break the cycle", async () => {
    // m1 dependsOn m2 itself; the learned a -> b makes m1 -> m2 too, and m3 -> m2, which only it makes.
    // The learned b -> e closes m1 -> m2 -> m1: it is the one to drop, though stronger.
    const entities = [
      system([c('a'), c('b'), c('e')]),
      {
        ...machine('m1'),
        relations: [{ type: 'dependsOn', targetRef: m('m2') }],
      },
      machine('m2'),
      machine('m3'),
      component('a', [m('m1'), m('m3')]),
      component('b', [m('m2')]),
      component('e', [m('m1')]),
    ];
    const result = await planner(entities, [
      { service: c('a'), dependsOn: c('b'), score: 0.6 },
      { service: c('b'), dependsOn: c('e'), score: 0.9 },
    ]).plan('system:default/site');
    expect(result.planError).toBeUndefined();
    expect(result.plan!.waves).toEqual([[m('m2')], [m('m1'), m('m3')]]);
    expect(result.plan!.inferred).toEqual([
      { service: c('a'), dependsOn: c('b'), score: 0.6 },
    ]);
    expect(result.plan!.analysis!.warnings).toEqual([
      expect.stringContaining(
        `Learned dependency ${c('b')} -> ${c('e')} (score 0.90) not followed`,
      ),
    ]);
  });

  it("says which learned dependencies name no catalog entity in one order, whatever the analysis's", async () => {
    const entities = [
      system([c('a')]),
      machine('m1'),
      component('a', [m('m1')]),
    ];
    const learned = [
      { service: c('a'), dependsOn: c('gone2'), score: 0.9 },
      { service: c('a'), dependsOn: c('gone1'), score: 0.9 },
    ];
    const warnings = async (order: typeof learned) =>
      (await planner(entities, order).plan('system:default/site')).plan!
        .analysis!.warnings;
    const forward = await warnings(learned);
    expect(forward).toEqual([
      expect.stringContaining(
        `Learned dependency ${c('a')} -> ${c('gone1')} not followed`,
      ),
      expect.stringContaining(
        `Learned dependency ${c('a')} -> ${c('gone2')} not followed`,
      ),
    ]);
    expect(await warnings([...learned].reverse())).toEqual(forward);
  });

  it('lists as observed but not declared only what the catalog does not declare, not even through others', async () => {
    // web -> api -> db declared; the history shows web waiting for db (api's starts were not
    // collected) and for cache, which nothing declares.
    const entities = [
      system([c('web'), c('api'), c('db'), c('cache')]),
      machine('m1'),
      machine('m2'),
      machine('m3'),
      component('web', [m('m1'), c('api')]),
      component('api', [m('m2'), c('db')]),
      component('db', [m('m3')]),
      component('cache', [m('m3')]),
    ];
    const result = await planner(entities, [
      { service: c('web'), dependsOn: c('db'), score: 0.9 },
      { service: c('web'), dependsOn: c('cache'), score: 0.8 },
    ]).plan('system:default/site');
    expect(result.disagreements!.inferredNotDeclared).toEqual([
      { service: c('web'), dependsOn: c('cache'), score: 0.8 },
    ]);
  });

  it('says which learned dependency it does not follow because it contradicts a declared one', async () => {
    // web declares db; the history has db waiting for web (through api, also learned).
    const entities = [
      system([c('web'), c('db'), c('api')]),
      machine('m1'),
      machine('m2'),
      machine('m3'),
      component('web', [m('m1'), c('db')]),
      component('db', [m('m2')]),
      component('api', [m('m3')]),
    ];
    const result = await planner(entities, [
      { service: c('db'), dependsOn: c('api'), score: 0.95 },
      { service: c('api'), dependsOn: c('web'), score: 0.8 },
    ]).plan('system:default/site');
    expect(result.plan!.waves).toEqual([[m('m3')], [m('m2')], [m('m1')]]);
    expect(result.plan!.inferred).toEqual([
      { service: c('db'), dependsOn: c('api'), score: 0.95 },
    ]);
    expect(result.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('api')} -> ${c('web')} (score 0.80) not followed: it closes the dependency cycle between services: ${c('api')} -> ${c('web')} -> ${c('db')} -> ${c('api')}`,
    ]);
  });

  it('keeps a learned machine wait that a declared dependency also makes, and drops what closes the cycle', async () => {
    // a on m1 declares b on m2; m1 also waited for m2's reboots. The learned b -> e (on m1) closes the cycle.
    const entities = [
      system([c('a'), c('b'), c('e')]),
      machine('m1'),
      machine('m2'),
      component('a', [m('m1'), c('b')]),
      component('b', [m('m2')]),
      component('e', [m('m1')]),
    ];
    const wait = {
      machine: m('m1'),
      waitsFor: m('m2'),
      followed: 1,
      chances: 10,
    };
    const said = {
      warnings: [],
      names: new Map(),
      machineWaits: [wait],
    } as Pick<Inference, 'warnings' | 'names'>;
    const result = await planner(
      entities,
      [{ service: c('b'), dependsOn: c('e'), score: 0.9 }],
      said,
    ).plan('system:default/site');
    expect(result.planError).toBeUndefined();
    expect(result.plan!.waves).toEqual([[m('m2')], [m('m1')]]);
    expect(result.plan!.inferredMachineWaits).toEqual([wait]);
    expect(result.plan!.analysis!.warnings).toEqual([
      expect.stringContaining(
        `Learned dependency ${c('b')} -> ${c('e')} (score 0.90) not followed`,
      ),
    ]);
  });

  it('reports a cycle of declared edges that only a learned dependency leads to, keeping the learned edges', async () => {
    // x <-> y declared, reachable from the system only through the learned a -> x.
    const entities = [
      system([c('a')]),
      machine('m1'),
      machine('m2'),
      machine('m3'),
      component('a', [m('m1')]),
      component('x', [m('m2'), c('y')]),
      component('y', [m('m3'), c('x')]),
    ];
    const result = await planner(entities, [
      { service: c('a'), dependsOn: c('x'), score: 0.9 },
    ]).plan('system:default/site');
    expect(result.plan).toBeUndefined();
    expect(result.planError).toMatch(/cycle/i);
    expect(result.planError).toContain(c('x'));
    expect(result.planError).toContain(c('y'));
  });

  it("carries the analysis's warnings about what the plan holds; of those naming parts outside it, only what the caller may see", async () => {
    // d's plan holds d, e, m1 and m2; a and c are parts of the system outside it, c hidden from users.
    const names = new Map([
      ['d', c('d')],
      ['e-svc', c('e')],
      ['m2-host', m('m2')],
      ['a', c('a')],
      ['c', c('c')],
      ['stray', undefined],
    ]);
    const warnings = [
      'only 8 boots of at least half the services in the history (fewer than 20)',
      'few samples: e-svc → d (score 0.8, 3 samples)',
      'name d fits several entities (component:default/d, component:default/other-d)',
      'few samples: a → stray (score 0.9, 4 samples)',
      'machine m2-host: a clock reading contradicts another',
      'few samples: d → c (score 0.75, 3 samples)',
      `name cache fits several entities (${c('c')}, ${c('e')})`,
    ];
    const entities = site([component('other-d', [m('m1')])]);
    const plans = planner(entities, [], { warnings, names }, [c('c')]);
    const about = [warnings[0], warnings[1], warnings[2], warnings[4]];
    const elsewhere =
      '1 warning of the analysis about parts of the system outside this plan: see its analysis';
    // Without credentials (the plugin itself): every warning about the plan.
    expect((await plans.plan(c('d'))).plan!.analysis!.warnings).toEqual([
      ...about,
      warnings[5],
      warnings[6],
      elsewhere,
    ]);
    // A user who may not see c: not the two that name it.
    expect(
      (await plans.plan(c('d'), mockCredentials.user())).plan!.analysis!
        .warnings,
    ).toEqual([
      ...about,
      elsewhere,
      'left out as the catalog does not show them to you: 2 warnings about parts outside this plan',
    ]);
  });

  it("gives each reader of a run its plan's warnings as GET /plan gives them to that reader, whenever the run was kept", async () => {
    // d's plan holds d, e, m1 and m2; a and c are outside it, c hidden from users.
    const names = new Map([
      ['svc-d', c('d')],
      ['svc-a', c('a')],
      ['svc-c', c('c')],
    ]);
    const warnings = [
      'few samples: svc-d → svc-a (score 0.7, 3 samples)',
      'few samples: svc-d → svc-c (score 0.7, 3 samples)',
      'only 8 boots of at least half the services in the history (fewer than 20)',
      'few samples: svc-a → svc-c (score 0.7, 3 samples)',
    ];
    const plans = planner(site(), [], { warnings, names }, [c('c')]);
    const elsewhere =
      '1 warning of the analysis about parts of the system outside this plan: see its analysis';
    // What a run keeps: the plan as the plugin itself sees it.
    const kept = (await plans.plan(c('d'))).plan!;
    expect(kept.analysis!.warnings).toEqual([
      warnings[0],
      warnings[1],
      warnings[2],
      elsewhere,
    ]);
    const run = (plan: BootPlan) =>
      ({
        id: 'run-1',
        entityRef: c('d'),
        plan,
        machines: [],
        steps: [],
      }) as unknown as RecoveryRun;
    const readBy = async (
      plan: BootPlan,
      credentials: BackstageCredentials = mockCredentials.user(),
    ) =>
      (await plans.runSeenBy(run(plan), credentials)).plan.analysis!.warnings;

    const forUser = (await plans.plan(c('d'), mockCredentials.user())).plan!
      .analysis!.warnings;
    expect(forUser).toEqual([
      warnings[0],
      warnings[2],
      elsewhere,
      'left out as the catalog does not show them to you: 1 warning about parts outside this plan',
    ]);
    expect(await readBy(kept)).toEqual(forUser);
    // Whoever sees c (the plugin itself) reads them all.
    expect(await readBy(kept, mockCredentials.service())).toEqual(
      kept.analysis!.warnings,
    );
    // A run kept before runs kept only these held every warning of the analysis: read the same way.
    expect(
      await readBy({ ...kept, analysis: { ...kept.analysis!, warnings } }),
    ).toEqual(forUser);
    // Once its analysis is no longer kept, nothing tells which names are whose.
    expect(
      await readBy(
        { ...kept, analysis: { ...kept.analysis!, id: 'pruned' } },
        mockCredentials.service(),
      ),
    ).toEqual([
      '4 warnings of the analysis left out: it is no longer kept, so the parts of the system they name cannot be checked against what the catalog shows you',
    ]);
  });

  it('reads a run by the names it keeps, whether or not its analysis is kept, and does not show them', async () => {
    // d's plan holds d, e, m1 and m2; c is outside it, hidden from users.
    const warnings = [
      'few samples: svc-d → svc-c (score 0.7, 3 samples)',
      'only 8 boots of at least half the services in the history (fewer than 20)',
    ];
    const names: Array<[string, string]> = [
      ['svc-d', c('d')],
      ['svc-c', c('c')],
    ];
    const plans = planner(site(), [], { warnings, names: new Map(names) }, [
      c('c'),
    ]);
    const kept = (await plans.plan(c('d'))).plan!;
    // As RunService keeps it, of an analysis no longer kept (inferenceOf answers nothing for it).
    const analysis = { ...kept.analysis!, id: 'pruned', warnings, names };
    const run = {
      id: 'run-1',
      entityRef: c('d'),
      plan: { ...kept, analysis },
      machines: [],
      steps: [],
    } as unknown as RecoveryRun;
    const forUser = await plans.runSeenBy(run, mockCredentials.user());
    expect(forUser.plan.analysis).toEqual({
      id: 'pruned',
      createdAt: kept.analysis!.createdAt,
      warnings: [
        warnings[1],
        'left out as the catalog does not show them to you: 1 warning about parts outside this plan',
      ],
    });
    expect(
      (await plans.runSeenBy(run, mockCredentials.service())).plan.analysis,
    ).toEqual({
      id: 'pruned',
      createdAt: kept.analysis!.createdAt,
      warnings,
    });
    // A run kept before runs kept names: read by its analysis's, while it is kept; then counted.
    const readBefore = async (id: string) =>
      (
        await plans.runSeenBy(
          {
            ...run,
            plan: {
              ...kept,
              analysis: { id, createdAt: kept.analysis!.createdAt, warnings },
            },
          },
          mockCredentials.user(),
        )
      ).plan.analysis!.warnings;
    expect(await readBefore('a1')).toEqual(forUser.plan.analysis!.warnings);
    expect(await readBefore('pruned')).toEqual([
      '2 warnings of the analysis left out: it is no longer kept, so the parts of the system they name cannot be checked against what the catalog shows you',
    ]);
    // With no warnings, none of them to show either.
    const quiet = {
      ...run,
      plan: { ...run.plan, analysis: { ...analysis, warnings: [], names: [] } },
    };
    expect(
      (await plans.runSeenBy(quiet, mockCredentials.user())).plan.analysis,
    ).not.toHaveProperty('names');
  });

  it('warns of, and skips, a learned dependency on an entity no longer in the catalog', async () => {
    const plans = planner(
      [machine('m1'), component('a', [m('m1')])],
      [{ service: c('a'), dependsOn: c('gone'), score: 0.9 }],
    );
    const result = await plans.plan(c('a'));
    expect(result.graph.problems).toEqual([]);
    expect(result.plan!.waves).toEqual([[m('m1')]]);
    expect(result.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('a')} -> ${c('gone')} not followed: ${c('gone')} is not a service in the catalog`,
    ]);
  });
});

/**
 * Entities as the catalog holds them: `spec` as written, relations as the catalog computes them
 * from it (both directions, refs lower-cased, one relation per entity that declares it).
 */
function catalogOf(
  ...entities: Array<{
    kind: string;
    ref: string;
    spec?: Record<string, unknown>;
    annotations?: Record<string, string>;
  }>
): Entity[] {
  const relations = new Map<
    string,
    Array<{ type: string; targetRef: string }>
  >();
  const relate = (from: string, type: string, to: string) =>
    relations.set(from, [
      ...(relations.get(from) ?? []),
      { type, targetRef: to },
    ]);
  const made = entities.map(({ kind, ref, spec = {}, annotations }) => {
    const { namespace, name } = parseEntityRef(ref, {
      defaultKind: kind,
      defaultNamespace: 'default',
    });
    return {
      apiVersion: 'backstage.io/v1alpha1',
      kind,
      metadata: { name, namespace, annotations },
      spec,
    } as Entity;
  });
  const fields: Array<[string, string | undefined, string, string]> = [
    ['dependsOn', undefined, 'dependsOn', 'dependencyOf'],
    ['dependencyOf', undefined, 'dependencyOf', 'dependsOn'],
    ['system', 'System', 'partOf', 'hasPart'],
    ['subcomponentOf', 'Component', 'partOf', 'hasPart'],
    ['providesApis', 'API', 'providesApi', 'apiProvidedBy'],
  ];
  for (const entity of made) {
    const self = stringifyEntityRef(entity);
    for (const [field, defaultKind, outgoing, incoming] of fields) {
      for (const target of [entity.spec?.[field] ?? []].flat() as string[]) {
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
  return made.map(e => ({
    ...e,
    relations: relations.get(stringifyEntityRef(e)) ?? [],
  }));
}

const P = 'recovery.backstage-recovery.io/';
const host = (ref: string, spec: Record<string, unknown> = {}) => ({
  kind: 'Resource',
  ref,
  spec: { type: 'machine', ...spec },
  annotations: {
    [`${P}engine`]: 'primary',
    [`${P}container`]: parseEntityRef(ref, { defaultKind: 'resource' }).name,
  },
});
const service = (ref: string, spec: Record<string, unknown> = {}) => ({
  kind: 'Component',
  ref,
  spec: { type: 'service', ...spec },
});

async function planOf(ref: string, entities: Entity[]) {
  const graphs = new CatalogGraphLoader(
    catalogHidingFromUsers(entities, []),
    mockServices.auth(),
    { rpoSeconds: 86400, rtoSeconds: 3600 },
  );
  return new PlanService(graphs).plan(ref);
}
/** A plan's machines as `machine: services | waits for`, in boot order. */
const machinesOf = (result: Awaited<ReturnType<typeof planOf>>) =>
  result.plan!.machines.map(
    x =>
      `${x.wave} ${parseEntityRef(x.machineRef).name}: ${x.services.map(s => parseEntityRef(s).name).join(',')} | ${x.waitsFor.map(w => parseEntityRef(w).name).join(',')}`,
  );

describe('boot plans of catalog topologies', () => {
  it('boots every replica of a service before what needs it', async () => {
    const result = await planOf(
      c('web'),
      catalogOf(
        host('m1'),
        host('m2'),
        host('m3'),
        service('api', { dependsOn: ['resource:m1', 'resource:m2'] }),
        service('web', { dependsOn: ['resource:m3', 'component:api'] }),
      ),
    );
    expect(machinesOf(result)).toEqual([
      '0 m1: api | ',
      '0 m2: api | ',
      '1 m3: web | m1,m2',
    ]);
  });

  it('boots a machine shared with another system for the services of this plan only', async () => {
    // b of billing also runs on m1 and needs c on m2: recovering shop boots m1 alone.
    const result = await planOf(
      'system:default/shop',
      catalogOf(
        { kind: 'System', ref: 'shop' },
        { kind: 'System', ref: 'billing' },
        host('m1'),
        host('m2'),
        service('a', { system: 'shop', dependsOn: ['resource:m1'] }),
        service('b', {
          system: 'billing',
          dependsOn: ['resource:m1', 'component:c'],
        }),
        service('c', { system: 'billing', dependsOn: ['resource:m2'] }),
      ),
    );
    expect(machinesOf(result)).toEqual(['0 m1: a | ']);
  });

  it("recovers a system's machine parts, even one no service uses, and the providers of its APIs", async () => {
    const result = await planOf(
      'system:default/shop',
      catalogOf(
        { kind: 'System', ref: 'shop' },
        host('m1'),
        host('spare', { system: 'shop' }),
        host('m2'),
        { kind: 'API', ref: 'orders', spec: { system: 'shop' } },
        service('a', { system: 'shop', dependsOn: ['resource:m1'] }),
        // Of another system: it serves shop's API.
        service('orders-svc', {
          dependsOn: ['resource:m2'],
          providesApis: ['orders'],
        }),
      ),
    );
    expect(result.graph.problems).toEqual([]);
    expect(machinesOf(result)).toEqual([
      '0 m1: a | ',
      '0 m2: orders-svc | ',
      '0 spare:  | ',
    ]);
  });

  it('makes a service that dependsOn a System wait for its machine parts, not run on them', async () => {
    const result = await planOf(
      c('web'),
      catalogOf(
        { kind: 'System', ref: 'shop' },
        host('m1'),
        host('spare', { system: 'shop' }),
        host('m2'),
        service('db', { system: 'shop', dependsOn: ['resource:m2'] }),
        service('web', { dependsOn: ['resource:m1', 'system:shop'] }),
      ),
    );
    expect(result.graph.services.get(c('web'))!.machines).toEqual([m('m1')]);
    // A machine awaited on its own is its own service, as one recovered on its own is.
    expect(machinesOf(result)).toEqual([
      '0 m2: db | ',
      '0 spare: spare | ',
      '1 m1: web | m2,spare',
    ]);
  });

  it('looks through a Resource that is not a machine to the machine it runs on', async () => {
    const result = await planOf(
      c('web'),
      catalogOf(
        host('m1'),
        host('m2'),
        {
          kind: 'Resource',
          ref: 'db',
          spec: { type: 'database', dependsOn: ['resource:m2'] },
        },
        service('web', { dependsOn: ['resource:m1', 'resource:db'] }),
      ),
    );
    expect(machinesOf(result)).toEqual(['0 m2: db | ', '1 m1: web | m2']);
  });

  it('makes a dependsOn on an API wait for the components that provide it; one that none provides is missing', async () => {
    const entities = catalogOf(
      host('m1'),
      host('m2'),
      { kind: 'API', ref: 'pay' },
      { kind: 'API', ref: 'legacy' },
      service('pay-svc', { dependsOn: ['resource:m2'], providesApis: ['pay'] }),
      service('web', { dependsOn: ['resource:m1', 'api:pay'] }),
      service('old', { dependsOn: ['resource:m1', 'api:legacy'] }),
    );
    expect(machinesOf(await planOf(c('web'), entities))).toEqual([
      '0 m2: pay-svc | ',
      '1 m1: web | m2',
    ]);
    const old = await planOf(c('old'), entities);
    const missing = {
      entityRef: c('old'),
      message: `${c('old')} dependsOn api:default/legacy, which no Component provides (spec.providesApis): a recovery plan cannot include what it stands for`,
    };
    expect(old.graph.missing).toEqual([missing]);
    expect(old.graph.problems).toEqual([missing]);
  });

  it('names a dependsOn on a Group, and what to change', async () => {
    const result = await planOf(
      c('web'),
      catalogOf(
        host('m1'),
        { kind: 'Group', ref: 'ops', spec: { type: 'team', children: [] } },
        service('web', { dependsOn: ['resource:m1', 'group:ops'] }),
      ),
    );
    expect(machinesOf(result)).toEqual(['0 m1: web | ']);
    expect(result.graph.problems).toEqual([
      {
        entityRef: c('web'),
        message: `${c('web')} dependsOn group:default/ops, a Group: a recovery plan boots only services and machines, so it leaves group:default/ops out; remove that dependsOn from ${c('web')}, or replace it with the Components and Resources it stands for`,
      },
    ]);
    // Not a dependency the plan misses: a run may go ahead.
    expect(result.graph.missing).toEqual([]);
  });

  it('follows dependsOn into other namespaces and systems', async () => {
    const result = await planOf(
      c('web'),
      catalogOf(
        { kind: 'System', ref: 'shop' },
        { kind: 'System', ref: 'data/warehouse' },
        host('m1'),
        host('data/m2'),
        service('data/db', { system: 'warehouse', dependsOn: ['resource:m2'] }),
        service('web', {
          system: 'shop',
          dependsOn: ['resource:m1', 'component:data/db'],
        }),
      ),
    );
    expect(result.plan!.waves).toEqual([['resource:data/m2'], [m('m1')]]);
  });

  it('boots a machine after the machines it depends on itself, which boot too', async () => {
    const entities = catalogOf(
      host('m0'),
      host('m1', { dependsOn: ['resource:m0'] }),
      service('web', { dependsOn: ['resource:m1'] }),
    );
    expect(machinesOf(await planOf(c('web'), entities))).toEqual([
      '0 m0:  | ',
      '1 m1: web | m0',
    ]);
    // Recovering the machine on its own too.
    expect(machinesOf(await planOf(m('m1'), entities))).toEqual([
      '0 m0:  | ',
      '1 m1: m1 | m0',
    ]);
  });

  it('boots what a machine depends on when that is a service', async () => {
    // An NFS client machine that mounts what a service on another machine exports.
    const result = await planOf(
      c('app'),
      catalogOf(
        host('m1', { dependsOn: ['component:nfs'] }),
        host('m2'),
        service('nfs', { dependsOn: ['resource:m2'] }),
        service('app', { dependsOn: ['resource:m1'] }),
      ),
    );
    expect(machinesOf(result)).toEqual(['0 m2: nfs | ', '1 m1: app | m2']);
  });

  it('recovers the subcomponents of a component with it; what depends on it waits for them', async () => {
    const entities = catalogOf(
      host('m1'),
      host('m2'),
      host('m3'),
      service('shop'),
      service('cart', { subcomponentOf: 'shop', dependsOn: ['resource:m1'] }),
      service('checkout', {
        subcomponentOf: 'component:shop',
        dependsOn: ['resource:m2'],
      }),
      service('web', { dependsOn: ['resource:m3', 'component:shop'] }),
    );
    const shop = await planOf(c('shop'), entities);
    expect(machinesOf(shop)).toEqual(['0 m1: cart | ', '0 m2: checkout | ']);
    expect(shop.graph.roots).toEqual([c('shop'), c('cart'), c('checkout')]);
    expect(machinesOf(await planOf(c('web'), entities))).toEqual([
      '0 m1: cart | ',
      '0 m2: checkout | ',
      '1 m3: web | m1,m2',
    ]);
  });

  it('makes a subcomponent that depends on its own whole wait for the whole, not for its siblings', async () => {
    const result = await planOf(
      c('core'),
      catalogOf(
        host('m1'),
        host('m2'),
        host('m3'),
        service('core', { dependsOn: ['resource:m1'] }),
        service('batch', {
          subcomponentOf: 'core',
          dependsOn: ['resource:m2', 'component:core'],
        }),
        service('report', {
          subcomponentOf: 'core',
          dependsOn: ['resource:m3', 'component:core'],
        }),
      ),
    );
    expect(result.planError).toBeUndefined();
    expect(machinesOf(result)).toEqual([
      '0 m1: core | ',
      '1 m2: batch | m1',
      '1 m3: report | m1',
    ]);
  });

  it('names the entities of a cycle through services, non-machine resources and machines, and what to change', async () => {
    const services = await planOf(
      c('web'),
      catalogOf(
        host('m1'),
        host('m2'),
        {
          kind: 'Resource',
          ref: 'db',
          spec: {
            type: 'database',
            dependsOn: ['resource:m2', 'component:web'],
          },
        },
        service('web', { dependsOn: ['resource:m1', 'resource:db'] }),
      ),
    );
    expect(services.planError).toBe(
      `Dependency cycle between services: ${c('web')} -> ${m('db')} -> ${c('web')}: no boot order satisfies it; remove one of these dependsOn` +
        `. A run can go ahead all the same, booting ${m('db')} without waiting for ${c('web')}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`,
    );
    // m1 depends on m2 itself, and db on m2 needs web on m1.
    const machines = await planOf(
      c('site'),
      catalogOf(
        host('m1', { dependsOn: ['resource:m2'] }),
        host('m2'),
        {
          kind: 'Resource',
          ref: 'db',
          spec: {
            type: 'database',
            dependsOn: ['resource:m2', 'component:web'],
          },
        },
        service('web', { dependsOn: ['resource:m1'] }),
        service('site', { dependsOn: ['component:web', 'resource:db'] }),
      ),
    );
    expect(machines.planError).toBe(
      `Dependency cycle between machines: ${m('m1')} -> ${m('m2')} -> ${m('m1')} (${m('m1')} dependsOn ${m('m2')}; ${m('db')} on ${m('m2')} needs ${c('web')}): ` +
        'no boot order satisfies it; remove one of these dependencies, or move one of these services to another machine' +
        `. A run can go ahead all the same, booting ${m('m2')} without waiting for ${m('m1')}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`,
    );
  });

  it('takes a relation declared from both ends once', async () => {
    // web names m1 twice, and m1 and db also name web in spec.dependencyOf.
    const result = await planOf(
      c('web'),
      catalogOf(
        host('m1', { dependencyOf: ['component:web'] }),
        host('m2'),
        service('db', {
          dependsOn: ['resource:m2'],
          dependencyOf: ['component:web'],
        }),
        service('web', {
          dependsOn: ['resource:m1', 'resource:m1', 'component:db'],
        }),
      ),
    );
    expect(machinesOf(result)).toEqual(['0 m2: db | ', '1 m1: web | m2']);
  });

  it('reads refs whatever their case, and annotations with spaces and the probe kind in capitals', async () => {
    const entities = catalogOf(
      {
        ...host('Web-01'),
        annotations: {
          [`${P}engine`]: ' primary ',
          [`${P}container`]: 'Web-01 ',
        },
      },
      {
        ...service('Web', { dependsOn: ['Resource:Web-01', 'component:DB'] }),
        annotations: { [`${P}probes`]: ' HTTP:80/Health , TCP:443 ' },
      },
      service('db', { dependsOn: ['resource:default/WEB-01'] }),
    );
    const result = await planOf('Component:Default/WEB', entities);
    expect(result.graph.problems).toEqual([]);
    expect(result.graph.machines.get(m('web-01'))!.locator).toEqual({
      machineRef: m('web-01'),
      engine: 'primary',
      container: 'Web-01',
    });
    expect(result.plan!.machines).toEqual([
      {
        machineRef: m('web-01'),
        wave: 0,
        services: [c('db'), c('web')],
        waitsFor: [],
        probes: [
          { kind: 'http', port: 80, path: '/Health', of: c('web') },
          { kind: 'tcp', port: 443, of: c('web') },
        ],
      },
    ]);
  });
});
