import { act, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { ReleaseFailover } from './ReleaseFailover';
import { fakeRecoveryApi, makeRun } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

// A request whose connection dropped (a VPN, a laptop's sleep) is never answered nor refused.
const unanswered = () => new Promise<never>(() => {});
const MINUTE = 60_000;

const failover = makeRun('succeeded', { id: 'fo-1', mode: 'failover' });
const released = (run: RecoveryRun, message: string): RecoveryRun => ({
  ...run,
  steps: [...run.steps, { at: '2024-05-02T10:00:00Z', level: 'info', message }],
});
const RELEASED =
  'Released by user:default/dr: removed 3 containers (a, b, c) and 1 network (lab) it kept on recovery';
const releaseButton = () =>
  screen.getByRole('button', { name: /Release failover machines|Releasing…/ });

beforeEach(() => {
  vi.useFakeTimers({ shouldAdvanceTime: true });
});
afterEach(() => {
  vi.useRealTimers();
});

/** Renders the release of `run`, confirms it, and lets the release go unanswered for a minute. */
async function releaseUnanswered(
  run: RecoveryRun,
  getRun: () => Promise<RecoveryRun>,
) {
  const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
  const api = fakeRecoveryApi({ releaseFailover: unanswered, getRun });
  const onReleased = vi.fn();
  await renderWithApis(<ReleaseFailover run={run} onReleased={onReleased} />, {
    api,
    entity: null,
  });
  await waitFor(() => expect(releaseButton()).toBeEnabled());
  await user.click(releaseButton());
  await user.click(
    within(await screen.findByRole('dialog')).getByRole('button', {
      name: 'Release',
    }),
  );
  await waitFor(() => expect(releaseButton()).toHaveTextContent('Releasing…'));
  expect(releaseButton()).toBeDisabled();
  await act(() => vi.advanceTimersByTimeAsync(MINUTE - 1000));
  expect(api.getRun).not.toHaveBeenCalled();
  await act(() => vi.advanceTimersByTimeAsync(1000));
  return { api, onReleased };
}

describe('a release of a failover left unanswered', () => {
  it('reads the run again and says it was released where its timeline says so', async () => {
    const { api, onReleased } = await releaseUnanswered(failover, async () =>
      released(failover, RELEASED),
    );
    expect(
      await screen.findByText(
        `${RELEASED} (no answer to the release within 1m; its timeline says so)`,
      ),
    ).toBeInTheDocument();
    expect(api.getRun).toHaveBeenCalledWith('fo-1');
    expect(onReleased).toHaveBeenCalledWith(released(failover, RELEASED));
    await waitFor(() =>
      expect(releaseButton()).toHaveTextContent('Release failover machines'),
    );
    expect(releaseButton()).toBeEnabled();
  });

  it('says the timeline shows no release yet, not that it failed, and enables the button again', async () => {
    const { onReleased } = await releaseUnanswered(
      failover,
      async () => failover,
    );
    expect(
      await screen.findByText(
        "No answer to the release within 1m, and the failover's timeline shows no release yet: its host may still be removing what it kept. " +
          'Releasing again is safe: it removes what is left, and says so.',
      ),
    ).toBeInTheDocument();
    expect(screen.queryByText(/Not released/)).toBeNull();
    expect(onReleased).not.toHaveBeenCalled();
    await waitFor(() => expect(releaseButton()).toBeEnabled());
  });

  it('does not take the step of an earlier release for this one', async () => {
    const releasedBefore = released(
      failover,
      'Released by user:default/ops: nothing of it was left on recovery',
    );
    await releaseUnanswered(releasedBefore, async () => releasedBefore);
    expect(
      await screen.findByText(
        /^No answer to the release within 1m, and the failover's timeline shows no release yet/,
      ),
    ).toBeInTheDocument();
    expect(screen.queryByText(/Released by user:default\/ops/)).toBeNull();
  });

  it('says so when the run cannot be read again either, and enables the button again', async () => {
    await releaseUnanswered(failover, unanswered);
    expect(releaseButton()).toBeDisabled();
    await act(() => vi.advanceTimersByTimeAsync(MINUTE));
    expect(
      await screen.findByText(
        'No answer to the release within 1m, and the failover could not be read again: No answer from the backend within 1m. ' +
          'Its host may still be removing what it kept. Releasing again is safe: it removes what is left, and says so.',
      ),
    ).toBeInTheDocument();
    await waitFor(() => expect(releaseButton()).toBeEnabled());
  });
});
