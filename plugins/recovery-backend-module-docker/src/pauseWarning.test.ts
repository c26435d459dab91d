import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DockerCaptureSource } from './DockerCaptureSource';
import { capturePauseWarning } from './pauseWarning';
import { fakePrimaryEngine } from './testing/fakePrimaryEngine';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

describe('capturePauseWarning', () => {
  it('says nothing while the pause took at most half the limit', () => {
    expect(
      capturePauseWarning({
        pausedMs: 10_928,
        maxPauseMs: 300_000,
        volumeBytes: 400 * MIB,
        volumeCopyMs: 10_500,
      }),
    ).toBeUndefined();
    expect(
      capturePauseWarning({
        pausedMs: 150_000,
        maxPauseMs: 300_000,
        volumeBytes: 5 * GIB,
        volumeCopyMs: 149_000,
      }),
    ).toBeUndefined();
  });

  it('past half the limit, says the pause, the volumes, how fast they grow it and where no capture fits', () => {
    // 9.1 GiB copied in 3m 5s of a 3m 10s pause: ~50 MiB a second, 5 s of commit.
    expect(
      capturePauseWarning({
        pausedMs: 190_000,
        maxPauseMs: 300_000,
        volumeBytes: 9.1 * GIB,
        volumeCopyMs: 185_000,
      }),
    ).toBe(
      'pause 3m 10s of the 5m limit (recovery.docker.maxCapturePause): the volumes (9.1 GiB) are copied while it is paused, growing it ~1 s per 50.4 MiB; past ~14.5 GiB of volumes no capture of it fits, and the next capture may be refused',
    );
    expect(
      capturePauseWarning({
        pausedMs: 150_001,
        maxPauseMs: 300_000,
        volumeBytes: 5 * GIB,
        volumeCopyMs: 150_000,
      }),
    ).toMatch(/^pause 2m 30s of the 5m limit /);
  });

  it('where no volume was copied, puts the pause on the commit of its image', () => {
    expect(
      capturePauseWarning({
        pausedMs: 700,
        maxPauseMs: 1_000,
        volumeBytes: 0,
        volumeCopyMs: 0,
      }),
    ).toBe(
      'pause 700 ms of the 1s limit (recovery.docker.maxCapturePause): the commit of its image took it (no volumes copied); the next capture may be refused',
    );
  });
});

describe('a capture whose pause took more than half its limit', () => {
  let store: string;
  beforeEach(() => {
    store = mkdtempSync(join(tmpdir(), 'capture-pause-warning-'));
  });
  afterEach(() => rmSync(store, { recursive: true, force: true }));

  const capture = async (commitMs: number, maxPauseMs: number) => {
    const id = 'a'.repeat(64);
    const { docker } = fakePrimaryEngine({ [id]: { paused: false, commitMs } });
    const source = new DockerCaptureSource('primary', docker, {
      storeDirectory: store,
      maxPauseMs,
    });
    return source.capture(
      {
        machineRef: 'resource:default/web-01',
        engine: 'primary',
        container: id,
      },
      { captureId: `cap-${commitMs}` },
    );
  };

  it('carries the warning; one well within it carries none', async () => {
    const slow = await capture(400, 700);
    expect(slow.pausedMs).toBeGreaterThan(300);
    expect(slow.pauseWarning).toMatch(
      /^pause \d+ ms of the 700 ms limit \(recovery\.docker\.maxCapturePause\): the commit of its image took it \(no volumes copied\); the next capture may be refused$/,
    );
    const quick = await capture(0, 60_000);
    expect(quick.pauseWarning).toBeUndefined();
  });
});
