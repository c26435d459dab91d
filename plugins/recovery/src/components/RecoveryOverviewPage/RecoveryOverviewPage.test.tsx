import { act, cleanup, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ResponseError } from '@backstage/errors';
import type {
  NightlyCheckOutcome,
  RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
import {
  compareCaptureAge,
  RecoveryOverviewContent,
  RecoveryOverviewPage,
} from './RecoveryOverviewPage';
import {
  fakeRecoveryApi,
  makeReadiness,
  makeReadinessSummary,
  makeRun,
  makeRunSummary,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';
import { columnHeader, columnTexts, sortButton } from '../../testUtils/table';

function render(api: Partial<RecoveryApi>, element: JSX.Element) {
  return renderWithApis(element, { api });
}

describe('RecoveryOverviewPage', () => {
  it('lists readiness sorted by risk, linking to entity pages and last runs', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadinessSummary({
          entityRef: 'component:default/a-ready',
          status: 'ready',
        }),
        makeReadinessSummary({
          entityRef: 'component:default/b-unknown',
          status: 'unknown',
          reasons: ['Never tested'],
          lastRun: undefined,
        }),
        makeReadinessSummary({
          entityRef: 'system:default/c-broken',
          status: 'not-recoverable',
          reasons: ['Last test recovery failed', 'Capture missing'],
          lastRun: makeRunSummary(makeRun('failed')),
        }),
        makeReadinessSummary({
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
    const names = rows.map(r => within(r).getAllByRole('link')[0].textContent);
    expect(names).toEqual(['c-broken', 'd-risky', 'b-unknown', 'a-ready']);

    const broken = rows[0];
    const [entityLink, runLink] = within(broken).getAllByRole('link');
    expect(entityLink).toHaveAttribute(
      'href',
      '/catalog/default/system/c-broken',
    );
    // The last run's time opens the run's page.
    expect(runLink).toHaveAttribute('href', '/recovery/runs/run-1');
    expect(runLink).toHaveAttribute('title', 'Run run-1');
    expect(broken).toHaveTextContent('Not recoverable');
    expect(broken).toHaveTextContent('Last test recovery failed');
    expect(broken).toHaveTextContent('and 1 more');
    expect(broken).toHaveTextContent('at web-1');
    expect(rows[1]).toHaveTextContent('At risk');
    expect(rows[1]).toHaveTextContent('1d 6h / RPO 1d');
    expect(rows[2]).toHaveTextContent('never');
  });

  it('shows why the readiness could not be loaded, and loads it again on Retry', async () => {
    let loads = 0;
    const api = fakeRecoveryApi({
      listReadiness: async () => {
        loads += 1;
        if (loads === 1) throw new Error('Service Unavailable');
        return [makeReadinessSummary()];
      },
    });
    await render(api, <RecoveryOverviewPage />);
    expect(
      await screen.findByText(
        'Could not load the overview: Service Unavailable',
      ),
    ).toBeInTheDocument();

    await userEvent.click(
      screen.getByRole('button', { name: 'Retry loading the overview' }),
    );
    expect(
      await screen.findByText(
        '1 entity — 0 not recoverable, 0 at risk, 0 unknown, 1 ready',
      ),
    ).toBeInTheDocument();
    expect(screen.queryByTestId('load-error')).toBeNull();
    expect(api.listReadiness).toHaveBeenCalledTimes(2);
  });

  it('shows that it is loading again on Retry, not the error it is retrying', async () => {
    // The overview of a large site takes seconds to answer: the error stayed on screen all that
    // time, as if Retry did nothing.
    let loads = 0;
    const api = fakeRecoveryApi({
      listReadiness: async () => {
        loads += 1;
        if (loads === 1) throw new Error('Service Unavailable');
        return new Promise(() => {});
      },
    });
    await render(api, <RecoveryOverviewPage />);
    await userEvent.click(
      await screen.findByRole('button', { name: 'Retry loading the overview' }),
    );

    expect(await screen.findByTestId('loading-indicator')).toBeInTheDocument();
    expect(screen.queryByTestId('load-error')).toBeNull();
    expect(
      screen.queryByRole('button', { name: 'Retry loading the overview' }),
    ).toBeNull();
    expect(api.listReadiness).toHaveBeenCalledTimes(2);
  });

  it("says the backend's reason when the readiness cannot be loaded, not only its status", async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => {
        throw await ResponseError.fromResponse(
          new Response(
            JSON.stringify({
              error: {
                name: 'ServiceUnavailableError',
                message:
                  'Catalog unreachable: connect ECONNREFUSED 10.0.0.5:7007',
              },
              response: { statusCode: 503 },
            }),
            {
              status: 503,
              statusText: 'Service Unavailable',
              headers: { 'Content-Type': 'application/json' },
            },
          ),
        );
      },
    });
    await render(api, <RecoveryOverviewPage />);
    // The panel's title, shown without expanding it.
    expect(
      await screen.findByText(
        'Could not load the overview (503 Service Unavailable): Catalog unreachable: connect ECONNREFUSED 10.0.0.5:7007',
      ),
    ).toBeInTheDocument();
  });

  it('reloads every minute while open, keeping the table on screen meanwhile, and says when it loaded', async () => {
    let loads = 0;
    let release = () => {};
    const ready = makeReadinessSummary({
      entityRef: 'component:default/a-ready',
      status: 'ready',
    });
    const broken = makeReadinessSummary({
      entityRef: 'component:default/b-broken',
      status: 'not-recoverable',
    });
    const api = fakeRecoveryApi({
      listReadiness: async () => {
        loads += 1;
        if (loads === 1) return [ready];
        if (loads === 2) await new Promise<void>(r => (release = r));
        return [ready, broken];
      },
    });
    const { unmount } = await render(
      api,
      <RecoveryOverviewContent reloadIntervalMs={50} />,
    );
    expect(await screen.findByText(/^1 entity —/)).toBeInTheDocument();
    expect(screen.getByTestId('overview-loaded')).toHaveTextContent(
      'Loaded just now; reloads every 0s.',
    );

    // While it reloads: the rows as loaded, no spinner over them.
    await waitFor(() => expect(loads).toBe(2));
    expect(screen.queryByTestId('loading-indicator')).toBeNull();
    expect(screen.getByRole('link', { name: 'a-ready' })).toBeInTheDocument();
    release();
    expect(
      await screen.findByText(/^2 entities — 1 not recoverable/),
    ).toBeInTheDocument();

    await waitFor(() => expect(loads).toBeGreaterThanOrEqual(4));
    unmount();
    const loadsAtUnmount = loads;
    await new Promise(r => setTimeout(r, 300));
    expect(loads).toBe(loadsAtUnmount);
  });

  it('keeps the order a user chose across reloads', async () => {
    let loads = 0;
    const api = fakeRecoveryApi({
      listReadiness: async () => {
        loads += 1;
        return [
          makeReadinessSummary({
            entityRef: 'component:default/a',
            status: 'at-risk',
            machineCount: 1,
          }),
          makeReadinessSummary({
            entityRef: 'component:default/b',
            status: 'at-risk',
            machineCount: 3,
          }),
        ];
      },
    });
    await render(api, <RecoveryOverviewContent reloadIntervalMs={100} />);
    await screen.findByText(/^2 entities/);
    const names = () => columnTexts(columnHeader('Entity'), 0);
    expect(names()).toEqual(['a', 'b']);
    await userEvent.click(sortButton(columnHeader('Machines'))!);
    await userEvent.click(sortButton(columnHeader('Machines'))!);
    await waitFor(() => expect(names()).toEqual(['b', 'a']));
    const at = loads;
    await waitFor(() => expect(loads).toBeGreaterThan(at + 1));
    expect(names()).toEqual(['b', 'a']);
  });

  it('orders entities of the same risk by their name as shown, not by kind first', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () =>
        [
          'system:default/alpha',
          'component:default/zeta',
          'component:ops/beta',
        ].map(entityRef =>
          makeReadinessSummary({ entityRef, status: 'at-risk' }),
        ),
    });
    await render(api, <RecoveryOverviewContent />);
    await screen.findByText(/^3 entities/);
    expect(columnTexts(columnHeader('Entity'), 0)).toEqual([
      'alpha',
      'ops/beta',
      'zeta',
    ]);
  });

  it('sorts the Entity column by the names it shows', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadinessSummary({
          entityRef: 'system:default/alpha',
          status: 'ready',
        }),
        makeReadinessSummary({
          entityRef: 'component:default/zeta',
          status: 'not-recoverable',
        }),
        makeReadinessSummary({
          entityRef: 'component:ops/beta',
          status: 'at-risk',
        }),
      ],
    });
    await render(api, <RecoveryOverviewContent />);
    await screen.findByText(/^3 entities/);
    const names = () => columnTexts(columnHeader('Entity'), 0);
    expect(names()).toEqual(['zeta', 'ops/beta', 'alpha']);
    await userEvent.click(sortButton(columnHeader('Entity'))!);
    await waitFor(() => expect(names()).toEqual(['alpha', 'ops/beta', 'zeta']));
    await userEvent.click(sortButton(columnHeader('Entity'))!);
    await waitFor(() => expect(names()).toEqual(['zeta', 'ops/beta', 'alpha']));
  });

  it('reloads every minute by default', async () => {
    await render(fakeRecoveryApi(), <RecoveryOverviewPage />);
    expect(await screen.findByTestId('overview-loaded')).toHaveTextContent(
      /^Loaded just now; reloads every 1m\.$/,
    );
  });

  it('keeps the overview on screen when a reload fails, saying so', async () => {
    let loads = 0;
    const api = fakeRecoveryApi({
      listReadiness: async () => {
        loads += 1;
        if (loads === 1) return [makeReadinessSummary()];
        throw new Error('Service Unavailable');
      },
    });
    await render(api, <RecoveryOverviewContent reloadIntervalMs={50} />);
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'Could not reload the readiness: Service Unavailable. Showing it as loaded just now; trying again.',
    );
    expect(screen.getByText(/^1 entity —/)).toBeInTheDocument();
    expect(screen.queryByTestId('load-error')).toBeNull();
  });

  it('says a reload left unanswered failed, and goes on reloading, rather than showing the old overview for good', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      // The first reload's connection dropped (a VPN, a laptop's sleep): never answered nor refused.
      let loads = 0;
      const api = fakeRecoveryApi({
        listReadiness: async () => {
          loads += 1;
          if (loads === 1) return [makeReadinessSummary()];
          if (loads === 2) return new Promise<never>(() => {});
          return [
            makeReadinessSummary(),
            makeReadinessSummary({
              entityRef: 'component:default/b-broken',
              status: 'not-recoverable',
            }),
          ];
        },
      });
      await render(api, <RecoveryOverviewContent />);
      expect(await screen.findByText(/^1 entity —/)).toBeInTheDocument();

      // Reloaded after a minute; a minute later that reload counts as failed, and says so.
      await act(() => vi.advanceTimersByTimeAsync(60_000));
      expect(loads).toBe(2);
      await act(() => vi.advanceTimersByTimeAsync(60_000));
      expect(screen.getByRole('alert')).toHaveTextContent(
        /^Could not reload the readiness: No answer from the backend within 1m\. Showing it as loaded 2m( \d+s)? ago; trying again\.$/,
      );
      expect(screen.getByText(/^1 entity —/)).toBeInTheDocument();

      // And tries again a minute after, as after any failed reload.
      await act(() => vi.advanceTimersByTimeAsync(60_000));
      expect(loads).toBe(3);
      expect(
        await screen.findByText(/^2 entities — 1 not recoverable/),
      ).toBeInTheDocument();
      expect(screen.queryByRole('alert')).toBeNull();
      expect(screen.getByTestId('overview-loaded')).toHaveTextContent(
        /^Loaded just now;/,
      );
    } finally {
      vi.useRealTimers();
    }
  });

  it('finds entities by the status and the reasons it shows, not only by the status field', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadinessSummary({
          entityRef: 'component:default/a-ready',
          status: 'ready',
        }),
        makeReadinessSummary({
          entityRef: 'component:default/b-broken',
          status: 'not-recoverable',
          reasons: [
            'Last test recovery failed: no answer within 60s',
            'resource:default/ledger-db has never been captured',
          ],
        }),
      ],
    });
    await render(api, <RecoveryOverviewContent />);
    await screen.findByText(/^2 entities/);
    const search = screen.getByRole('textbox', { name: 'Search' });
    const names = () => columnTexts(columnHeader('Entity'), 0);

    await userEvent.type(search, 'not recoverable');
    await waitFor(() => expect(names()).toEqual(['b-broken']));
    // A reason folded into "and 1 more".
    await userEvent.clear(search);
    await userEvent.type(search, 'ledger-db');
    await waitFor(() => expect(names()).toEqual(['b-broken']));
  });

  it('says so when nothing is configured', async () => {
    const api = fakeRecoveryApi({ listReadiness: async () => [] });
    await render(api, <RecoveryOverviewPage />);
    expect(
      await screen.findByText('No entity has recovery configured yet.'),
    ).toBeInTheDocument();
  });
});

