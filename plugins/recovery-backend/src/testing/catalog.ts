import type { GetEntitiesByRefsRequest } from '@backstage/catalog-client';
import type { Entity } from '@backstage/catalog-model';
import type {
  CatalogService,
  CatalogServiceRequestOptions,
} from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';

/**
 * A mock catalog that hides `hidden` refs from users (by ref lookup, as permission-filtered
 * catalogs do); services, the plugin itself among them, see every entity.
 */
export function catalogHidingFromUsers(
  entities: Entity[],
  hidden: string[],
): CatalogService {
  const catalog = catalogServiceMock({ entities });
  const getEntitiesByRefs = async (
    request: GetEntitiesByRefsRequest,
    options: CatalogServiceRequestOptions,
  ) => {
    const answer = await catalog.getEntitiesByRefs(request, options);
    if ((options.credentials.principal as { type: string }).type !== 'user')
      return answer;
    return {
      items: answer.items.map((e, i) =>
        hidden.includes(request.entityRefs[i]) ? undefined : e,
      ),
    };
  };
  // The mock keeps private fields: its own methods must run on it.
  return new Proxy(catalog, {
    get: (target, key) => {
      if (key === 'getEntitiesByRefs') return getEntitiesByRefs;
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as CatalogService;
}
