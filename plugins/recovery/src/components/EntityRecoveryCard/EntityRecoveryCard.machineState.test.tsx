import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type {
  Capture,
  RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
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

const exited: Capture['machineState'] = {
  status: 'exited',
  exitCode: 137,
  since: '2024-05-01T09:00:00Z',
};

describe('EntityRecoveryCard, a machine not serving when captured', () => {
  it('says after "Capture now" which machine was not serving when captured, in what state, and that the capture is kept', async () => {
    const api = fakeRecoveryApi();
    const answer = api.captureNow.getMockImplementation()!;
    api.captureNow.mockImplementation(async (entityRef, machineRef) => {
      const [capture] = await answer(entityRef, machineRef);
      if (machineRef === WEB) return [{ ...capture, machineState: exited }];
      return [
        { ...capture, machineState: { status: 'running', health: 'healthy' } },
      ];
    });
    renderCard(api);
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    expect(
      screen.getByText(
        'web-1 was exited (code 137, since 2024-05-01T09:00:00Z) when captured: the capture holds a machine that was not serving. It is kept (its disk is the best copy there is), but readiness puts what it serves at risk until it is captured running and not unhealthy.',
      ),
    ).toBeInTheDocument();
    // The machine that was serving is not named.
    expect(screen.queryByText(/^db was/)).toBeNull();
  });

  it('says nothing of the state where every machine was serving', async () => {
    const api = fakeRecoveryApi();
    renderCard(api);
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    expect(screen.queryByText(/when captured/)).toBeNull();
  });

  it("shows in readiness's captures the state of a latest capture of a machine that was not serving", async () => {
    const readiness = makeReadiness();
    const captures = readiness.captures.map(c =>
      c.machineRef === DB
        ? {
            ...c,
            latest: {
              ...c.latest!,
              machineState: {
                status: 'running' as const,
                health: 'unhealthy' as const,
                failingStreak: 2,
                healthOutput: 'pg_isready: no response',
              },
            },
          }
        : c,
    );
    renderCard(
      fakeRecoveryApi({
        getReadiness: async () => ({ ...readiness, captures }),
      }),
    );
    const note = await screen.findByText(
      'db not serving when captured: running but unhealthy (2 failing health checks in a row; the last said: "pg_isready: no response")',
    );
    expect(screen.getAllByText(/not serving when captured/)).toHaveLength(1);
    // A long note has a row of its own, under db's and as wide as the table: in the "Against
    // RPO" cell it squeezed the others into "Machi ne", "Last captur e".
    const noteCell = note.closest('td')!;
    expect(noteCell).toHaveAttribute('colspan', '4');
    const dbRow = within(screen.getByRole('table', { name: 'Captures' }))
      .getByText('db')
      .closest('tr')!;
    expect(dbRow.nextElementSibling).toBe(noteCell.closest('tr'));
    expect(dbRow).not.toHaveTextContent(/not serving/);
    // Its machine, age and pause do not break mid-word, whatever squeezes them.
    const [machine, age, , paused] = Array.from(dbRow.cells);
    for (const cell of [machine, age, paused]) {
      expect(getComputedStyle(cell).whiteSpace).toBe('nowrap');
    }
  });
});
