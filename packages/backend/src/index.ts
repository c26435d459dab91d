import { createBackend } from '@backstage/backend-defaults';

const backend = createBackend();

backend.add(import('@backstage/plugin-app-backend'));

backend.add(import('@backstage/plugin-auth-backend'));
backend.add(import('@backstage/plugin-auth-backend-module-guest-provider'));

backend.add(import('@backstage/plugin-catalog-backend'));

backend.add(import('@backstage/plugin-permission-backend'));
backend.add(
  import('@backstage/plugin-permission-backend-module-allow-all-policy'),
);

// Where the recovery plugin tells owners that an entity stopped being recoverable.
backend.add(import('@backstage/plugin-notifications-backend'));
// Pushes to the portal, over a websocket, each change of a run or a capture (and new notices), so
// that it fetches them at once instead of polling every second.
backend.add(import('@backstage/plugin-signals-backend'));

backend.add(import('@backstage-recovery/plugin-recovery-backend'));
backend.add(
  import('@backstage-recovery/plugin-recovery-backend-module-docker'),
);
backend.add(
  import('@backstage-recovery/plugin-recovery-backend-module-scheduler'),
);

// A backend that fails to start (a plugin's config error, say) exits, so that whatever supervises
// it sees the failure, rather than living on never ready.
backend.start().catch(error => {
  console.error(error);
  process.exit(1);
});
