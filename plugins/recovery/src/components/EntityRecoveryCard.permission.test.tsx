// In a file of its own: usePermission caches decisions per module (see renderWithApis).
import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi } from '../testUtils/fixtures';
import { renderWithApis } from '../testUtils/render';

describe('EntityRecoveryCard without permission', () => {
  it('disables Run test recovery and Capture now, and says which permission is missing', async () => {
    const api = fakeRecoveryApi();
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
      api,
      allow: false,
    });
    await screen.findByText('Ready');
    // Shown only once the permission decision has come back as a denial.
    expect(
      await screen.findByText(/You are not allowed to run test recoveries/),
    ).toHaveTextContent('recovery.run.create');

    const run = screen.getByRole('button', { name: /run test recovery/i });
    expect(run).toBeDisabled();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeDisabled();
    await userEvent.click(run).catch(() => {});
    expect(api.startRun).not.toHaveBeenCalled();
    expect(api.captureNow).not.toHaveBeenCalled();
  });
});
