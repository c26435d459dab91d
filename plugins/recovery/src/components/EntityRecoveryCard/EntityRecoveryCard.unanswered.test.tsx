import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryApi } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  DB,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
  WEB,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

// A request whose connection dropped (a VPN, a laptop's sleep) is never answered nor refused.
const unanswered = () => new Promise<never>(() => {});
const MINUTE = 60_000;

function renderCard(api: Partial<RecoveryApi>) {
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

beforeEach(() => {
  vi.useFakeTimers({ shouldAdvanceTime: true });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Presses `name` once the card enables it; returns the button. */
async function press(name: RegExp): Promise<HTMLElement> {
  const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
  const button = await screen.findByRole('button', { name });
  await waitFor(() => expect(button).toBeEnabled());
  await user.click(button);
  return button;
}

describe('EntityRecoveryCard, a start left unanswered', () => {
  it("follows the entity's run it then finds in progress, rather than say the start failed", async () => {
    let checks = 0;
    const api = fakeRecoveryApi({
      startRun: unanswered,
      // None on load; the run the start made, once its answer is lost.
      listRuns: async () => (++checks === 1 ? [] : [makeRun('running')]),
      getRun: async () => makeRun('running'),
    });
    await renderCard(api);
    const button = await press(/run test recovery/i);
    await act(() => vi.advanceTimersByTimeAsync(MINUTE - 1000));
    expect(api.listRuns).toHaveBeenCalledTimes(1);
    expect(button).toHaveTextContent('Test recovery running…');

    await act(() => vi.advanceTimersByTimeAsync(1000));
    expect(
      await screen.findByText(
        'No answer to the start within 1m, but a test recovery of web is in progress (started 2024-05-01 10:00:01 UTC): following it.',
      ),
    ).toBeInTheDocument();
    expect(api.listRuns).toHaveBeenLastCalledWith({ active: true });
    expect(
      await screen.findByLabelText('Test recovery in progress'),
    ).toBeInTheDocument();
    await waitFor(() => expect(api.getRun).toHaveBeenCalledWith('run-1'));
    expect(button).toBeDisabled();
    expect(screen.queryByText(/Could not start|failed/)).toBeNull();
  });

  it('says the start went unanswered and a run may still appear, and enables the button again', async () => {
    const api = fakeRecoveryApi({
      startRun: unanswered,
      listRuns: async () => [],
    });
    await renderCard(api);
    const button = await press(/run test recovery/i);
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));

    expect(
      await screen.findByText(
        'No answer to the start of the test recovery within 1m, and no run of web is in progress. It may have started all the same: a run may still appear (the run history on the Recovery tab lists it). Look there before starting again.',
      ),
    ).toBeInTheDocument();
    expect(api.listRuns).toHaveBeenCalledTimes(2);
    await waitFor(() => expect(button).toBeEnabled());
    expect(button).toHaveTextContent('Run test recovery');
    expect(screen.queryByText(/Could not start/)).toBeNull();

    // Asked again, the note goes while the new start is under way.
    api.startRun.mockImplementation(async () => makeRun('pending'));
    await press(/run test recovery/i);
    await waitFor(() =>
      expect(screen.queryByText(/No answer to the start/)).toBeNull(),
    );
  });

  it('says so when the look for the run goes unanswered too, and enables the button again', async () => {
    let checks = 0;
    const api = fakeRecoveryApi({
      startRun: unanswered,
      listRuns: async () => (++checks === 1 ? [] : unanswered()),
    });
    await renderCard(api);
    const button = await press(/run test recovery/i);
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));
    expect(button).toBeDisabled();
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));

    expect(
      await screen.findByText(
        /^No answer to the start of the test recovery within 1m, and the check for a run in progress failed too: No answer from the backend within 1m\. It may have started all the same/,
      ),
    ).toBeInTheDocument();
    await waitFor(() => expect(button).toBeEnabled());
  });

  it("follows another entity's run found holding the host, saying whose, and that its own may still appear", async () => {
    let checks = 0;
    const siteRun = makeRun('running', {
      id: 'run-9',
      entityRef: 'system:default/demo-site',
    });
    const api = fakeRecoveryApi({
      startRun: unanswered,
      listRuns: async () => (++checks === 1 ? [] : [siteRun]),
      getRun: async () => siteRun,
    });
    await renderCard(api);
    await press(/run test recovery/i);
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));

    const section = await screen.findByLabelText(
      'Test recovery of system:demo-site in progress',
    );
    expect(section).toHaveTextContent(
      'Hypervisor host recovery-1 is busy with a test recovery of system:demo-site',
    );
    expect(
      screen.getByText(
        /^No answer to the start of the test recovery within 1m, and no run of web is in progress\./,
      ),
    ).toBeInTheDocument();
  });
});

