import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { ResponseError } from '@backstage/errors';
import {
  type Capture,
  MISSING_DEPENDENCIES_ERROR_NAME,
  RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
  type RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { pointLabel } from './RecoveryPointDialog';
import {
  conflictError,
  DB,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
  WEB,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const capture = (machineRef: string, createdAt: string): Capture => ({
  ...makeReadiness().captures[0].latest!,
  id: `${machineRef}@${createdAt}`,
  machineRef,
  createdAt,
  durationMs: 800,
});

/** POST /runs's 409 for a recovery point earlier than machines' kept captures, as the backend writes it. */
const tooEarly = (body: {
  recoveryPoint: string;
  machines: Array<{ machineRef: string; oldestCaptureAt: string }>;
  neverCaptured?: string[];
  earliestRecoveryPoint?: string;
}) =>
  ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: {
          name: RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
          message: `No capture kept at or before the recovery point ${body.recoveryPoint} of …`,
          neverCaptured: [],
          ...body,
        },
        response: { statusCode: 409 },
      }),
      {
        status: 409,
        statusText: 'Conflict',
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );

/**
 * The kept captures, newest first as GET /captures lists them: the database's go back to 01:00,
 * the web machine's only to 06:00, which rules out the points before it.
 */
const KEPT: Record<string, Capture[]> = {
  [DB]: ['09:00', '07:00', '05:00', '01:00'].map(t =>
    capture(DB, `2026-11-02T${t}:00.000Z`),
  ),
  [WEB]: ['08:00', '06:00'].map(t => capture(WEB, `2026-11-02T${t}:00.000Z`)),
};

const listCaptures: RecoveryApi['listCaptures'] = async machineRef =>
  KEPT[machineRef] ?? [];

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

async function openDialog(): Promise<HTMLElement> {
  const control = await screen.findByRole('button', {
    name: /earlier recovery point/i,
  });
  await waitFor(() => expect(control).toBeEnabled());
  await userEvent.click(control);
  return screen.findByRole('dialog', { name: /earlier recovery point/i });
}

describe('pointLabel', () => {
  it('lists a point to the second, and to the millisecond where another falls in the same second', () => {
    const points = [
      '2026-12-05T19:00:58.004Z',
      '2026-12-05T19:00:57.812Z',
      '2026-12-05T19:00:57.100Z',
    ];
    expect(points.map(p => pointLabel(p, points))).toEqual([
      '2026-12-05 19:00:58 UTC',
      '2026-12-05 19:00:57.812 UTC',
      '2026-12-05 19:00:57.100 UTC',
    ]);
  });
});

