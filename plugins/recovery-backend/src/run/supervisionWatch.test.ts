import { mockServices } from '@backstage/backend-test-utils';
import type { HypervisorHost } from '@backstage-recovery/plugin-recovery-node';
import type { RunStore } from '../database/RunStore';
import {
  FailoverSupervision,
  HEARD_STOPS_MOST_MS,
  HEARD_STOPS_QUIET_MS,
  type SupervisionOutcome,
} from './supervision';

/*
 * A host that tells when a kept machine stops has its failover looked at within a short window,
 * not at the next sweep; never two looks at one failover at once. Fakes: the host's watch, the
 * store's failovers, and each look (supervise) held open until the test lets it finish.
 */

/** The host's watch, driven by the test. */
class TellingHost {
  readonly id = 'recovery-1';
  onStopped?: (runId: string) => void;
  onResumed?: () => void;
  watching = false;
  async reattach() {
    return undefined;
  }
  watchKeptMachines(onStopped: (runId: string) => void, onResumed: () => void) {
    this.onStopped = onStopped;
    this.onResumed = onResumed;
    this.watching = true;
    return () => {
      this.watching = false;
    };
  }
}

/** Supervision whose looks are recorded and held until `finish` lets the oldest one end. */
class HeldSupervision extends FailoverSupervision {
  readonly looks: string[] = [];
  private readonly open: Array<() => void> = [];
  running = 0;
  mostAtOnce = 0;

  async supervise(
    _host: HypervisorHost,
    runId: string,
  ): Promise<SupervisionOutcome> {
    this.looks.push(runId);
    this.running++;
    this.mostAtOnce = Math.max(this.mostAtOnce, this.running);
    await new Promise<void>(resolve => this.open.push(resolve));
    this.running--;
    return { kind: 'running' };
  }

  /** Lets every look under way finish. */
  async finish() {
    for (const resolve of this.open.splice(0)) resolve();
    await vi.advanceTimersByTimeAsync(0);
  }
}

/** Failovers that finished on the host: two succeeded, one failed; a test lab's run is none. */
const FAILOVERS = [
  { id: 'failover-a', status: 'succeeded' },
  { id: 'failover-b', status: 'succeeded' },
  { id: 'failover-failed', status: 'failed' },
];

function supervisionOver(host: TellingHost) {
  const runStore = {
    finishedFailovers: async () => FAILOVERS,
    // One replica: every pass claims its failover.
    claimSupervision: async () => true,
    releaseSupervision: async () => {},
  } as unknown as RunStore;
  return new HeldSupervision(
    runStore,
    {
      hypervisorHostIds: () => [host.id],
      hypervisorHost: () => host as unknown as HypervisorHost,
    },
    mockServices.logger.mock(),
    mockServices.auditor.mock(),
    {
      machineReadyTimeoutMs: 500,
      probeIntervalMs: 10,
      stepTimeoutMs: 60_000,
      minReadyMs: 0,
    },
  );
}

describe('supervision told of stops by its host', () => {
  let host: TellingHost;
  let supervision: HeldSupervision;
  let stop: () => Promise<void>;
  let startedAt: number;

  beforeEach(() => {
    vi.useFakeTimers();
    startedAt = Date.now();
    host = new TellingHost();
    supervision = supervisionOver(host);
    stop = supervision.watch();
  });

  afterEach(async () => {
    const stopped = stop();
    while (supervision.running > 0) await supervision.finish();
    await stopped;
    vi.useRealTimers();
  });

  it("looks at each failover told once, when the host's stops go quiet: a whole host's stops are one pass", async () => {
    expect(host.watching).toBe(true);
    host.onStopped!('failover-a');
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS / 2);
    host.onStopped!('failover-b');
    host.onStopped!('failover-a');
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS - 1);
    expect(supervision.looks).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(supervision.looks).toEqual(['failover-a']);
    await supervision.finish();
    expect(supervision.looks).toEqual(['failover-a', 'failover-b']);
    await supervision.finish();
    expect(supervision.looks).toEqual(['failover-a', 'failover-b']);
  });

  it('waits for stops that keep coming no longer than HEARD_STOPS_MOST_MS after the first', async () => {
    const every = HEARD_STOPS_QUIET_MS * 0.8;
    for (let told = 0; told < Math.floor(HEARD_STOPS_MOST_MS / every); told++) {
      host.onStopped!('failover-a');
      await vi.advanceTimersByTimeAsync(every);
    }
    host.onStopped!('failover-b');
    expect(supervision.looks).toEqual([]);
    await vi.advanceTimersByTimeAsync(
      startedAt + HEARD_STOPS_MOST_MS - Date.now() - 1,
    );
    expect(supervision.looks).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(supervision.looks).toEqual(['failover-a']);
  });

  it('leaves alone a run that is no succeeded kept failover (a test lab, one released or failed)', async () => {
    host.onStopped!('test-lab');
    host.onStopped!('failover-failed');
    host.onStopped!('failover-released');
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS);
    await supervision.finish();
    expect(supervision.looks).toEqual([]);
  });

  it('never looks at one failover twice at once: a stop told during a look makes one more after it', async () => {
    host.onStopped!('failover-a');
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS);
    expect(supervision.looks).toEqual(['failover-a']);
    // The sweep comes, and the host tells of two more stops, while the look is under way.
    const sweep = supervision.sweep();
    host.onStopped!('failover-a');
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS);
    host.onStopped!('failover-a');
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS);
    expect(supervision.looks).toEqual(['failover-a']);
    expect(supervision.running).toBe(1);
    await supervision.finish();
    // One more look, shared by the sweep and both stops told meanwhile.
    expect(supervision.looks).toEqual(['failover-a', 'failover-a']);
    await supervision.finish();
    expect(supervision.looks).toEqual([
      'failover-a',
      'failover-a',
      'failover-b',
    ]);
    await supervision.finish();
    await sweep;
    expect(supervision.mostAtOnce).toBe(1);
  });

  it('looks at every failover of the host once its watch comes back: stops during the break went unheard', async () => {
    host.onResumed!();
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS);
    await supervision.finish();
    await supervision.finish();
    expect(supervision.looks).toEqual(['failover-a', 'failover-b']);
  });

  it('stops listening and drops a window not yet closed', async () => {
    host.onStopped!('failover-a');
    await stop();
    expect(host.watching).toBe(false);
    await vi.advanceTimersByTimeAsync(HEARD_STOPS_QUIET_MS);
    expect(supervision.looks).toEqual([]);
  });
});
