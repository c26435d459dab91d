import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerCaptureSource } from './DockerCaptureSource';
import { fakePrimaryEngine } from './testing/fakePrimaryEngine';

/**
 * A backend killed (SIGKILL) while its capture had a machine paused leaves the capture's note,
 * which a backend started on the same capture store must tell from the note of another backend's
 * capture still under way: by whether the note is still refreshed, not only at the pause limit.
 */

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs)
      throw new Error(`not within ${timeoutMs} ms`);
    await sleep(10);
  }
  return Date.now() - t0;
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
    rmSync(store, { recursive: true, force: true });
  });

  it('is taken, once seen unrefreshed for ten of its heartbeats, for a stopped capture: the machine unpaused and what it left removed, not at the pause limit', async () => {
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
    await until(() => !machines[id].paused, 3_000);
    const unpausedAfter = Date.now() - started;
    expect(unpausedAfter).toBeGreaterThanOrEqual(1_000);
    expect(unpausedAfter).toBeLessThan(2_000);
    await until(() => !existsSync(notePath()), 1_000);
    expect(readdirSync(store).filter(f => f !== '.paused')).toEqual([]);
    expect(removedTags).toEqual(['recovery-capture/web-01:cap-killed']);
  });

  it('is left alone while it is refreshed (another backend capturing), and a capture of its machine meanwhile is refused', async () => {
    const machines = { [id]: { paused: true, unpauses: 0 } };
    const { docker } = fakePrimaryEngine(machines);
    leftByKilledCapture(100);
    const refreshing = setInterval(() => {
      const now = new Date();
      utimesSync(notePath(), now, now);
    }, 100);
    try {
      const other = new DockerCaptureSource('primary', docker, {
        storeDirectory: store,
      });
      expect(await other.resumeInterruptedCaptures()).toEqual([]);
      // Twenty of its heartbeats: twice what would make it stale, were it not refreshed.
      await sleep(2_000);
      expect(machines[id]).toMatchObject({ paused: true, unpauses: 0 });
      await expect(
        other.capture(locator, { captureId: 'cap-second' }),
      ).rejects.toThrow(
        /^machine resource:default\/web-01: capture cap-killed is under way \(paused it at .*\); one capture of a machine at a time$/,
      );
      expect(existsSync(notePath())).toBe(true);
      // Its backend killed now: unpaused ten heartbeats on (its last refresh seen within one).
      clearInterval(refreshing);
      const killed = Date.now();
      await until(() => !machines[id].paused, 3_000);
      expect(Date.now() - killed).toBeLessThan(1_600);
    } finally {
      clearInterval(refreshing);
    }
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
    // A commit of 1.5 s (a large image's): thirty heartbeats of 50 ms, the note stale after ten unrefreshed.
    const machines = { [id]: { paused: false, unpauses: 0, commitMs: 1_500 } };
    const { docker } = fakePrimaryEngine(machines);
    const capturing = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      pausedNoteHeartbeatMs: 50,
    });
    const capture = capturing.capture(locator, { captureId: 'cap-live' });
    await until(() => machines[id].paused, 1_000);
    expect(JSON.parse(readFileSync(notePath(), 'utf8'))).toMatchObject({
      captureId: 'cap-live',
      phase: 'paused',
      heartbeatMs: 50,
    });
    const other = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
    });
    expect(await other.resumeInterruptedCaptures()).toEqual([]);
    const captured = await capture;
    // Unpaused once, by the capture itself, when its commit was done.
    expect(machines[id]).toMatchObject({ paused: false, unpauses: 1 });
    expect(captured.pausedMs).toBeGreaterThanOrEqual(1_400);
    expect(existsSync(join(store, captured.artifact))).toBe(true);
    expect(existsSync(notePath())).toBe(false);
  });
});
