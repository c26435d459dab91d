import { createApp } from '@backstage/frontend-defaults';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import notificationsPlugin from '@backstage/plugin-notifications/alpha';
import signalsPlugin from '@backstage/plugin-signals/alpha';
import recoveryPlugin from '@backstage-recovery/plugin-recovery/alpha';
import { navModule } from './modules/nav';

/**
 * The demo app, on the new frontend system. The app plugin's default sign-in page
 * (`sign-in-page:app`) offers the guest provider, which the backend enables.
 */
export default createApp({
  // Notifications: where owners read the readiness notices the recovery backend sends. Signals:
  // runs, captures and notices pushed live over a websocket (the portal polls without it).
  features: [
    catalogPlugin,
    recoveryPlugin,
    notificationsPlugin,
    signalsPlugin,
    navModule,
  ],
});
