import { mockCredentials } from '@backstage/backend-test-utils';
import { listAllEntities } from './catalogPages';

describe('listAllEntities', () => {
  it('collects every page the catalog streams, asking for no count, with the given credentials', async () => {
    const credentials = mockCredentials.service('plugin:recovery');
    const asked: unknown[] = [];
    const catalog = {
      async *streamEntities(request: object, options: object) {
        asked.push(request, options);
        yield [{ name: 'a' }, { name: 'b' }];
        yield [];
        yield [{ name: 'c' }];
      },
    };
    const request = { filter: { kind: 'Resource' }, pageSize: 2 };

    expect(await listAllEntities(catalog, request, credentials)).toEqual([
      { name: 'a' },
      { name: 'b' },
      { name: 'c' },
    ]);
    expect(asked).toEqual([
      { ...request, totalItems: 'exclude' },
      { credentials },
    ]);
  });
});
