// In a file of its own: usePermission caches decisions, errors too, per module (see renderWithApis).
import { screen } from '@testing-library/react';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

describe('EntityRecoveryCard when permissions cannot be checked', () => {
  it('says the check failed, with why, rather than that the user is not allowed, and keeps the buttons off', async () => {
    const api = fakeRecoveryApi();
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
      api,
      permissionError: new Error('permission backend unreachable'),
    });
    await screen.findByText('Ready');
    expect(
      await screen.findByText(
        /Could not check whether you may run test recoveries/,
      ),
    ).toHaveTextContent('permission backend unreachable');
    expect(
      await screen.findByText(
        /Could not check whether you may capture machines/,
      ),
    ).toHaveTextContent('permission backend unreachable');
    expect(screen.queryByText(/You are not allowed/)).toBeNull();

    expect(
      screen.getByRole('button', { name: /run test recovery/i }),
    ).toBeDisabled();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeDisabled();
  });
});
