import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type {
  RecoveryRun,
  RunStep,
} from '@backstage-recovery/plugin-recovery-common';
import { RunDetails } from './RunDetails';
import { DB, fakeRecoveryApi, makeRun, WEB } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

function renderRun(element: JSX.Element) {
  return renderWithApis(element, { api: fakeRecoveryApi(), entity: null });
}

/** A running run whose timeline has `n` steps, `Step 1` to `Step n`. */
function runWithSteps(n: number): RecoveryRun {
  const run = makeRun('running');
  const steps: RunStep[] = Array.from({ length: n }, (_, i) => ({
    at: new Date(Date.parse(run.createdAt) + i * 1000).toISOString(),
    machineRef: DB,
    level: 'info',
    message: `Step ${i + 1}`,
  }));
  return { ...run, steps };
}

/** The timeline's rows below its header row. */
function timelineSteps(): string[] {
  const timeline = screen.getByRole('table', { name: 'Timeline' });
  const [, ...body] = within(timeline).getAllByRole('row');
  return body.map(row => within(row).getAllByRole('cell')[2].textContent ?? '');
}

/** The timeline's times, top to bottom. */
function timelineTimes(): string[] {
  const timeline = screen.getByRole('table', { name: 'Timeline' });
  const [, ...body] = within(timeline).getAllByRole('row');
  return body.map(row => within(row).getAllByRole('cell')[0].textContent ?? '');
}

/** A run started at 23:59:58 UTC on December 4 whose steps cross midnight. */
function runOverMidnight(): RecoveryRun {
  const run = makeRun('running');
  const step = (at: string, message: string): RunStep => ({
    at,
    machineRef: DB,
    level: 'info',
    message,
  });
  return {
    ...run,
    createdAt: '2026-12-04T23:59:58.000Z',
    startedAt: '2026-12-04T23:59:58.000Z',
    machines: run.machines.map(m => ({
      ...m,
      restoreStartedAt: '2026-12-04T23:59:59.000Z',
      restoredAt: '2026-12-05T00:00:02.000Z',
      startedAt: m.startedAt && '2026-12-05T00:00:03.000Z',
      readyAt: m.readyAt && '2026-12-05T00:00:05.000Z',
      finishedAt: m.finishedAt && '2026-12-05T00:00:05.000Z',
    })),
    steps: [
      step('2026-12-04T23:59:58.000Z', 'Step 1'),
      step('2026-12-04T23:59:59.000Z', 'Step 2'),
      step('2026-12-05T00:00:03.000Z', 'Step 3'),
      step('2026-12-05T00:00:04.000Z', 'Step 4'),
    ],
  };
}

