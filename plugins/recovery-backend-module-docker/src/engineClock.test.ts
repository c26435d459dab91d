import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { DockerCaptureSource } from './DockerCaptureSource';
import { ENGINE_CLOCK_REUSE_MS, EngineClock } from './engineClock';
import { engineError, fakePrimaryEngine } from './testing/fakePrimaryEngine';

const MINUTE = 60_000;

/** An engine whose `/info` says its clock, `skewMs` off the backend's; `asked` counts the asks. */
const engineAt = (skewMs: () => number) => {
  const engine = { asked: 0 };
  const docker = {
    info: async () => {
      engine.asked += 1;
      return { SystemTime: new Date(Date.now() + skewMs()).toISOString() };
    },
  } as unknown as Docker;
  return { engine, docker };
};

describe('EngineClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads how far the engine's clock is off the backend's, once for a round of captures", async () => {
    const { engine, docker } = engineAt(() => -7 * MINUTE);
    const clock = new EngineClock('primary', docker);
    const offsets = await Promise.all([
      clock.offsetMs(),
      clock.offsetMs(),
      clock.offsetMs(),
    ]);
    for (const offset of offsets)
      expect(Math.abs(offset + 7 * MINUTE)).toBeLessThan(1_000);
    expect(await clock.offsetMs()).toBe(offsets[0]);
    expect(engine.asked).toBe(1);
  });

  it('reads it again once the offset is older than ENGINE_CLOCK_REUSE_MS (a clock set since)', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-07T00:00:00Z') });
    let skew = 3 * MINUTE;
    const { engine, docker } = engineAt(() => skew);
    const clock = new EngineClock('primary', docker);
    expect(await clock.offsetMs()).toBe(3 * MINUTE);
    skew = 0;
    vi.advanceTimersByTime(ENGINE_CLOCK_REUSE_MS - 1);
    expect(await clock.offsetMs()).toBe(3 * MINUTE);
    vi.advanceTimersByTime(1);
    expect(await clock.offsetMs()).toBe(0);
    expect(engine.asked).toBe(2);
  });

  it("goes on with the backend's clock where the engine does not say its time, and says so", async () => {
    const warnings: string[] = [];
    const logger = { warn: (m: string) => warnings.push(m) } as any;
    const failing = {
      info: async () => {
        throw engineError(500, 'no info here');
      },
    } as unknown as Docker;
    expect(await new EngineClock('primary', failing, logger).offsetMs()).toBe(
      0,
    );
    const old = { info: async () => ({}) } as unknown as Docker;
    expect(await new EngineClock('primary', old, logger).offsetMs()).toBe(0);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^recovery: could not read the time of Docker engine 'primary' \(.*no info here.*\): .*the backend's clock/,
      ),
      expect.stringContaining('SystemTime "undefined"'),
    ]);
  });
});

describe("DockerCaptureSource judges a crash loop on the engine's clock", () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'engine-clock-test-'));
  });
  afterEach(() => {
    rmSync(store, { recursive: true, force: true });
  });

  /**
   * Captures a machine its restart policy restarted 12 times, which Docker says runs, started
   * `startedAgoMs` before the look by the engine's clock; that clock `skewMs` off the backend's.
   */
  const capture = async (skewMs: number, startedAgoMs: number) => {
    const id = 'c'.repeat(64);
    let asked = 0;
    const engineNow = () => Date.now() + skewMs;
    const { docker } = fakePrimaryEngine(
      {
        [id]: {
          paused: false,
          restartCount: 12,
          get state() {
            return {
              Status: 'running',
              Running: true,
              Paused: false,
              Restarting: false,
              ExitCode: 0,
              StartedAt: new Date(engineNow() - startedAgoMs).toISOString(),
              FinishedAt: new Date(
                engineNow() - startedAgoMs - 500,
              ).toISOString(),
            };
          },
        },
      },
      {
        systemTime: () => {
          asked += 1;
          return new Date(engineNow()).toISOString();
        },
      },
    );
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    const locator = {
      machineRef: 'resource:default/web-01',
      engine: 'primary',
      container: id,
    };
    const first = await source.capture(locator, { captureId: 'cap-1' });
    const second = await source.capture(locator, { captureId: 'cap-2' });
    expect(second.machineState?.status).toBe(first.machineState?.status);
    return { state: first.machineState, asked };
  };

  it('captures as restarting a machine up 5 s after a restart, on an engine whose clock is 10 minutes behind', async () => {
    // By the backend's clock it started 10 minutes ago: it would pass for a machine that serves.
    const { state, asked } = await capture(-10 * MINUTE, 5_000);
    expect(state).toMatchObject({ status: 'restarting', restartCount: 12 });
    // Once for both captures, not once a machine.
    expect(asked).toBe(1);
  });

  it('captures as running a machine up 5 minutes after a restart, on an engine whose clock is 10 minutes ahead', async () => {
    // By the backend's clock it started 5 minutes from now: within any window before the look.
    const { state } = await capture(10 * MINUTE, 5 * MINUTE);
    expect(state).toMatchObject({ status: 'running', restartCount: 12 });
  });
});
