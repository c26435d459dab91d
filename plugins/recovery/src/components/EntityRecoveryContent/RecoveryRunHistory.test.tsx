import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { mergeRunHistory, RecoveryRunHistory } from './EntityRecoveryContent';
import { fakeRecoveryApi, makeRun } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const WEB = 'component:default/web';

/** Run `run-n`, started on May n at 10:00 UTC. */
const run = (
  n: number,
  stage: 'running' | 'succeeded' = 'succeeded',
): RecoveryRun => ({
  ...makeRun(stage, { id: `run-${n}` }),
  createdAt: `2024-05-0${n}T10:00:00.000Z`,
  startedAt: `2024-05-0${n}T10:00:00.000Z`,
  ...(stage === 'succeeded' && { finishedAt: `2024-05-0${n}T10:01:00.000Z` }),
});

/** The start times the history lists, top to bottom: one button per run. */
const starts = () =>
  screen
    .queryAllByRole('button', { name: /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/ })
    .map(b => b.textContent!.slice(0, 10));

/** A page of runs as GET /runs answers it: `nextCursor` where the next starts, none on the last. */
const page = (items: RecoveryRun[], nextCursor?: string) => ({
  items,
  pageInfo: nextCursor ? { nextCursor } : {},
});

describe('RecoveryRunHistory paging', () => {
  it('loads older runs a page at a time while the API gives a next cursor, and says when there are no more', async () => {
    const pages: Record<string, ReturnType<typeof page>> = {
      first: page([run(5), run(4)], 'after-4'),
      'after-4': page([run(3), run(2)], 'after-2'),
      'after-2': page([run(1)]),
    };
    const api = fakeRecoveryApi({
      listRunsPage: async ({ cursor }) => pages[cursor ?? 'first'],
    });
    await renderWithApis(<RecoveryRunHistory entityRef={WEB} limit={2} />, {
      api,
      entity: null,
    });
    await waitFor(() => expect(starts()).toEqual(['2024-05-05', '2024-05-04']));

    await userEvent.click(
      screen.getByRole('button', { name: 'Show older runs' }),
    );
    await waitFor(() =>
      expect(starts()).toEqual([
        '2024-05-05',
        '2024-05-04',
        '2024-05-03',
        '2024-05-02',
      ]),
    );
    expect(api.listRunsPage).toHaveBeenCalledWith({
      entityRef: WEB,
      limit: 2,
      cursor: 'after-4',
    });
    expect(screen.queryByText(/No older runs/)).toBeNull();

    // A page without a next cursor is the last one.
    await userEvent.click(
      screen.getByRole('button', { name: 'Show older runs' }),
    );
    expect(
      await screen.findByText('No older runs: 5 runs in all.'),
    ).toBeInTheDocument();
    expect(api.listRunsPage).toHaveBeenLastCalledWith({
      entityRef: WEB,
      limit: 2,
      cursor: 'after-2',
    });
    expect(starts()).toEqual([
      '2024-05-05',
      '2024-05-04',
      '2024-05-03',
      '2024-05-02',
      '2024-05-01',
    ]);
    expect(
      screen.queryByRole('button', { name: 'Show older runs' }),
    ).toBeNull();
  });

  it('offers no older runs where the API gives no next cursor, a full page too', async () => {
    const api = fakeRecoveryApi({
      listRunsPage: async () => page([run(5), run(4)]),
    });
    await renderWithApis(<RecoveryRunHistory entityRef={WEB} limit={2} />, {
      api,
      entity: null,
    });
    await waitFor(() => expect(starts()).toEqual(['2024-05-05', '2024-05-04']));
    expect(
      screen.queryByRole('button', { name: 'Show older runs' }),
    ).toBeNull();
    expect(screen.queryByText(/No older runs/)).toBeNull();
  });

  it('keeps the older runs loaded while it polls the newest page, and the run newer ones push off it', async () => {
    let olderLoaded = false;
    const api = fakeRecoveryApi({
      listRunsPage: async ({ cursor }) => {
        if (cursor === 'after-4') {
          olderLoaded = true;
          return page([run(3)]);
        }
        // Once the older page is in, a new run starts: run-4 is no longer on the newest page.
        return olderLoaded
          ? page([run(6, 'running'), run(5)], 'after-5')
          : page([run(5, 'running'), run(4)], 'after-4');
      },
    });
    await renderWithApis(
      <RecoveryRunHistory entityRef={WEB} limit={2} pollIntervalMs={10} />,
      { api, entity: null },
    );
    await waitFor(() => expect(starts()).toEqual(['2024-05-05', '2024-05-04']));

    await userEvent.click(
      screen.getByRole('button', { name: 'Show older runs' }),
    );
    await waitFor(() =>
      expect(starts()).toEqual([
        '2024-05-06',
        '2024-05-05',
        '2024-05-04',
        '2024-05-03',
      ]),
    );
    expect(
      screen.getByText('No older runs: 4 runs in all.'),
    ).toBeInTheDocument();
    // Still polled: the new run is in progress.
    const polls = api.listRunsPage.mock.calls.length;
    await waitFor(() =>
      expect(api.listRunsPage.mock.calls.length).toBeGreaterThan(polls + 2),
    );
    // The older pages end where the one loaded said: not at the newest page's cursor since.
    expect(
      screen.queryByRole('button', { name: 'Show older runs' }),
    ).toBeNull();
    expect(starts()).toEqual([
      '2024-05-06',
      '2024-05-05',
      '2024-05-04',
      '2024-05-03',
    ]);
  });

  it('says why older runs could not be loaded, and loads them on another click', async () => {
    let tries = 0;
    const api = fakeRecoveryApi({
      listRunsPage: async ({ cursor }) => {
        if (cursor === undefined) return page([run(5), run(4)], 'after-4');
        tries += 1;
        if (tries === 1) throw new Error('backend unavailable');
        return page([run(3)]);
      },
    });
    await renderWithApis(<RecoveryRunHistory entityRef={WEB} limit={2} />, {
      api,
      entity: null,
    });
    await userEvent.click(
      await screen.findByRole('button', { name: 'Show older runs' }),
    );
    expect(
      await screen.findByText(/Could not load older runs: backend unavailable/),
    ).toBeInTheDocument();
    expect(starts()).toEqual(['2024-05-05', '2024-05-04']);

    await userEvent.click(
      screen.getByRole('button', { name: 'Show older runs' }),
    );
    expect(
      await screen.findByText('No older runs: 3 runs in all.'),
    ).toBeInTheDocument();
    expect(screen.queryByText(/Could not load older runs/)).toBeNull();
  });
});