describe('EntityRecoveryCard at an earlier recovery point', () => {
  it('lists the points the kept captures allow and starts a test recovery at the one chosen, then follows it', async () => {
    const sequence = [makeRun('running'), makeRun('succeeded')];
    let polls = 0;
    const api = fakeRecoveryApi({
      listCaptures,
      startRun: async () =>
        makeRun('pending', { recoveryPoint: '2026-11-02T07:00:00.000Z' }),
      getRun: async () => sequence[Math.min(polls++, sequence.length - 1)],
    });
    await renderCard(api);

    const dialog = await openDialog();
    expect(
      within(dialog).getByText(
        /proves that this point boots, and does not count for readiness/,
      ),
    ).toBeInTheDocument();
    const choices = await within(dialog).findAllByRole('radio');
    expect(choices.map(c => c.closest('label')!.textContent)).toEqual([
      '2026-11-02 08:00:00 UTC',
      '2026-11-02 07:00:00 UTC',
      '2026-11-02 06:00:00 UTC',
      'Another time',
    ]);
    expect(api.listCaptures).toHaveBeenCalledWith(DB, 500);
    expect(api.listCaptures).toHaveBeenCalledWith(WEB, 500);
    const start = within(dialog).getByRole('button', {
      name: 'Start test recovery',
    });
    expect(start).toBeDisabled();

    await userEvent.click(
      within(dialog).getByLabelText('2026-11-02 07:00:00 UTC'),
    );
    await userEvent.click(start);

    expect(api.startRun).toHaveBeenCalledWith({
      entityRef: 'component:default/web',
      mode: 'test',
      recoveryPoint: '2026-11-02T07:00:00.000Z',
    });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(await screen.findByText('Recovery succeeded')).toBeInTheDocument();
    expect(api.getRun).toHaveBeenCalledWith('run-1');
  });

  it('runs without the missing dependencies at the same recovery point, when asked', async () => {
    let starts = 0;
    const api = fakeRecoveryApi({
      listCaptures,
      startRun: async () => {
        starts += 1;
        if (starts === 1) {
          throw await conflictError(
            'The catalog declares dependencies the plan cannot include',
            {
              name: MISSING_DEPENDENCIES_ERROR_NAME,
              missing: ['component:default/payments is not in the catalog'],
            },
          );
        }
        return makeRun('pending');
      },
    });
    await renderCard(api);
    const dialog = await openDialog();
    await userEvent.click(
      await within(dialog).findByLabelText('2026-11-02 06:00:00 UTC'),
    );
    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Start test recovery' }),
    );
    await userEvent.click(
      await screen.findByRole('button', { name: 'Run without them' }),
    );

    await waitFor(() => expect(api.startRun).toHaveBeenCalledTimes(2));
    expect(api.startRun).toHaveBeenLastCalledWith({
      entityRef: 'component:default/web',
      mode: 'test',
      acceptMissingDependencies: true,
      recoveryPoint: '2026-11-02T06:00:00.000Z',
    });
  });

  it('lists one point per capture round: machines captured one after another, a second apart, are one choice', async () => {
    // Three scheduled rounds an hour apart, each taking the database, then the web machine a second later.
    const rounds = ['01', '02', '03'];
    const api = fakeRecoveryApi({
      listCaptures: async machineRef =>
        rounds
          .map(h =>
            capture(
              machineRef,
              `2026-11-02T${h}:00:0${machineRef === DB ? 0 : 1}.000Z`,
            ),
          )
          .reverse(),
    });
    await renderCard(api);
    const dialog = await openDialog();
    const choices = await within(dialog).findAllByRole('radio');
    // The last round is the latest state; each earlier one, at its last capture.
    expect(choices.map(c => c.closest('label')!.textContent)).toEqual([
      '2026-11-02 02:00:01 UTC',
      '2026-11-02 01:00:01 UTC',
      'Another time',
    ]);
  });

  it('takes a time typed in, read as POST /runs reads it, naming what is wrong with one it cannot be', async () => {
    const api = fakeRecoveryApi({
      listCaptures,
      startRun: async () => makeRun('pending'),
    });
    await renderCard(api);
    const dialog = await openDialog();
    const input = await within(dialog).findByLabelText(
      /Time, ISO 8601 with its zone/,
    );
    const start = within(dialog).getByRole('button', {
      name: 'Start test recovery',
    });

    for (const [text, problem] of [
      [
        '2026-11-02T03:00',
        'no zone: end it with Z (UTC) or an offset such as +02:00',
      ],
      ['2026-11-02T03:00+02', 'its zone +02 gives hours alone: write +02:00'],
      [
        '2026-02-30T03:00Z',
        '2026-02-30 does not exist: February 2026 has 28 days',
      ],
      ['2999-01-01T00:00Z', 'in the future: no capture is of it yet'],
    ]) {
      await userEvent.clear(input);
      await userEvent.type(input, text);
      expect(
        within(dialog).getByText(`Not a recovery point: ${problem}`),
      ).toBeInTheDocument();
      expect(input).toHaveAttribute('aria-invalid', 'true');
      expect(start).toBeDisabled();
    }
    // Typing chose it; as a person two hours east of UTC writes it, shown and sent in UTC.
    await userEvent.clear(input);
    await userEvent.type(input, '2026-11-02T09:30:00.250+02:00');
    expect(within(dialog).getByLabelText('Another time')).toBeChecked();
    expect(
      within(dialog).getByText('Read as 2026-11-02 07:30:00.250 UTC'),
    ).toBeInTheDocument();
    await userEvent.click(start);
    expect(api.startRun).toHaveBeenCalledWith({
      entityRef: 'component:default/web',
      mode: 'test',
      recoveryPoint: '2026-11-02T07:30:00.250Z',
    });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
  });

  it('says, in the dialog, which machine has no capture kept that old and its oldest, and offers the earliest point every machine allows', async () => {
    const api = fakeRecoveryApi({
      listCaptures,
      startRun: async ({ recoveryPoint }) => {
        if (recoveryPoint === '2026-11-02T03:00:00.000Z') {
          // Retention pruned the web machine's 06:00 capture since the list was read.
          throw await tooEarly({
            recoveryPoint,
            machines: [
              { machineRef: WEB, oldestCaptureAt: '2026-11-02T08:00:00.000Z' },
            ],
            earliestRecoveryPoint: '2026-11-02T08:00:00.000Z',
          });
        }
        return makeRun('pending', { recoveryPoint });
      },
    });
    await renderCard(api);
    const dialog = await openDialog();
    await userEvent.type(
      await within(dialog).findByLabelText(/Time, ISO 8601 with its zone/),
      '2026-11-02T03:00Z',
    );
    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Start test recovery' }),
    );

    expect(
      await within(dialog).findByText(
        'No capture kept at or before 2026-11-02 03:00:00 UTC of web-1 (its oldest kept is of 2026-11-02 08:00:00 UTC). The earliest point every machine allows is 2026-11-02 08:00:00 UTC.',
      ),
    ).toBeInTheDocument();
    // Not said on the card as a failed start: the dialog stays open with it.
    expect(screen.queryByText(/Could not start the test recovery/)).toBeNull();
    await userEvent.click(
      within(dialog).getByRole('button', {
        name: 'Choose 2026-11-02 08:00:00 UTC',
      }),
    );
    // A point listed: chosen there.
    expect(
      within(dialog).getByLabelText('2026-11-02 08:00:00 UTC'),
    ).toBeChecked();
    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Start test recovery' }),
    );
    expect(api.startRun).toHaveBeenLastCalledWith({
      entityRef: 'component:default/web',
      mode: 'test',
      recoveryPoint: '2026-11-02T08:00:00.000Z',
    });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
  });

  it('says a machine never captured apart, offering no point; an earliest point the list lacks is typed in', async () => {
    let refusal = 0;
    const api = fakeRecoveryApi({
      listCaptures,
      startRun: async ({ recoveryPoint }) => {
        refusal += 1;
        throw await (refusal === 1
          ? tooEarly({
              recoveryPoint: recoveryPoint!,
              machines: [
                { machineRef: DB, oldestCaptureAt: '2026-11-02T06:30:00.125Z' },
              ],
              earliestRecoveryPoint: '2026-11-02T06:30:00.125Z',
            })
          : tooEarly({
              recoveryPoint: recoveryPoint!,
              machines: [],
              neverCaptured: [WEB],
            }));
      },
    });
    await renderCard(api);
    const dialog = await openDialog();
    await userEvent.click(
      await within(dialog).findByLabelText('2026-11-02 06:00:00 UTC'),
    );
    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Start test recovery' }),
    );
    await userEvent.click(
      await within(dialog).findByRole('button', {
        name: 'Choose 2026-11-02 06:30:00.125 UTC',
      }),
    );
    expect(within(dialog).getByLabelText('Another time')).toBeChecked();
    expect(
      within(dialog).getByLabelText(/Time, ISO 8601 with its zone/),
    ).toHaveValue('2026-11-02T06:30:00.125Z');

    await userEvent.click(
      within(dialog).getByRole('button', { name: 'Start test recovery' }),
    );
    expect(
      await within(dialog).findByText(
        'No capture kept at or before 2026-11-02 06:30:00.125 UTC of web-1 (never captured). Capture web-1 first: no recovery point can restore a machine never captured.',
      ),
    ).toBeInTheDocument();
    expect(
      within(dialog).queryByRole('button', { name: /^Choose / }),
    ).toBeNull();
  });

  it('says so when the kept captures allow no earlier point', async () => {
    const api = fakeRecoveryApi();
    await renderCard(api);
    const dialog = await openDialog();
    expect(
      await within(dialog).findByText(
        /allow no recovery point earlier than the latest state/,
      ),
    ).toBeInTheDocument();
    expect(
      within(dialog).getByRole('button', { name: 'Start test recovery' }),
    ).toBeDisabled();
  });

  it('shows a failed load of the captures with a Retry that loads them again', async () => {
    let calls = 0;
    const api = fakeRecoveryApi({
      listCaptures: async (machineRef, limit) => {
        calls += 1;
        if (calls === 1) throw new Error('capture store unreachable');
        return listCaptures(machineRef, limit);
      },
    });
    await renderCard(api);
    const dialog = await openDialog();
    expect(
      await within(dialog).findByText(
        /Could not load the captures: capture store unreachable/,
      ),
    ).toBeInTheDocument();
    await userEvent.click(
      within(dialog).getByRole('button', {
        name: 'Retry loading the captures',
      }),
    );
    expect(
      await within(dialog).findByLabelText('2026-11-02 06:00:00 UTC'),
    ).toBeInTheDocument();
  });

  it('is off while a run is in progress, as Run test recovery is', async () => {
    const api = fakeRecoveryApi({
      listCaptures,
      listRuns: async () => [makeRun('running')],
      getRun: async () => makeRun('running'),
    });
    await renderCard(api);
    await screen.findByLabelText('Test recovery in progress');
    await waitFor(() =>
      expect(
        screen.getByRole('button', { name: /earlier recovery point/i }),
      ).toBeDisabled(),
    );
    expect(
      screen.getByRole('button', { name: /test recovery running/i }),
    ).toBeDisabled();
  });
});
