import { screen, within } from '@testing-library/react';
import type { Entity } from '@backstage/catalog-model';
import type { NightlyCheckOutcome } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from '../EntityRecoveryCard';
import {
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const AT = '2026-12-05T02:30:00.000Z';
const JANE = 'user:default/jane';

const entity = (kind: string, name: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name, namespace: 'default' },
  spec: {},
});

/** The card, over a catalog holding the entities but no User entity of jane. */
async function renderCard(nightlyCheck: NightlyCheckOutcome) {
  const api = fakeRecoveryApi({
    getReadiness: async () =>
      makeReadiness({ lastRun: makeRun('succeeded'), nightlyCheck }),
  });
  await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
    api,
    catalog: [entity('component', 'web'), entity('system', 'shop')],
  });
}

// The card's first render in a file is slow under load.
const findNote = () =>
  screen.findByTestId('nightly-check', undefined, { timeout: 5_000 });

describe('the nightly check on the card, where someone cancelled its run', () => {
  it('says the entity was not checked, naming who cancelled the run that was to cover it, as written', async () => {
    await renderCard({
      checkedAt: AT,
      outcome: 'covered',
      runId: 'r7',
      runEntityRef: 'system:default/shop',
      message: `not checked: run r7 of system:default/shop, which was to cover it, was cancelled by ${JANE}`,
    });
    const note = await findNote();
    // Not "covered by run r7": that run was cancelled, and covered no one.
    expect(note).toHaveTextContent(
      `Nightly check, 2026-12-05 02:30:00 UTC: not checked — run r7 of shop, which was to cover it, was cancelled by ${JANE}`,
    );
    expect(note).not.toHaveTextContent(/covered by/);
    expect(within(note).getByRole('link', { name: 'r7' })).toHaveAttribute(
      'href',
      '/recovery/runs/r7',
    );
    // No User entity of her in the catalog: the ref as written, linked where the catalog would show her.
    expect(within(note).getByRole('link', { name: JANE })).toHaveAttribute(
      'href',
      '/catalog/default/user/jane',
    );
    expect(note.closest('[role="alert"]') ?? note).toHaveClass(
      'MuiAlert-standardWarning',
    );
  });

  it("shows the entity's own run cancelled, which the last test recovery is not, naming who", async () => {
    await renderCard({
      checkedAt: AT,
      outcome: 'started',
      runId: 'r9',
      runEntityRef: 'component:default/web',
      message: `run r9 cancelled by ${JANE} (not started again; a cancelled run counts for no one)`,
    });
    const note = await findNote();
    expect(note).toHaveTextContent(
      `Nightly check, 2026-12-05 02:30:00 UTC: not checked — its run r9 was cancelled by ${JANE}, and a cancelled run counts for no one, so it was not started again`,
    );
    expect(within(note).getByRole('link', { name: 'r9' })).toHaveAttribute(
      'href',
      '/recovery/runs/r9',
    );
    expect(within(note).getByRole('link', { name: JANE })).toHaveAttribute(
      'href',
      '/catalog/default/user/jane',
    );
  });
});
