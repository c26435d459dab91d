/**
 * Backstage Recovery frontend: entity card, entity tab, overview and run pages, and API client.
 *
 * `recoveryPlugin` is the plugin for apps on the legacy frontend system, with the card, the tab's
 * content and the overview page (a run's page under it) as its extensions; it provides the API
 * client itself; `isRecoveryAvailable` tells an entity page whether to show the card and the tab.
 * The plugin for the new frontend system is the default export of
 * `@backstage-recovery/plugin-recovery/alpha`.
 *
 * @packageDocumentation
 */
export { RecoveryClient, recoveryApiRef } from './api/RecoveryClient';
export { type EntityRecoveryCardProps } from './components/EntityRecoveryCard';
export { isRecoveryAvailable } from '@backstage-recovery/plugin-recovery-common';
export {
  recoveryPlugin,
  EntityRecoveryCard,
  EntityRecoveryContent,
  RecoveryOverviewPage,
} from './legacyPlugin';
