import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerCaptureSource } from './DockerCaptureSource';
import {
  engineError,
  fakePrimaryEngine,
  type FakeContainer,
} from './testing/fakePrimaryEngine';

// The capture's side of its pause guard: armed with its capture and note, and released once the
// machine is unpaused, by the capture or by the backend's retry after it. The guard process
// itself is pauseGuard.test.ts's; here it is a stand-in that records what the capture tells it.
const guards = vi.hoisted(() => ({
  armed: [] as Array<Record<string, unknown>>,
  released: [] as string[],
}));
vi.mock('./pauseGuard', () => ({
  armPauseGuard: async (options: Record<string, unknown>) => {
    guards.armed.push(options);
    // Idempotent, as the real one is (the capture may release it twice).
    let released = false;
    return {
      pid: 0,
      release: () => {
        if (!released) guards.released.push(options.captureId as string);
        released = true;
      },
    };
  },
}));

describe('DockerCaptureSource and its pause guard', () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-guard-test-'));
    guards.armed = [];
    guards.released = [];
  });
  afterEach(() => {
    vi.useRealTimers();
    rmSync(store, { recursive: true, force: true });
  });

  it("arms the guard with its capture's note, and releases it when the capture unpauses", async () => {
    const id = 'a'.repeat(64);
    const { docker } = fakePrimaryEngine({ [id]: { paused: false } });
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      engineConnection: { socketPath: '/x' },
    });
    await source.capture(
      {
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: id,
      },
      { captureId: 'cap-1' },
    );
    expect(guards.armed).toEqual([
      expect.objectContaining({
        captureId: 'cap-1',
        notePath: join(store, '.paused', `primary.${id}`),
        containerId: id,
      }),
    ]);
    expect(guards.released).toEqual(['cap-1']);
  });

  // Left armed, it would unpause a later capture's pause of the machine, or a person's, at its limit.
  it('releases the guard of a capture whose unpause failed once the retry has unpaused the machine', async () => {
    vi.useFakeTimers({
      toFake: [
        'setTimeout',
        'clearTimeout',
        'setInterval',
        'clearInterval',
        'Date',
      ],
    });
    const id = 'b'.repeat(64);
    const containers: Record<string, FakeContainer> = {
      [id]: {
        paused: false,
        fails: {
          unpause: [engineError(500, 'cannot unpause: the cgroup is busy')],
        },
      },
    };
    const { docker } = fakePrimaryEngine(containers);
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      maxPauseMs: 60_000,
      engineConnection: { socketPath: '/x' },
    });
    const capture = source.capture(
      {
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: id,
      },
      { captureId: 'cap-1' },
    );
    await expect(capture).rejects.toThrow(/production stays paused/);
    // Still paused: the guard stays armed.
    expect(containers[id].paused).toBe(true);
    expect(guards.released).toEqual([]);
    await vi.advanceTimersByTimeAsync(2_000);
    await vi.waitFor(() =>
      expect(existsSync(join(store, '.paused', `primary.${id}`))).toBe(false),
    );
    expect(containers[id].paused).toBe(false);
    expect(guards.released).toEqual(['cap-1']);
  });
});
