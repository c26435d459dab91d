import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ResponseError } from '@backstage/errors';
import {
  type Capture,
  KEPT_FAILOVER_ERROR_NAME,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
  MISSING_DEPENDENCIES_ERROR_NAME,
  RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
  type RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  conflictError,
  DB,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
  WEB,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const WEB_REF = 'component:default/web';
const MINUTE = 60_000;

/** A refusal of POST /runs as the backend answers it: `{ error: { name, message, ... } }`. */
const refusal = (
  status: number,
  name: string,
  message: string,
  fields: Record<string, unknown> = {},
) =>
  ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: { name, message, ...fields },
        response: { statusCode: status },
      }),
      {
        status,
        statusText: status === 403 ? 'Forbidden' : 'Conflict',
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );

const failover = (stage: 'pending' | 'running' | 'succeeded', overrides = {}) =>
  makeRun(stage, { mode: 'failover', ...overrides });

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

/** Opens the failover's confirmation once the card offers it; returns the dialog. */
async function openFailover(user = userEvent.setup()): Promise<HTMLElement> {
  const action = await screen.findByRole('button', { name: 'Fail over…' });
  await waitFor(() => expect(action).toBeEnabled());
  await user.click(action);
  return screen.findByRole('dialog', { name: 'Fail over web?' });
}

/** The dialog's choice of recovery point, once the kept captures are listed. */
async function pointSelect(dialog: HTMLElement): Promise<HTMLElement> {
  await waitFor(() =>
    expect(
      within(dialog).getByRole('button', { name: /Recovery point/ }),
    ).not.toHaveAttribute('aria-disabled', 'true'),
  );
  return within(dialog).getByRole('button', { name: /Recovery point/ });
}

/** Types the entity's name into the confirmation and presses Fail over once it is enabled. */
async function confirm(dialog: HTMLElement, user = userEvent.setup()) {
  await user.type(within(dialog).getByLabelText('Type web to confirm'), 'web');
  const button = within(dialog).getByRole('button', { name: 'Fail over' });
  await waitFor(() => expect(button).toBeEnabled());
  await user.click(button);
}

