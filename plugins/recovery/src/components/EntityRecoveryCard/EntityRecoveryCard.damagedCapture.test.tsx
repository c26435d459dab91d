import { screen } from '@testing-library/react';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { DB, fakeRecoveryApi, makeReadiness } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

describe('EntityRecoveryCard, a latest capture found damaged', () => {
  it("marks it in readiness's captures, why on hover, and the other machines' not", async () => {
    const readiness = makeReadiness();
    const reason =
      'capture c2: checksum mismatch for /captures/c2.tar; the capture is damaged and cannot be restored';
    const captures = readiness.captures.map(c =>
      c.machineRef === DB
        ? {
            ...c,
            latest: {
              ...c.latest!,
              damaged: { at: '2026-11-04T00:00:00.000Z', reason },
            },
          }
        : c,
    );
    renderCard(
      fakeRecoveryApi({
        getReadiness: async () => ({ ...readiness, captures }),
      }),
    );
    const mark = await screen.findByText('damaged: no run restores it');
    expect(mark.closest('[title]')).toHaveAttribute('title', reason);
    expect(screen.getAllByText(/damaged: no run restores it/)).toHaveLength(1);
  });
});
