import { act, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { TestApiProvider } from '@backstage/test-utils';
import { type SignalApi, signalApiRef } from '@backstage/plugin-signals-react';
import {
  type CaptureRequest,
  type RecoveryApi,
  RecoveryClient,
  type RecoverySignal,
} from '@backstage-recovery/plugin-recovery-common';
import { EntityRecoveryCard } from '../components/EntityRecoveryCard';
import { RecoveryRunHistory } from '../components/EntityRecoveryContent/EntityRecoveryContent';
import { fakeRecoveryApi, makeRun } from '../testUtils/fixtures';
import { renderWithApis } from '../testUtils/render';

const WEB_CHANNEL = 'recovery:entity:component:default/web';

/** The app's signals API as the signals plugin gives it: a subscription per channel, and a way to push. */
function fakeSignals() {
  const subscribers = new Map<string, Set<(message: any) => void>>();
  const api: SignalApi = {
    subscribe: (channel, onMessage) => {
      if (!subscribers.has(channel)) subscribers.set(channel, new Set());
      subscribers.get(channel)!.add(onMessage);
      return {
        unsubscribe: () => subscribers.get(channel)?.delete(onMessage),
      };
    },
  };
  return {
    api,
    channels: () =>
      [...subscribers].filter(([, s]) => s.size > 0).map(([c]) => c),
    push: (channel: string, message: RecoverySignal) =>
      act(() => subscribers.get(channel)?.forEach(s => s({ ...message }))),
  };
}

/** Renders `element` as the other tests do, in an app with the signals API where `signals` is given. */
function render(
  element: JSX.Element,
  options: {
    api: Partial<RecoveryApi>;
    signals?: ReturnType<typeof fakeSignals>;
    entity?: null;
  },
) {
  const { signals, ...rest } = options;
  return renderWithApis(
    signals ? (
      <TestApiProvider apis={[[signalApiRef, signals.api]]}>
        {element}
      </TestApiProvider>
    ) : (
      element
    ),
    rest,
  );
}

const pause = (ms: number) => new Promise(r => setTimeout(r, ms));

describe("the card's followed run, with and without signals", () => {
  /** A run found in progress on load; `getRun` answers it running. */
  const runningApi = () =>
    fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
      getRun: async () => makeRun('running'),
    });

  it("fetches the run again as soon as its entity's channel tells it changed, and polls it no more than every 15 s", async () => {
    const signals = fakeSignals();
    const api = runningApi();
    await render(<EntityRecoveryCard pollIntervalMs={10} />, { api, signals });
    await screen.findByLabelText('Test recovery in progress');
    expect(signals.channels()).toContain(WEB_CHANNEL);

    // Thirty of the card's intervals: no poll, the signals say when.
    await pause(300);
    expect(api.getRun).not.toHaveBeenCalled();

    // Another run's change, and a capture request's with the run's id: not this run's.
    signals.push(WEB_CHANNEL, { kind: 'run', id: 'run-2' });
    signals.push(WEB_CHANNEL, { kind: 'captureRequest', id: 'run-1' });
    await pause(50);
    expect(api.getRun).not.toHaveBeenCalled();

    signals.push(WEB_CHANNEL, { kind: 'run', id: 'run-1' });
    await waitFor(() => expect(api.getRun).toHaveBeenCalledTimes(1));
    expect(api.getRun).toHaveBeenCalledWith('run-1');
    await pause(100);
    expect(api.getRun).toHaveBeenCalledTimes(1);
  });

  it('fetches the run once more where it changed again while a fetch was on its way', async () => {
    const signals = fakeSignals();
    const answers: Array<() => void> = [];
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
      getRun: () =>
        new Promise(resolve => answers.push(() => resolve(makeRun('running')))),
    });
    await render(<EntityRecoveryCard pollIntervalMs={10} />, { api, signals });
    await screen.findByLabelText('Test recovery in progress');
    signals.push(WEB_CHANNEL, { kind: 'run', id: 'run-1' });
    await waitFor(() => expect(api.getRun).toHaveBeenCalledTimes(1));
    // Told again before the first answer: that answer may predate the change.
    signals.push(WEB_CHANNEL, { kind: 'run', id: 'run-1' });
    await pause(50);
    expect(api.getRun).toHaveBeenCalledTimes(1);
    await act(async () => answers[0]());
    await waitFor(() => expect(api.getRun).toHaveBeenCalledTimes(2));
  });

  it("polls at the card's own rate in an app without the signals plugin", async () => {
    const api = runningApi();
    await render(<EntityRecoveryCard pollIntervalMs={10} />, { api });
    await screen.findByLabelText('Test recovery in progress');
    // Its own 10 ms rate, however loaded the machine: at the 15 s of a live portal it would not.
    await waitFor(
      () => expect(api.getRun.mock.calls.length).toBeGreaterThanOrEqual(2),
      { timeout: 5_000 },
    );
  });

  it('polls every 15 s all the same where the signals say nothing (one lost)', async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    try {
      const signals = fakeSignals();
      const api = runningApi();
      await render(<EntityRecoveryCard pollIntervalMs={10} />, {
        api,
        signals,
      });
      await screen.findByLabelText('Test recovery in progress');
      await act(() => vi.advanceTimersByTimeAsync(14_000));
      expect(api.getRun).not.toHaveBeenCalled();
      await act(() => vi.advanceTimersByTimeAsync(1_500));
      expect(api.getRun).toHaveBeenCalledTimes(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('finds a run of the entity started elsewhere as its channel tells of it', async () => {
    const signals = fakeSignals();
    let active: ReturnType<typeof makeRun>[] = [];
    const api = fakeRecoveryApi({
      listRuns: async () => active,
      getRun: async () => makeRun('running'),
    });
    await render(<EntityRecoveryCard pollIntervalMs={10} />, { api, signals });
    await screen.findByRole('button', { name: /run test recovery/i });
    await waitFor(() => expect(api.listRuns).toHaveBeenCalledTimes(1));
    expect(screen.queryByLabelText('Test recovery in progress')).toBeNull();

    // A pipeline starts one.
    active = [makeRun('running')];
    signals.push(WEB_CHANNEL, { kind: 'run', id: 'run-1' });
    expect(
      await screen.findByLabelText('Test recovery in progress'),
    ).toBeInTheDocument();
  });
});

describe('the run history, with and without signals', () => {
  it("reloads as its entity's channel tells of a run, and polls its runs in progress no more than every 15 s", async () => {
    const signals = fakeSignals();
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
    });
    await render(
      <RecoveryRunHistory
        entityRef="component:default/web"
        pollIntervalMs={10}
      />,
      { api, signals, entity: null },
    );
    await waitFor(() => expect(api.listRuns).toHaveBeenCalledTimes(1));
    await pause(300);
    expect(api.listRuns).toHaveBeenCalledTimes(1);

    signals.push(WEB_CHANNEL, { kind: 'run', id: 'run-9' });
    await waitFor(() => expect(api.listRuns).toHaveBeenCalledTimes(2));
  });

  it('polls its runs in progress at its own rate without the signals plugin', async () => {
    const api = fakeRecoveryApi({
      listRuns: async () => [makeRun('running')],
    });
    await render(
      <RecoveryRunHistory
        entityRef="component:default/web"
        pollIntervalMs={10}
      />,
      { api, entity: null },
    );
    // Five polls in at most 5 s: its own 10 ms rate, loaded CI or not; at the 15 s of a live
    // portal it would have polled once.
    await waitFor(
      () => expect(api.listRuns.mock.calls.length).toBeGreaterThanOrEqual(5),
      { timeout: 5_000 },
    );
  });
});