describe('RecoveryOverviewPage columns', () => {
  it('says whether the last run was a test recovery or a failover', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        // The overview lists each last run as a summary: no machines or steps to read.
        makeReadinessSummary({
          entityRef: 'component:default/a-tested',
          lastRun: makeRunSummary(makeRun('succeeded')),
        }),
        makeReadinessSummary({
          entityRef: 'component:default/b-failed-over',
          lastRun: makeRunSummary(makeRun('failed', { mode: 'failover' })),
        }),
        // A run of an entity the catalog hides from the caller: no id, the machine it failed at.
        makeReadinessSummary({
          entityRef: 'component:default/c-hidden-run',
          lastRun: {
            mode: 'test',
            status: 'failed',
            createdAt: new Date().toISOString(),
            failedAt: 'resource:default/db-1',
          },
        }),
      ],
    });
    await render(api, <RecoveryOverviewPage />);
    await screen.findByText(/3 entities/);

    const lastRun = columnHeader('Last run');
    expect(
      screen.queryByRole('columnheader', { name: /Last test recovery/ }),
    ).toBeNull();
    const [tested, failedOver, hidden] = columnTexts(lastRun, 4);
    expect(tested).toMatch(
      /^SucceededTest recovery · RTO 4m 12s \/ 15m · .* ago$/,
    );
    expect(failedOver).toMatch(/^FailedFailover · at web-1 · .* ago$/);
    expect(hidden).toBe('FailedTest recovery · at db-1 · just now');
    // A run's time links to its page, but for the hidden one: its id is not told.
    const rows = screen.getAllByRole('row').slice(1);
    expect(within(rows[0]).getByTitle('Run run-1')).toHaveAttribute(
      'href',
      '/recovery/runs/run-1',
    );
    expect(within(rows[2]).getAllByRole('link')).toHaveLength(1); // its entity's
  });

  it('does not say a capture age or a measured RTO over its objective as the objective itself', async () => {
    // Hourly captures against an RPO of 1h: the oldest is 40 s late. The last run took 25 s too long.
    const finished = makeRun('succeeded', { rtoSeconds: 3625 });
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadinessSummary({
          status: 'at-risk',
          objectives: { rpoSeconds: 3600, rtoSeconds: 3600 },
          captures: [
            {
              machineRef: 'resource:default/web-1',
              ageSeconds: 3640,
              latest: { id: 'cap-web', createdAt: finished.createdAt },
            },
          ],
          lastRun: makeRunSummary(finished),
        }),
      ],
    });
    await render(api, <RecoveryOverviewPage />);
    await screen.findByText(/^1 entity/);

    expect(columnTexts(columnHeader('Oldest capture'), 3)).toEqual([
      '1h 0m 40s / RPO 1h',
    ]);
    expect(columnTexts(columnHeader('Last run'), 4)[0]).toMatch(
      /RTO 1h 0m 25s \/ 1h ·/,
    );
  });

  it('writes a measured RTO to the millisecond, as the card and the run do', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadinessSummary({
          lastRun: makeRunSummary(
            makeRun('succeeded', { rtoSeconds: 252.104 }),
          ),
        }),
      ],
    });
    await render(api, <RecoveryOverviewPage />);
    await screen.findByText(/^1 entity/);

    expect(columnTexts(columnHeader('Last run'), 4)[0]).toMatch(
      /^SucceededTest recovery · RTO 4m 12\.104s \/ 15m · /,
    );
  });

  it('shows no machine count for an entity without a plan, and offers sorting only where it sorts', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        makeReadinessSummary({
          entityRef: 'component:default/a-risky',
          status: 'at-risk',
        }),
        // No plan could be made (a dependency cycle): its machines are unknown, not none.
        makeReadinessSummary({
          entityRef: 'component:default/z-noplan',
          machineCount: undefined,
          position: undefined,
        }),
      ],
    });
    await render(api, <RecoveryOverviewPage />);
    await screen.findByText(/2 entities/);

    const machines = columnHeader('Machines');
    expect(columnTexts(machines, 5)).toEqual(['2', '—']);

    // Columns with nothing to sort by have no sort button; the others do.
    for (const title of ['Why', 'Last run']) {
      expect(sortButton(columnHeader(title))).toBeNull();
    }
    for (const title of ['Entity', 'Readiness', 'Oldest capture', 'Machines']) {
      expect(sortButton(columnHeader(title))).toHaveAttribute('role', 'button');
    }
    await userEvent.click(sortButton(machines)!);
    await waitFor(() =>
      expect(columnTexts(columnHeader('Machines'), 5)).toEqual(['—', '2']),
    );
  });
});