describe('RunDetails', () => {
  it('dates a step of the timeline whose UTC date is not the one of the step above', async () => {
    await renderRun(<RunDetails run={runOverMidnight()} />);
    expect(timelineTimes()).toEqual([
      '23:59:58 UTC',
      '23:59:59 UTC',
      '2026-12-05 00:00:03 UTC',
      '00:00:04 UTC',
    ]);
    // The machines too, against the run's start.
    const db = screen.getByTestId('run-machine-db');
    expect(db).toHaveTextContent('from 23:59:59 UTC');
    expect(db).toHaveTextContent('started 2026-12-05 00:00:03 UTC');
    expect(db).toHaveTextContent('2026-12-05 00:00:05 UTC');
  });

  it('dates the first step shown against the run start when earlier steps are left out', async () => {
    await renderRun(<RunDetails run={runOverMidnight()} maxSteps={2} />);
    // The steps above it are hidden: the header's start date is the one read.
    expect(timelineTimes()).toEqual([
      '2026-12-05 00:00:03 UTC',
      '00:00:04 UTC',
    ]);
  });

  it('names the columns of the timeline in a header row', async () => {
    await renderRun(<RunDetails run={makeRun('running')} />);
    const timeline = screen.getByRole('table', { name: 'Timeline' });
    const [header] = within(timeline).getAllByRole('row');
    expect(
      within(header)
        .getAllByRole('columnheader')
        .map(h => h.textContent),
    ).toEqual(['Time', 'Machine', 'Step']);
  });

  it('says how many earlier steps it leaves out, and shows them all on request', async () => {
    await renderRun(<RunDetails run={runWithSteps(15)} maxSteps={12} />);

    expect(screen.getByText(/3 earlier steps not shown/)).toBeInTheDocument();
    const shown = timelineSteps();
    expect(shown).toHaveLength(12);
    expect(shown[0]).toBe('Step 4');
    expect(shown.at(-1)).toBe('Step 15');

    await userEvent.click(
      screen.getByRole('button', { name: 'Show all 15 steps' }),
    );
    expect(timelineSteps()).toHaveLength(15);
    expect(timelineSteps()[0]).toBe('Step 1');
    expect(screen.queryByText(/earlier steps? not shown/)).toBeNull();
  });

  it('says a warning is among the earlier steps it leaves out: a capture restored over the RPO', async () => {
    const run = runWithSteps(15);
    run.steps[1] = {
      ...run.steps[1],
      level: 'warning',
      message:
        'Restores its capture of 2024-04-29T10:00:00.000Z, 2 d old when the run was admitted, over the RPO of 24 h: a recovery from it would lose what changed since',
    };
    await renderRun(
      <RunDetails
        run={{ ...run, status: 'succeeded', finishedAt: run.steps[14].at }}
        maxSteps={12}
      />,
    );
    expect(screen.getByText(/3 earlier steps not shown/)).toHaveTextContent(
      '3 earlier steps not shown, 1 warning or error among them. Show all 15 steps',
    );
    await userEvent.click(
      screen.getByRole('button', { name: 'Show all 15 steps' }),
    );
    const row = screen.getByText(/over the RPO of 24 h/).closest('tr')!;
    expect(within(row).getByTitle('Warning')).toBeInTheDocument();
  });

  it('says no warning is among the earlier steps when none is', async () => {
    await renderRun(<RunDetails run={runWithSteps(15)} maxSteps={12} />);
    expect(screen.getByText(/3 earlier steps not shown/)).not.toHaveTextContent(
      /warning/,
    );
  });

  it('marks an error step of the timeline as an error to a screen reader, not by its colour alone', async () => {
    // A teardown that failed after the run succeeded: its words do not say they are an error.
    const run = makeRun('succeeded');
    const withError: RecoveryRun = {
      ...run,
      steps: [
        ...run.steps,
        {
          at: run.finishedAt!,
          level: 'error',
          message:
            'Teardown: network rec-run-1 still has endpoints; the lab stays on recovery-1',
        },
      ],
    };
    await renderRun(<RunDetails run={withError} />);
    const timeline = screen.getByRole('table', { name: 'Timeline' });
    const errorRow = within(timeline)
      .getByText(/Teardown: network/)
      .closest('tr') as HTMLElement;
    expect(
      within(errorRow).getByRole('img', { name: 'Error' }),
    ).toBeInTheDocument();
    const infoRow = within(timeline)
      .getByText('Run admitted')
      .closest('tr') as HTMLElement;
    expect(within(infoRow).queryByRole('img')).toBeNull();
  });

  it('does not say a measured RTO over the objective as the objective itself', async () => {
    await renderRun(
      <RunDetails
        run={makeRun('succeeded', { rtoSeconds: 3640 })}
        rtoObjectiveSeconds={3600}
      />,
    );
    expect(
      screen.getByText('Recovery succeeded').closest('[role="alert"]'),
    ).toHaveTextContent('measured RTO 1h 0m 40s (objective 1h, exceeded)');
  });

  it('says the measured RTO to the millisecond, as the steps that add up to it', async () => {
    await renderRun(
      <RunDetails
        run={makeRun('succeeded', { rtoSeconds: 2.621 })}
        rtoObjectiveSeconds={3600}
      />,
    );
    // Not `3s` above a step that says the machine took 2.621 s.
    expect(
      screen.getByText('Recovery succeeded').closest('[role="alert"]'),
    ).toHaveTextContent('measured RTO 2.621s (objective 1h)');
  });

  it('says nothing is left out when every step fits', async () => {
    await renderRun(<RunDetails run={runWithSteps(12)} maxSteps={12} />);
    expect(timelineSteps()).toHaveLength(12);
    expect(screen.queryByText(/not shown/)).toBeNull();
    expect(screen.queryByRole('button', { name: /Show all/ })).toBeNull();
  });

  it('labels each log tail as a group named after its machine', async () => {
    const failed = makeRun('failed');
    const run: RecoveryRun = {
      ...failed,
      machines: failed.machines.map(m =>
        m.machineRef === DB
          ? { ...m, logTail: 'db: ready to accept connections' }
          : m,
      ),
    };
    await renderRun(<RunDetails run={run} />);

    // The failed machine's, in the outcome; the others' below the timeline.
    expect(screen.getByRole('group', { name: 'Log tail' })).toHaveTextContent(
      'nginx: [emerg] host not found in upstream "db:5432"',
    );
    expect(
      screen.getByRole('group', { name: 'Log tail of db' }),
    ).toHaveTextContent('db: ready to accept connections');
    expect(
      screen.queryByRole('group', { name: 'Log tail of web-1' }),
    ).toBeNull();
  });

  it('says where a log tail is withheld, and which permission on which machine shows it, rather than show nothing', async () => {
    const failed = makeRun('failed');
    // As the backend answers a caller without recovery.run.logs.read on these machines.
    const run: RecoveryRun = {
      ...failed,
      machines: failed.machines.map(({ logTail, ...m }) =>
        logTail || m.machineRef === DB ? { ...m, logTailWithheld: true } : m,
      ),
    };
    await renderRun(<RunDetails run={run} />);

    const why = `withheld: reading it needs the recovery.run.logs.read permission on`;
    const outcome = screen
      .getByText('Recovery failed')
      .closest('[role="alert"]') as HTMLElement;
    expect(
      within(outcome).getByRole('note', { name: 'Log tail' }),
    ).toHaveTextContent(`Log tail ${why} web-1.`);
    expect(
      screen.getByRole('note', { name: 'Log tail of db' }),
    ).toHaveTextContent(`Log tail of db ${why} db.`);
    expect(screen.queryByRole('group', { name: /Log tail/ })).toBeNull();
  });

  it('blames no machine for a failure of the run as a whole, and shows the log tail of one that failed once, with it', async () => {
    const failed = makeRun('failed');
    // The run failed as a whole (its lab network went away, a host outage) after web-1 had
    // failed: the error names no machine, and "Machine web-1 failed: lab network lost" would
    // blame web-1 in words not its own.
    const run: RecoveryRun = {
      ...failed,
      error: { message: 'lab network lost' },
    };
    await renderRun(<RunDetails run={run} />);

    const outcome = screen
      .getByText('Recovery failed')
      .closest('[role="alert"]') as HTMLElement;
    expect(outcome).toHaveTextContent(/^Recovery failedlab network lost$/);
    expect(
      within(outcome).queryByRole('group', { name: 'Log tail' }),
    ).toBeNull();
    expect(
      screen.getByRole('group', { name: 'Log tail of web-1' }),
    ).toHaveTextContent('host not found in upstream');
  });

  it("keeps a failure's reason over several lines on as many lines, rather than run them together", async () => {
    const failed = makeRun('failed');
    const reason =
      'connection refused\n  at 10.20.3.14:5432 (attempt 80 of 80)\n  last answer: ECONNREFUSED';
    const run: RecoveryRun = {
      ...failed,
      error: { message: reason },
    };
    await renderRun(<RunDetails run={run} />);

    const outcome = screen
      .getByText('Recovery failed')
      .closest('[role="alert"]') as HTMLElement;
    // The lines as the backend wrote them, shown as lines (a browser folds a newline into a space
    // unless the element keeps it).
    const lines = within(outcome).getByText(
      (_, el) => el?.tagName === 'SPAN' && el.textContent === reason,
    );
    expect(getComputedStyle(lines).whiteSpace).toBe('pre-line');
  });
});

