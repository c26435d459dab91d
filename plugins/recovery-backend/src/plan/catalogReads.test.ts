import { mockCredentials } from '@backstage/backend-test-utils';
import { stringifyEntityRef } from '@backstage/catalog-model';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import { boundedCatalog } from '../testing/boundedCatalog';
import { componentEntity, machineEntity } from '../testing/entities';
import { entitiesByRefs, listEntities } from './catalogReads';

const machines = ['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7'].map(machineEntity);
const services = ['s1', 's2', 's3'].map(name => componentEntity(name, []));
const options = { credentials: mockCredentials.service() };
const m = (name: string) => `resource:default/${name}`;

describe('catalog reads', () => {
  it('list every entity that matches, each once, a page at a time to the last, with the fields asked on every page', async () => {
    const { catalog, answered } = boundedCatalog([...services, ...machines], 3);
    const listed = await listEntities(
      catalog,
      {
        filter: { kind: 'Resource', 'spec.type': 'machine' },
        fields: ['kind', 'metadata.namespace', 'metadata.name'],
      },
      options,
      3,
    );
    expect(listed.map(e => stringifyEntityRef(e)).sort()).toEqual(
      machines.map(e => stringifyEntityRef(e)),
    );
    expect(answered.map(page => page.length)).toEqual([3, 3, 1]);
    for (const entity of listed)
      expect(Object.keys(entity).sort()).toEqual(['kind', 'metadata']);

    answered.length = 0;
    expect(
      await listEntities(catalog, { filter: { kind: 'Group' } }, options, 3),
    ).toEqual([]);
    expect(answered).toEqual([[]]);
  });

  it('read refs a batch at a time, aligned with the refs, undefined for those the catalog does not hold; no request for none', async () => {
    const { catalog, answered } = boundedCatalog([...services, ...machines], 3);
    const refs = [
      m('m1'),
      m('gone'),
      m('m2'),
      m('m3'),
      'component:default/gone',
      'component:default/s1',
      m('m4'),
    ];
    const items = await entitiesByRefs(
      catalog,
      { entityRefs: refs, fields: ['kind', 'metadata.name'] },
      options,
      3,
    );
    expect(items).toEqual([
      { kind: 'Resource', metadata: { name: 'm1' } },
      undefined,
      { kind: 'Resource', metadata: { name: 'm2' } },
      { kind: 'Resource', metadata: { name: 'm3' } },
      undefined,
      { kind: 'Component', metadata: { name: 's1' } },
      { kind: 'Resource', metadata: { name: 'm4' } },
    ]);
    expect(answered).toEqual([
      [m('m1'), null, m('m2')],
      [m('m3'), null, 'component:default/s1'],
      [m('m4')],
    ]);

    answered.length = 0;
    expect(await entitiesByRefs(catalog, { entityRefs: [] }, options)).toEqual(
      [],
    );
    expect(answered).toEqual([]);
  });

  it('take a ref the catalog answers null for (as over HTTP) as one it does not hold', async () => {
    const overHttp = {
      getEntitiesByRefs: async (request: { entityRefs: string[] }) => ({
        items: request.entityRefs.map(() => null),
      }),
    } as unknown as CatalogService;
    expect(
      await entitiesByRefs(overHttp, { entityRefs: [m('gone')] }, options),
    ).toEqual([undefined]);
  });

  it('name a page or batch size that is no whole number of entities', async () => {
    const { catalog } = boundedCatalog(machines, 3);
    await expect(
      listEntities(catalog, { filter: { kind: 'Resource' } }, options, 0),
    ).rejects.toThrow(
      'Catalog reads: pageSize must be a whole number of entities, 1 or more; got 0',
    );
    await expect(
      entitiesByRefs(catalog, { entityRefs: [m('m1')] }, options, 2.5),
    ).rejects.toThrow(
      'Catalog reads: batchSize must be a whole number of entities, 1 or more; got 2.5',
    );
  });
});
