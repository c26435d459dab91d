import { screen, within } from '@testing-library/react';
import type {
  HiddenRun,
  Readiness,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const siteRun = makeRun('succeeded', {
  id: 'run-9',
  entityRef: 'system:default/demo-site',
});

function renderCard(readiness: Readiness) {
  const api = fakeRecoveryApi({ getReadiness: async () => readiness });
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

describe("EntityRecoveryCard, links to a run's page", () => {
  it("links the last run's time to its page", async () => {
    await renderCard(makeReadiness({ lastRun: siteRun }));
    const lastRun = await screen.findByTestId('last-run');
    const link = within(lastRun).getByRole('link', { name: /ago$/ });
    expect(link).toHaveAttribute('href', '/recovery/runs/run-9');
    expect(link).toHaveAttribute('title', 'Run run-9');
  });

  it('offers the last run\'s page by an explicit "View run" link, not only by its time', async () => {
    await renderCard(makeReadiness({ lastRun: siteRun }));
    const lastRun = await screen.findByTestId('last-run');
    expect(
      within(lastRun).getByRole('link', { name: 'View run' }),
    ).toHaveAttribute('href', '/recovery/runs/run-9');
  });

  it('links no last run of an entity the catalog hides: its id is not told', async () => {
    const { mode, status, createdAt, startedAt, finishedAt, rtoSeconds } =
      siteRun;
    const hidden: HiddenRun = {
      mode,
      status,
      createdAt,
      startedAt,
      finishedAt,
      rtoSeconds,
    };
    await renderCard(makeReadiness({ lastRun: hidden }));
    const lastRun = await screen.findByTestId('last-run');
    expect(lastRun).toHaveTextContent(/of an entity the catalog does not show/);
    expect(within(lastRun).queryByRole('link')).toBeNull();
  });
});
