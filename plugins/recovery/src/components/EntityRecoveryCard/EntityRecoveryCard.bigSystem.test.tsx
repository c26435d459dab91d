import { fireEvent, screen, within } from '@testing-library/react';
import type {
  BootPlan,
  MachineCaptureStatus,
  RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi, makeReadiness } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

/** Machine i of a big system: m001 to m150, 13 to a wave. */
const ref = (i: number) => `resource:default/m${String(i).padStart(3, '0')}`;
const NEVER = [40, 90, 150];

function bigReadiness(n: number, neverCaptured: number[] = []) {
  const readiness = makeReadiness();
  const refs = Array.from({ length: n }, (_, i) => ref(i + 1));
  const plan: BootPlan = {
    entityRef: readiness.entityRef,
    waves: Array.from({ length: Math.ceil(n / 13) }, (_, w) =>
      refs.slice(w * 13, w * 13 + 13),
    ),
    machines: refs.map((machineRef, i) => ({
      machineRef,
      wave: Math.floor(i / 13),
      services: [],
      waitsFor: [],
      probes: [],
    })),
  };
  const template = readiness.captures[0];
  const captures: MachineCaptureStatus[] = refs.map((machineRef, i) =>
    neverCaptured.includes(i + 1)
      ? { machineRef }
      : {
          ...template,
          machineRef,
          latest: { ...template.latest!, id: `cap-${i}`, machineRef },
        },
  );
  return { ...readiness, plan, captures, position: undefined };
}

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

/** The machine of each row of the Captures table, in order. */
function machineRows(table: HTMLElement): string[] {
  return within(table)
    .getAllByRole('row')
    .slice(1)
    .map(r => within(r).getAllByRole('cell')[0].textContent ?? '');
}

describe('EntityRecoveryCard of a big system', () => {
  it('lists 20 of 150 captures, the 3 never captured first, and shows them all and fewer again', async () => {
    await renderCard(
      fakeRecoveryApi({
        getReadiness: async () => bigReadiness(150, NEVER),
      }),
    );
    const table = await screen.findByRole('table', { name: 'Captures' });
    const rows = machineRows(table);
    expect(rows).toHaveLength(20);
    // The marked first, then the rest in their usual order.
    expect(rows.slice(0, 3)).toEqual(['m040', 'm090', 'm150']);
    expect(rows.slice(3)).toEqual(
      Array.from(
        { length: 17 },
        (_, i) => `m${String(i + 1).padStart(3, '0')}`,
      ),
    );
    expect(
      within(table)
        .getAllByText('never captured')
        .map(e => e.closest('tr')),
    ).toEqual(within(table).getAllByRole('row').slice(1, 4));
    expect(
      screen.getByText('Showing 20 of 150 machines, the 3 marked ones first.'),
    ).toBeInTheDocument();

    const toggle = screen.getByRole('button', {
      name: 'Show all 150 machines',
    });
    expect(toggle).toHaveAttribute('aria-expanded', 'false');
    expect(toggle).toHaveAttribute('aria-controls', table.id);
    fireEvent.click(toggle);
    expect(machineRows(table)).toHaveLength(150);
    expect(machineRows(table).slice(0, 4)).toEqual([
      'm040',
      'm090',
      'm150',
      'm001',
    ]);
    const back = screen.getByRole('button', { name: 'Show the first 20 only' });
    expect(back).toHaveAttribute('aria-expanded', 'true');
    fireEvent.click(back);
    expect(machineRows(table)).toEqual(rows);
    expect(
      screen.getByRole('button', { name: 'Show all 150 machines' }),
    ).toBeInTheDocument();
  });

  it('lists all of 20 captures in their order, with nothing to show more', async () => {
    await renderCard(
      fakeRecoveryApi({
        getReadiness: async () => bigReadiness(20, [20]),
      }),
    );
    const table = await screen.findByRole('table', { name: 'Captures' });
    expect(machineRows(table)).toEqual(
      Array.from(
        { length: 20 },
        (_, i) => `m${String(i + 1).padStart(3, '0')}`,
      ),
    );
    expect(screen.queryByRole('button', { name: /^Show / })).toBeNull();
    expect(table).not.toHaveAttribute('id');
  });

  it('lists the first 20 of 150 reasons, and all of them on asking', async () => {
    const reasons = Array.from(
      { length: 150 },
      (_, i) => `${ref(i + 1)} has never been captured`,
    );
    await renderCard(
      fakeRecoveryApi({
        getReadiness: async () => ({
          ...bigReadiness(150, []),
          status: 'not-recoverable',
          reasons,
        }),
      }),
    );
    const list = await screen.findByRole('list', { name: 'Reasons' });
    expect(within(list).getAllByRole('listitem')).toHaveLength(20);
    expect(within(list).getAllByRole('listitem')[0]).toHaveTextContent(
      reasons[0],
    );
    fireEvent.click(
      screen.getByRole('button', { name: 'Show all 150 reasons' }),
    );
    expect(within(list).getAllByRole('listitem')).toHaveLength(150);
    // All captured within the RPO: none is marked, all 150 in their order, 20 shown.
    expect(screen.getByText('Showing 20 of 150 machines.')).toBeInTheDocument();
  });
});