describe('EntityRecoveryCard, a failover', () => {
  it('says what a failover does, starts nothing until the name is typed, then sends a failover and follows it', async () => {
    const sequence = [failover('running'), failover('succeeded')];
    let polls = 0;
    const api = fakeRecoveryApi({
      startRun: async () => failover('pending'),
      getRun: async () => sequence[Math.min(polls++, sequence.length - 1)],
    });
    await renderCard(api);
    const dialog = await openFailover();

    const said = dialog.textContent!;
    expect(said).toContain(
      "A failover is not a test. It boots live copies of the 2 machines of web's boot plan (db, web-1) on the hypervisor host, " +
        "with production's addresses on production's subnets, on a network that is not isolated, and keeps them there",
    );
    expect(said).toContain('Production must be down or isolated first');
    expect(said).toContain(
      'release the failover (Release failover machines on the run) to remove what it kept',
    );

    const start = within(dialog).getByRole('button', { name: 'Fail over' });
    const name = within(dialog).getByLabelText('Type web to confirm');
    expect(start).toBeDisabled();
    await userEvent.type(name, 'we');
    expect(start).toBeDisabled();
    await userEvent.type(name, 'bx');
    expect(start).toBeDisabled();
    await userEvent.clear(name);
    await userEvent.type(name, 'Web');
    expect(start).toBeDisabled();
    expect(api.startRun).not.toHaveBeenCalled();

    await userEvent.clear(name);
    await userEvent.type(name, 'web');
    await waitFor(() => expect(start).toBeEnabled());
    await userEvent.click(start);

    expect(api.startRun).toHaveBeenCalledTimes(1);
    expect(api.startRun).toHaveBeenCalledWith({
      entityRef: WEB_REF,
      mode: 'failover',
    });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    // Followed as a test recovery is, and called what it is.
    const section = await screen.findByRole('region', { name: /^Failover/ });
    expect(section).toHaveTextContent(
      "A failover of web: live copies of its plan's machines on production's subnets on recovery-1, kept there, also if it fails.",
    );
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-1'));
    expect(
      await screen.findByRole('button', { name: 'Release failover machines' }),
    ).toBeInTheDocument();
    expect(screen.getByRole('region', { name: 'Failover' })).toHaveTextContent(
      'Recovery succeeded',
    );
  });

  it('fails over to an earlier recovery point the kept captures allow, when one is chosen', async () => {
    const capture = (machineRef: string, createdAt: string): Capture => ({
      ...makeReadiness().captures[0].latest!,
      id: `${machineRef}@${createdAt}`,
      machineRef,
      createdAt,
      durationMs: 800,
    });
    const kept: Record<string, Capture[]> = {
      [DB]: ['09:00', '07:00'].map(t => capture(DB, `2026-11-02T${t}:00.000Z`)),
      [WEB]: ['08:00', '06:00'].map(t =>
        capture(WEB, `2026-11-02T${t}:00.000Z`),
      ),
    };
    const api = fakeRecoveryApi({
      listCaptures: async machineRef => kept[machineRef] ?? [],
      startRun: async () => failover('pending'),
    });
    await renderCard(api);
    const dialog = await openFailover();
    await userEvent.click(await pointSelect(dialog));
    const options = await screen.findAllByRole('option');
    expect(options.map(o => o.textContent)).toEqual([
      'Latest captures',
      '2026-11-02 08:00:00 UTC',
      '2026-11-02 07:00:00 UTC',
    ]);
    await userEvent.click(
      screen.getByRole('option', { name: '2026-11-02 07:00:00 UTC' }),
    );
    expect(
      within(dialog).getByText(
        'Each machine restores its newest kept capture taken at or before this point.',
      ),
    ).toBeInTheDocument();
    await confirm(dialog);

    expect(api.startRun).toHaveBeenCalledWith({
      entityRef: WEB_REF,
      mode: 'failover',
      recoveryPoint: '2026-11-02T07:00:00.000Z',
    });
    expect(api.listCaptures).toHaveBeenCalledWith(DB, 500);
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
  });

  it('says in its dialog a recovery point no longer kept, and starts nothing', async () => {
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await refusal(
          409,
          RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
          'No capture kept at or before the recovery point 2026-11-02T07:00:00.000Z of resource:default/db',
          {
            recoveryPoint: '2026-11-02T07:00:00.000Z',
            machines: [
              { machineRef: DB, oldestCaptureAt: '2026-11-02T08:00:00.000Z' },
            ],
            neverCaptured: [],
          },
        );
      },
      // Retention dropped the 07:00 round between the listing and the start.
      listCaptures: async machineRef => [
        {
          ...makeReadiness().captures[0].latest!,
          id: `${machineRef}-2`,
          machineRef,
          createdAt: '2026-11-02T09:00:00.000Z',
        },
        {
          ...makeReadiness().captures[0].latest!,
          id: `${machineRef}-1`,
          machineRef,
          createdAt: '2026-11-02T07:00:00.000Z',
        },
      ],
    });
    await renderCard(api);
    const dialog = await openFailover();
    await userEvent.click(await pointSelect(dialog));
    await userEvent.click(
      await screen.findByRole('option', { name: '2026-11-02 07:00:00 UTC' }),
    );
    await confirm(dialog);

    expect(
      await within(dialog).findByText(
        'Could not start the failover: No capture kept at or before the recovery point 2026-11-02T07:00:00.000Z of resource:default/db',
      ),
    ).toBeInTheDocument();
    expect(screen.getByRole('dialog')).toBeInTheDocument();
    expect(screen.queryByRole('region', { name: /^Failover/ })).toBeNull();
  });

  it.each([
    [
      'a 403 naming the entities of the plan it lacks recovery.run.failover on',
      () =>
        refusal(
          403,
          'NotAllowedError',
          "Missing permission recovery.run.failover on 1 entity of the boot plan of component:default/web: resource:default/db. A failover boots live copies of them on production's subnets and keeps them",
        ),
    ],
    [
      'a failover kept on the host',
      () =>
        refusal(
          409,
          KEPT_FAILOVER_ERROR_NAME,
          'component:default/web cannot be failed over on recovery-1 now: failover run-7 of system:default/site keeps 3 machines there; release failover run-7 (recovery release run-7, or POST /runs/run-7/release)',
          { runId: 'run-7', entityRef: 'system:default/site' },
        ),
    ],
    [
      'machines never captured',
      () =>
        refusal(
          409,
          MACHINES_NOT_CAPTURED_ERROR_NAME,
          'No capture of resource:default/web-1 yet: capture first (POST /captures)',
          {
            neverCaptured: [WEB],
          },
        ),
    ],
    [
      'a busy host whose run has ended since',
      () =>
        conflictError(
          "Hypervisor host 'recovery-1' is busy with run run-9 of system:default/site",
          {
            runId: 'run-9',
            entityRef: 'system:default/site',
          },
        ),
    ],
  ])(
    'shows the refusal of %s on the card, as for a test recovery, and follows nothing',
    async (_what, make) => {
      const error = await make();
      const api = fakeRecoveryApi({
        startRun: async () => {
          throw error;
        },
        getRun: async () =>
          makeRun('succeeded', {
            id: 'run-9',
            entityRef: 'system:default/site',
          }),
      });
      await renderCard(api);
      await confirm(await openFailover());

      expect(
        await screen.findByText(
          `Could not start the failover: ${error.body.error.message}`,
        ),
      ).toBeInTheDocument();
      expect(screen.queryByRole('dialog')).toBeNull();
      expect(screen.queryByRole('region', { name: /^Failover/ })).toBeNull();
      expect(screen.getByRole('button', { name: 'Fail over…' })).toBeEnabled();
      expect(api.startRun).toHaveBeenCalledWith({
        entityRef: WEB_REF,
        mode: 'failover',
      });
    },
  );

  it('follows the failover the host is busy with when the start is refused for it', async () => {
    const other = failover('running', {
      id: 'run-9',
      entityRef: 'system:default/site',
    });
    const api = fakeRecoveryApi({
      startRun: async () => {
        throw await conflictError(
          "Hypervisor host 'recovery-1' is busy with run run-9 of system:default/site",
          {
            runId: 'run-9',
            entityRef: 'system:default/site',
          },
        );
      },
      getRun: async () => other,
    });
    await renderCard(api);
    await confirm(await openFailover());

    const section = await screen.findByRole('region', {
      name: 'Failover of system:site in progress',
    });
    expect(section).toHaveTextContent(
      'Hypervisor host recovery-1 is busy with a failover of system:site',
    );
    expect(api.getRun).toHaveBeenCalledWith('run-9');
    expect(screen.queryByText(/Could not start/)).toBeNull();
    // One failover does not preempt another.
    expect(screen.getByRole('button', { name: 'Fail over…' })).toBeDisabled();
  });

  it('names the dependencies the plan cannot include and fails over without them when asked', async () => {
    const problem =
      'component:default/web dependsOn component:default/ledger, which is not in the catalog';
    const api = fakeRecoveryApi();
    api.startRun.mockImplementation(async request => {
      if (request.acceptMissingDependencies) return failover('pending');
      throw await conflictError(
        `component:default/web cannot be recovered as the catalog declares it: ${problem}`,
        {
          name: MISSING_DEPENDENCIES_ERROR_NAME,
          missing: [problem],
        },
      );
    });
    await renderCard(api);
    await confirm(await openFailover());

    const warning = (
      await screen.findByText(
        /The catalog declares dependencies the boot plan cannot include/,
      )
    ).closest('[role="alert"]') as HTMLElement;
    expect(warning).toHaveTextContent(
      `${problem}. A failover without them brings back less than production needs`,
    );
    await userEvent.click(
      within(warning).getByRole('button', { name: 'Fail over without them' }),
    );
    await waitFor(() =>
      expect(api.startRun).toHaveBeenLastCalledWith({
        entityRef: WEB_REF,
        mode: 'failover',
        acceptMissingDependencies: true,
      }),
    );
    expect(
      await screen.findByRole('region', { name: /^Failover/ }),
    ).toBeInTheDocument();
    expect(api.startRun).toHaveBeenCalledTimes(2);
  });

  it('offers a failover while a test recovery holds the host, saying the failover interrupts it', async () => {
    const test = makeRun('running', {
      id: 'run-3',
      entityRef: 'system:default/site',
      trigger: 'schedule',
    });
    const api = fakeRecoveryApi({
      listRuns: async () => [test],
      getRun: async () => test,
    });
    await renderCard(api);
    expect(
      await screen.findByRole('region', {
        name: 'Test recovery of system:site in progress',
      }),
    ).toBeInTheDocument();
    expect(
      screen.getByRole('button', { name: /test recovery running/i }),
    ).toBeDisabled();

    const dialog = await openFailover();
    expect(dialog).toHaveTextContent(
      'The test recovery of system:site now on recovery-1 (started 2024-05-01 10:00:01 UTC) is interrupted and its lab removed to make room.',
    );
  });

  it('names the hypervisor host it boots the machines on where the test recovery it preempts holds that host', async () => {
    const test = makeRun('running', {
      id: 'run-3',
      hypervisorHost: 'recovery-east',
      trigger: 'schedule',
    });
    const api = fakeRecoveryApi({
      listRuns: async () => [test],
      getRun: async () => test,
    });
    await renderCard(api);
    expect(
      await screen.findByRole('region', { name: 'Test recovery in progress' }),
    ).toBeInTheDocument();

    const dialog = await openFailover();
    expect(dialog).toHaveTextContent(
      "It boots live copies of the 2 machines of web's boot plan (db, web-1) on the hypervisor host recovery-east, with production's addresses",
    );
    expect(
      within(dialog).getByText('recovery-east', { selector: 'strong' }),
    ).toBeInTheDocument();
  });

  it('keeps Fail over off while a failover of the entity runs', async () => {
    const running = failover('running');
    const api = fakeRecoveryApi({
      listRuns: async () => [running],
      getRun: async () => running,
    });
    await renderCard(api);
    expect(
      await screen.findByRole('region', { name: 'Failover in progress' }),
    ).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Fail over…' })).toBeDisabled();
  });
});

