import { createApp } from '@backstage/frontend-defaults';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import notificationsPlugin from '@backstage/plugin-notifications/alpha';
import recoveryPlugin from '@backstage-recovery/plugin-recovery';
import { navModule } from './modules/nav';

/**
 * The demo app, on the new frontend system. The app plugin's default sign-in page
 * (`sign-in-page:app`) offers the guest provider, which the backend enables.
 */
export default createApp({
  // Notifications: where owners read the readiness notices the recovery backend sends.
  features: [catalogPlugin, recoveryPlugin, notificationsPlugin, navModule],
});
