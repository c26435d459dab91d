import { screen } from '@testing-library/react';
import type { NightlyCheckRefusal } from '@backstage-recovery/plugin-recovery-common';
import {
  fakeRecoveryApi,
  makeReadinessSummary,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';
import { NightlyCheckSummary, notRunLastNight } from './NightlyCheckSummary';

const NIGHT = '2026-12-05T02:30:00.000Z';
const ON_NO_MACHINE =
  'no machine in its boot plan, so no test recovery: component:default/docs runs on no machine Resource: no capture or run covers it; add dependsOn to the machine it runs on';

const refused = (name: string, reason: NightlyCheckRefusal, message = '') =>
  makeReadinessSummary({
    entityRef: `component:default/${name}`,
    nightlyCheck: { checkedAt: NIGHT, outcome: 'refused', reason, message },
  });

describe('the nightly summary of entities whose plan has no machine', () => {
  const items = [
    refused('docs', 'no-machine', ON_NO_MACHINE),
    refused('gone', 'no-machine'),
    refused('u1', 'uncaptured'),
    // Opted out: no word of it.
    makeReadinessSummary({
      entityRef: 'component:default/legacy',
      nightlyCheck: { checkedAt: NIGHT, outcome: 'excluded', message: '' },
    }),
  ];

  it('counts them in a group of their own, in the words of what to mend', async () => {
    await renderWithApis(<NightlyCheckSummary items={items} />, {
      api: fakeRecoveryApi({}),
      entity: null,
    });
    expect(
      await screen.findByTestId('nightly-check-summary'),
    ).toHaveTextContent(
      'Last nightly check (2026-12-05 02:30:00 UTC): 3 not run — 2 no machine in its boot plan, 1 never captured',
    );
  });

  it("marks each one's row so", () => {
    expect(notRunLastNight(items[0])).toBe(
      'Not run last night: no machine in its boot plan',
    );
  });
});

describe('the nightly summary of entities not checked as the hypervisor host was unreachable', () => {
  const items = [
    ...['s04', 's05', 's06'].map(n => refused(n, 'host-unreachable')),
    refused('u1', 'uncaptured'),
  ];

  it('counts them in a group of their own, the host named as what to mend', async () => {
    await renderWithApis(<NightlyCheckSummary items={items} />, {
      api: fakeRecoveryApi({}),
      entity: null,
    });
    expect(
      await screen.findByTestId('nightly-check-summary'),
    ).toHaveTextContent(
      'Last nightly check (2026-12-05 02:30:00 UTC): 4 not run — 3 hypervisor host unreachable, 1 never captured',
    );
  });

  it("marks each one's row so", () => {
    expect(notRunLastNight(items[0])).toBe(
      'Not run last night: hypervisor host unreachable',
    );
  });
});