describe('EntityRecoveryCard, a start answered after its minute', () => {
  beforeEach(() => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const user = () => userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
  /** A start whose answer (or refusal) comes after `ms`. */
  const answeredAfter =
    <T,>(ms: number, answer: () => Promise<T>) =>
    () =>
      new Promise<T>((resolve, reject) => {
        setTimeout(() => answer().then(resolve, reject), ms);
      });

  it('follows the test recovery a late answer names, rather than drop it', async () => {
    const api = fakeRecoveryApi({
      startRun: answeredAfter(90_000, async () =>
        makeRun('pending', { id: 'run-4' }),
      ),
      // Nothing in progress on load, nor when the card looks after a minute.
      listRuns: async () => [],
      getRun: async () => makeRun('running', { id: 'run-4' }),
    });
    await renderCard(api);
    const button = await screen.findByRole('button', {
      name: 'Run test recovery',
    });
    await waitFor(() => expect(button).toBeEnabled());
    await user().click(button);
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));
    expect(
      await screen.findByText(
        /^No answer to the start of the test recovery within 1m, and no run of web is in progress/,
      ),
    ).toBeInTheDocument();
    expect(api.getRun).not.toHaveBeenCalled();

    await act(() => vi.advanceTimersByTimeAsync(30_000));
    expect(
      await screen.findByText(
        'The answer to the start of the test recovery came after 1m: it started (test recovery run-4), following it.',
      ),
    ).toBeInTheDocument();
    expect(
      await screen.findByRole('region', { name: 'Test recovery in progress' }),
    ).toBeInTheDocument();
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-4'));
    expect(screen.queryByText(/No answer to the start/)).toBeNull();
    expect(
      screen.getByRole('button', { name: 'Test recovery running…' }),
    ).toBeDisabled();
  });

  it('says a refusal that comes late as it says one in time', async () => {
    const api = fakeRecoveryApi({
      startRun: answeredAfter(90_000, async () => {
        throw await refusal(
          409,
          MACHINES_NOT_CAPTURED_ERROR_NAME,
          'No capture of resource:default/web-1 yet: capture first (POST /captures)',
          {
            neverCaptured: [WEB],
          },
        );
      }),
      listRuns: async () => [],
    });
    await renderCard(api);
    const button = await screen.findByRole('button', {
      name: 'Run test recovery',
    });
    await waitFor(() => expect(button).toBeEnabled());
    await user().click(button);
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));
    expect(
      await screen.findByText(
        /^No answer to the start of the test recovery within 1m/,
      ),
    ).toBeInTheDocument();

    await act(() => vi.advanceTimersByTimeAsync(30_000));
    expect(
      await screen.findByText(
        'Could not start the test recovery: No capture of resource:default/web-1 yet: capture first (POST /captures)',
      ),
    ).toBeInTheDocument();
    expect(screen.queryByText(/No answer to the start/)).toBeNull();
  });

  it('follows a failover whose start went unanswered for a minute once its answer comes', async () => {
    const api = fakeRecoveryApi({
      startRun: answeredAfter(2 * MINUTE + 5000, async () =>
        failover('pending', { id: 'run-8' }),
      ),
      listRuns: async () => [],
      getRun: async () => failover('running', { id: 'run-8' }),
    });
    await renderCard(api);
    await confirm(await openFailover(user()), user());
    expect(api.startRun).toHaveBeenCalledWith({
      entityRef: WEB_REF,
      mode: 'failover',
    });
    expect(
      await screen.findByRole('button', { name: 'Starting failover…' }),
    ).toBeInTheDocument();

    await act(() => vi.advanceTimersByTimeAsync(MINUTE));
    expect(
      await screen.findByText(
        /^No answer to the start of the failover within 1m, and no run of web is in progress\./,
      ),
    ).toBeInTheDocument();
    // The card looked once after the minute, besides its check on load.
    expect(api.listRuns).toHaveBeenCalledTimes(2);
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(screen.getByRole('button', { name: 'Fail over…' })).toBeEnabled();

    await act(() => vi.advanceTimersByTimeAsync(MINUTE + 5000));
    expect(
      await screen.findByText(
        'The answer to the start of the failover came after 1m: it started (failover run-8), following it.',
      ),
    ).toBeInTheDocument();
    expect(
      await screen.findByRole('region', { name: 'Failover in progress' }),
    ).toBeInTheDocument();
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-8'));
    expect(screen.getByRole('button', { name: 'Fail over…' })).toBeDisabled();
  });

  it('leaves a late answer be once another start has been made', async () => {
    let starts = 0;
    const api = fakeRecoveryApi({
      startRun: async () =>
        ++starts === 1
          ? answeredAfter(90_000, async () =>
              makeRun('pending', { id: 'run-old' }),
            )()
          : makeRun('pending', { id: 'run-new' }),
      listRuns: async () => [],
      getRun: async id => makeRun('running', { id }),
    });
    const onRunChange = vi.fn();
    await renderWithApis(
      <EntityRecoveryCard pollIntervalMs={10} onRunChange={onRunChange} />,
      { api },
    );
    const button = await screen.findByRole('button', {
      name: 'Run test recovery',
    });
    await waitFor(() => expect(button).toBeEnabled());
    await user().click(button);
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));
    await screen.findByText(
      /^No answer to the start of the test recovery within 1m/,
    );
    await waitFor(() => expect(button).toBeEnabled());
    await user().click(button);
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-new'));

    await act(() => vi.advanceTimersByTimeAsync(30_000));
    // Some polls later, still the run of the second start alone.
    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(api.getRun).toHaveBeenLastCalledWith('run-new');
    expect(api.getRun).not.toHaveBeenCalledWith('run-old');
    expect(onRunChange.mock.calls.map(([run]) => run.id)).toEqual(['run-new']);
    expect(screen.queryByText(/came after 1m/)).toBeNull();
  });
});
