import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { DockerCaptureSource } from './DockerCaptureSource';
import { ENGINE_CLOCK_REUSE_MS, EngineClock } from './engineClock';
import {
  engineError,
  fakePrimaryEngine,
  pingAnswer,
} from './testing/fakePrimaryEngine';

const MINUTE = 60_000;

/**
 * An engine whose `/_ping` answers dated by its clock, `skewMs` off the backend's (`answer` may
 * answer otherwise: undefined for no Date, a throw for a failure); `asked` counts the pings. A
 * ping stops, failing, when its abort signal does, as dockerode's modem stops it.
 */
const engineAt = (
  skewMs: () => number,
  answer: () => Promise<string | undefined> = async () =>
    new Date(Date.now() + skewMs()).toUTCString(),
) => {
  const engine = { asked: 0 };
  const docker = {
    modem: {
      dial: (
        options: { path: string; abortSignal?: AbortSignal },
        callback: (err: unknown, data?: unknown) => void,
      ) => {
        expect(options.path).toBe('/_ping');
        engine.asked += 1;
        const signal = options.abortSignal;
        signal?.addEventListener('abort', () =>
          callback(new Error('The operation was aborted')),
        );
        answer().then(
          date => !signal?.aborted && callback(null, pingAnswer(date)),
          e => !signal?.aborted && callback(e),
        );
      },
    },
  } as unknown as Docker;
  return { engine, docker };
};

const warningsTo = (warnings: string[]) =>
  ({ warn: (m: string) => warnings.push(m) }) as unknown as LoggerService;

describe('EngineClock', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("reads how far the engine's clock is off the backend's from the Date of its ping, once for a round of captures", async () => {
    const { engine, docker } = engineAt(() => -7 * MINUTE);
    const clock = new EngineClock('primary', docker);
    const offsets = await Promise.all([
      clock.offsetMs(),
      clock.offsetMs(),
      clock.offsetMs(),
    ]);
    // Whole seconds, read as the middle of the second: within half a second, and the ask's time.
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
    expect(await clock.offsetMs()).toBe(3 * MINUTE + 500);
    skew = 0;
    vi.advanceTimersByTime(ENGINE_CLOCK_REUSE_MS - 1);
    expect(await clock.offsetMs()).toBe(3 * MINUTE + 500);
    vi.advanceTimersByTime(1);
    expect(Math.abs(await clock.offsetMs())).toBeLessThan(1_000);
    expect(engine.asked).toBe(2);
  });

  it("goes on with the backend's clock where the engine does not say its time, and says so", async () => {
    const warnings: string[] = [];
    const { docker: failing } = engineAt(
      () => 0,
      async () => {
        throw engineError(500, 'no ping here');
      },
    );
    expect(
      await new EngineClock(
        'primary',
        failing,
        warningsTo(warnings),
      ).offsetMs(),
    ).toBe(0);
    const { docker: undated } = engineAt(
      () => 0,
      async () => undefined,
    );
    expect(
      await new EngineClock(
        'primary',
        undated,
        warningsTo(warnings),
      ).offsetMs(),
    ).toBe(0);
    expect(warnings).toEqual([
      expect.stringMatching(
        /^recovery: could not read the time of Docker engine 'primary' \(.*no ping here.*\): .*the backend's clock/,
      ),
      expect.stringContaining('its /_ping answered Date "undefined"'),
    ]);
  });

  it('remembers a failed read as long as a good one: the captures meanwhile neither ask nor warn again', async () => {
    vi.useFakeTimers({ now: Date.parse('2026-12-07T00:00:00Z') });
    let fails = false;
    const { engine, docker } = engineAt(
      () => 2 * MINUTE,
      async () => {
        if (fails) throw engineError(500, 'no ping here');
        return new Date(Date.now() + 2 * MINUTE).toUTCString();
      },
    );
    const warnings: string[] = [];
    const clock = new EngineClock('primary', docker, warningsTo(warnings));
    expect(await clock.offsetMs()).toBe(2 * MINUTE + 500);
    fails = true;
    vi.advanceTimersByTime(ENGINE_CLOCK_REUSE_MS);
    // The last offset read, for a round of captures: asked once, said once.
    for (let capture = 0; capture < 3; capture += 1) {
      expect(await clock.offsetMs()).toBe(2 * MINUTE + 500);
      vi.advanceTimersByTime(MINUTE);
    }
    expect(engine.asked).toBe(2);
    expect(warnings).toEqual([
      expect.stringMatching(/no ping here.*its time as last read/),
    ]);
    // Asked again after as long as a good read is used.
    vi.advanceTimersByTime(ENGINE_CLOCK_REUSE_MS - 3 * MINUTE);
    fails = false;
    expect(await clock.offsetMs()).toBe(2 * MINUTE + 500);
    expect(engine.asked).toBe(3);
    expect(warnings).toHaveLength(1);
  });

  it('reads on for the other captures where the one that asked first stops', async () => {
    let answer!: (date: string) => void;
    const { engine, docker } = engineAt(
      () => 0,
      () => new Promise(resolve => (answer = resolve)),
    );
    const warnings: string[] = [];
    const clock = new EngineClock('primary', docker, warningsTo(warnings));
    const stopping = new AbortController();
    const first = clock.offsetMs(stopping.signal);
    const second = clock.offsetMs(new AbortController().signal);
    stopping.abort(new Error('capture cap-1 stopped'));
    // The stopped capture waits no more, failing as it was stopped.
    await expect(first).rejects.toThrow('capture cap-1 stopped');
    answer(new Date(Date.now() - 4 * MINUTE).toUTCString());
    expect(Math.abs((await second) + 4 * MINUTE)).toBeLessThan(1_000);
    expect(engine.asked).toBe(1);
    expect(warnings).toEqual([]);
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
        engineNow: () => {
          asked += 1;
          return engineNow();
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
