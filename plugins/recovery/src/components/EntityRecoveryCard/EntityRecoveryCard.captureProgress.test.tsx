import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  type CaptureRequest,
  type CaptureRequestProgress,
  RecoveryClient,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import {
  DB,
  fakeRecoveryApi,
  makeReadiness,
  WEB,
} from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const BASE = 'http://backend/api/recovery';

/**
 * A backend capturing each machine asked for in its own request: db's request says the progress
 * line `line.progress` while `line.done` is false, then succeeds; the others succeed at once.
 */
function backendCopyingDb() {
  const line: { progress?: CaptureRequestProgress; done: boolean } = {
    done: false,
  };
  const latest = makeReadiness().captures.map(c => c.latest!);
  const requests = new Map<string, CaptureRequest>();
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    if (url === `${BASE}/captures` && init?.method === 'POST') {
      const { entityRef, machineRef } = JSON.parse(String(init.body));
      const request: CaptureRequest = {
        requestId: `req-${requests.size + 1}`,
        entityRef,
        machineRef,
        machineRefs: [machineRef],
        status: 'capturing',
        createdAt: '2024-05-01T10:00:00.000Z',
        captures: [],
      };
      requests.set(`${BASE}/captures/requests/${request.requestId}`, request);
      return Response.json(request, { status: 202 });
    }
    const request = requests.get(url);
    if (!request) return new Response('{}', { status: 404 });
    const machineRef = request.machineRef!;
    if (machineRef === DB && !line.done)
      return Response.json({
        ...request,
        ...(line.progress && { progress: line.progress }),
      });
    return Response.json({
      ...request,
      status: 'succeeded',
      captures: [{ ...latest[0], id: `cap-${machineRef}`, machineRef }],
    });
  };
  const client = new RecoveryClient({
    discoveryApi: { getBaseUrl: async () => BASE },
    fetchApi: { fetch },
    pollIntervalMs: 10,
  });
  return { client, line };
}

describe('EntityRecoveryCard, a capture saying its progress', () => {
  it("shows the machine's copy under way as its capture request says it, line after line, until it ends", async () => {
    const { client, line } = backendCopyingDb();
    const api = fakeRecoveryApi({
      captureNow: (...args) => client.captureNow(...args),
    });
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await screen.findByRole('button', { name: /capturing db \(1 of 2\)/i });
    // No line said yet: none shown.
    expect(screen.queryByText(/^db: /)).not.toBeInTheDocument();

    line.progress = {
      machineRef: DB,
      message:
        'Archiving volume /data (machine paused): 24.0 MiB so far at 12.0 MiB/s',
      at: '2024-05-01T10:00:02.000Z',
    };
    expect(
      await screen.findByText(
        'db: Archiving volume /data (machine paused): 24.0 MiB so far at 12.0 MiB/s',
      ),
    ).toBeInTheDocument();
    // Its total unknown (a line without numbers, too): a bar that only moves.
    expect(
      screen.getByRole('progressbar', { name: 'Copy of db' }),
    ).not.toHaveAttribute('aria-valuenow');

    line.progress = {
      machineRef: DB,
      message: 'Saving the image: 600.0 MiB of 1.0 GiB (58%) at 110.0 MiB/s',
      at: '2024-05-01T10:00:04.000Z',
      what: 'the image',
      doneBytes: 600 * 1024 * 1024,
      totalBytes: 1024 * 1024 * 1024,
      elapsedMs: 5_454,
    };
    expect(
      await screen.findByText(
        'db: Saving the image: 600.0 MiB of 1.0 GiB (58%) at 110.0 MiB/s',
      ),
    ).toBeInTheDocument();
    expect(screen.queryByText(/Archiving volume/)).not.toBeInTheDocument();
    // Its total known: how much of it is done.
    expect(
      screen.getByRole('progressbar', { name: 'Copy of db' }),
    ).toHaveAttribute('aria-valuenow', '59');

    // db captured: web's capture says nothing of db's copy, nor does the card once all are taken.
    line.done = true;
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    expect(screen.queryByText(/Saving the image/)).not.toBeInTheDocument();
    expect(
      screen.queryByRole('progressbar', { name: 'Copy of db' }),
    ).not.toBeInTheDocument();
  });
});

describe('EntityRecoveryCard, a capture of several machines', () => {
  it("moves each machine's last capture on as it is taken, not once all are", async () => {
    const captured = new Set<string>();
    let finishWeb: () => void = () => {};
    const api = fakeRecoveryApi({
      // db answers at once; web-1 when the test says.
      captureNow: async (_entityRef, machineRef) => {
        const latest = makeReadiness().captures[0].latest!;
        if (machineRef === WEB)
          await new Promise<void>(resolve => {
            finishWeb = resolve;
          });
        captured.add(machineRef!);
        return [
          {
            ...latest,
            id: `new-${machineRef}`,
            machineRef: machineRef!,
            createdAt: new Date().toISOString(),
          },
        ];
      },
      // As the backend answers: each machine captured since is 0 s old.
      getReadiness: async () => {
        const readiness = makeReadiness();
        return {
          ...readiness,
          captures: readiness.captures.map(c =>
            captured.has(c.machineRef)
              ? {
                  ...c,
                  ageSeconds: 0,
                  latest: { ...c.latest!, createdAt: new Date().toISOString() },
                }
              : c,
          ),
        };
      },
    });
    await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, { api });
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await screen.findByRole('button', { name: /capturing web-1 \(2 of 2\)/i });

    // web-1 still under way: db's line already says its new capture.
    const captures = screen.getByRole('table', { name: 'Captures' });
    const row = (name: string) =>
      within(captures).getByText(name).closest('tr')!;
    await waitFor(() => expect(row('db')).toHaveTextContent('just now'));
    expect(row('web-1')).not.toHaveTextContent('just now');

    finishWeb();
    expect(await screen.findByText('Captured 2 machines.')).toBeInTheDocument();
    await waitFor(() => expect(row('web-1')).toHaveTextContent('just now'));
  });
});
