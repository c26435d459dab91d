import {
  formatBytes,
  formatDuration,
} from '@backstage-recovery/plugin-recovery-common';

/** What a capture's pause measured, against the pause limit it ran under. */
export interface PauseMeasure {
  pausedMs: number;
  /** recovery.docker.maxCapturePause, in ms. */
  maxPauseMs: number;
  /** Bytes of the volume archives copied while paused. */
  volumeBytes: number;
  /** How much of the pause their copy took. */
  volumeCopyMs: number;
}

/** A pause's length as captures say it: `250 ms`, `12s`. */
export function pauseWords(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : formatDuration(ms / 1000);
}

/**
 * The warning a capture carries once its pause took more than half the pause limit: volumes are
 * copied while production is paused, so the pause grows with them, and past the limit every
 * capture of the machine is refused. Said while there is still room: with the volumes' copy rate,
 * the most volume data a capture of it can hold within the limit. Undefined under half the limit.
 */
export function capturePauseWarning(m: PauseMeasure): string | undefined {
  if (!(m.pausedMs > m.maxPauseMs / 2)) return undefined;
  const head = `pause ${pauseWords(m.pausedMs)} of the ${pauseWords(m.maxPauseMs)} limit (recovery.docker.maxCapturePause)`;
  const tail = 'the next capture may be refused';
  if (m.volumeBytes <= 0 || m.volumeCopyMs <= 0)
    return `${head}: the commit of its image took it (no volumes copied); ${tail}`;
  const bytesPerSecond = (m.volumeBytes * 1000) / m.volumeCopyMs;
  // The rest of the pause (the commit) stays: what is left of the limit is the volumes' room.
  const roomMs = m.maxPauseMs - (m.pausedMs - m.volumeCopyMs);
  const mostBytes = Math.max(0, (bytesPerSecond * roomMs) / 1000);
  return `${head}: the volumes (${formatBytes(m.volumeBytes)}) are copied while it is paused, growing it ~1 s per ${formatBytes(bytesPerSecond)}; past ~${formatBytes(mostBytes)} of volumes no capture of it fits, and ${tail}`;
}
