import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { mockCredentials, mockServices } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import type { BootPlan, InferredDependency, RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
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

function planner(entities: Entity[], dependencies: InferredDependency[], said: Pick<Inference, 'warnings' | 'names'> = { warnings: [], names: new Map() }, hidden: string[] = []) {
  const graphs = new CatalogGraphLoader(catalogHidingFromUsers(entities, hidden), mockServices.auth(), {
    rpoSeconds: 86400,
    rtoSeconds: 3600,
  });
  const inference: Inference = {
    id: 'a1',
    createdAt: '2024-05-01T00:00:00Z',
    dependencies,
    machineWaits: [],
    ...said,
    observed: new Set(entities.map(e => `${e.kind.toLowerCase()}:default/${e.metadata.name}`)),
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
    expect(result.plan!.inferred).toEqual([{ service: c('e'), dependsOn: c('a'), score: 0.6 }]);
    expect(result.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('a')} -> ${c('l')} (score 0.9) not followed: it closes the dependency cycle between machines: ${m('m1')} -> ${m('m2')} -> ${m('m1')}`,
    ]);
  });

  it('reports a cycle of declared edges alone as an error naming the machines', async () => {
    // a -> l is declared here; the learned a -> c makes the same machine edge, so dropping it does not help.
    const entities = site().map(e => (e.metadata.name === 'a' ? component('a', [m('m1'), c('l')]) : e));
    const plans = planner(entities, [{ service: c('a'), dependsOn: c('c'), score: 0.9 }]);
    const result = await plans.plan('system:default/site');
    expect(result.plan).toBeUndefined();
    expect(result.planError).toBe(`Dependency cycle between machines: ${m('m1')} -> ${m('m2')} -> ${m('m1')}`);
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
    const result = await planner(entities, [{ service: c('a'), dependsOn: c('x'), score: 0.9 }]).plan('system:default/site');
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
      'only 8 whole-site boots in the history (fewer than 20)',
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
    const elsewhere = '1 warning of the analysis about parts of the system outside this plan: see its analysis';
    // Without credentials (the plugin itself): every warning about the plan.
    expect((await plans.plan(c('d'))).plan!.analysis!.warnings).toEqual([...about, warnings[5], warnings[6], elsewhere]);
    // A user who may not see c: not the two that name it.
    expect((await plans.plan(c('d'), mockCredentials.user())).plan!.analysis!.warnings).toEqual([
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
      'only 8 whole-site boots in the history (fewer than 20)',
      'few samples: svc-a → svc-c (score 0.7, 3 samples)',
    ];
    const plans = planner(site(), [], { warnings, names }, [c('c')]);
    const elsewhere = '1 warning of the analysis about parts of the system outside this plan: see its analysis';
    // What a run keeps: the plan as the plugin itself sees it.
    const kept = (await plans.plan(c('d'))).plan!;
    expect(kept.analysis!.warnings).toEqual([warnings[0], warnings[1], warnings[2], elsewhere]);
    const run = (plan: BootPlan) => ({ id: 'run-1', entityRef: c('d'), plan, machines: [], steps: [] }) as unknown as RecoveryRun;
    const readBy = async (plan: BootPlan, credentials: BackstageCredentials = mockCredentials.user()) =>
      (await plans.runSeenBy(run(plan), credentials)).plan.analysis!.warnings;

    const forUser = (await plans.plan(c('d'), mockCredentials.user())).plan!.analysis!.warnings;
    expect(forUser).toEqual([
      warnings[0],
      warnings[2],
      elsewhere,
      'left out as the catalog does not show them to you: 1 warning about parts outside this plan',
    ]);
    expect(await readBy(kept)).toEqual(forUser);
    // Whoever sees c (the plugin itself) reads them all.
    expect(await readBy(kept, mockCredentials.service())).toEqual(kept.analysis!.warnings);
    // A run kept before runs kept only these held every warning of the analysis: read the same way.
    expect(await readBy({ ...kept, analysis: { ...kept.analysis!, warnings } })).toEqual(forUser);
    // Once its analysis is no longer kept, nothing tells which names are whose.
    expect(await readBy({ ...kept, analysis: { ...kept.analysis!, id: 'pruned' } }, mockCredentials.service())).toEqual([
      '4 warnings of the analysis left out: it is no longer kept, so the parts of the system they name cannot be checked against what the catalog shows you',
    ]);
  });

  it('reads a run by the names it keeps, whether or not its analysis is kept, and does not show them', async () => {
    // d's plan holds d, e, m1 and m2; c is outside it, hidden from users.
    const warnings = ['few samples: svc-d → svc-c (score 0.7, 3 samples)', 'only 8 whole-site boots in the history (fewer than 20)'];
    const names: Array<[string, string]> = [['svc-d', c('d')], ['svc-c', c('c')]];
    const plans = planner(site(), [], { warnings, names: new Map(names) }, [c('c')]);
    const kept = (await plans.plan(c('d'))).plan!;
    // As RunService keeps it, of an analysis no longer kept (inferenceOf answers nothing for it).
    const analysis = { ...kept.analysis!, id: 'pruned', warnings, names };
    const run = { id: 'run-1', entityRef: c('d'), plan: { ...kept, analysis }, machines: [], steps: [] } as unknown as RecoveryRun;
    const forUser = await plans.runSeenBy(run, mockCredentials.user());
    expect(forUser.plan.analysis).toEqual({
      id: 'pruned',
      createdAt: kept.analysis!.createdAt,
      warnings: [warnings[1], 'left out as the catalog does not show them to you: 1 warning about parts outside this plan'],
    });
    expect((await plans.runSeenBy(run, mockCredentials.service())).plan.analysis).toEqual({
      id: 'pruned',
      createdAt: kept.analysis!.createdAt,
      warnings,
    });
    // A run kept before runs kept names: read by its analysis's, while it is kept; then counted.
    const readBefore = async (id: string) =>
      (await plans.runSeenBy({ ...run, plan: { ...kept, analysis: { id, createdAt: kept.analysis!.createdAt, warnings } } }, mockCredentials.user()))
        .plan.analysis!.warnings;
    expect(await readBefore('a1')).toEqual(forUser.plan.analysis!.warnings);
    expect(await readBefore('pruned')).toEqual([
      '2 warnings of the analysis left out: it is no longer kept, so the parts of the system they name cannot be checked against what the catalog shows you',
    ]);
    // With no warnings, none of them to show either.
    const quiet = { ...run, plan: { ...run.plan, analysis: { ...analysis, warnings: [], names: [] } } };
    expect((await plans.runSeenBy(quiet, mockCredentials.user())).plan.analysis).not.toHaveProperty('names');
  });

  it('warns of, and skips, a learned dependency on an entity no longer in the catalog', async () => {
    const plans = planner([machine('m1'), component('a', [m('m1')])], [
      { service: c('a'), dependsOn: c('gone'), score: 0.9 },
    ]);
    const result = await plans.plan(c('a'));
    expect(result.graph.problems).toEqual([]);
    expect(result.plan!.waves).toEqual([[m('m1')]]);
    expect(result.plan!.analysis!.warnings).toEqual([
      `Learned dependency ${c('a')} -> ${c('gone')} not followed: ${c('gone')} is not a service in the catalog`,
    ]);
  });
});
