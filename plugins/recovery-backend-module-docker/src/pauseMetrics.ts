import type {
  MetricsService,
  MetricsServiceHistogram,
} from '@backstage/backend-plugin-api/alpha';

/**
 * Buckets of a capture's pause, in seconds: tens of milliseconds as a rule (the commit), seconds
 * where volumes are copied while paused. The pause limit joins them: a pause that reached it is
 * counted apart.
 */
const PAUSE_BUCKETS_SECONDS = [
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300,
];

/**
 * `recovery.captures.pause`: how long each capture kept production paused (only the Docker
 * source knows, also of captures that failed), in the recovery plugin's metrics.
 */
export function capturePauseHistogram(
  metrics: MetricsService,
  /** recovery.docker.maxCapturePause. */
  maxPauseMs: number,
): MetricsServiceHistogram {
  return metrics.createHistogram('recovery.captures.pause', {
    description:
      'How long a capture kept its production machine paused for a consistent copy, whether the capture succeeded or not',
    unit: 's',
    advice: {
      explicitBucketBoundaries: [
        ...new Set([...PAUSE_BUCKETS_SECONDS, maxPauseMs / 1000]),
      ].sort((a, b) => a - b),
    },
  });
}