describe('RecoveryOverviewPage nightly check', () => {
  const NIGHT = '2026-12-05T02:30:00.000Z';
  const kept = (name: string) =>
    makeReadinessSummary({
      entityRef: `component:default/${name}`,
      nightlyCheck: {
        checkedAt: NIGHT,
        outcome: 'refused',
        reason: 'kept-failover',
        runId: 'f1',
        runEntityRef: 'component:default/bank',
        message:
          'refused: failover f1 of component:default/bank keeps 2 containers on recovery; release failover f1',
      },
    });
  const refused = (
    name: string,
    reason: 'uncaptured' | 'host-busy',
    checkedAt = NIGHT,
  ) =>
    makeReadinessSummary({
      entityRef: `component:default/${name}`,
      nightlyCheck: {
        checkedAt,
        outcome: 'refused',
        reason,
        message: `refused: ${reason}`,
      },
    });

  it('sums up what last night could not run, by why, naming a kept failover once and linking its page', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        kept('k1'),
        kept('k2'),
        kept('k3'),
        refused('u1', 'uncaptured'),
        refused('u2', 'uncaptured'),
        refused('h1', 'host-busy'),
        // An older night's refusal is not last night's.
        refused('old', 'uncaptured', '2026-12-03T02:30:00.000Z'),
        makeReadinessSummary({
          entityRef: 'component:default/s1',
          nightlyCheck: {
            checkedAt: NIGHT,
            outcome: 'started',
            runId: 'r1',
            runEntityRef: 'component:default/s1',
            message: 'started',
          },
        }),
        makeReadinessSummary({
          entityRef: 'component:default/c1',
          nightlyCheck: {
            checkedAt: NIGHT,
            outcome: 'covered',
            runId: 'r2',
            runEntityRef: 'system:default/shop',
            message: 'covered',
          },
        }),
      ],
    });
    await render(api, <RecoveryOverviewPage />);
    const summary = await screen.findByTestId('nightly-check-summary');
    expect(summary).toHaveTextContent(
      "Last nightly check (2026-12-05 02:30:00 UTC): 6 not run — 3 beside failover f1 of bank (release it to free the host), 2 never captured, 1 host busy past the check's time",
    );
    expect(within(summary).getByRole('link', { name: 'bank' })).toHaveAttribute(
      'href',
      '/catalog/default/component/bank',
    );
    expect(within(summary).getByRole('link', { name: 'f1' })).toHaveAttribute(
      'href',
      '/recovery/runs/f1',
    );
  });

  it('marks the rows of the entities last night did not run, and finds them by it', async () => {
    const api = fakeRecoveryApi({
      listReadiness: async () => [
        kept('k1'),
        refused('u1', 'uncaptured'),
        refused('old', 'uncaptured', '2026-12-03T02:30:00.000Z'),
        makeReadinessSummary({
          entityRef: 'component:default/c1',
          nightlyCheck: {
            checkedAt: NIGHT,
            outcome: 'covered',
            runId: 'r2',
            runEntityRef: 'system:default/shop',
            message: 'covered',
          },
        }),
        makeReadinessSummary({
          entityRef: 'component:default/e1',
          nightlyCheck: {
            checkedAt: NIGHT,
            outcome: 'excluded',
            message: 'excluded',
          },
        }),
      ],
    });
    await render(api, <RecoveryOverviewPage />);
    await screen.findByTestId('nightly-check-summary');
    const marker = (name: string) => {
      const row = screen
        .getAllByRole('row')
        .find(r => within(r).queryByRole('link', { name }));
      return (
        within(row!).queryByTestId('not-run-last-night')?.textContent ?? null
      );
    };
    expect(marker('k1')).toBe('Not run last night: beside failover f1');
    expect(marker('u1')).toBe('Not run last night: never captured');
    expect(marker('old')).toBeNull();
    expect(marker('c1')).toBeNull();
    expect(marker('e1')).toBeNull();

    await userEvent.type(
      screen.getByRole('textbox', { name: 'Search' }),
      'not run last night',
    );
    await waitFor(() =>
      expect(columnTexts(columnHeader('Entity'), 0)).toEqual(['k1', 'u1']),
    );
  });

  it('says nothing of the nightly check before a night refused one, nor after a night ran them all', async () => {
    const started = makeReadinessSummary({
      entityRef: 'component:default/k1',
      nightlyCheck: {
        checkedAt: NIGHT,
        outcome: 'started',
        runId: 'r1',
        runEntityRef: 'component:default/k1',
        message: 'started',
      },
    });
    // No outcome yet; then a night that refused k1; then one that ran it.
    const nights = [
      [makeReadinessSummary({ entityRef: 'component:default/k1' })],
      [kept('k1')],
      [started],
    ];
    let loads = 0;
    const listReadiness = vi.fn(
      async () => nights[Math.min(loads++, nights.length - 1)],
    );
    const unsaid = () => {
      expect(screen.queryByTestId('nightly-check-summary')).toBeNull();
      expect(screen.queryByTestId('not-run-last-night')).toBeNull();
      expect(screen.queryByText(/nightly check|last night/i)).toBeNull();
    };
    await render(
      fakeRecoveryApi({ listReadiness }),
      <RecoveryOverviewContent reloadIntervalMs={300} />,
    );
    expect(
      await screen.findByText(
        '1 entity — 0 not recoverable, 0 at risk, 0 unknown, 1 ready',
      ),
    ).toBeInTheDocument();
    unsaid();
    expect(
      await screen.findByTestId('nightly-check-summary', undefined, {
        timeout: 3_000,
      }),
    ).toHaveTextContent(/: 1 not run — 1 beside failover f1/);
    expect(screen.getByTestId('not-run-last-night')).toHaveTextContent(
      'Not run last night: beside failover f1',
    );
    await waitFor(() => expect(listReadiness).toHaveBeenCalledTimes(3), {
      timeout: 3_000,
    });
    await waitFor(unsaid);
  });
});

