import {
  ApiBlueprint,
  createFrontendPlugin,
  discoveryApiRef,
  fetchApiRef,
  PageBlueprint,
} from '@backstage/frontend-plugin-api';
import {
  EntityCardBlueprint,
  EntityContentBlueprint,
} from '@backstage/plugin-catalog-react/alpha';
import { isRecoveryAvailable } from '@backstage-recovery/plugin-recovery-common';
import RestoreIcon from '@material-ui/icons/SettingsBackupRestore';
import { RecoveryClient, recoveryApiRef } from './api/RecoveryClient';
import { rootRouteRef, runRouteRef } from './routes';

/** The API client, from discovery and the app's authenticated fetch. */
export const recoveryApi = ApiBlueprint.make({
  params: defineParams =>
    defineParams({
      api: recoveryApiRef,
      deps: { discoveryApi: discoveryApiRef, fetchApi: fetchApiRef },
      factory: ({ discoveryApi, fetchApi }) =>
        new RecoveryClient({ discoveryApi, fetchApi }),
    }),
});

/**
 * "Recovery readiness" card on the overview pages of what the backend can plan
 * (isRecoveryAvailable): Components, Systems and non-machine Resources the catalog ties to machines.
 */
export const recoveryEntityCard = EntityCardBlueprint.make({
  name: 'readiness',
  params: {
    filter: isRecoveryAvailable,
    loader: () =>
      import('./components/EntityRecoveryCard').then(m => (
        <m.EntityRecoveryCard />
      )),
  },
});

/** "Recovery" tab on the same pages: readiness and full run history. */
export const recoveryEntityContent = EntityContentBlueprint.make({
  params: {
    path: '/recovery',
    title: 'Recovery',
    group: 'operation',
    filter: isRecoveryAvailable,
    loader: () =>
      import('./components/EntityRecoveryContent').then(m => (
        <m.EntityRecoveryContent />
      )),
  },
});

/**
 * The `/recovery` overview page, and a run's page under it (`/recovery/runs/:runId`); with a
 * title and icon it also gets a nav item.
 */
export const recoveryPage = PageBlueprint.make({
  params: {
    path: '/recovery',
    title: 'Recovery',
    icon: <RestoreIcon fontSize="inherit" />,
    routeRef: rootRouteRef,
    loader: () =>
      import('./components/Router').then(m => <m.Router noHeader />),
  },
});

/**
 * The recovery plugin for the new frontend system.
 *
 * @public
 */
export const recoveryPlugin = createFrontendPlugin({
  pluginId: 'recovery',
  title: 'Recovery',
  icon: <RestoreIcon fontSize="inherit" />,
  routes: { root: rootRouteRef, run: runRouteRef },
  extensions: [
    recoveryApi,
    recoveryEntityCard,
    recoveryEntityContent,
    recoveryPage,
  ],
});