describe('RunDetails in a narrow card', () => {
  it('cuts a long machine name short in the timeline, its full ref on hover, rather than widen the table', async () => {
    const long =
      'resource:default/payments-ledger-postgres-primary-eu-west-1-az-b-replica-01';
    const run = makeRun('running');
    await renderRun(
      <RunDetails
        run={{
          ...run,
          steps: [
            {
              at: run.createdAt,
              machineRef: long,
              level: 'info',
              message: 'Restoring capture cap-1',
            },
          ],
        }}
      />,
    );
    const timeline = screen.getByRole('table', { name: 'Timeline' });
    const name = within(timeline).getByTitle(long);
    expect(name).toHaveTextContent(
      'payments-ledger-postgres-primary-eu-west-1-az-b-replica-01',
    );
    expect(getComputedStyle(name)).toMatchObject({
      maxWidth: '12em',
      overflow: 'hidden',
      textOverflow: 'ellipsis',
    });
  });
});

describe('RunDetails, a console tail', () => {
  /** A failed run whose failed machine's console tail is `logTail`. */
  function failedWithTail(logTail: string): RecoveryRun {
    const failed = makeRun('failed');
    return {
      ...failed,
      machines: failed.machines.map(m =>
        m.machineRef === WEB ? { ...m, logTail } : m,
      ),
    };
  }

  afterEach(() => vi.restoreAllMocks());

  it('shows it as a terminal would: no colour codes, a progress line as it ended', async () => {
    const tail = [
      '\x1b[32m2024-05-01 10:00:00\x1b[0m \x1b[1;31mERROR\x1b[0m upstream "db:5432" not found\x1b[K',
      '\x1b]0;nginx\x07fetching 10%\rfetching 60%\rfetching 100%',
      'done\r',
    ].join('\r\n');
    await renderRun(<RunDetails run={failedWithTail(tail)} />);

    const box = screen.getByRole('group', { name: 'Log tail' });
    expect(box.textContent).toBe(
      '2024-05-01 10:00:00 ERROR upstream "db:5432" not found\nfetching 100%\ndone',
    );
  });

  it('opens a long one at its last lines, which say why, and lets a keyboard scroll it', async () => {
    // The box is 240 px high; 30 lines of console are more.
    vi.spyOn(Element.prototype, 'scrollHeight', 'get').mockReturnValue(540);
    const tail = Array.from({ length: 30 }, (_, i) => `line ${i + 1}`).join(
      '\n',
    );
    await renderRun(<RunDetails run={failedWithTail(tail)} />);

    const box = screen.getByRole('group', { name: 'Log tail' });
    expect(box.scrollTop).toBe(540);
    expect(box).toHaveAttribute('tabindex', '0');
  });
});