describe('EntityRecoveryCard, a capture', () => {
  it('shows which machine is being captured and for how long, ticking', async () => {
    const api = fakeRecoveryApi({ captureNow: unanswered });
    await renderCard(api);
    await press(/capture now/i);
    expect(
      await screen.findByRole('button', { name: 'Capturing db (1 of 2)…' }),
    ).toBeDisabled();
    // Not "for 0s" as it starts: a capture that took no time.
    expect(screen.getByRole('timer')).toHaveTextContent(
      /^Capture of db under way$/,
    );

    await act(() => vi.advanceTimersByTimeAsync(65_000));
    expect(screen.getByRole('timer')).toHaveTextContent(
      'Capture of db under way for 1m 5s',
    );
  });

  it('says a machine whose capture goes unanswered for 35 minutes went unanswered, keeps those before it, and enables the button again', async () => {
    const api = fakeRecoveryApi();
    const answer = api.captureNow.getMockImplementation()!;
    api.captureNow.mockImplementation(async (entityRef, machineRef) =>
      machineRef === WEB ? unanswered() : answer(entityRef, machineRef),
    );
    await renderCard(api);
    await press(/capture now/i);
    expect(
      await screen.findByRole('button', { name: 'Capturing web-1 (2 of 2)…' }),
    ).toBeDisabled();

    // Generous: the backend's own limit on a machine's capture is 30 minutes.
    await act(() => vi.advanceTimersByTimeAsync(34 * MINUTE));
    expect(
      screen.getByRole('button', { name: 'Capturing web-1 (2 of 2)…' }),
    ).toBeDisabled();
    expect(screen.getByRole('timer')).toHaveTextContent(
      'Capture of web-1 under way for 34m',
    );
    expect(api.listCaptures).not.toHaveBeenCalled();

    await act(() => vi.advanceTimersByTimeAsync(MINUTE));
    const alert = (
      await screen.findByText(/^No answer to the capture of web-1 within 35m/)
    ).closest('[role="alert"]') as HTMLElement;
    expect(alert).toHaveTextContent(
      'No answer to the capture of web-1 within 35m, and no newer capture of it is kept: the backend may still be taking it ' +
        "(it stops a machine's capture at recovery.captures.timeout, 30m unless configured), or never had the request. " +
        'Capturing again is refused while it is under way, saying since when. Captured before it, and kept: db.',
    );
    expect(api.listCaptures).toHaveBeenCalledWith(WEB, 1);
    expect(screen.queryByText(/Capture failed/)).toBeNull();
    expect(screen.queryByRole('timer')).toBeNull();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeEnabled();
    // db's capture is kept: readiness has moved on.
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(2));
  });

  it('says a capture the backend kept though its answer was lost, and that the machines after it were not asked for', async () => {
    const taken = {
      ...makeReadiness().captures[0].latest!,
      id: 'cap-db-new',
      createdAt: '2024-05-01T10:00:00.000Z',
    };
    const api = fakeRecoveryApi({
      // The capture shown was taken well before: two hours ago, by the fixture's clock.
      getReadiness: async () => {
        const readiness = makeReadiness();
        readiness.captures[0].latest!.createdAt = '2024-05-01T08:00:00.000Z';
        return readiness;
      },
      captureNow: unanswered,
      listCaptures: async machineRef => (machineRef === DB ? [taken] : []),
    });
    await renderCard(api);
    await press(/capture now/i);
    await act(() => vi.advanceTimersByTimeAsync(35 * MINUTE));

    const alert = (
      await screen.findByText(/^No answer to the capture of db within 35m/)
    ).closest('[role="alert"]') as HTMLElement;
    expect(alert).toHaveTextContent(
      'No answer to the capture of db within 35m, but db has a capture taken 2024-05-01 10:00:00 UTC, newer than the one shown when this capture began: ' +
        'most likely this one, its answer lost on the way. Not captured: 1 machine after it.',
    );
    expect(api.captureNow).toHaveBeenCalledTimes(1);
    expect(screen.getByRole('button', { name: /capture now/i })).toBeEnabled();
    await waitFor(() => expect(api.getReadiness).toHaveBeenCalledTimes(2));
  });

  it("says so when the look at the machine's captures fails too", async () => {
    const api = fakeRecoveryApi({
      captureNow: unanswered,
      listCaptures: async () => {
        throw new Error('Failed to fetch');
      },
    });
    await renderCard(api);
    await press(/capture now/i);
    await act(() => vi.advanceTimersByTimeAsync(35 * MINUTE));
    const alert = (
      await screen.findByText(/^No answer to the capture of db within 35m/)
    ).closest('[role="alert"]') as HTMLElement;
    expect(
      within(alert).getByText(
        /its captures could not be listed: Failed to fetch\. The backend may still be taking it\./,
      ),
    ).toBeInTheDocument();
    expect(screen.getByRole('button', { name: /capture now/i })).toBeEnabled();
    expect(api.getReadiness).toHaveBeenCalledTimes(1);
  });
});
