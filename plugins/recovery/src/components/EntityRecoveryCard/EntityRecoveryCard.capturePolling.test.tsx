import { act, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import {
  type CaptureRequest,
  RecoveryClient,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from './EntityRecoveryCard';
import { fakeRecoveryApi } from '../../testUtils/fixtures';
import { renderWithApis } from '../../testUtils/render';

const BASE = 'http://backend/api/recovery';
const REQUEST_URL = `${BASE}/captures/requests/req-1`;

/**
 * A backend whose capture request never ends: POST /captures accepts it (202), and each poll of
 * it says it is capturing still. Counts the polls.
 */
function backendStillCapturing(pollIntervalMs = 10) {
  const request: CaptureRequest = {
    requestId: 'req-1',
    entityRef: 'component:default/web',
    machineRefs: [],
    status: 'capturing',
    createdAt: '2024-05-01T10:00:00.000Z',
    captures: [],
  };
  const polls = { count: 0 };
  const fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    if (url === `${BASE}/captures` && init?.method === 'POST')
      return Response.json(request, { status: 202 });
    if (url === REQUEST_URL) {
      polls.count++;
      return Response.json(request);
    }
    return new Response('{}', { status: 404 });
  };
  const client = new RecoveryClient({
    discoveryApi: { getBaseUrl: async () => BASE },
    fetchApi: { fetch },
    pollIntervalMs,
  });
  return { client, polls };
}

describe('EntityRecoveryCard, a capture polled', () => {
  it('stops polling the capture request once the card unmounts', async () => {
    const { client, polls } = backendStillCapturing();
    const api = fakeRecoveryApi({
      captureNow: (...args) => client.captureNow(...args),
    });
    const { unmount } = await renderWithApis(
      <EntityRecoveryCard pollIntervalMs={10} />,
      { api },
    );
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
    await waitFor(() => expect(polls.count).toBeGreaterThanOrEqual(3));

    unmount();
    const atUnmount = polls.count;
    // Thirty poll intervals.
    await new Promise(resolve => setTimeout(resolve, 300));
    expect(polls.count).toBe(atUnmount);
  });

  it('stops polling the capture request once it goes past its bound', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const MINUTE = 60_000;
      const { client, polls } = backendStillCapturing(MINUTE);
      const api = fakeRecoveryApi({
        captureNow: (...args) => client.captureNow(...args),
      });
      await renderWithApis(<EntityRecoveryCard pollIntervalMs={10} />, {
        api,
      });
      const user = userEvent.setup({ advanceTimers: vi.advanceTimersByTime });
      const button = await screen.findByRole('button', {
        name: /capture now/i,
      });
      await waitFor(() => expect(button).toBeEnabled());
      await user.click(button);
      await act(() => vi.advanceTimersByTimeAsync(35 * MINUTE));
      expect(
        await screen.findByText(/^No answer to the capture of db within 35m/),
      ).toBeInTheDocument();
      expect(polls.count).toBeGreaterThan(30);

      const atBound = polls.count;
      await act(() => vi.advanceTimersByTimeAsync(10 * MINUTE));
      expect(polls.count).toBe(atBound);
    } finally {
      vi.useRealTimers();
    }
  });
});
