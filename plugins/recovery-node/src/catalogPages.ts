import type { BackstageCredentials } from '@backstage/backend-plugin-api';

/**
 * What {@link listAllEntities} needs of the catalog: the catalog service's `streamEntities`, which
 * follows the catalog's cursor a page at a time. Structural, so that this package needs no
 * catalog dependency: the catalog service (`catalogServiceRef`) is one.
 *
 * @public
 */
export interface EntityPageStream<TRequest, TEntity> {
  streamEntities(
    request: TRequest & { totalItems?: 'include' | 'exclude' },
    options: { credentials: BackstageCredentials },
  ): AsyncIterable<TEntity[]>;
}

/**
 * Every entity that matches `request` (its filter, fields, page size), read a page at a time: a
 * catalog may hold tens of thousands of entities, which one unpaged list makes slow and heavy.
 * Without a count (`totalItems: 'exclude'`): the catalog would count every match for it, and no
 * caller shows it.
 *
 * @public
 */
export async function listAllEntities<TRequest extends object, TEntity>(
  // The request's type is the caller's (NoInfer): the catalog's own takes every request.
  catalog: EntityPageStream<NoInfer<TRequest>, TEntity>,
  request: TRequest,
  credentials: BackstageCredentials,
): Promise<TEntity[]> {
  const items: TEntity[] = [];
  for await (const page of catalog.streamEntities(
    { ...request, totalItems: 'exclude' as const },
    { credentials },
  ))
    items.push(...page);
  return items;
}
