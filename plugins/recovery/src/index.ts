/**
 * Backstage Recovery frontend: entity card, entity tab, overview page and API client.
 *
 * The default export is the plugin for the new frontend system; the components are
 * exported too, for apps on the legacy system.
 *
 * @packageDocumentation
 */
import { recoveryPlugin } from './plugin';

export default recoveryPlugin;
export { recoveryPlugin, rootRouteRef as recoveryRootRouteRef } from './plugin';
export { RecoveryClient, recoveryApiRef } from './api/RecoveryClient';
export {
  EntityRecoveryCard,
  type EntityRecoveryCardProps,
} from './components/EntityRecoveryCard';
export {
  EntityRecoveryContent,
  RecoveryRunHistory,
} from './components/EntityRecoveryContent';
export {
  RecoveryOverviewPage,
  RecoveryOverviewContent,
} from './components/RecoveryOverviewPage';
export { RunDetails } from './components/RunDetails';
