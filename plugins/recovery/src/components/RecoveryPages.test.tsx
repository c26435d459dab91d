import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { RecoveryOverviewPage } from './RecoveryOverviewPage';
import { EntityRecoveryContent } from './EntityRecoveryContent';
import { fakeRecoveryApi, makeReadiness, makeRun } from '../testUtils/fixtures';
import { renderWithApis } from '../testUtils/render';

function render(api: Partial<RecoveryApi>, element: JSX.Element) {
  return renderWithApis(element, { api });
}

describe('RecoveryOverviewPage', () => {
  it('lists readiness sorted by risk, linking to entity pages', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadiness({ entityRef: 'component:default/a-ready', status: 'ready' }),
        makeReadiness({
          entityRef: 'component:default/b-unknown',
          status: 'unknown',
          reasons: ['Never tested'],
          lastRun: undefined,
        }),
        makeReadiness({
          entityRef: 'system:default/c-broken',
          status: 'not-recoverable',
          reasons: ['Last test recovery failed at web-1', 'Capture missing'],
          lastRun: makeRun('failed'),
        }),
        makeReadiness({
          entityRef: 'component:default/d-risky',
          status: 'at-risk',
          reasons: ['Capture of web-1 is 30h old, over the 24h RPO'],
        }),
      ],
    });
    await render(api, <RecoveryOverviewPage />);

    expect(await screen.findByText('Readiness by risk')).toBeInTheDocument();
    expect(
      await screen.findByText(
        '4 entities — 1 not recoverable, 1 at risk, 1 unknown, 1 ready',
      ),
    ).toBeInTheDocument();

    const rows = screen.getAllByRole('row').slice(1);
    const names = rows.map(r => within(r).getByRole('link').textContent);
    expect(names).toEqual(['c-broken', 'd-risky', 'b-unknown', 'a-ready']);

    const broken = rows[0];
    expect(within(broken).getByRole('link')).toHaveAttribute(
      'href',
      '/catalog/default/system/c-broken',
    );
    expect(broken).toHaveTextContent('Not recoverable');
    expect(broken).toHaveTextContent('Last test recovery failed at web-1');
    expect(broken).toHaveTextContent('and 1 more');
    expect(broken).toHaveTextContent('at web-1');
    expect(rows[1]).toHaveTextContent('At risk');
    expect(rows[1]).toHaveTextContent('1d 6h / RPO 1d');
    expect(rows[2]).toHaveTextContent('never');
  });

  it('says so when nothing is configured', async () => {
    const api = fakeRecoveryApi({ listReadiness: async () => [] });
    await render(api, <RecoveryOverviewPage />);
    expect(
      await screen.findByText('No entity has recovery configured yet.'),
    ).toBeInTheDocument();
  });
});

describe('EntityRecoveryContent', () => {
  it('shows the run history and the details of a chosen run', async () => {
    const failed = makeRun('failed', { id: 'run-2', createdAt: '2024-05-02T10:00:00Z' });
    const succeeded = makeRun('succeeded', { id: 'run-1' });
    const api = fakeRecoveryApi({
      listRuns: async () => [failed, succeeded],
    });
    await render(
      api,
      <EntityRecoveryContent />,
    );

    expect(await screen.findByText('Recovery runs')).toBeInTheDocument();
    expect(api.listRuns).toHaveBeenCalledWith({
      entityRef: 'component:default/web',
      limit: 50,
    });
    // The card is there too.
    expect(screen.getByText('Recovery readiness')).toBeInTheDocument();

    // Newest run is opened by default.
    expect(screen.getByText('Run run-2')).toBeInTheDocument();
    expect(screen.getByText('Recovery failed')).toBeInTheDocument();
    expect(
      screen.getByText('web-1: probe http:80/healthz: no answer within 60s'),
    ).toBeInTheDocument();

    await userEvent.click(screen.getByText('RTO 4m 12s'));
    await waitFor(() => expect(screen.getByText('Run run-1')).toBeInTheDocument());
    expect(screen.getByText('Recovery succeeded')).toBeInTheDocument();
  });

  it('reloads the history when a run is started from the card', async () => {
    const api = fakeRecoveryApi({
      listRuns: async () => [],
      startRun: async () => makeRun('pending'),
      getRun: async () => makeRun('succeeded'),
    });
    await render(
      api,
      <EntityRecoveryContent pollIntervalMs={10} />,
    );
    expect(
      await screen.findByText('No recovery has been run for this entity yet.'),
    ).toBeInTheDocument();
    // The card asks once for a run in progress (limit 1); the rest are the history's loads.
    const historyLoads = () =>
      api.listRuns.mock.calls.filter(([query]) => query.limit !== 1).length;
    await waitFor(() =>
      expect(api.listRuns).toHaveBeenCalledWith({ entityRef: 'component:default/web', limit: 1 }),
    );
    expect(historyLoads()).toBe(1);
    const button = screen.getByRole('button', { name: /run test recovery/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await screen.findByText('Recovery succeeded');
    // Once when the run starts, once when it finishes.
    await waitFor(() => expect(historyLoads()).toBe(3));
    expect(api.listRuns).toHaveBeenCalledTimes(4);
  });
});
