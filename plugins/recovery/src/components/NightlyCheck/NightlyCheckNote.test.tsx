import { cleanup, screen, within } from '@testing-library/react';
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
const REMEDY =
  'release failover f1 (recovery release f1, or POST /runs/f1/release), or else remove what it kept there by hand';

const entity = (kind: string, name: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind,
  metadata: { name, namespace: 'default' },
  spec: {},
});

async function renderCard(nightlyCheck: NightlyCheckOutcome | undefined) {
  const failover = makeRun('succeeded', {
    id: 'f1',
    mode: 'failover',
    entityRef: 'component:default/bank',
  });
  const api = fakeRecoveryApi({
    getReadiness: async () =>
      makeReadiness({ lastRun: makeRun('succeeded'), nightlyCheck }),
    getRun: async id => (id === 'f1' ? failover : makeRun('succeeded', { id })),
  });
  await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
    api,
    catalog: [entity('component', 'bank'), entity('system', 'shop')],
  });
  return api;
}

// The card's first render in a file is slow under load.
const findNote = () =>
  screen.findByTestId('nightly-check', undefined, { timeout: 5_000 });

describe('the nightly check on the card', () => {
  it('says why last night did not test the entity: the host held by a kept failover, linked to its page to release it', async () => {
    await renderCard({
      checkedAt: AT,
      outcome: 'refused',
      reason: 'kept-failover',
      runId: 'f1',
      runEntityRef: 'component:default/bank',
      message: `refused: failover f1 of component:default/bank keeps 2 containers and 1 network on recovery, serving production with production's subnet 10.3.0.0/24; ${REMEDY}`,
    });
    const note = await findNote();
    expect(note).toHaveTextContent(
      /^Nightly check, 2026-12-05 02:30:00 UTC: not run — the host holds failover f1 of .*bank; release it to free the host/,
    );
    // The check's own words, how to release it among them.
    expect(note).toHaveTextContent(REMEDY);
    // In the last test recovery's section, beside the run it is older than.
    expect(
      within(
        screen.getByRole('region', { name: 'Last test recovery' }),
      ).getByTestId('nightly-check'),
    ).toBe(note);
    // Its page shows it live, and offers its release.
    expect(within(note).getByRole('link', { name: 'f1' })).toHaveAttribute(
      'href',
      '/recovery/runs/f1',
    );
  });

  it("says the check's own words for a refusal that names no run", async () => {
    await renderCard({
      checkedAt: AT,
      outcome: 'refused',
      reason: 'uncaptured',
      message: 'No capture of resource:default/web-1 yet: capture first',
    });
    expect(await findNote()).toHaveTextContent(
      'Nightly check, 2026-12-05 02:30:00 UTC: not run — No capture of resource:default/web-1 yet: capture first',
    );
  });

  it('tells the run of another entity that covered it', async () => {
    await renderCard({
      checkedAt: AT,
      outcome: 'covered',
      runId: 'r9',
      runEntityRef: 'system:default/shop',
      message: 'run r9 of system:default/shop succeeded in 42 s',
    });
    const note = await findNote();
    expect(note).toHaveTextContent(
      /^Nightly check, 2026-12-05 02:30:00 UTC: covered by run r9 of .*shop, not run on its own/,
    );
    expect(within(note).getByRole('link', { name: 'r9' })).toHaveAttribute(
      'href',
      '/recovery/runs/r9',
    );
  });

  it('says the hypervisor host could not be reached, linking the run that found it, and blames no machine of its own', async () => {
    const why =
      'not checked: hypervisor host recovery unreachable from 02:41:07 UTC; run r3 of system:default/shop failed there, and no run was asked of it after (hypervisor host recovery cannot be reached: connect ECONNREFUSED /run/recovery-docker/recovery.sock)';
    await renderCard({
      checkedAt: AT,
      outcome: 'refused',
      reason: 'host-unreachable',
      runId: 'r3',
      runEntityRef: 'system:default/shop',
      message: why,
    });
    const note = await findNote();
    expect(note).toHaveTextContent(
      /^Nightly check, 2026-12-05 02:30:00 UTC: not checked — the hypervisor host could not be reached: run r3 of .*shop failed there, and the check asked no more of it that night/,
    );
    // The check's own words beneath: which host, since when, and what it answered.
    expect(note).toHaveTextContent(why);
    expect(within(note).getByRole('link', { name: 'r3' })).toHaveAttribute(
      'href',
      '/recovery/runs/r3',
    );
  });

  it('says an entity whose plan has no machine was not run, in the words readiness gives', async () => {
    const why =
      'component:default/web runs on no machine Resource: no capture or run covers it; add dependsOn to the machine it runs on';
    await renderCard({
      checkedAt: AT,
      outcome: 'refused',
      reason: 'no-machine',
      message: `no machine in its boot plan, so no test recovery: ${why}`,
    });
    expect(await findNote()).toHaveTextContent(
      `Nightly check, 2026-12-05 02:30:00 UTC: not run — no machine in its boot plan, so no test recovery: ${why}`,
    );
  });

  it("shows nothing for a night that started the entity's own run: the last test recovery is it", async () => {
    await renderCard({
      checkedAt: AT,
      outcome: 'started',
      runId: 'run-1',
      runEntityRef: 'component:default/web',
      message: 'run run-1 succeeded in 252 s',
    });
    expect(
      await screen.findByRole(
        'region',
        { name: 'Last test recovery' },
        { timeout: 5_000 },
      ),
    ).toBeInTheDocument();
    expect(screen.queryByTestId('nightly-check')).toBeNull();
  });

  it('shows nothing before a night has recorded one', async () => {
    await renderCard(undefined);
    expect(
      await screen.findByRole(
        'region',
        { name: 'Last test recovery' },
        { timeout: 5_000 },
      ),
    ).toBeInTheDocument();
    expect(screen.queryByTestId('nightly-check')).toBeNull();
  });

  it('says a night under way is, and how far it got so far', async () => {
    const night = {
      checkedAt: AT,
      state: 'under-way' as const,
      heardAt: '2026-12-05T02:41:00.000Z',
      checked: 3,
      entities: 8,
    };
    await renderCard({
      checkedAt: AT,
      outcome: 'covered',
      runId: 'r9',
      runEntityRef: 'system:default/shop',
      message: 'run r9 of system:default/shop succeeded in 42 s',
      night,
    });
    expect(await findNote()).toHaveTextContent(
      /^Nightly check, 2026-12-05 02:30:00 UTC \(under way, 3 of 8 entities checked so far\): covered by run r9 of .*shop, not run on its own/,
    );
  });

  it('says the night that reached it was interrupted, when and how far it got, its own run too, whose end it never recorded', async () => {
    const night = {
      checkedAt: AT,
      state: 'interrupted' as const,
      heardAt: '2026-12-05T03:12:00.000Z',
      checked: 5,
      entities: 40,
    };
    await renderCard({
      checkedAt: AT,
      outcome: 'started',
      runId: 'run-1',
      runEntityRef: 'component:default/web',
      message: 'run run-1 started; readiness counts it once it ends',
      night,
    });
    const note = await findNote();
    expect(note).toHaveTextContent(
      'Nightly check, 2026-12-05 02:30:00 UTC (interrupted at 03:12:00 UTC, 5 of 40 entities checked): run run-1 started; readiness counts it once it ends',
    );
    expect(within(note).queryByTestId('nightly-check-newer')).toBeNull();
  });

  it("keeps an earlier night's outcome, dated then, saying a newer night was interrupted before reaching it, or has not reached it yet", async () => {
    const newer = {
      checkedAt: '2026-12-06T02:30:00.000Z',
      state: 'interrupted' as const,
      heardAt: '2026-12-06T03:12:00.000Z',
      checked: 5,
      entities: 40,
    };
    await renderCard({
      checkedAt: AT,
      outcome: 'refused',
      reason: 'uncaptured',
      message: 'No capture of resource:default/web-1 yet: capture first',
      newer,
    });
    const note = await findNote();
    expect(note).toHaveTextContent(
      /^Nightly check, 2026-12-05 02:30:00 UTC: not run — No capture of resource:default\/web-1 yet: capture first/,
    );
    expect(within(note).getByTestId('nightly-check-newer')).toHaveTextContent(
      'The nightly check of 2026-12-06 02:30:00 UTC was interrupted at 03:12:00 UTC before reaching it (5 of 40 entities checked).',
    );
    cleanup();
    // Its own run last night: nothing to add but that the newer night did not reach it.
    await renderCard({
      checkedAt: AT,
      outcome: 'started',
      runId: 'run-1',
      runEntityRef: 'component:default/web',
      message: 'run run-1 succeeded in 252 s',
      newer,
    });
    expect(
      within(await findNote()).getByTestId('nightly-check-newer'),
    ).toHaveTextContent('was interrupted at 03:12:00 UTC before reaching it');
    cleanup();
    await renderCard({
      checkedAt: AT,
      outcome: 'excluded',
      message: 'left out',
      newer: { ...newer, state: 'under-way', checked: 0 },
    });
    expect(
      within(await findNote()).getByTestId('nightly-check-newer'),
    ).toHaveTextContent(
      'The nightly check under way since 2026-12-06 02:30:00 UTC has not reached it yet (0 of 40 entities checked so far).',
    );
  });
});
