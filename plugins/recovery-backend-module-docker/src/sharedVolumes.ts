import type Docker from 'dockerode';
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import {
  formatDuration,
  RUN_ID_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedVolume,
  RestorableCapture,
} from '@backstage-recovery/plugin-recovery-node';
import { artifactPath } from './captureNames';
import { verifyVolumes } from './captureArtifacts';
import { labVolumeName } from './labNames';

// A volume machines share in production (two containers mounting `ledger-data`) is one volume in
// the lab too: each its own copy would let the reader never see what the writer writes. A volume
// one machine alone mounts is put back into its container as before, gone with it at teardown.

/** A volume of a machine that other machines of the run mounted too, in production. */
export interface SharedVolume {
  /** The machine's own copy of it, as its capture archived it. */
  own: CapturedVolume;
  /** The run's one volume for it in the lab. */
  labVolume: string;
  /** The newest copy of it among the run's captures: what fills the lab volume. */
  source: { capture: RestorableCapture; volume: CapturedVolume };
  /** The other machines of the run that mount it. */
  others: string[];
  /** How far apart the oldest and newest copies of it were taken. */
  spreadMs: number;
}

const sameVolume = (a: CapturedVolume['volume'], b: CapturedVolume['volume']) =>
  Boolean(a && b && a.engine === b.engine && a.name === b.name);

const copiedMs = (v: CapturedVolume) =>
  v.copiedAt ? Date.parse(v.copiedAt) : Number.NEGATIVE_INFINITY;

/** The volumes of `capture` that other machines of the run mounted too (same engine, same name). */
export function sharedVolumesOf(
  runId: string,
  capture: RestorableCapture,
  runCaptures: RestorableCapture[],
): SharedVolume[] {
  const shared: SharedVolume[] = [];
  for (const own of capture.runtime.volumes ?? []) {
    if (!own.volume) continue;
    const copies = runCaptures.flatMap(c =>
      c.machineRef === capture.machineRef
        ? []
        : (c.runtime.volumes ?? [])
            .filter(v => sameVolume(v.volume, own.volume))
            .map(volume => ({ capture: c, volume })),
    );
    if (copies.length === 0) continue;
    copies.push({ capture, volume: own });
    // Newest first; between copies of one time (or none known), the first machine by ref.
    copies.sort(
      (a, b) =>
        copiedMs(b.volume) - copiedMs(a.volume) ||
        a.capture.machineRef.localeCompare(b.capture.machineRef),
    );
    const times = copies.map(c => copiedMs(c.volume)).filter(Number.isFinite);
    shared.push({
      own,
      labVolume: labVolumeName(runId, own.volume),
      source: copies[0],
      others: [
        ...new Set(
          copies
            .map(c => c.capture.machineRef)
            .filter(ref => ref !== capture.machineRef),
        ),
      ].sort(),
      spreadMs: times.length > 1 ? Math.max(...times) - Math.min(...times) : 0,
    });
  }
  return shared;
}

/** What the restore says of a shared volume, in the run's timeline. */
export function describeSharedVolume(s: SharedVolume): string {
  const { capture, volume } = s.source;
  const words = `volume ${s.own.volume!.name} at ${s.own.destination} shared with ${s.others.join(', ')}, as in production: one lab volume (${s.labVolume}), filled once from capture ${capture.captureId} of ${capture.machineRef}${volume.copiedAt ? ` (copied ${volume.copiedAt})` : ''}, the newest copy of it`;
  if (s.spreadMs < 1000) return words;
  return `${words}; the machines' captures of it are ${formatDuration(s.spreadMs / 1000)} apart, so a machine captured earlier comes back beside data newer than its own state`;
}

/**
 * Makes the run's volume for `s` and fills it from its newest copy, through a container of
 * `imageId` never started (the archive's entries are under the destination's last element). Not
 * filled again once a machine of the run using it has started: what it wrote there stays.
 */
export async function fillSharedVolume(
  docker: Docker,
  storeDirectory: string,
  runId: string,
  s: SharedVolume,
  imageId: string,
): Promise<void> {
  await docker.createVolume({
    Name: s.labVolume,
    Labels: { [RUN_ID_LABEL]: runId },
  });
  const users = await docker.listContainers({
    all: true,
    filters: { volume: [s.labVolume] },
  });
  if (users.some(u => u.State !== 'created')) return;
  const { capture, volume } = s.source;
  await verifyVolumes(storeDirectory, {
    captureId: capture.captureId,
    runtime: { ...capture.runtime, volumes: [volume] },
  });
  const filler = await docker.createContainer({
    Image: imageId,
    Cmd: ['true'],
    Labels: { [RUN_ID_LABEL]: runId },
    HostConfig: {
      NetworkMode: 'none',
      Mounts: [
        { Type: 'volume', Source: s.labVolume, Target: volume.destination },
      ],
    },
  });
  try {
    await filler.putArchive(
      createReadStream(artifactPath(storeDirectory, volume.artifact)),
      { path: posix.dirname(posix.normalize(volume.destination)) },
    );
  } catch (e) {
    throw new Error(
      `capture ${capture.captureId}: volume ${volume.destination} could not fill lab volume ${s.labVolume}: ${(e as Error).message}`,
    );
  } finally {
    await filler.remove({ force: true, v: true }).catch(() => {});
  }
}

/** The capture without `volumes`: those a shared lab volume holds are not put into its container. */
export function withoutVolumes(
  capture: RestorableCapture,
  volumes: CapturedVolume[],
): RestorableCapture {
  if (volumes.length === 0) return capture;
  return {
    ...capture,
    runtime: {
      ...capture.runtime,
      volumes: capture.runtime.volumes?.filter(v => !volumes.includes(v)),
    },
  };
}
