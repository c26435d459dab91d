import { screen, within } from '@testing-library/react';
import type { Readiness } from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  DB,
  fakeRecoveryApi,
  makeReadiness,
  makeRun,
  WEB,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';
import { formatTime } from '../../utils/format';

const since = '2026-11-02T09:00:00.000Z';
const nextAt = '2026-11-02T09:04:00.000Z';
/** web's failover, kept on recovery-1, whose supervision could not bring db back. */
const failover = makeRun('succeeded', {
  id: 'run-7',
  mode: 'failover',
  supervision: {
    restarts: 2,
    lastRestartAt: since,
    degraded: {
      since,
      machineRef: DB,
      message: 'stopped with exit code 3',
      notStarted: [WEB],
    },
    retry: { nextAt, delaySeconds: 240 },
  },
});

function renderCard(readiness: Readiness) {
  const api = fakeRecoveryApi({ getReadiness: async () => readiness });
  return renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
}

describe('EntityRecoveryCard, a kept failover running degraded', () => {
  it('says plainly in its failover section what is down, since when, why, and when it is tried again', async () => {
    await renderCard(makeReadiness({ status: 'at-risk', lastRun: failover }));
    const section = await screen.findByRole('region', {
      name: 'Last failover',
    });
    const note = within(section).getByTestId('degraded-failover');
    expect(note).toHaveTextContent(
      `Failover running degraded: 2 machines down since ${formatTime(since)} (`,
    );
    expect(note).toHaveTextContent(
      `db stopped on recovery-1 and could not be brought back: stopped with exit code 3. Left stopped, as they wait for it: web-1. Next try at ${formatTime(nextAt)}.`,
    );
  });

  it("says 'noticed down at' where the host told no stop time: the machine may have stopped earlier", async () => {
    const { supervision } = failover;
    await renderCard(
      makeReadiness({
        status: 'at-risk',
        lastRun: {
          ...failover,
          supervision: {
            ...supervision!,
            degraded: { ...supervision!.degraded!, sinceIs: 'noticed' },
          },
        },
      }),
    );
    const note = await screen.findByTestId('degraded-failover');
    expect(note).toHaveTextContent(
      `Failover running degraded: 2 machines noticed down at ${formatTime(since)} (`,
    );
    expect(note).not.toHaveTextContent('down since');
  });

  it("says a machine left running without network down too, since when, and that its namespace's owner stopped", async () => {
    const { supervision } = failover;
    const { notStarted: _, ...degraded } = supervision!.degraded!;
    await renderCard(
      makeReadiness({
        status: 'at-risk',
        lastRun: {
          ...failover,
          supervision: {
            ...supervision!,
            degraded: {
              ...degraded,
              withoutNetwork: [{ machineRef: WEB, of: DB, since }],
            },
          },
        },
      }),
    );
    const note = await screen.findByTestId('degraded-failover');
    expect(note).toHaveTextContent(
      `Failover running degraded: 2 machines down since ${formatTime(since)} (`,
    );
    expect(note).toHaveTextContent(
      `db stopped on recovery-1 and could not be brought back: stopped with exit code 3. web-1 running without network since ${formatTime(since)}, its namespace's owner db stopped. Next try at ${formatTime(nextAt)}.`,
    );
    expect(note).not.toHaveTextContent('Left stopped');
  });

  it("says its namespace's owner was restarted outside supervision, not that it stopped, where it was: it runs", async () => {
    const { supervision } = failover;
    const { notStarted: _, ...degraded } = supervision!.degraded!;
    await renderCard(
      makeReadiness({
        status: 'at-risk',
        lastRun: {
          ...failover,
          supervision: {
            ...supervision!,
            degraded: {
              ...degraded,
              withoutNetwork: [
                { machineRef: WEB, of: DB, since, ownerRestarted: true },
              ],
            },
          },
        },
      }),
    );
    const note = await screen.findByTestId('degraded-failover');
    expect(note).toHaveTextContent(
      `web-1 running without network since ${formatTime(since)}, its namespace's owner db was restarted outside supervision.`,
    );
    expect(note).not.toHaveTextContent("its namespace's owner db stopped");
  });

  it('says nothing of the kind for a failover every machine of which runs', async () => {
    const { degraded: _, retry: __, ...running } = failover.supervision!;
    await renderCard(
      makeReadiness({ lastRun: { ...failover, supervision: running } }),
    );
    await screen.findByRole('region', { name: 'Last failover' });
    expect(screen.queryByTestId('degraded-failover')).toBeNull();
  });
});