describe('RecoveryRunHistory, a load left unanswered', () => {
  // A request whose connection dropped (a VPN, a laptop's sleep) is never answered nor refused.
  const unanswered = () => new Promise<never>(() => {});

  it('fails a load or poll left unanswered for 30 polls, says so, and retries it as a failed one', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      let loads = 0;
      const api = fakeRecoveryApi({
        listRuns: async () => {
          loads += 1;
          if (loads === 1 || loads === 3) return unanswered();
          return loads === 2 ? [run(5, 'running')] : [run(5)];
        },
      });
      // Polled every second: a load gets 30 s.
      await renderWithApis(
        <RecoveryRunHistory entityRef={WEB} pollIntervalMs={1000} />,
        { api, entity: null },
      );
      await act(() => vi.advanceTimersByTimeAsync(30_000));
      expect(
        screen.getByText(
          'Could not load the run history: No answer from the backend within 30s',
        ),
      ).toBeInTheDocument();
      expect(
        screen.getByRole('button', { name: 'Retry loading the run history' }),
      ).toBeInTheDocument();

      // Retried by itself, 2 s after; then polled while its run is in progress.
      await act(() => vi.advanceTimersByTimeAsync(2_000));
      await waitFor(() => expect(starts()).toEqual(['2024-05-05']));
      await act(() => vi.advanceTimersByTimeAsync(1_000));
      expect(loads).toBe(3);
      await act(() => vi.advanceTimersByTimeAsync(30_000));
      expect(
        screen.getByText(
          'Could not reload the run history: No answer from the backend within 30s. Showing the last list loaded; retrying…',
        ),
      ).toBeInTheDocument();
      expect(starts()).toEqual(['2024-05-05']);

      await act(() => vi.advanceTimersByTimeAsync(2_000));
      // The run, finished, with its RTO where "in progress" was.
      expect(await screen.findByText(/^RTO /)).toBeInTheDocument();
      expect(screen.queryByText(/Could not reload the run history/)).toBeNull();
      expect(loads).toBe(4);
    } finally {
      vi.useRealTimers();
    }
  });

  it('says a page of older runs left unanswered for a minute was not loaded, and loads it on another click', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
      let tries = 0;
      const api = fakeRecoveryApi({
        listRunsPage: async ({ cursor }) => {
          if (cursor === undefined) return page([run(5), run(4)], 'after-4');
          tries += 1;
          return tries === 1 ? unanswered() : page([run(3)]);
        },
      });
      await renderWithApis(<RecoveryRunHistory entityRef={WEB} limit={2} />, {
        api,
        entity: null,
      });
      await user.click(
        await screen.findByRole('button', { name: 'Show older runs' }),
      );
      expect(
        screen.getByRole('button', { name: 'Loading older runs…' }),
      ).toBeDisabled();

      await act(() => vi.advanceTimersByTimeAsync(60_000));
      expect(
        screen.getByText(
          'Could not load older runs: No answer from the backend within 1m',
        ),
      ).toBeInTheDocument();
      expect(starts()).toEqual(['2024-05-05', '2024-05-04']);

      await user.click(screen.getByRole('button', { name: 'Show older runs' }));
      expect(
        await screen.findByText('No older runs: 3 runs in all.'),
      ).toBeInTheDocument();
      expect(screen.queryByText(/Could not load older runs/)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('RecoveryRunHistory of an interrupted run', () => {
  it('lists a run a failover preempted as interrupted, saying by what, beside a real failure', async () => {
    const preempted = makeRun('failed', {
      status: 'interrupted',
      id: 'run-2',
      createdAt: '2024-05-02T10:00:00.000Z',
      error: {
        message:
          'Interrupted: preempted by failover run-7 of system:default/site',
      },
    });
    const failed = makeRun('failed', { id: 'run-1' });
    const api = fakeRecoveryApi({ listRuns: async () => [preempted, failed] });
    await renderWithApis(<RecoveryRunHistory entityRef={WEB} />, {
      api,
      entity: null,
    });
    await waitFor(() => expect(starts()).toHaveLength(2));
    // The history's rows: each with its start time's button (the run's details below have none).
    const [first, second] = screen
      .getAllByRole('row')
      .filter(r => r.querySelector('button[aria-pressed]'));
    expect(first).toHaveTextContent('Interrupted');
    expect(first).not.toHaveTextContent('Failed');
    // Why, as a sentence: not the backend's raw prefix.
    expect(first).toHaveTextContent(
      'Preempted by failover run-7 of system:default/site.',
    );
    expect(first).not.toHaveTextContent('Interrupted:');
    expect(second).toHaveTextContent('Failed');
    expect(second).toHaveTextContent(
      'Machine web-1 failed probe http:80/healthz',
    );
  });

  it('says on its row the recovery point a run recovered to, and nothing on a run of the latest captures', async () => {
    const earlier = { ...run(2), recoveryPoint: '2024-04-28T00:00:00.000Z' };
    const api = fakeRecoveryApi({ listRuns: async () => [earlier, run(1)] });
    await renderWithApis(<RecoveryRunHistory entityRef={WEB} />, {
      api,
      entity: null,
    });
    await waitFor(() => expect(starts()).toHaveLength(2));
    const [first, second] = screen
      .getAllByRole('row')
      .filter(r => r.querySelector('button[aria-pressed]'));
    expect(first).toHaveTextContent(
      'to the recovery point 2024-04-28 00:00:00 UTC',
    );
    expect(second).not.toHaveTextContent('recovery point');
  });

  it('says who started each run as the run page and the CLI do: scheduled, the user, or a user where none was recorded', async () => {
    const { createdBy: _, ...noCreator } = run(3);
    const api = fakeRecoveryApi({
      listRuns: async () => [
        noCreator,
        { ...run(2), trigger: 'schedule', createdBy: undefined },
        run(1),
      ],
    });
    await renderWithApis(<RecoveryRunHistory entityRef={WEB} />, {
      api,
      entity: null,
    });
    await waitFor(() => expect(starts()).toHaveLength(3));
    const rows = screen
      .getAllByRole('row')
      .filter(r => r.querySelector('button[aria-pressed]'));
    expect(
      rows.map(r => within(r).getByText(/ on recovery-1 · /).textContent),
    ).toEqual([
      'test on recovery-1 · a user',
      'test on recovery-1 · scheduled',
      'test on recovery-1 · user:guest',
    ]);
  });
});

describe('mergeRunHistory', () => {
  it('lists each run once, newest first, the newest page as loaded last, ties by id', () => {
    const tie = { ...run(3), id: 'run-3b' };
    const merged = mergeRunHistory(
      [run(5, 'succeeded')],
      [run(5, 'running'), run(3), tie, run(4)],
    );
    expect(merged.map(r => r.id)).toEqual([
      'run-5',
      'run-4',
      'run-3b',
      'run-3',
    ]);
    expect(merged[0].status).toBe('succeeded');
  });
});
