// In a file of its own: usePermission caches decisions per module (see renderWithApis).
import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { Entity } from '@backstage/catalog-model';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const dbResource: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Resource',
  metadata: { name: 'db', namespace: 'default' },
  spec: { type: 'machine', owner: 'team-b' },
};

describe('EntityRecoveryCard, a failover of a plan with machines the user may not fail over', () => {
  it('says in its confirmation which machines lack recovery.run.failover, and keeps Fail over off', async () => {
    const api = fakeRecoveryApi();
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
      api,
      // Granted on web (its owners), not on the database machine another team owns.
      allow: (permission, resourceRef) =>
        !(
          permission === 'recovery.run.failover' &&
          resourceRef === 'resource:default/db'
        ),
      catalog: [dbResource],
    });
    const action = await screen.findByRole('button', { name: 'Fail over…' });
    await waitFor(() => expect(action).toBeEnabled());
    await userEvent.click(action);
    const dialog = await screen.findByRole('dialog', {
      name: 'Fail over web?',
    });

    expect(
      await within(dialog).findByText(
        'A failover needs recovery.run.failover on each machine and service it boots, and you lack it on 1 entity: resource:db. The backend would refuse it: ask their owners, or the platform team.',
      ),
    ).toBeInTheDocument();
    await userEvent.type(
      within(dialog).getByLabelText('Type web to confirm'),
      'web',
    );
    expect(
      within(dialog).getByRole('button', { name: 'Fail over' }),
    ).toBeDisabled();
    expect(api.startRun).not.toHaveBeenCalled();
  });
});