describe('RunDetails of a run still queued', () => {
  it('says it is queued, at no wave yet', async () => {
    await renderRun(<RunDetails run={makeRun('pending')} />);
    expect(screen.getByText(/Test recovery queued on/)).toHaveTextContent(
      /^Test recovery queued on recovery-1 — 0 of 2 machines ready$/,
    );
  });
});

describe('RunDetails, who started it', () => {
  it('names who started a run as the run history does, by short ref', async () => {
    await renderRun(
      <RunDetails
        run={{
          ...makeRun('succeeded'),
          trigger: 'user',
          createdBy: 'user:default/guest',
        }}
      />,
    );
    expect(screen.getByText(/by user:guest ·/)).toBeInTheDocument();
    expect(screen.queryByText(/user:default\/guest/)).not.toBeInTheDocument();
  });
});

describe('RunDetails of a run with a job machine', () => {
  it('says the job is one, and that it completed rather than that it is ready', async () => {
    const run = makeRun('succeeded');
    await renderRun(
      <RunDetails
        run={{
          ...run,
          plan: {
            ...run.plan,
            machines: run.plan.machines.map(m =>
              m.machineRef === DB ? { ...m, job: true } : m,
            ),
          },
        }}
      />,
    );
    const job = screen.getByTestId('run-machine-db');
    expect(job).toHaveTextContent('job: ready once it exits 0');
    expect(within(job).getAllByRole('cell')[1]).toHaveTextContent(
      /^Completed$/,
    );
    // A machine that keeps running is ready, and no job.
    const web = screen.getByTestId('run-machine-web-1');
    expect(web).not.toHaveTextContent('job');
    expect(within(web).getAllByRole('cell')[1]).toHaveTextContent(/^Ready$/);
  });
});

