import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { metricsServiceMock } from '@backstage/backend-test-utils/alpha';
import { DockerCaptureSource } from './DockerCaptureSource';
import { capturePauseHistogram } from './pauseMetrics';
import {
  engineError,
  fakePrimaryEngine,
  type FakeContainer,
} from './testing/fakePrimaryEngine';

/* How long captures keep production paused, in the recovery plugin's metrics: known only here. */

describe('recovery.captures.pause', () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'pause-metrics-test-'));
  });
  afterEach(() => rmSync(store, { recursive: true, force: true }));

  const id = 'c'.repeat(64);
  const machine = {
    machineRef: 'resource:default/data-01',
    engine: 'primary',
    container: id,
  };

  /** A source on a fake engine whose container commits in `commitMs`, its pauses recorded. */
  function source(
    commitMs: number,
    pause = true,
    container: Partial<FakeContainer> = {},
  ) {
    const containers: Record<string, FakeContainer> = {
      [id]: { paused: false, commitMs, ...container },
    };
    const { docker } = fakePrimaryEngine(containers);
    const metrics = metricsServiceMock.mock();
    const pauseSeconds = capturePauseHistogram(metrics, 5 * 60_000);
    return {
      metrics,
      pauseSeconds: pauseSeconds as unknown as {
        record: ReturnType<typeof vi.fn>;
      },
      container: containers[id],
      captures: new DockerCaptureSource('primary', docker, {
        storeDirectory: store,
        pause,
        pauseSeconds,
      }),
    };
  }

  it('records the pause of each capture, in seconds, as the capture measured it', async () => {
    const { metrics, pauseSeconds, captures } = source(50);
    const captured = await captures.capture(machine, { captureId: 'cap-1' });
    expect(captured.pausedMs).toBeGreaterThanOrEqual(50);
    expect(pauseSeconds.record.mock.calls).toEqual([
      [captured.pausedMs! / 1000],
    ]);
    // In seconds, its buckets up to the pause limit (recovery.docker.maxCapturePause, 5 min here).
    expect(metrics.createHistogram).toHaveBeenCalledTimes(1);
    expect(metrics.createHistogram).toHaveBeenCalledWith(
      'recovery.captures.pause',
      expect.objectContaining({
        unit: 's',
        advice: {
          explicitBucketBoundaries: expect.arrayContaining([0.05, 300]),
        },
      }),
    );
  });

  it('records the pause of a capture that failed after it, and none where the capture paused nothing', async () => {
    const failing = source(0);
    await expect(
      failing.captures.capture(machine, {
        captureId: 'cap-1',
        record: async () => {
          throw new Error('the store is gone');
        },
      }),
    ).rejects.toThrow('the store is gone');
    expect(failing.pauseSeconds.record).toHaveBeenCalledTimes(1);
    expect(failing.pauseSeconds.record.mock.calls[0][0]).toBeGreaterThanOrEqual(
      0,
    );

    const unpaused = source(0, false);
    await unpaused.captures.capture(machine, { captureId: 'cap-2' });
    expect(unpaused.pauseSeconds.record).not.toHaveBeenCalled();
  });

  describe('of a capture whose unpause failed, the longest pauses', () => {
    beforeEach(() => {
      vi.useFakeTimers({
        toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'],
      });
      // A pause begun at performance.now() 0 would read as none.
      vi.advanceTimersByTime(1_000);
    });
    afterEach(() => vi.useRealTimers());

    const unpauseFails = () => ({
      fails: {
        unpause: [engineError(500, 'cannot unpause: the cgroup is busy')],
      },
    });

    it('records it as measured once the retry has unpaused the machine', async () => {
      const { pauseSeconds, captures, container } = source(
        0,
        true,
        unpauseFails(),
      );
      await expect(
        captures.capture(machine, { captureId: 'cap-1' }),
      ).rejects.toThrow(/production stays paused/);
      expect(container.paused).toBe(true);
      expect(pauseSeconds.record).not.toHaveBeenCalled();

      // The retry, 2 s on, unpauses it: a pause of 2 s at least, from the pause to that unpause.
      await vi.advanceTimersByTimeAsync(2_000);
      await vi.waitFor(() => expect(container.paused).toBe(false));
      await vi.waitFor(() =>
        expect(pauseSeconds.record).toHaveBeenCalledTimes(1),
      );
      expect(pauseSeconds.record.mock.calls[0][0]).toBeGreaterThanOrEqual(2);
    });

    it('records the bound known as the unpause failed where the retry finds the machine unpaused already', async () => {
      const { pauseSeconds, captures, container } = source(
        0,
        true,
        unpauseFails(),
      );
      await expect(
        captures.capture(machine, { captureId: 'cap-1' }),
      ).rejects.toThrow(/production stays paused/);
      // Unpaused by hand before the retry: when is not known, only that it was paused till then.
      container.paused = false;
      await vi.advanceTimersByTimeAsync(2_000);
      await vi.waitFor(() =>
        expect(pauseSeconds.record).toHaveBeenCalledTimes(1),
      );
      expect(pauseSeconds.record.mock.calls[0][0]).toBeLessThan(2);
    });
  });
});
