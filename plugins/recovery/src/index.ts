/**
 * Backstage Recovery frontend: entity card, entity tab, overview page and API client.
 *
 * The default export is the plugin for the new frontend system (its extensions and its
 * `/recovery` route are reached through it). The card, the tab's content, the overview page and
 * the API client are exported too, for apps on the legacy system.
 *
 * @packageDocumentation
 */
import { recoveryPlugin } from './plugin';

export default recoveryPlugin;
export { RecoveryClient, recoveryApiRef } from './api/RecoveryClient';
export {
  EntityRecoveryCard,
  type EntityRecoveryCardProps,
} from './components/EntityRecoveryCard';
export { EntityRecoveryContent } from './components/EntityRecoveryContent';
export { RecoveryOverviewPage } from './components/RecoveryOverviewPage';
