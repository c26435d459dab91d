/**
 * Backstage Recovery frontend: entity card, entity tab, overview page and API client.
 *
 * The default export is the plugin for the new frontend system (its extensions and its
 * `/recovery` route are reached through it). `recoveryPlugin` is the plugin for apps on the
 * legacy system, with the card, the tab's content and the overview page as its extensions; it
 * provides the API client itself.
 *
 * @packageDocumentation
 */
import { recoveryPlugin as newFrontendRecoveryPlugin } from './plugin';

export default newFrontendRecoveryPlugin;
export { RecoveryClient, recoveryApiRef } from './api/RecoveryClient';
export { type EntityRecoveryCardProps } from './components/EntityRecoveryCard';
export {
  recoveryPlugin,
  EntityRecoveryCard,
  EntityRecoveryContent,
  RecoveryOverviewPage,
} from './legacyPlugin';