describe('RecoveryOverviewPage nightly check not ended', () => {
  const [LAST_WHOLE, TONIGHT] = [
    '2026-12-05T02:30:00.000Z',
    '2026-12-06T02:30:00.000Z',
  ];
  const tonight = (state: 'under-way' | 'interrupted', checked = 3) => ({
    checkedAt: TONIGHT,
    state,
    heardAt: '2026-12-06T03:12:00.000Z',
    checked,
    entities: 8,
  });
  const row = (name: string, nightlyCheck: NightlyCheckOutcome) =>
    makeReadinessSummary({
      entityRef: `component:default/${name}`,
      nightlyCheck,
    });
  const kept = {
    outcome: 'refused' as const,
    reason: 'kept-failover' as const,
    runId: 'f1',
    runEntityRef: 'component:default/bank',
    message: 'refused: failover f1',
  };
  /** Tonight's check, under way or interrupted, has reached s1, u1 and c1; k1, h1 and e1 keep the last whole night's. */
  const site = (state: 'under-way' | 'interrupted') => {
    const night = tonight(state);
    return [
      row('s1', {
        checkedAt: TONIGHT,
        outcome: 'started',
        runId: 'r1',
        runEntityRef: 'component:default/s1',
        message: 'run r1 started',
        night,
      }),
      row('u1', {
        checkedAt: TONIGHT,
        outcome: 'refused',
        reason: 'uncaptured',
        message: 'refused: uncaptured',
        night,
      }),
      row('c1', {
        checkedAt: TONIGHT,
        outcome: 'covered',
        runId: 'r2',
        runEntityRef: 'system:default/shop',
        message: 'covered',
        night,
      }),
      row('k1', { checkedAt: LAST_WHOLE, ...kept, newer: night }),
      row('h1', {
        checkedAt: LAST_WHOLE,
        outcome: 'refused',
        reason: 'host-busy',
        message: 'refused: host busy',
        newer: night,
      }),
      row('e1', {
        checkedAt: LAST_WHOLE,
        outcome: 'excluded',
        message: 'excluded',
        newer: night,
      }),
    ];
  };
  const marker = (name: string) => {
    const found = screen
      .getAllByRole('row')
      .find(r => within(r).queryByRole('link', { name }));
    return (
      within(found!).queryByTestId('not-run-last-night')?.textContent ?? null
    );
  };

  it('says a check under way is under way, since when and how far it got, and what the last whole night said of those not reached yet', async () => {
    await render(
      fakeRecoveryApi({ listReadiness: async () => site('under-way') }),
      <RecoveryOverviewPage />,
    );
    const summary = await screen.findByTestId('nightly-check-summary');
    expect(summary).toHaveTextContent(
      'Nightly check under way, started 2026-12-06 02:30:00 UTC: 3 of 8 entities checked so far, 1 not run — 1 never captured. ' +
        "Last whole check (2026-12-05 02:30:00 UTC), for those not reached yet: 2 not run — 1 beside failover f1 of bank (release it to free the host), 1 host busy past the check's time.",
    );
    expect(summary).not.toHaveTextContent('Last nightly check');
    // Each refusal that stands is marked: tonight's, and the last whole night's of those not reached yet.
    expect(['s1', 'u1', 'c1', 'k1', 'h1', 'e1'].map(marker)).toEqual([
      null,
      'Not run last night: never captured',
      null,
      'Not run last night: beside failover f1',
      "Not run last night: host busy past the check's time",
      null,
    ]);
  });

  it('says so from its start, before it has reached anyone', async () => {
    const night = tonight('under-way', 0);
    await render(
      fakeRecoveryApi({
        listReadiness: async () => [
          row('k1', { checkedAt: LAST_WHOLE, ...kept, newer: night }),
          row('e1', {
            checkedAt: LAST_WHOLE,
            outcome: 'excluded',
            message: 'excluded',
            newer: night,
          }),
        ],
      }),
      <RecoveryOverviewPage />,
    );
    expect(
      await screen.findByTestId('nightly-check-summary'),
    ).toHaveTextContent(
      'Nightly check under way, started 2026-12-06 02:30:00 UTC: 0 of 8 entities checked so far. ' +
        'Last whole check (2026-12-05 02:30:00 UTC), for those not reached yet: 1 not run — 1 beside failover f1 of bank (release it to free the host).',
    );
  });

  it('never sums up an interrupted night as a whole one: when it was interrupted, how far it got, and what those it did not reach keep', async () => {
    await render(
      fakeRecoveryApi({ listReadiness: async () => site('interrupted') }),
      <RecoveryOverviewPage />,
    );
    const summary = await screen.findByTestId('nightly-check-summary');
    expect(summary).toHaveTextContent(
      'The nightly check of 2026-12-06 02:30:00 UTC was interrupted at 03:12:00 UTC: 3 of 8 entities checked, 1 not run — 1 never captured. ' +
        "Last whole check (2026-12-05 02:30:00 UTC), for those it did not reach: 2 not run — 1 beside failover f1 of bank (release it to free the host), 1 host busy past the check's time.",
    );
    // Said even where nothing was refused: the night is not a whole one.
    cleanup();
    const quiet = site('interrupted').filter(
      r => !r.nightlyCheck || r.nightlyCheck.outcome !== 'refused',
    );
    await render(
      fakeRecoveryApi({ listReadiness: async () => quiet }),
      <RecoveryOverviewPage />,
    );
    expect(
      await screen.findByTestId('nightly-check-summary'),
    ).toHaveTextContent(
      'The nightly check of 2026-12-06 02:30:00 UTC was interrupted at 03:12:00 UTC: 3 of 8 entities checked. Last whole check (2026-12-05 02:30:00 UTC), for those it did not reach: 0 not run.',
    );
  });

  it("names earlier checks where those not reached keep an interrupted night's outcome", async () => {
    const killed = {
      checkedAt: '2026-12-05T02:30:00.000Z',
      state: 'interrupted' as const,
      heardAt: '2026-12-05T04:00:00.000Z',
      checked: 1,
      entities: 3,
    };
    const night = tonight('under-way', 1);
    await render(
      fakeRecoveryApi({
        listReadiness: async () => [
          row('s1', {
            checkedAt: TONIGHT,
            outcome: 'excluded',
            message: 'excluded',
            night,
          }),
          row('u1', {
            checkedAt: killed.checkedAt,
            outcome: 'refused',
            reason: 'uncaptured',
            message: 'refused: uncaptured',
            night: killed,
            newer: night,
          }),
          row('k1', {
            checkedAt: '2026-12-04T02:30:00.000Z',
            ...kept,
            newer: night,
          }),
        ],
      }),
      <RecoveryOverviewPage />,
    );
    expect(
      await screen.findByTestId('nightly-check-summary'),
    ).toHaveTextContent(
      'Nightly check under way, started 2026-12-06 02:30:00 UTC: 1 of 8 entities checked so far. ' +
        'Earlier checks (the last whole one: 2026-12-04 02:30:00 UTC), for those not reached yet: 2 not run — 1 beside failover f1 of bank (release it to free the host), 1 never captured.',
    );
  });
});

describe('compareCaptureAge', () => {
  it('sorts never-captured rows last and treats them as equal, whatever the input order', () => {
    const captured = makeReadiness();
    const noMachines = makeReadiness({
      entityRef: 'component:default/none',
      captures: [],
    });
    const never = (name: string) =>
      makeReadiness({
        entityRef: `component:default/${name}`,
        captures: [{ machineRef: `resource:default/${name}-1` }],
      });
    const neverA = never('a');
    const neverB = never('b');
    expect(compareCaptureAge(neverA, neverB)).toBe(0);
    for (const input of [
      [neverA, captured, neverB, noMachines],
      [neverB, noMachines, neverA, captured],
    ]) {
      const sorted = [...input].sort(compareCaptureAge);
      expect(sorted.slice(0, 2)).toEqual([noMachines, captured]);
      expect(new Set(sorted.slice(2))).toEqual(new Set([neverA, neverB]));
    }
  });
});
