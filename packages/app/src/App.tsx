import { createApp } from '@backstage/frontend-defaults';
import catalogPlugin from '@backstage/plugin-catalog/alpha';
import recoveryPlugin from '@backstage-recovery/plugin-recovery';
import { navModule } from './modules/nav';

/**
 * The demo app, on the new frontend system. The app plugin's default sign-in page
 * (`sign-in-page:app`) offers the guest provider, which the backend enables.
 */
export default createApp({
  features: [catalogPlugin, recoveryPlugin, navModule],
});
