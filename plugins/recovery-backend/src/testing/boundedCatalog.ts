import type {
  GetEntitiesByRefsRequest,
  GetEntitiesRequest,
  QueryEntitiesRequest,
  StreamEntitiesRequest,
} from '@backstage/catalog-client';
import { type Entity, stringifyEntityRef } from '@backstage/catalog-model';
import type {
  CatalogService,
  CatalogServiceRequestOptions,
} from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';

/** streamEntities' page when none is asked (the catalog client's default). */
export const STREAM_PAGE_SIZE = 500;

/**
 * A mock catalog that takes only lists a catalog of many entities should get: a page of at most
 * `max` entities (getEntities and queryEntities with a limit, streamEntities with a pageSize),
 * never every match at once. `answered`: the refs each request or streamed page answered, in
 * order (null for a ref not held), to tell each entity was read once and how it was paged.
 */
export function boundedCatalog(
  entities: Entity[],
  max: number,
): { catalog: CatalogService; answered: Array<Array<string | null>> } {
  const catalog = catalogServiceMock({ entities });
  const answered: Array<Array<string | null>> = [];
  const keep = (items: Array<Entity | null | undefined>) => {
    answered.push(items.map(e => (e ? stringifyEntityRef(e) : null)));
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
      const answer = await catalog.getEntities(request, options);
      keep(answer.items);
      return answer;
    },
    queryEntities: async (
      request: QueryEntitiesRequest | undefined,
      options: CatalogServiceRequestOptions,
    ) => {
      paged('queryEntities', request?.limit);
      const answer = await catalog.queryEntities(request, options);
      keep(answer.items);
      return answer;
    },
    // The mock streams through its own queryEntities, not the one above: bound its page here.
    async *streamEntities(
      request: StreamEntitiesRequest | undefined,
      options: CatalogServiceRequestOptions,
    ) {
      paged('streamEntities', request?.pageSize ?? STREAM_PAGE_SIZE);
      for await (const page of catalog.streamEntities(request, options)) {
        keep(page);
        yield page;
      }
    },
    getEntitiesByRefs: async (
      request: GetEntitiesByRefsRequest,
      options: CatalogServiceRequestOptions,
    ) => {
      const answer = await catalog.getEntitiesByRefs(request, options);
      keep(answer.items);
      return answer;
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
