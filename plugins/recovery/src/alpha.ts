/**
 * Backstage Recovery for the new frontend system: the default export is the plugin, with its API
 * client, entity card, entity tab and its pages at `/recovery` (the overview, and each run's at
 * `/recovery/runs/:runId`). Apps on the legacy system use the package's main entry.
 *
 * @packageDocumentation
 */
export { recoveryPlugin as default } from './plugin';
