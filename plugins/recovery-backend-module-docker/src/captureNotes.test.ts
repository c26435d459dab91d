import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerCaptureSource } from './DockerCaptureSource';
import { fakePrimaryEngine } from './testing/fakePrimaryEngine';
import { untilReal } from './testing/realClock';

/**
 * A backend killed (SIGKILL) while its capture had a machine paused leaves the capture's note,
 * which a backend started on the same capture store must tell from the note of another backend's
 * capture still under way: by whether the note is still refreshed, not only at the pause limit.
 */

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/**
 * Fakes the clocks of the backends of a test (timers, Date, performance): they move only by
 * `advance`, so however loaded the machine running the test, each look at a note, and each of its
 * refreshes, comes at the instant it falls due, and sees the note as of that instant.
 */
function fakeClock() {
  vi.useFakeTimers({
    toFake: [
      'setTimeout',
      'clearTimeout',
      'setInterval',
      'clearInterval',
      'Date',
      'performance',
    ],
  });
}

/**
 * Moves the fake clock on `ms`, then waits until `done`: a look at a note, or its refresh, falling
 * due is a timer, then real file reads or writes.
 */
async function advance(ms: number, done: () => boolean, what: string) {
  await vi.advanceTimersByTimeAsync(ms);
  await untilReal(done, what);
}

