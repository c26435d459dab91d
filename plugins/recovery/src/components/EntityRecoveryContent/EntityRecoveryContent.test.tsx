import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryContent } from './EntityRecoveryContent';
import {
  conflictError,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';
import { columnHeader, columnTexts, sortButton } from '../../testUtils/table';

function render(api: Partial<RecoveryApi>, element: JSX.Element) {
  return renderWithApis(element, { api });
}

describe('EntityRecoveryContent', () => {
  it('shows the run history and the details of a chosen run', async () => {
    const failed = makeRun('failed', {
      id: 'run-2',
      createdAt: '2024-05-02T10:00:00Z',
    });
    const succeeded = makeRun('succeeded', { id: 'run-1' });
    const api = fakeRecoveryApi({
      listRuns: async () => [failed, succeeded],
    });
    await render(api, <EntityRecoveryContent />);

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
      screen.getByText(
        'Machine web-1 failed probe http:80/healthz: no answer within 60s',
      ),
    ).toBeInTheDocument();

    await userEvent.click(screen.getByText('RTO 4m 12s'));
    await waitFor(() =>
      expect(screen.getByText('Run run-1')).toBeInTheDocument(),
    );
    // Measured against the objective the card shows.
    expect(
      screen.getByText('Recovery succeeded').closest('[role="alert"]'),
    ).toHaveTextContent('measured RTO 4m 12s (objective 15m).');
  });

  it("writes a run's RTO in the history as its details do, to the millisecond", async () => {
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('succeeded', { rtoSeconds: 252.104 })],
    });
    await render(api, <EntityRecoveryContent />);

    expect(await screen.findByText('RTO 4m 12.104s')).toBeInTheDocument();
    expect(
      screen.getByText('Recovery succeeded').closest('[role="alert"]'),
    ).toHaveTextContent('measured RTO 4m 12.104s (objective 15m).');
  });

  it("gives the run history and the run shown heading levels under the page's h1, none skipped", async () => {
    const api = fakeRecoveryApi({
      listRuns: async ({ active }) => (active ? [] : [makeRun('succeeded')]),
    });
    await render(api, <EntityRecoveryContent />);
    await screen.findByText('Recovery succeeded');
    const levels = screen
      .getAllByRole('heading')
      .map(h => Number(h.tagName.slice(1)));
    expect(levels[0]).toBe(2);
    levels.forEach((level, i) =>
      expect(level).toBeLessThanOrEqual((levels[i - 1] ?? 1) + 1),
    );
    const runHeading = screen.getByRole('heading', { name: 'Run run-1' });
    expect(runHeading.tagName).toBe('H2');
    expect(
      screen.getAllByRole('heading', { name: 'Machines' }).map(h => h.tagName),
    ).toContain('H3');
  });

  it('lets a keyboard user open another run, and says which run is shown', async () => {
    const failed = makeRun('failed', {
      id: 'run-2',
      startedAt: '2024-05-02T10:00:00Z',
    });
    const succeeded = makeRun('succeeded', { id: 'run-1' });
    const api = fakeRecoveryApi({ listRuns: async () => [failed, succeeded] });
    await render(api, <EntityRecoveryContent />);

    // Each run's start time, newest first, is the button that opens it.
    const [newest, older] = await screen.findAllByRole('button', {
      name: /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
    });
    expect(newest).toHaveTextContent('2024-05-02 10:00:00 UTC');
    expect(older).toHaveTextContent('2024-05-01 10:00:01 UTC');
    expect(newest).toHaveAttribute('aria-pressed', 'true');
    expect(older).toHaveAttribute('aria-pressed', 'false');
    expect(screen.getByText('Run run-2')).toBeInTheDocument();

    // Tab to the older run's button (past the card's buttons and the newer run), press Enter.
    for (let i = 0; i < 30 && document.activeElement !== older; i++) {
      await userEvent.tab();
    }
    expect(older).toHaveFocus();
    await userEvent.keyboard('{Enter}');

    expect(await screen.findByText('Run run-1')).toBeInTheDocument();
    expect(screen.getByText('Recovery succeeded')).toBeInTheDocument();
    expect(screen.queryByText('Run run-2')).toBeNull();
    const [newestNow, olderNow] = screen.getAllByRole('button', {
      name: /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/,
    });
    expect(olderNow).toHaveAttribute('aria-pressed', 'true');
    expect(newestNow).toHaveAttribute('aria-pressed', 'false');
  });

  it('reloads the history when a run is started from the card', async () => {
    const api = fakeRecoveryApi({
      listRuns: async () => [],
      startRun: async () => makeRun('pending'),
      getRun: async () => makeRun('succeeded'),
    });
    await render(api, <EntityRecoveryContent pollIntervalMs={10} />);
    expect(
      await screen.findByText('No recovery has been run for this entity yet.'),
    ).toBeInTheDocument();
    // The card asks for the active runs (on load, after its run); the rest are the history's loads.
    const historyLoads = () =>
      api.listRuns.mock.calls.filter(([query]) => !query.active).length;
    await waitFor(() =>
      expect(api.listRuns).toHaveBeenCalledWith({ active: true }),
    );
    expect(historyLoads()).toBe(1);
    const button = screen.getByRole('button', { name: /run test recovery/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await screen.findByText('Recovery succeeded');
    // Once when the run starts, once when it finishes.
    await waitFor(() => expect(historyLoads()).toBe(3));
    await waitFor(() => expect(api.listRuns).toHaveBeenCalledTimes(5));
  });

  it('lists a run of the entity started elsewhere as soon as the card follows it', async () => {
    // A pipeline's `recovery run web` started after the tab loaded: the start is refused for it.
    const cliRun = (stage: 'running') =>
      makeRun(stage, { id: 'run-7', createdBy: 'user:default/ci-bot' });
    let started = false;
    const api = fakeRecoveryApi({
      listRuns: async ({ active }) => {
        if (active) return [];
        return started ? [cliRun('running')] : [];
      },
      startRun: async () => {
        started = true;
        throw await conflictError(
          'Hypervisor host recovery-1 is busy with run run-7',
          {
            runId: 'run-7',
            entityRef: 'component:default/web',
          },
        );
      },
      getRun: async () => cliRun('running'),
    });
    await render(api, <EntityRecoveryContent pollIntervalMs={10} />);
    expect(
      await screen.findByText('No recovery has been run for this entity yet.'),
    ).toBeInTheDocument();
    const button = await screen.findByRole('button', {
      name: /run test recovery/i,
    });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);

    // The card follows it live; the history lists it while it runs, not once it has ended.
    expect(
      await screen.findByText(/is busy with a test recovery of web/),
    ).toBeInTheDocument();
    expect(await screen.findByText('Run run-7')).toBeInTheDocument();
    expect(
      screen.queryByText('No recovery has been run for this entity yet.'),
    ).toBeNull();
  });

  it("still calls the caller's onRunChange when a run starts and when it finishes", async () => {
    const onRunChange = vi.fn();
    const api = fakeRecoveryApi({
      startRun: async () => makeRun('pending'),
      getRun: async () => makeRun('succeeded'),
    });
    await render(
      api,
      <EntityRecoveryContent pollIntervalMs={10} onRunChange={onRunChange} />,
    );
    const button = await screen.findByRole('button', {
      name: /run test recovery/i,
    });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await screen.findByText('Recovery succeeded');
    await waitFor(() => expect(onRunChange).toHaveBeenCalledTimes(2));
    expect(onRunChange.mock.calls.map(([run]) => run.status)).toEqual([
      'pending',
      'succeeded',
    ]);
  });

  it('keeps the history on screen when a reload fails, and retries until it loads', async () => {
    let historyLoads = 0;
    const api = fakeRecoveryApi({
      listRuns: async ({ active }) => {
        if (active) return []; // the card's check for a run in progress
        historyLoads += 1;
        if (historyLoads === 1) return [makeRun('running')];
        if (historyLoads <= 3) throw new Error('backend unavailable');
        return [makeRun('succeeded')];
      },
    });
    await render(api, <EntityRecoveryContent pollIntervalMs={10} />);

    expect(await screen.findByText('Run run-1')).toBeInTheDocument();
    expect(
      await screen.findByText(
        /Could not reload the run history: backend unavailable/,
      ),
    ).toBeInTheDocument();
    // The last list loaded is still shown, not an error panel in its place.
    expect(screen.getByText('Recovery runs')).toBeInTheDocument();
    expect(screen.getByText('Run run-1')).toBeInTheDocument();

    // Retried at 400 ms, then 800 ms, after the failed poll (the history polls every 200 ms).
    expect(
      await screen.findByText('Recovery succeeded', undefined, {
        timeout: 3000,
      }),
    ).toBeInTheDocument();
    expect(screen.queryByText(/Could not reload the run history/)).toBeNull();
    expect(historyLoads).toBe(4);
  });

  it('offers to retry a history that never loaded, as the card does', async () => {
    let historyLoads = 0;
    const api = fakeRecoveryApi({
      listRuns: async ({ active }) => {
        if (active) return [];
        historyLoads += 1;
        if (historyLoads === 1) throw new Error('backend unavailable');
        return [makeRun('succeeded')];
      },
    });
    // Its own retry waits 10 minutes: only the button brings the history now.
    await render(api, <EntityRecoveryContent pollIntervalMs={600_000} />);
    await userEvent.click(
      await screen.findByRole('button', {
        name: 'Retry loading the run history',
      }),
    );
    expect(await screen.findByText('Recovery runs')).toBeInTheDocument();
    expect(historyLoads).toBe(2);
  });

  it('says which load each Retry retries when the card and the history both fail', async () => {
    // Two bare "Retry" buttons side by side: a screen reader's list of buttons read "Retry, Retry".
    let readinessLoads = 0;
    let historyLoads = 0;
    const api = fakeRecoveryApi({
      getReadiness: async () => {
        readinessLoads += 1;
        throw new Error('Service Unavailable');
      },
      listRuns: async ({ active }) => {
        if (active) return [];
        historyLoads += 1;
        throw new Error('Service Unavailable');
      },
    });
    await render(api, <EntityRecoveryContent pollIntervalMs={600_000} />);
    await waitFor(() =>
      expect(
        screen.getAllByTestId('load-error').map(e => e.textContent),
      ).toEqual([
        'Could not load readiness: Service Unavailable',
        'Could not load the run history: Service Unavailable',
      ]),
    );
    const names = screen
      .getAllByRole('button', { name: /^Retry/ })
      .map(b => b.textContent);
    expect(names.sort()).toEqual([
      'Retry loading readiness',
      'Retry loading the run history',
    ]);

    await userEvent.click(
      screen.getByRole('button', { name: 'Retry loading the run history' }),
    );
    await waitFor(() => expect(historyLoads).toBe(2));
    expect(readinessLoads).toBe(1);
  });

  it('shows that it is loading again on Retry of a history that never loaded', async () => {
    let historyLoads = 0;
    const api = fakeRecoveryApi({
      listRuns: async ({ active }) => {
        if (active) return [];
        historyLoads += 1;
        if (historyLoads === 1) throw new Error('backend unavailable');
        return new Promise(() => {});
      },
    });
    await render(api, <EntityRecoveryContent pollIntervalMs={600_000} />);
    await userEvent.click(
      await screen.findByRole('button', {
        name: 'Retry loading the run history',
      }),
    );

    // Backstage's Progress shows after a short delay.
    expect(
      await screen.findByRole('progressbar', { name: 'Loading' }),
    ).toBeInTheDocument();
    expect(screen.queryByText(/backend unavailable/)).toBeNull();
    expect(
      screen.queryByRole('button', { name: 'Retry loading the run history' }),
    ).toBeNull();
    expect(historyLoads).toBe(2);
  });

  it('retries a failing history for as long as it is mounted, and no longer', async () => {
    let historyLoads = 0;
    const api = fakeRecoveryApi({
      listRuns: async ({ active }) => {
        if (active) return [];
        historyLoads += 1;
        if (historyLoads === 1) return [makeRun('running')];
        throw new Error('backend unavailable');
      },
    });
    const { unmount } = await render(
      api,
      <EntityRecoveryContent pollIntervalMs={10} />,
    );
    await waitFor(() => expect(historyLoads).toBeGreaterThanOrEqual(4), {
      timeout: 3000,
    });
    unmount();
    const loadsAtUnmount = historyLoads;
    await new Promise(r => setTimeout(r, 700));
    expect(historyLoads).toBe(loadsAtUnmount);
  });

  it('sorts the history by duration, and offers no sorting of the result', async () => {
    const long = makeRun('failed', {
      id: 'run-2',
      createdAt: '2024-05-02T10:00:00Z',
      startedAt: '2024-05-02T10:00:00Z',
      finishedAt: '2024-05-02T10:05:00Z',
    });
    const short = makeRun('succeeded', { id: 'run-1' }); // 45 s
    const api = fakeRecoveryApi({ listRuns: async () => [long, short] });
    await render(api, <EntityRecoveryContent />);
    await screen.findByText('Recovery runs');

    const duration = columnHeader('Duration');
    expect(columnTexts(duration, 2)).toEqual(['5m', '45s']);
    expect(sortButton(columnHeader('Result'))).toBeNull();
    await userEvent.click(sortButton(duration)!);
    await waitFor(() =>
      expect(columnTexts(columnHeader('Duration'), 2)).toEqual(['45s', '5m']),
    );
  });

  it('says why a run failed in the same words in the history, the run details and the last-run summary', async () => {
    // The run failed as a whole after web-1 had: its error names no machine, so no view names
    // web-1 with words not its own (the views used to disagree on whether to name it).
    const failed = makeRun('failed');
    const run = { ...failed, error: { message: 'lab network lost' } };
    const api = fakeRecoveryApi({
      getReadiness: async () =>
        makeReadiness({ status: 'not-recoverable', lastRun: run }),
      listRuns: async ({ active }) => (active ? [] : [run]),
    });
    await render(api, <EntityRecoveryContent />);
    await screen.findByText('Recovery runs');

    const words = 'lab network lost';
    expect(columnTexts(columnHeader('Result'), 3)).toEqual([words]);
    expect(
      screen.getByText('Recovery failed').closest('[role="alert"]'),
    ).toHaveTextContent(`Recovery failed${words}`);
    expect(await screen.findByTestId('last-run')).toHaveTextContent(
      new RegExp(`ago — ${words} · View run$`),
    );
  });

  it('polls no faster than every 100 ms, even when told 0', async () => {
    let historyLoads = 0;
    const api = fakeRecoveryApi({
      listRuns: async ({ active }) => {
        if (!active) historyLoads += 1;
        return [makeRun('running')];
      },
      getRun: async () => makeRun('running'),
    });
    await render(api, <EntityRecoveryContent pollIntervalMs={0} />);
    await screen.findByRole('region', { name: 'Test recovery in progress' });
    await waitFor(() => expect(api.getRun).toHaveBeenCalled());
    const [polls, loads] = [api.getRun.mock.calls.length, historyLoads];
    await new Promise(r => setTimeout(r, 500));

    // In 500 ms: about 5 polls of the run (every 100 ms) and 2 or 3 of the history (every
    // 200 ms), where 0 ms would poll hundreds of times.
    expect(api.getRun.mock.calls.length - polls).toBeLessThanOrEqual(6);
    expect(api.getRun.mock.calls.length - polls).toBeGreaterThanOrEqual(2);
    expect(historyLoads - loads).toBeLessThanOrEqual(4);
  });
});
