import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  DB,
  fakeRecoveryApi,
  makeReadiness,
  WEB,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

const WARNING =
  'pause 3m 10s of the 5m limit (recovery.docker.maxCapturePause): the volumes (9.1 GiB) are copied while it is paused';

describe('EntityRecoveryCard, a capture whose pause neared its limit', () => {
  it('says after "Capture now" which capture paused production close to its limit, and why', async () => {
    const api = fakeRecoveryApi();
    const answer = api.captureNow.getMockImplementation()!;
    api.captureNow.mockImplementation(async (entityRef, machineRef) => {
      const [capture] = await answer(entityRef, machineRef);
      return machineRef === WEB
        ? [{ ...capture, pauseWarning: WARNING }]
        : [capture];
    });
    renderCard(api);
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    expect(
      screen.getByText(
        `web-1's capture paused production close to its limit: ${WARNING}.`,
      ),
    ).toBeInTheDocument();
    expect(screen.queryByText(/^db's capture/)).toBeNull();
  });

  it("marks in readiness's captures a latest capture whose pause neared its limit, the warning in its title", async () => {
    const readiness = makeReadiness();
    const captures = readiness.captures.map(c =>
      c.machineRef === DB
        ? { ...c, latest: { ...c.latest!, pauseWarning: WARNING } }
        : c,
    );
    renderCard(
      fakeRecoveryApi({
        getReadiness: async () => ({ ...readiness, captures }),
      }),
    );
    const mark = await screen.findByText('near the pause limit');
    expect(mark.closest('[title]')).toHaveAttribute('title', WARNING);
    expect(screen.getAllByText('near the pause limit')).toHaveLength(1);
  });
});
