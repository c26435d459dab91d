import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  type Capture,
  MISSING_DEPENDENCIES_ERROR_NAME,
  type RecoveryApi,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { earlierRecoveryPoints, pointLabel } from './RecoveryPointDialog';
import { conflictError, DB, fakeRecoveryApi, makeReadiness, makeRun, WEB } from '../testUtils/fixtures';
import { renderWithApis } from '../testUtils/render';

const capture = (machineRef: string, createdAt: string): Capture => ({
  ...makeReadiness().captures[0].latest!,
  id: `${machineRef}@${createdAt}`,
  machineRef,
  createdAt,
});

/**
 * The kept captures, newest first as GET /captures lists them: the database's go back to 01:00,
 * the web machine's only to 06:00, which rules out the points before it.
 */
const KEPT: Record<string, Capture[]> = {
  [DB]: ['09:00', '07:00', '05:00', '01:00'].map(t => capture(DB, `2026-11-02T${t}:00.000Z`)),
  [WEB]: ['08:00', '06:00'].map(t => capture(WEB, `2026-11-02T${t}:00.000Z`)),
};

const listCaptures: RecoveryApi['listCaptures'] = async machineRef => KEPT[machineRef] ?? [];

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

async function openDialog(): Promise<HTMLElement> {
  const control = await screen.findByRole('button', { name: /earlier recovery point/i });
  await waitFor(() => expect(control).toBeEnabled());
  await userEvent.click(control);
  return screen.findByRole('dialog', { name: /earlier recovery point/i });
}

describe('earlierRecoveryPoints', () => {
  it('lists the capture times at which every machine has a capture, newest first, less the latest state', () => {
    // At 08:00 the database restores its 07:00 capture, the web machine its newest: still earlier
    // than the latest state, which restores the database's 09:00 capture.
    expect(earlierRecoveryPoints([KEPT[DB], KEPT[WEB]])).toEqual([
      '2026-11-02T08:00:00.000Z',
      '2026-11-02T07:00:00.000Z',
      '2026-11-02T06:00:00.000Z',
    ]);
    // A newer database capture makes its 09:00 one a point too.
    expect(
      earlierRecoveryPoints([[capture(DB, '2026-11-02T10:00:00.000Z'), ...KEPT[DB]], KEPT[WEB]]),
    ).toEqual([
      '2026-11-02T09:00:00.000Z',
      '2026-11-02T08:00:00.000Z',
      '2026-11-02T07:00:00.000Z',
      '2026-11-02T06:00:00.000Z',
    ]);
  });

  it('lists none where a machine has no capture, or each has only one', () => {
    expect(earlierRecoveryPoints([KEPT[DB], []])).toEqual([]);
    expect(earlierRecoveryPoints([[KEPT[DB][0]], [KEPT[WEB][0]]])).toEqual([]);
    expect(earlierRecoveryPoints([])).toEqual([]);
  });
});

describe('pointLabel', () => {
  it('lists a point to the second, and to the millisecond where another falls in the same second', () => {
    const points = ['2026-12-05T19:00:58.004Z', '2026-12-05T19:00:57.812Z', '2026-12-05T19:00:57.100Z'];
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
      startRun: async () => makeRun('pending', { recoveryPoint: '2026-11-02T07:00:00.000Z' }),
      getRun: async () => sequence[Math.min(polls++, sequence.length - 1)],
    });
    await renderCard(api);

    const dialog = await openDialog();
    expect(within(dialog).getByText(/proves that this point boots, and does not count for readiness/)).toBeInTheDocument();
    const choices = await within(dialog).findAllByRole('radio');
    expect(choices.map(c => c.closest('label')!.textContent)).toEqual([
      '2026-11-02 08:00:00 UTC',
      '2026-11-02 07:00:00 UTC',
      '2026-11-02 06:00:00 UTC',
    ]);
    expect(api.listCaptures).toHaveBeenCalledWith(DB, 500);
    expect(api.listCaptures).toHaveBeenCalledWith(WEB, 500);
    const start = within(dialog).getByRole('button', { name: 'Start test recovery' });
    expect(start).toBeDisabled();

    await userEvent.click(within(dialog).getByLabelText('2026-11-02 07:00:00 UTC'));
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
          throw await conflictError('The catalog declares dependencies the plan cannot include', {
            name: MISSING_DEPENDENCIES_ERROR_NAME,
            missing: ['component:default/payments is not in the catalog'],
          });
        }
        return makeRun('pending');
      },
    });
    await renderCard(api);
    const dialog = await openDialog();
    await userEvent.click(await within(dialog).findByLabelText('2026-11-02 06:00:00 UTC'));
    await userEvent.click(within(dialog).getByRole('button', { name: 'Start test recovery' }));
    await userEvent.click(await screen.findByRole('button', { name: 'Run without them' }));

    await waitFor(() => expect(api.startRun).toHaveBeenCalledTimes(2));
    expect(api.startRun).toHaveBeenLastCalledWith({
      entityRef: 'component:default/web',
      mode: 'test',
      acceptMissingDependencies: true,
      recoveryPoint: '2026-11-02T06:00:00.000Z',
    });
  });

  it('says so when the kept captures allow no earlier point', async () => {
    const api = fakeRecoveryApi();
    await renderCard(api);
    const dialog = await openDialog();
    expect(await within(dialog).findByText(/allow no recovery point earlier than the latest state/)).toBeInTheDocument();
    expect(within(dialog).getByRole('button', { name: 'Start test recovery' })).toBeDisabled();
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
    expect(await within(dialog).findByText(/Could not load the captures: capture store unreachable/)).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole('button', { name: 'Retry loading the captures' }));
    expect(await within(dialog).findByLabelText('2026-11-02 06:00:00 UTC')).toBeInTheDocument();
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
      expect(screen.getByRole('button', { name: /earlier recovery point/i })).toBeDisabled(),
    );
    expect(screen.getByRole('button', { name: /test recovery running/i })).toBeDisabled();
  });
});
