import { mockServices } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { CatalogGraphLoader } from './catalogGraph';
import { componentEntity, machineEntity } from '../testing/entities';

const machine = machineEntity;
const component = componentEntity;

function loader(entities: Entity[]) {
  return new CatalogGraphLoader(catalogServiceMock({ entities }), mockServices.auth(), {
    rpoSeconds: 86400,
    rtoSeconds: 3600,
  });
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
      new Map([['component:default/app', ['component:default/gone', 'component:default/db']]]),
    );
    expect(graph.problems).toEqual([]);
    expect([...graph.services.keys()].sort()).toEqual(['component:default/app', 'component:default/db']);
  });

  it('still reports a declared dependsOn on a missing entity, even if also learned', async () => {
    const graphs = loader([machine('m1'), component('app', ['resource:default/m1', 'component:default/gone'])]);
    const graph = await graphs.load(
      'component:default/app',
      new Map([['component:default/app', ['component:default/gone']]]),
    );
    expect(graph.problems).toEqual([
      {
        entityRef: 'component:default/app',
        message: 'component:default/gone is referenced (dependsOn or hasPart) but not found in the catalog',
      },
    ]);
  });
});