describe('the note of a capture that has its machine paused, after its backend was killed', () => {
  let store: string;
  const id = 'a'.repeat(64);
  const notePath = () => join(store, '.paused', `primary.${id}`);
  const locator = {
    machineRef: 'resource:default/web-01',
    engine: 'primary',
    container: id,
  };
  /** A look at the note is done: it set the timer of the next look, or unpaused the machine. */
  const looked = (machine: { paused: boolean }) => () =>
    !machine.paused || vi.getTimerCount() > 0;

  /** What a backend killed mid-pause leaves: the note (refreshed every `heartbeatMs`, as it said), a volume's archive. */
  function leftByKilledCapture(heartbeatMs?: number) {
    mkdirSync(join(store, '.paused'), { recursive: true });
    const note = {
      machineRef: 'resource:default/web-01',
      captureId: 'cap-killed',
      imageRef: `recovery-capture/web-01:cap-killed`,
      filePrefix: 'cap-killed',
      phase: 'paused',
      // Paused a moment ago: its pause limit (5 min by default) is far off.
      pausedAt: new Date().toISOString(),
      ...(heartbeatMs !== undefined && { heartbeatMs }),
    };
    writeFileSync(notePath(), JSON.stringify(note));
    writeFileSync(
      join(store, 'cap-killed.volume-1.tar'),
      'archived while paused',
    );
    writeFileSync(
      join(store, '.cap-killed.volume-2.tar.1a2b3c4d.tmp'),
      'partial',
    );
  }

  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-notes-test-'));
  });
  afterEach(() => {
    vi.useRealTimers();
    rmSync(store, { recursive: true, force: true });
  });

  it('is taken, once seen unrefreshed for ten of its heartbeats, for a stopped capture: the machine unpaused and what it left removed, not at the pause limit', async () => {
    fakeClock();
    const machines = { [id]: { paused: true, unpauses: 0 } };
    const { docker, removedTags } = fakePrimaryEngine(machines);
    leftByKilledCapture(100);
    const started = Date.now();
    const restarted = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    // At the first look it may be another backend's capture under way.
    expect(await restarted.resumeInterruptedCaptures()).toEqual([]);
    expect(machines[id].paused).toBe(true);
    while (machines[id].paused && Date.now() - started < 2_000)
      await advance(50, looked(machines[id]), 'a look at the note');
    // At the look ten heartbeats on, not one before; the pause limit is minutes away.
    expect(machines[id].paused).toBe(false);
    expect(Date.now() - started).toBe(1_000);
    await untilReal(() => !existsSync(notePath()), 'the note removed');
    expect(readdirSync(store).filter(f => f !== '.paused')).toEqual([]);
    expect(removedTags).toEqual(['recovery-capture/web-01:cap-killed']);
  });

  it('is left alone while it is refreshed (another backend capturing), and a capture of its machine meanwhile is refused', async () => {
    fakeClock();
    const machines = { [id]: { paused: true, unpauses: 0 } };
    const { docker } = fakePrimaryEngine(machines);
    leftByKilledCapture(100);
    const started = Date.now();
    const other = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    // It looks at the note every 100 ms from now on.
    expect(await other.resumeInterruptedCaptures()).toEqual([]);
    // Its own backend's heartbeat: a refresh every 100 ms, half-way between those looks.
    const heartbeat = () => {
      if ((Date.now() - started) % 100 !== 50) return;
      const now = new Date();
      utimesSync(notePath(), now, now);
    };
    // Twenty of its heartbeats: twice what would make it stale, were it not refreshed.
    while (Date.now() - started < 2_000) {
      await advance(50, looked(machines[id]), 'a look at the note');
      heartbeat();
    }
    expect(machines[id]).toMatchObject({ paused: true, unpauses: 0 });
    await expect(
      other.capture(locator, { captureId: 'cap-second' }),
    ).rejects.toThrow(
      /^machine resource:default\/web-01: capture cap-killed is under way \(paused it at .*\); one capture of a machine at a time$/,
    );
    expect(existsSync(notePath())).toBe(true);
    // Its backend killed after one more heartbeat, which this one sees at its next look: the
    // machine unpaused ten heartbeats on, not up to twice that.
    await advance(50, looked(machines[id]), 'a look at the note');
    heartbeat();
    const killed = Date.now();
    while (machines[id].paused && Date.now() - killed < 2_000)
      await advance(50, looked(machines[id]), 'a look at the note');
    expect(machines[id].paused).toBe(false);
    expect(Date.now() - killed).toBeGreaterThanOrEqual(1_000);
    expect(Date.now() - killed).toBeLessThanOrEqual(1_100);
  });

  it("is judged by the pause limit alone where it does not say it is refreshed while paused (an older backend's)", async () => {
    const machines = { [id]: { paused: true, unpauses: 0 } };
    const { docker } = fakePrimaryEngine(machines);
    leftByKilledCapture();
    const restarted = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    expect(await restarted.resumeInterruptedCaptures()).toEqual([]);
    await sleep(1_500);
    expect(machines[id]).toMatchObject({ paused: true, unpauses: 0 });
    expect(existsSync(notePath())).toBe(true);
  });

  it('is refreshed by a capture for as long as it has its machine paused, so another backend starting meanwhile leaves it alone', async () => {
    fakeClock();
    // A commit of 1.5 s (a large image's): thirty heartbeats of 50 ms, the note stale after ten unrefreshed.
    const machines = { [id]: { paused: false, unpauses: 0, commitMs: 1_500 } };
    const { docker } = fakePrimaryEngine(machines);
    const capturing = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      pausedNoteHeartbeatMs: 50,
    });
    const started = Date.now();
    const capture = capturing.capture(locator, { captureId: 'cap-live' });
    await untilReal(() => machines[id].paused, 'the machine paused');
    expect(JSON.parse(readFileSync(notePath(), 'utf8'))).toMatchObject({
      captureId: 'cap-live',
      phase: 'paused',
      heartbeatMs: 50,
    });
    const other = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    expect(await other.resumeInterruptedCaptures()).toEqual([]);
    // Through the commit, each heartbeat's refresh landing before the clock moves on (and the
    // other backend's look).
    const refreshed = () =>
      !machines[id].paused ||
      Math.abs(statSync(notePath()).mtimeMs - Date.now()) < 1;
    while (Date.now() - started < 1_500)
      await advance(50, refreshed, 'the note refreshed at its heartbeat');
    const captured = await capture;
    // Unpaused once, by the capture itself, when its commit was done.
    expect(machines[id]).toMatchObject({ paused: false, unpauses: 1 });
    expect(captured.pausedMs).toBeGreaterThanOrEqual(1_500);
    expect(existsSync(join(store, captured.artifact))).toBe(true);
    expect(existsSync(notePath())).toBe(false);
  });
});
