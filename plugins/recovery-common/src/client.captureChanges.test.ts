import type { CaptureRequest } from './captureRequest';
import { RecoveryClient } from './client';
import type { RecoveryChanges, RecoverySignal } from './signals';

const accepted: CaptureRequest = {
  requestId: 'req-1',
  entityRef: 'component:default/web',
  machineRefs: ['resource:default/web-01'],
  status: 'capturing',
  createdAt: '2026-12-22T00:00:00.000Z',
  captures: [],
};

/**
 * A backend whose request captures until `finish()`, and changes heard of as the portal hears
 * them (a listener set), polled at `pollIntervalMs` otherwise.
 */
function setUp() {
  const polls: number[] = [];
  let done = false;
  let answerPost: () => void = () => {};
  const posted = new Promise<void>(resolve => {
    answerPost = resolve;
  });
  let holdPost = false;
  const client = new RecoveryClient({
    discoveryApi: { getBaseUrl: async id => `http://backstage.test/api/${id}` },
    fetchApi: {
      fetch: async (_input: any, init?: RequestInit) => {
        if (init?.method === 'POST') {
          if (holdPost) await posted;
          return Response.json(accepted, { status: 202 });
        }
        polls.push(Date.now());
        return Response.json(
          done ? { ...accepted, status: 'succeeded' } : accepted,
        );
      },
    },
    // The client's own rate, unused where changes are heard.
    pollIntervalMs: 5,
  });
  const listeners = new Set<(change: RecoverySignal) => void>();
  const changes: RecoveryChanges = {
    pollIntervalMs: 15_000,
    watch: listener => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
  const tell = (change: RecoverySignal) => listeners.forEach(l => l(change));
  return {
    client,
    changes,
    polls,
    listeners,
    tell,
    finish: () => {
      done = true;
    },
    holdPost: () => {
      holdPost = true;
    },
    answerPost,
  };
}

describe('RecoveryClient.captureNow with changes heard (the portal: signals)', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("polls the request as soon as it changed, not on the client's own interval, and stops listening once it ended", async () => {
    const { client, changes, polls, listeners, tell, finish } = setUp();
    const captured = client.captureNow('component:default/web', undefined, {
      changes,
    });
    await vi.advanceTimersByTimeAsync(10_000);
    expect(polls).toHaveLength(0);

    // Another request's change, and a run's with the same id: not this request's.
    tell({ kind: 'captureRequest', id: 'req-2' });
    tell({ kind: 'run', id: 'req-1' });
    await vi.advanceTimersByTimeAsync(0);
    expect(polls).toHaveLength(0);

    tell({ kind: 'captureRequest', id: 'req-1' });
    await vi.advanceTimersByTimeAsync(0);
    expect(polls).toHaveLength(1);

    finish();
    tell({ kind: 'captureRequest', id: 'req-1' });
    await vi.advanceTimersByTimeAsync(0);
    expect(polls).toHaveLength(2);
    await expect(captured).resolves.toEqual([]);
    expect(listeners.size).toBe(0);
  });

  it('polls every changes.pollIntervalMs where no change is heard', async () => {
    const { client, changes, polls, finish } = setUp();
    const captured = client.captureNow('component:default/web', undefined, {
      changes,
    });
    await vi.advanceTimersByTimeAsync(14_999);
    expect(polls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(polls).toHaveLength(1);
    finish();
    await vi.advanceTimersByTimeAsync(15_000);
    await expect(captured).resolves.toEqual([]);
    expect(polls).toHaveLength(2);
  });

  it('polls at once for a change heard before POST /captures answered', async () => {
    const { client, changes, polls, tell, finish, holdPost, answerPost } =
      setUp();
    holdPost();
    finish();
    const captured = client.captureNow('component:default/web', undefined, {
      changes,
    });
    await vi.advanceTimersByTimeAsync(0);
    tell({ kind: 'captureRequest', id: 'req-1' });
    answerPost();
    await vi.advanceTimersByTimeAsync(0);
    expect(polls).toHaveLength(1);
    await expect(captured).resolves.toEqual([]);
  });
});
