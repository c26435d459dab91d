import {
  mockApis,
  renderInTestApp,
  TestApiProvider,
} from '@backstage/test-utils';
import {
  catalogApiRef,
  EntityProvider,
  entityRouteRef,
} from '@backstage/plugin-catalog-react';
import { catalogApiMock } from '@backstage/plugin-catalog-react/testUtils';
import {
  permissionApiRef,
  type PermissionApi,
} from '@backstage/plugin-permission-react';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { Entity } from '@backstage/catalog-model';
import type { CatalogApi } from '@backstage/plugin-catalog-react';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { recoveryApiRef } from '../api/RecoveryClient';
import { rootRouteRef } from '../routes';
import { webEntity } from './fixtures';

/**
 * Renders `element` in a test app with a fake RecoveryApi, a permission API, a catalog holding
 * `catalog` (what the caller may see; default: nothing) and, when `entity` is given (default:
 * the web component), an entity context. Entity pages are mounted at `/catalog/...` and the
 * plugin's pages at `/recovery`, so links to an entity or a run resolve.
 *
 * `usePermission` caches decisions for the whole module (SWR): a file's tests must all use
 * the same `allow`; test denial in a file of its own.
 */
export function renderWithApis(
  element: JSX.Element,
  options: {
    api: Partial<RecoveryApi>;
    /** Every check's answer, or one per permission and entity asked about. */
    allow?: boolean | ((permission: string, resourceRef?: string) => boolean);
    /** The permission API fails every check with this error (overrides `allow`). */
    permissionError?: Error;
    /** The permission API itself (overrides `allow` and `permissionError`). */
    permissionApi?: PermissionApi;
    catalog?: Entity[];
    /** The catalog API itself (overrides `catalog`). */
    catalogApi?: CatalogApi;
    entity?: Entity | null;
    /** The app's address history; `['/']` unless told. */
    routeEntries?: string[];
  },
) {
  const { permissionError } = options;
  const permissionApi: PermissionApi = options.permissionApi
    ? options.permissionApi
    : permissionError
      ? {
          authorize: async () => {
            throw permissionError;
          },
        }
      : mockApis.permission({
          authorize: request => {
            const { allow = true } = options;
            const allowed =
              typeof allow === 'function'
                ? allow(request.permission.name, request.resourceRef)
                : allow;
            return allowed ? AuthorizeResult.ALLOW : AuthorizeResult.DENY;
          },
        });
  const entity = options.entity === undefined ? webEntity : options.entity;
  return renderInTestApp(
    <TestApiProvider
      apis={[
        [recoveryApiRef, options.api],
        [permissionApiRef, permissionApi],
        [
          catalogApiRef,
          options.catalogApi ??
            catalogApiMock({ entities: options.catalog ?? [] }),
        ],
      ]}
    >
      {entity ? (
        <EntityProvider entity={entity}>{element}</EntityProvider>
      ) : (
        element
      )}
    </TestApiProvider>,
    {
      routeEntries: options.routeEntries,
      mountedRoutes: {
        '/catalog/:namespace/:kind/:name': entityRouteRef,
        '/recovery': rootRouteRef,
      },
    },
  );
}
