import type { PermissionsService } from '@backstage/backend-plugin-api';
import { mockCredentials } from '@backstage/backend-test-utils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import {
  recoveryCaptureCreatePermission,
  recoveryEventsCreatePermission,
} from '@backstage-recovery/plugin-recovery-common';
import {
  isOwnScheduler,
  principalName,
  RecoveryAuthorizer,
} from './RecoveryAuthorizer';

const WEB = 'component:default/web';
const DB = 'component:default/db';
const ALICE = mockCredentials.user('user:default/alice');

/** A policy allowing what `allowed` lists (`permission@ref`; `permission@` for one on no entity), recording each call. */
function authorizerAllowing(allowed: string[]) {
  const calls: string[][] = [];
  const permissions = {
    authorize: async (
      requests: Array<{ permission: { name: string }; resourceRef?: string }>,
    ) => {
      const asked = requests.map(
        r => `${r.permission.name}@${r.resourceRef ?? ''}`,
      );
      calls.push(asked);
      return asked.map(a => ({
        result: allowed.includes(a)
          ? AuthorizeResult.ALLOW
          : AuthorizeResult.DENY,
      }));
    },
  } as unknown as PermissionsService;
  return { authorizer: new RecoveryAuthorizer(permissions), calls };
}

describe('RecoveryAuthorizer', () => {
  it('refuses a permission on no entity naming it', async () => {
    const { authorizer } = authorizerAllowing([]);
    await expect(
      authorizer.authorize(ALICE, recoveryEventsCreatePermission),
    ).rejects.toMatchObject({
      name: 'NotAllowedError',
      message: 'Missing permission recovery.events.create',
    });
    await expect(
      authorizerAllowing(['recovery.events.create@']).authorizer.authorize(
        ALICE,
        recoveryEventsCreatePermission,
      ),
    ).resolves.toBeUndefined();
  });

  it('filters entities by a permission in one call, asking nothing of none; refuses one naming permission and entity', async () => {
    const { authorizer, calls } = authorizerAllowing([
      `recovery.capture.create@${DB}`,
    ]);
    expect(
      await authorizer.permittedOn(ALICE, recoveryCaptureCreatePermission, [
        WEB,
        DB,
      ]),
    ).toEqual([DB]);
    expect(
      await authorizer.permittedOn(ALICE, recoveryCaptureCreatePermission, []),
    ).toEqual([]);
    expect(calls).toEqual([
      [`recovery.capture.create@${WEB}`, `recovery.capture.create@${DB}`],
    ]);
    await expect(
      authorizer.authorizeOn(ALICE, recoveryCaptureCreatePermission, WEB),
    ).rejects.toMatchObject({
      name: 'NotAllowedError',
      message: `Missing permission recovery.capture.create on ${WEB}`,
    });
    await expect(
      authorizer.authorizeOn(ALICE, recoveryCaptureCreatePermission, DB),
    ).resolves.toBeUndefined();
  });

  it("tells the plugin's own scheduler from any other caller, and names who asked", () => {
    expect(
      isOwnScheduler(mockCredentials.service('plugin:recovery').principal),
    ).toBe(true);
    expect(isOwnScheduler(ALICE.principal)).toBe(false);
    expect(
      isOwnScheduler(mockCredentials.service('plugin:catalog').principal),
    ).toBe(false);
    expect(
      isOwnScheduler({
        type: 'user',
        userEntityRef: 'user:default/alice',
        subject: 'plugin:recovery',
      }),
    ).toBe(false);
    expect(principalName(ALICE.principal)).toBe('user:default/alice');
    expect(
      principalName(mockCredentials.service('plugin:catalog').principal),
    ).toBe('plugin:catalog');
    expect(principalName(mockCredentials.none().principal)).toBeUndefined();
  });
});
