import { createPermission } from '@backstage/plugin-permission-common';

/** Start a recovery run (test or failover). */
export const recoveryRunCreatePermission = createPermission({
  name: 'recovery.run.create',
  attributes: { action: 'create' },
});

/** Take a capture of primary machines on demand. */
export const recoveryCaptureCreatePermission = createPermission({
  name: 'recovery.capture.create',
  attributes: { action: 'create' },
});

/** Push initialization events into the event store. */
export const recoveryEventsCreatePermission = createPermission({
  name: 'recovery.events.create',
  attributes: { action: 'create' },
});

export const recoveryPermissions = [
  recoveryRunCreatePermission,
  recoveryCaptureCreatePermission,
  recoveryEventsCreatePermission,
];
