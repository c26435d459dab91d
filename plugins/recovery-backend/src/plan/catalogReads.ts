import type {
  EntityFilterQuery,
  GetEntitiesByRefsRequest,
} from '@backstage/catalog-client';
import type { Entity } from '@backstage/catalog-model';
import type {
  CatalogService,
  CatalogServiceRequestOptions,
} from '@backstage/plugin-catalog-node';

// Every catalog read of the plugin goes through here, a bounded number of entities a request: a
// catalog may hold tens of thousands of entities, which one unpaged list makes slow and heavy on
// both sides (Backstage's advice: queryEntities with its cursor). The catalog client splits a
// by-refs read of over 1,000 refs itself, but not every CatalogService is that client.

/** How many entities one catalog request asks for. */
export interface CatalogReadSizes {
  /** Entities a page of a list (queryEntities); 500 unless given. */
  pageSize?: number;
  /** Refs a getEntitiesByRefs request; 500 unless given. */
  batchSize?: number;
}

export const CATALOG_PAGE_SIZE = 500;
export const CATALOG_BATCH_SIZE = 500;

/**
 * Every entity that matches `filter`, a page at a time, following the catalog's cursor to the
 * last page: each entity once (the cursor pages by entity, not by offset).
 */
export async function listEntities(
  catalog: Pick<CatalogService, 'queryEntities'>,
  request: { filter: EntityFilterQuery; fields?: string[] },
  options: CatalogServiceRequestOptions,
  pageSize: number = CATALOG_PAGE_SIZE,
): Promise<Entity[]> {
  const limit = checkSize('pageSize', pageSize);
  const fields = request.fields;
  // No count: nothing here shows it, and the catalog would count every match for it.
  let page = await catalog.queryEntities(
    { filter: request.filter, fields, limit, totalItems: 'exclude' },
    options,
  );
  const items = [...page.items];
  // An empty page ends it too: a cursor that moves nothing on would loop forever.
  while (page.pageInfo.nextCursor && page.items.length > 0) {
    page = await catalog.queryEntities(
      { cursor: page.pageInfo.nextCursor, fields, limit },
      options,
    );
    items.push(...page.items);
  }
  return items;
}

/**
 * The entities of `request.entityRefs`, `batchSize` refs a request: aligned with the refs, as
 * getEntitiesByRefs answers, undefined for one the catalog does not hold (or the caller may not
 * see). No request for no refs.
 */
export async function entitiesByRefs(
  catalog: Pick<CatalogService, 'getEntitiesByRefs'>,
  request: GetEntitiesByRefsRequest,
  options: CatalogServiceRequestOptions,
  batchSize: number = CATALOG_BATCH_SIZE,
): Promise<Array<Entity | undefined>> {
  const size = checkSize('batchSize', batchSize);
  const items: Array<Entity | undefined> = [];
  for (let start = 0; start < request.entityRefs.length; start += size) {
    const { items: batch } = await catalog.getEntitiesByRefs(
      { ...request, entityRefs: request.entityRefs.slice(start, start + size) },
      options,
    );
    // Over HTTP a ref the catalog does not hold comes back null.
    items.push(...batch.map(entity => entity ?? undefined));
  }
  return items;
}

function checkSize(name: keyof CatalogReadSizes, size: number): number {
  if (!Number.isInteger(size) || size < 1)
    throw new TypeError(
      `Catalog reads: ${name} must be a whole number of entities, 1 or more; got ${size}`,
    );
  return size;
}
