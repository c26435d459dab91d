import { mockServices } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import type { InferredDependency } from '@backstage-recovery/plugin-recovery-common';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import type { Inference } from '../plan/inference';
import { PlanService } from './PlanService';
import { catalogHidingFromUsers } from '../testing/catalog';
import { componentEntity, machineEntity } from '../testing/entities';

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;

function planner(
  entities: Entity[],
  dependencies: InferredDependency[],
  order?: Inference['order'],
) {
  const graphs = new CatalogGraphLoader(
    catalogHidingFromUsers(entities, []),
    mockServices.auth(),
    { rpoSeconds: 86400, rtoSeconds: 3600 },
  );
  const inference: Inference = {
    id: 'a1',
    createdAt: '2024-05-01T00:00:00Z',
    dependencies,
    machineWaits: [],
    warnings: [],
    names: new Map(),
    observed: new Set(
      entities.map(e => `${e.kind.toLowerCase()}:default/${e.metadata.name}`),
    ),
    threshold: 0.5,
    ...(order && { order }),
  };
  return new PlanService(graphs, {
    inferenceFor: async () => inference,
    inferenceOf: async () => inference,
  });
}

describe('PlanService.plan accepting cycles', () => {
  // a (m1) and b (m2) depend on each other as the catalog declares them.
  const declared = [
    machineEntity('m1'),
    machineEntity('m2'),
    machineEntity('m3'),
    componentEntity('a', [m('m1'), c('b')]),
    componentEntity('b', [m('m2'), c('a')]),
    componentEntity('top', [m('m3'), c('a')]),
  ];

  it('names the cycle, the edge a run would drop and how to ask for it; accepting it, drops that edge', async () => {
    const plans = planner(declared, []);
    const refused = await plans.plan(c('top'));
    expect(refused.plan).toBeUndefined();
    expect(refused.planError).toBe(
      `Dependency cycle between services: ${c('a')} -> ${c('b')} -> ${c('a')}: no boot order satisfies it; remove one of these dependsOn. ` +
        `A run can go ahead all the same, booting ${c('b')} without waiting for ${c('a')}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`,
    );
    expect(refused.cycle!.wouldDrop.map(e => [e.from, e.waitsFor])).toEqual([
      [c('b'), c('a')],
    ]);

    const accepted = await plans.plan(c('top'), undefined, {
      acceptCycles: true,
    });
    expect(accepted.planError).toBeUndefined();
    expect(accepted.plan!.waves).toEqual([[m('m2')], [m('m1')], [m('m3')]]);
    // The plan a run keeps holds no more than a plan without a cycle does.
    expect(accepted.plan).not.toHaveProperty('droppedForCycles');
    expect(accepted.droppedForCycles!.map(e => e.message)).toEqual([
      `Booted ${c('b')} without waiting for ${c('a')}: dependency cycle between services: ${c('a')} -> ${c('b')} -> ${c('a')}; ` +
        `none of its dependencies crosses systems, and ${c('b')} -> ${c('a')} is the last by ref`,
    ]);
  });

  it('drops a learned edge closing a cycle first, as without acceptCycles: no declared edge goes', async () => {
    // Declared a -> b only; learned b -> a closes the cycle.
    const entities = declared.map(e =>
      e.metadata.name === 'b' ? componentEntity('b', [m('m2')]) : e,
    );
    const plans = planner(entities, [
      { service: c('b'), dependsOn: c('a'), score: 0.9 },
    ]);
    const accepted = await plans.plan(c('top'), undefined, {
      acceptCycles: true,
    });
    expect(accepted.droppedForCycles).toBeUndefined();
    expect(accepted.plan!.waves).toEqual([[m('m2')], [m('m1')], [m('m3')]]);
    expect(accepted.plan!.analysis!.warnings).toEqual([
      expect.stringMatching(
        /^Learned dependency component:default\/b -> component:default\/a \(score 0\.90\) not followed: it closes/,
      ),
    ]);
  });

  it('with a learned edge on a cycle of declared ones as well, drops the learned one, then breaks the declared cycle', async () => {
    // a <-> b declared; top -> a declared and the learned a -> top closes a second cycle.
    const plans = planner(declared, [
      { service: c('a'), dependsOn: c('top'), score: 0.9 },
    ]);
    const accepted = await plans.plan(c('top'), undefined, {
      acceptCycles: true,
    });
    expect(accepted.plan!.inferred).toEqual([]);
    expect(accepted.droppedForCycles!.map(e => [e.from, e.waitsFor])).toEqual([
      [c('b'), c('a')],
    ]);
  });

  // The DR walkthrough: web dependsOn database and files, both dependsOn dns, and dns wrongly
  // dependsOn web: two cycles, one wrong edge.
  const walkthrough = [
    ...['infra-01', 'data-01', 'files-01', 'web-01'].map(name =>
      machineEntity(name),
    ),
    componentEntity('dns', [m('infra-01'), c('web')]),
    componentEntity('database', [m('data-01'), c('dns')]),
    componentEntity('files', [m('files-01'), c('dns')]),
    componentEntity('web', [m('web-01'), c('database'), c('files')]),
  ];

  it('would drop, and drops accepting cycles, only the edge both cycles share', async () => {
    const plans = planner(walkthrough, []);
    const refused = await plans.plan(c('web'));
    expect(refused.cycle!.wouldDrop.map(e => [e.from, e.waitsFor])).toEqual([
      [c('dns'), c('web')],
    ]);
    expect(refused.planError).toContain(
      `A run can go ahead all the same, booting ${c('dns')} without waiting for ${c('web')}: start it accepting cycles`,
    );
    const accepted = await plans.plan(c('web'), undefined, {
      acceptCycles: true,
    });
    expect(accepted.droppedForCycles!.map(e => e.message)).toEqual([
      `Booted ${c('dns')} without waiting for ${c('web')}: dependency cycle between services: ` +
        `${c('database')} -> ${c('dns')} -> ${c('web')} -> ${c('database')}; it is on more of the cycles between ` +
        `${c('database')}, ${c('dns')}, ${c('files')}, ${c('web')} than any other dependency`,
    ]);
    expect(accepted.plan!.waves).toEqual([
      [m('infra-01')],
      [m('data-01'), m('files-01')],
      [m('web-01')],
    ]);
  });

  it("of edges on as many cycles, drops the one the analysis's order contradicts", async () => {
    // a -> b -> c -> a: by ref c -> a would go; the boots show a up before b.
    const entities = [
      machineEntity('m1'),
      machineEntity('m2'),
      machineEntity('m3'),
      componentEntity('a', [m('m1'), c('b')]),
      componentEntity('b', [m('m2'), c('c')]),
      componentEntity('c', [m('m3'), c('a')]),
    ];
    const wouldDrop = async (order?: Inference['order']) =>
      (await planner(entities, [], order).plan(c('a'))).cycle!.wouldDrop;
    expect((await wouldDrop()).map(e => [e.from, e.waitsFor])).toEqual([
      [c('c'), c('a')],
    ]);
    const contradicted = await wouldDrop({
      services: [c('a'), c('c'), c('b')],
      machines: [],
    });
    expect(contradicted.map(e => [e.from, e.waitsFor])).toEqual([
      [c('a'), c('b')],
    ]);
    expect(contradicted[0].message).toMatch(
      /; the boot history contradicts it \(the analysis of earlier boots orders component:default\/a before component:default\/b\)$/,
    );
  });
});