describe('RunDetails of a run to a recovery point', () => {
  it("says the point it recovered to, that readiness leaves it out, and when each machine's restored capture was taken", async () => {
    const base = makeRun('succeeded');
    const taken: Record<string, string> = {
      [DB]: '2024-04-27T22:00:00.000Z',
      [WEB]: '2024-04-27T23:30:00.000Z',
    };
    renderRun(
      <RunDetails
        run={{
          ...base,
          recoveryPoint: '2024-04-28T00:00:00.000Z',
          machines: base.machines.map(m => ({
            ...m,
            capturedAt: taken[m.machineRef],
          })),
        }}
      />,
    );
    const point = await screen.findByTestId('run-recovery-point');
    expect(point).toHaveTextContent('Recovery point 2024-04-28 00:00:00 UTC');
    expect(point).toHaveTextContent('does not count for readiness');
    expect(screen.getByTestId('run-machine-db')).toHaveTextContent(
      'capture of 2024-04-27 22:00:00 UTC',
    );
    expect(screen.getByTestId('run-machine-web-1')).toHaveTextContent(
      'capture of 2024-04-27 23:30:00 UTC',
    );
  });

  it('says neither of a run of the latest captures recorded without their times', async () => {
    renderRun(<RunDetails run={makeRun('succeeded')} />);
    await screen.findByTestId('run-machine-db');
    expect(screen.queryByTestId('run-recovery-point')).toBeNull();
    expect(
      screen.getByRole('table', { name: 'Machines' }),
    ).not.toHaveTextContent('capture of');
  });
});

