import type {
  CapturedVolume,
  RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import {
  describeSharedVolume,
  sharedVolumesOf,
  withoutVolumes,
} from './sharedVolumes';

const volume = (
  destination: string,
  name: string,
  copiedAt: string,
  engine = 'primary',
): CapturedVolume => ({
  destination,
  artifact: `${name}-${copiedAt}.tar`,
  checksum: 'sha256:0',
  sizeBytes: 1,
  volume: { engine, name },
  copiedAt,
});

const capture = (
  machineRef: string,
  volumes: CapturedVolume[],
): RestorableCapture => ({
  captureId: `cap-${machineRef}`,
  machineRef,
  imageId: 'sha256:1',
  checksum: 'sha256:2',
  artifact: 'a.tar',
  runtime: {
    hostname: machineRef,
    networks: [],
    env: [],
    exposedPorts: [],
    labels: {},
    volumes,
  } as unknown as RestorableCapture['runtime'],
});

describe('sharedVolumesOf', () => {
  const reader = capture('reader', [
    volume('/data', 'ledger', '2026-01-01T00:00:00.000Z'),
    volume('/cache', 'reader-cache', '2026-01-01T00:00:00.000Z'),
  ]);
  const writer = capture('writer', [
    volume('/ledger', 'ledger', '2026-01-01T00:00:30.000Z'),
  ]);
  // Same name, another engine: another volume.
  const elsewhere = capture('elsewhere', [
    volume('/data', 'reader-cache', '2026-01-01T00:01:00.000Z', 'primary-2'),
  ]);

  it("shares a volume other machines of the run mount, filled from the newest copy; a machine's own volumes stay its own", () => {
    const [shared, ...more] = sharedVolumesOf('run-1', reader, [
      reader,
      writer,
      elsewhere,
    ]);
    expect(more).toEqual([]);
    expect(shared.own).toBe(reader.runtime.volumes![0]);
    expect(shared.labVolume).toBe('rr-run-1-volume-primary-ledger');
    expect(shared.source).toEqual({
      capture: writer,
      volume: writer.runtime.volumes![0],
    });
    expect(shared.others).toEqual(['writer']);
    expect(shared.spreadMs).toBe(30_000);
    expect(describeSharedVolume(shared)).toBe(
      "volume ledger at /data shared with writer, as in production: one lab volume (rr-run-1-volume-primary-ledger), filled once from capture cap-writer of writer (copied 2026-01-01T00:00:30.000Z), the newest copy of it; the machines' captures of it are 30s apart, so a machine captured earlier comes back beside data newer than its own state",
    );
    // The writer's restore picks the same copy.
    expect(
      sharedVolumesOf('run-1', writer, [reader, writer])[0].source.volume,
    ).toBe(writer.runtime.volumes![0]);
    expect(
      withoutVolumes(reader, [shared.own]).runtime.volumes!.map(
        v => v.destination,
      ),
    ).toEqual(['/cache']);
  });

  it('shares nothing for a machine alone, or captures from before volumes were named', () => {
    expect(sharedVolumesOf('run-1', reader, [reader])).toEqual([]);
    const unnamed = capture('old', [
      {
        destination: '/data',
        artifact: 'x',
        checksum: 'sha256:0',
        sizeBytes: 1,
      },
    ]);
    expect(sharedVolumesOf('run-1', unnamed, [unnamed, writer])).toEqual([]);
  });
});
