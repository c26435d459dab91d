import { createPermission } from '@backstage/plugin-permission-common';

/** Start a recovery run (test or failover). */
export const recoveryRunCreatePermission = createPermission({
  name: 'recovery.run.create',
  attributes: { action: 'create' },
});

/**
 * Start a failover besides: its machines boot with production's addresses on a network that is
 * not isolated, so it is granted apart from test recoveries.
 */
export const recoveryRunFailoverPermission = createPermission({
  name: 'recovery.run.failover',
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
  recoveryRunFailoverPermission,
  recoveryCaptureCreatePermission,
  recoveryEventsCreatePermission,
];