describe('RunDetails of an interrupted run', () => {
  /** A test recovery a failover preempted, as the backend records it (admitRun). */
  function preempted(): RecoveryRun {
    const message =
      'Interrupted: preempted by failover run-7 of system:default/site';
    const run = makeRun('failed', {
      status: 'interrupted',
      error: { message },
      machines: [
        { ...makeRun('succeeded').machines[0] },
        {
          machineRef: WEB,
          wave: 1,
          phase: 'interrupted',
          restoreStartedAt: '2024-05-01T10:00:21Z',
          finishedAt: '2024-05-01T10:00:25Z',
          message,
        },
      ],
    });
    return {
      ...run,
      steps: [
        ...run.steps.slice(0, 1),
        { at: '2024-05-01T10:00:25Z', level: 'error', message },
      ],
    };
  }

  it('says a run preempted by a failover was interrupted by it, not that its recovery failed', async () => {
    await renderRun(<RunDetails run={preempted()} />);
    const outcome = screen.getByRole('alert');
    expect(outcome).toHaveTextContent(
      'Test recovery interruptedPreempted by failover run-7 of system:default/site. An interrupted run does not count for readiness',
    );
    expect(outcome).not.toHaveTextContent(
      /Recovery failed|Machine web-1 failed/,
    );
    // Its status and the machine it was booting read as interrupted, by word not only by colour.
    expect(screen.getAllByText('Interrupted')).toHaveLength(2); // the run's status, web-1's phase
    expect(screen.getByTestId('run-machine-web-1')).toHaveTextContent(
      'Interrupted',
    );
    expect(screen.getByTestId('run-machine-web-1')).not.toHaveTextContent(
      'Failed',
    );
    expect(screen.queryByText('Failed')).toBeNull();
  });

  it('leaves the interruption to the outcome: the timeline does not say it again', async () => {
    await renderRun(<RunDetails run={preempted()} />);
    expect(timelineSteps()).toEqual(['Run admitted']);
    expect(screen.getAllByText(/Preempted by failover run-7/i)).toHaveLength(1);
  });

  it('says the outcome is all there is where the interruption was its only step', async () => {
    // Preempted while queued: no step besides it.
    const run = preempted();
    await renderRun(<RunDetails run={{ ...run, steps: run.steps.slice(1) }} />);
    expect(
      screen.getByText('No steps recorded besides its outcome.'),
    ).toBeInTheDocument();
    expect(screen.queryByRole('table', { name: 'Timeline' })).toBeNull();
  });

  it('still says a run that failed on its own failed', async () => {
    await renderRun(<RunDetails run={makeRun('failed')} />);
    expect(screen.getByRole('alert')).toHaveTextContent(/^Recovery failed/);
    expect(screen.queryByText('Interrupted')).toBeNull();
  });

  it('says a failed run failed whatever its words: only its status and phases say interrupted', async () => {
    // A host's own words that happen to start as an interruption's, the failed machine's too.
    const message = 'Interrupted: the engine restarted the lab';
    const run = makeRun('failed', { error: { message } });
    await renderRun(
      <RunDetails
        run={{
          ...run,
          machines: run.machines.map(m =>
            m.phase === 'failed' ? { ...m, message } : m,
          ),
        }}
      />,
    );
    expect(screen.getByRole('alert')).toHaveTextContent(
      `Recovery failed${message}`,
    );
    expect(screen.getByTestId('run-machine-web-1')).toHaveTextContent('Failed');
    expect(screen.queryByText('Interrupted')).toBeNull();
  });
});

describe('releasing a failover', () => {
  const failover = makeRun('succeeded', { id: 'fo-1', mode: 'failover' });

  it('asks first, then releases a finished failover and says what its host removed', async () => {
    const step = {
      at: '2024-05-02T10:00:00Z',
      level: 'info' as const,
      message:
        'Released by user:default/dr: removed 3 containers (a, b, c) and 1 network (lab) it kept on recovery',
    };
    const api = fakeRecoveryApi({
      releaseFailover: async () => ({
        ...failover,
        steps: [...failover.steps, step],
      }),
    });
    await renderWithApis(<RunDetails run={failover} />, { api, entity: null });
    await userEvent.click(
      await screen.findByRole('button', { name: 'Release failover machines' }),
    );
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent(/^Release the failover of .+\?/);
    expect(dialog).toHaveTextContent(
      /served production since it ran.*only once production runs on its primary machines again/,
    );
    // What they wrote since lives only in them: the dialog says it goes, and what to do first.
    expect(dialog).toHaveTextContent(
      'Whatever they wrote since 2024-05-01 10:00:01 UTC goes with them: no capture holds it (captures read primary machines only), so copy that data back to production first (fail back).',
    );
    expect(api.releaseFailover).not.toHaveBeenCalled();
    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Release' }),
    );
    expect(await screen.findByText(step.message)).toBeInTheDocument();
    expect(api.releaseFailover).toHaveBeenCalledWith('fo-1');
  });

  it('releases nothing when the dialog is cancelled, and says why a release failed', async () => {
    const api = fakeRecoveryApi({
      releaseFailover: async () => {
        throw new Error(
          "Hypervisor host 'recovery' could not tear down what failover fo-1 kept there: connect ENOENT",
        );
      },
    });
    await renderWithApis(<RunDetails run={failover} />, { api, entity: null });
    await userEvent.click(
      await screen.findByRole('button', { name: 'Release failover machines' }),
    );
    await userEvent.click(
      within(await screen.findByRole('dialog')).getByRole('button', {
        name: 'Cancel',
      }),
    );
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(api.releaseFailover).not.toHaveBeenCalled();
    await userEvent.click(
      await screen.findByRole('button', { name: 'Release failover machines' }),
    );
    await userEvent.click(
      within(await screen.findByRole('dialog')).getByRole('button', {
        name: 'Release',
      }),
    );
    expect(
      await screen.findByText(
        /^Not released: Hypervisor host 'recovery' could not tear down/,
      ),
    ).toBeInTheDocument();
  });

  it('offers no release for a test recovery or a failover still running', async () => {
    const { unmount } = await renderWithApis(
      <RunDetails run={makeRun('succeeded')} />,
      { api: fakeRecoveryApi(), entity: null },
    );
    expect(
      await screen.findByRole('table', { name: 'Timeline' }),
    ).toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: 'Release failover machines' }),
    ).toBeNull();
    unmount();
    await renderWithApis(
      <RunDetails run={makeRun('running', { mode: 'failover' })} />,
      { api: fakeRecoveryApi(), entity: null },
    );
    expect(
      await screen.findByRole('table', { name: 'Timeline' }),
    ).toBeInTheDocument();
    expect(
      screen.queryByRole('button', { name: 'Release failover machines' }),
    ).toBeNull();
  });
});

