// In a file of its own: usePermission caches decisions per module (see renderWithApis).
import { screen } from '@testing-library/react';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

describe('EntityRecoveryCard without permission, for a screen reader', () => {
  it('describes each disabled button by the sentence saying which permission it lacks', async () => {
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
      api: fakeRecoveryApi(),
      allow: false,
    });
    const runNote = await screen.findByText(
      /You are not allowed to run test recoveries/,
    );
    const captureNote = await screen.findByText(
      /You are not allowed to capture machines/,
    );
    const run = screen.getByRole('button', { name: /run test recovery/i });
    expect(run).toBeDisabled();
    expect(run).toHaveAttribute('aria-describedby', runNote.id);
    expect(run).toHaveAccessibleDescription(
      'You are not allowed to run test recoveries (recovery.run.create).',
    );
    const capture = screen.getByRole('button', { name: /capture now/i });
    expect(capture).toBeDisabled();
    expect(capture).toHaveAttribute('aria-describedby', captureNote.id);
    expect(capture).toHaveAccessibleDescription(
      'You are not allowed to capture machines (recovery.capture.create).',
    );
  });
});
