import { createApiRef } from '@backstage/frontend-plugin-api';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';

export {
  busyWithRunId,
  couldNot,
  errorMessage,
  isHostBusy,
  missingDependencies,
  RecoveryClient,
} from '@backstage-recovery/plugin-recovery-common';

/** The frontend's handle on the recovery backend. */
export const recoveryApiRef = createApiRef<RecoveryApi>().with({
  id: 'plugin.recovery.service',
  pluginId: 'recovery',
});