describe('cancelling a test recovery', () => {
  const running = makeRun('running', { id: 'run-7' });

  it('asks first, then cancels the running test recovery and says it stops; keeps it when told to', async () => {
    const api = fakeRecoveryApi();
    await renderWithApis(<RunDetails run={running} />, { api, entity: null });
    const button = await screen.findByRole('button', {
      name: 'Cancel test recovery',
    });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await userEvent.click(
      within(await screen.findByRole('dialog')).getByRole('button', {
        name: 'Keep running',
      }),
    );
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(api.cancelRun).not.toHaveBeenCalled();

    await userEvent.click(button);
    const dialog = await screen.findByRole('dialog');
    expect(dialog).toHaveTextContent(/^Cancel the test recovery of .+\?/);
    expect(dialog).toHaveTextContent(/its lab on .+ is torn down/);
    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Cancel the run' }),
    );
    expect(
      await screen.findByText(
        'Cancelling: the run stops booting, tears its lab down and ends interrupted.',
      ),
    ).toBeInTheDocument();
    expect(api.cancelRun).toHaveBeenCalledWith('run-7');
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(screen.getByRole('button', { name: 'Cancelling…' })).toBeDisabled();
  });

  it('says why a cancel was refused, and offers none for a failover or a finished run', async () => {
    const api = fakeRecoveryApi({
      cancelRun: async () => {
        throw new Error(
          'Run run-7 has already finished (succeeded): there is nothing to cancel',
        );
      },
    });
    const { rerender } = await renderWithApis(<RunDetails run={running} />, {
      api,
      entity: null,
    });
    const button = await screen.findByRole('button', {
      name: 'Cancel test recovery',
    });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await userEvent.click(
      within(await screen.findByRole('dialog')).getByRole('button', {
        name: 'Cancel the run',
      }),
    );
    expect(
      await screen.findByText(
        'Not cancelled: Run run-7 has already finished (succeeded): there is nothing to cancel',
      ),
    ).toBeInTheDocument();

    rerender(
      <RunDetails run={makeRun('running', { id: 'fo-2', mode: 'failover' })} />,
    );
    expect(
      screen.queryByRole('button', { name: 'Cancel test recovery' }),
    ).toBeNull();
    rerender(<RunDetails run={makeRun('succeeded', { id: 'run-8' })} />);
    expect(
      screen.queryByRole('button', { name: 'Cancel test recovery' }),
    ).toBeNull();
  });
});
