import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi, WEB } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

const WARNING =
  'restarted 12 times by its restart policy since its previous capture (cap-1 of 2026-12-06T00:00:00.000Z), running when captured: a crash loop, whose capture may hold the machine between two crashes';

describe('EntityRecoveryCard, a capture of a machine restarted over and over since its previous one', () => {
  it('says after "Capture now" which machine restarted how many times since, as a warning', async () => {
    const api = fakeRecoveryApi();
    const answer = api.captureNow.getMockImplementation()!;
    api.captureNow.mockImplementation(async (entityRef, machineRef) => {
      const [capture] = await answer(entityRef, machineRef);
      return machineRef === WEB
        ? [{ ...capture, restartWarning: WARNING }]
        : [capture];
    });
    renderCard(api);
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    const said = screen.getByText(`web-1 was ${WARNING}.`);
    expect(said.closest('[role="alert"]')).toHaveClass(
      'MuiAlert-standardWarning',
    );
    expect(screen.queryByText(/^db was restarted/)).toBeNull();
  });
});
