import { createRouteRef, createSubRouteRef } from '@backstage/core-plugin-api';

// The plugin's routes, one set for both frontend systems: route refs of core-plugin-api serve the
// new system as they are (as the catalog's do), so a component links to a run the same way in
// either app.

/** The overview page, `/recovery` by default. */
export const rootRouteRef = createRouteRef({ id: 'recovery' });

/** One run's page, under the overview's: `/recovery/runs/:runId`. */
export const runRouteRef = createSubRouteRef({
  id: 'recovery:run',
  parent: rootRouteRef,
  path: '/runs/:runId',
});

/** Where a legacy app mounts the Recovery tab (its `EntityLayout.Route`). */
export const entityContentRouteRef = createRouteRef({
  id: 'recovery:entity-content',
});