describe("the card's capture, with and without signals", () => {
  /** RecoveryClient over a backend whose request captures until `finish()`; its polls counted. */
  function capturingBackend() {
    const BASE = 'http://backend/api/recovery';
    const request: CaptureRequest = {
      requestId: 'req-1',
      entityRef: 'component:default/web',
      machineRefs: [],
      status: 'capturing',
      createdAt: '2024-05-01T10:00:00.000Z',
      captures: [],
    };
    const polls = { count: 0, done: false };
    const client = new RecoveryClient({
      discoveryApi: { getBaseUrl: async () => BASE },
      fetchApi: {
        fetch: async (_input: RequestInfo | URL, init?: RequestInit) => {
          if (init?.method === 'POST')
            return Response.json(request, { status: 202 });
          polls.count++;
          return Response.json(
            polls.done ? { ...request, status: 'succeeded' } : request,
          );
        },
      },
      pollIntervalMs: 10,
    });
    const api = fakeRecoveryApi({
      captureNow: (...args) => client.captureNow(...args),
    });
    return { api, polls };
  }

  const pressCaptureNow = async () => {
    const button = await screen.findByRole('button', { name: /capture now/i });
    await waitFor(() => expect(button).toBeEnabled());
    await userEvent.click(button);
  };

  it('polls the capture request as its channel tells it changed, not at the client’s rate', async () => {
    const signals = fakeSignals();
    const { api, polls } = capturingBackend();
    await render(<EntityRecoveryCard pollIntervalMs={10} />, { api, signals });
    await pressCaptureNow();
    await waitFor(() => expect(api.captureNow).toHaveBeenCalled());
    await pause(300);
    expect(polls.count).toBe(0);

    polls.done = true;
    signals.push(WEB_CHANNEL, { kind: 'captureRequest', id: 'req-1' });
    await waitFor(() => expect(polls.count).toBe(1));
    await expect(api.captureNow.mock.results[0].value).resolves.toEqual([]);
  });

  it("polls the capture request at the client's rate without the signals plugin", async () => {
    const { api, polls } = capturingBackend();
    await render(<EntityRecoveryCard pollIntervalMs={10} />, { api });
    await pressCaptureNow();
    // Five polls in at most 5 s, however loaded the machine: not the 15 s of a live portal.
    await waitFor(() => expect(polls.count).toBeGreaterThanOrEqual(5), {
      timeout: 5_000,
    });
  });
});
