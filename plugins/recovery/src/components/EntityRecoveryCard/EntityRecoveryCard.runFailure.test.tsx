import { screen, waitFor, within } from '@testing-library/react';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi, makeRun, WEB } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const LAB_FAILED =
  'Lab network could not be created: subnet 10.1.0.0/24 overlaps a network on recovery-1';

/** The timeline's step messages, top to bottom. */
function timelineMessages(region: HTMLElement): string[] {
  const timeline = within(region).getByRole('table', { name: 'Timeline' });
  const [, ...body] = within(timeline).getAllByRole('row');
  return body.map(row => within(row).getAllByRole('cell')[2].textContent ?? '');
}

describe('EntityRecoveryCard, a run that failed as a whole', () => {
  it("says the failure once: in the timeline while the lab is torn down, then in the run's outcome only", async () => {
    const running = makeRun('running');
    const failure = {
      at: '2024-05-01T10:00:22.000Z',
      level: 'error' as const,
      message: LAB_FAILED,
    };
    // Recorded, the run still tearing its lab down; then ended with it, as the backend does.
    const tearingDown: RecoveryRun = {
      ...running,
      steps: [...running.steps, failure],
    };
    const failed: RecoveryRun = {
      ...running,
      status: 'failed',
      finishedAt: '2024-05-01T10:00:25.000Z',
      error: { message: LAB_FAILED },
      machines: [
        running.machines[0],
        { machineRef: WEB, wave: 1, phase: 'skipped' },
      ],
      steps: [
        ...tearingDown.steps,
        {
          at: '2024-05-01T10:00:24.000Z',
          level: 'info',
          message: 'Lab torn down: removed 1 network',
        },
      ],
    };
    let polls = 0;
    let checks = 0;
    let release: () => void = () => {};
    const tornDown = new Promise<void>(ok => (release = ok));
    const api = fakeRecoveryApi({
      listRuns: async () => (++checks === 1 ? [running] : []),
      // The first look finds it tearing down; the next ones wait until the test has seen that.
      getRun: async () =>
        ++polls === 1 ? tearingDown : tornDown.then(() => failed),
    });
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });

    const live = await screen.findByRole('region', {
      name: 'Test recovery in progress',
    });
    await waitFor(() =>
      expect(timelineMessages(live)).toContain(`Error${LAB_FAILED}`),
    );
    expect(within(live).queryByText('Recovery failed')).toBeNull();
    release();

    const region = await screen.findByRole('region', { name: 'Test recovery' });
    const outcome = await within(region).findByText('Recovery failed');
    expect(outcome.closest('[role="alert"]')).toHaveTextContent(
      `Recovery failed${LAB_FAILED}`,
    );
    expect(timelineMessages(region)).toEqual([
      'Run admitted',
      'Restoring capture cap-db',
      'Probe tcp:5432 passed',
      'Restoring capture cap-web',
      'Lab torn down: removed 1 network',
    ]);
    // Once on the whole card.
    expect(
      document.body.textContent!.split('Lab network could not be created'),
    ).toHaveLength(2);
  });
});
