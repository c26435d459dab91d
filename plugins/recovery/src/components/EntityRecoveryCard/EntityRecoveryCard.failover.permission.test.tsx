// In a file of its own: usePermission caches decisions per module (see renderWithApis).
import { screen, waitFor } from '@testing-library/react';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

describe('EntityRecoveryCard without the failover permission', () => {
  it('offers no failover where recovery.run.failover is refused on its entity, and still offers a test recovery', async () => {
    const api = fakeRecoveryApi();
    const asked: Array<[string, string | undefined]> = [];
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
      api,
      // Refused on this entity only: the card must ask about it, not in general.
      allow: (permission, resourceRef) => {
        asked.push([permission, resourceRef]);
        return !(
          permission === 'recovery.run.failover' &&
          resourceRef === 'component:default/web'
        );
      },
    });
    const run = await screen.findByRole('button', {
      name: 'Run test recovery',
    });
    await waitFor(() => expect(run).toBeEnabled());
    await waitFor(() =>
      expect(asked).toContainEqual([
        'recovery.run.failover',
        'component:default/web',
      ]),
    );
    expect(screen.queryByRole('button', { name: /fail over/i })).toBeNull();
    // A denial is no failure of the check: nothing is said of a failover to one who may not.
    expect(screen.queryByText(/fail over/i)).toBeNull();
    expect(api.startRun).not.toHaveBeenCalled();
  });
});
