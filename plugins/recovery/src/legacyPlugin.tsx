import {
  createApiFactory,
  createComponentExtension,
  createPlugin,
  createRoutableExtension,
  discoveryApiRef,
  fetchApiRef,
} from '@backstage/core-plugin-api';
import { RecoveryClient, recoveryApiRef } from './api/RecoveryClient';
import { entityContentRouteRef, rootRouteRef, runRouteRef } from './routes';

// The plugin for apps on the legacy frontend system. Its extensions are the components the new
// system's plugin (./plugin) loads, each wrapped here with its error boundary and lazy loading.
// An app links to its pages through `recoveryPlugin.routes` (`root`, `run`, `entityContent`).

/**
 * The recovery plugin for the legacy frontend system. It brings its own API client, from the
 * app's `discoveryApi` and `fetchApi`: an app registers one for `recoveryApiRef` only to replace it.
 *
 * @public
 */
export const recoveryPlugin = createPlugin({
  id: 'recovery',
  apis: [
    createApiFactory({
      api: recoveryApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new RecoveryClient({ discoveryApi, fetchApi }),
    }),
  ],
  routes: {
    root: rootRouteRef,
    run: runRouteRef,
    entityContent: entityContentRouteRef,
  },
});

/**
 * "Recovery readiness" card, for the overview pages of Components, Systems and non-machine
 * Resources: in an `EntitySwitch.Case if={isRecoveryAvailable}`, only where the catalog ties them
 * to machines.
 *
 * @public
 */
export const EntityRecoveryCard = recoveryPlugin.provide(
  createComponentExtension({
    name: 'EntityRecoveryCard',
    component: {
      lazy: () =>
        import('./components/EntityRecoveryCard').then(
          m => m.EntityRecoveryCard,
        ),
    },
  }),
);

/**
 * "Recovery" tab content, on the same pages: the card and the full run history.
 *
 * @public
 */
export const EntityRecoveryContent = recoveryPlugin.provide(
  createRoutableExtension({
    name: 'EntityRecoveryContent',
    component: () =>
      import('./components/EntityRecoveryContent').then(
        m => m.EntityRecoveryContent,
      ),
    mountPoint: entityContentRouteRef,
  }),
);

/**
 * The `/recovery` overview page, with its own header, and each run's page under it
 * (`/recovery/runs/:runId`).
 *
 * @public
 */
export const RecoveryOverviewPage = recoveryPlugin.provide(
  createRoutableExtension({
    name: 'RecoveryOverviewPage',
    component: () => import('./components/Router').then(m => m.Router),
    mountPoint: rootRouteRef,
  }),
);
