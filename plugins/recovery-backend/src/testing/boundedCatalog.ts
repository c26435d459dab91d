import type {
  GetEntitiesByRefsRequest,
  GetEntitiesRequest,
  QueryEntitiesRequest,
} from '@backstage/catalog-client';
import { type Entity, stringifyEntityRef } from '@backstage/catalog-model';
import type {
  CatalogService,
  CatalogServiceRequestOptions,
} from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';

/**
 * A mock catalog that takes only requests a catalog of many entities should get: a list
 * (getEntities, queryEntities) asks for a page of at most `max` entities, a by-refs for at most
 * `max` refs. `answered`: the refs each request answered, in order (null for a ref not held), to
 * tell each entity was read once.
 */
export function boundedCatalog(
  entities: Entity[],
  max: number,
): { catalog: CatalogService; answered: Array<Array<string | null>> } {
  const catalog = catalogServiceMock({ entities });
  const answered: Array<Array<string | null>> = [];
  const keep = <T extends { items: Array<Entity | null | undefined> }>(
    answer: T,
  ): T => {
    answered.push(answer.items.map(e => (e ? stringifyEntityRef(e) : null)));
    return answer;
  };
  const paged = (what: string, limit: number | undefined) => {
    if (limit !== undefined && limit <= max) return;
    const asked =
      limit === undefined ? 'every match at once' : `${limit} entities a page`;
    throw new Error(`${what} of ${asked}: this catalog answers ${max} at most`);
  };
  const bounded: Partial<CatalogService> = {
    getEntities: async (
      request: GetEntitiesRequest | undefined,
      options: CatalogServiceRequestOptions,
    ) => {
      paged('getEntities', request?.limit);
      return keep(await catalog.getEntities(request, options));
    },
    queryEntities: async (
      request: QueryEntitiesRequest | undefined,
      options: CatalogServiceRequestOptions,
    ) => {
      paged('queryEntities', request?.limit);
      return keep(await catalog.queryEntities(request, options));
    },
    getEntitiesByRefs: async (
      request: GetEntitiesByRefsRequest,
      options: CatalogServiceRequestOptions,
    ) => {
      if (request.entityRefs.length > max)
        throw new Error(
          `getEntitiesByRefs of ${request.entityRefs.length} refs: this catalog takes ${max} at most`,
        );
      return keep(await catalog.getEntitiesByRefs(request, options));
    },
  };
  // The mock keeps private fields: its own methods must run on it.
  return {
    catalog: new Proxy(catalog, {
      get: (target, key) => {
        if (key in bounded) return bounded[key as keyof CatalogService];
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as CatalogService,
    answered,
  };
}
