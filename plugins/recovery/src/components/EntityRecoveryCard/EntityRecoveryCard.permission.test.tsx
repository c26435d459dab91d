// In a file of its own: usePermission caches decisions per module (see renderWithApis).
import { screen } from '@testing-library/react';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

describe('EntityRecoveryCard without permission', () => {
  it('disables Run test recovery and Capture now where refused on its entity, and says which permission each lacks', async () => {
    const api = fakeRecoveryApi();
    // Refused on this entity only: the card must ask about it, not in general.
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
      api,
      allow: (_permission, resourceRef) =>
        resourceRef !== 'component:default/web',
    });
    await screen.findByText('Ready');
    // Shown only once the permission decisions have come back as denials.
    expect(
      await screen.findByText(/You are not allowed to run test recoveries/),
    ).toHaveTextContent('recovery.run.create');
    expect(
      await screen.findByText(/You are not allowed to capture machines/),
    ).toHaveTextContent('recovery.capture.create');

    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeDisabled();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeDisabled();
    // A recovery point is a run's option: not offered to one who may not start runs.
    expect(
      screen.queryByRole('button', { name: /earlier recovery point/i }),
    ).toBeNull();
  });
});
