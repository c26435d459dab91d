import type {
  MetricsService,
  MetricsServiceCounter,
  MetricsServiceHistogram,
} from '@backstage/backend-plugin-api/alpha';
import {
  READINESS_STATUS_LABELS,
  type ReadinessStatus,
  type RecoveryRun,
  type RunStatus,
} from '@backstage-recovery/plugin-recovery-common';

/** How a run ended, or a machine's capture. */
export type FinishedStatus = Extract<
  RunStatus,
  'succeeded' | 'failed' | 'interrupted'
>;

/** Every readiness status, each observed (0 where no entity has it): a series does not vanish. */
const READINESS_STATUSES = Object.keys(
  READINESS_STATUS_LABELS,
) as ReadinessStatus[];

/**
 * Buckets of a run's RTO, in seconds: a lab of a few machines takes seconds, a site hours. The
 * default RTO objective joins them, so that "over the objective" is a bucket's count.
 */
const RTO_BUCKETS_SECONDS = [
  5, 10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800,
];

/**
 * The recovery plugin's metrics, through Backstage's MetricsService (OpenTelemetry, scoped to the
 * plugin), each instrument made once: what a DR owner alerts on. Attributes take a few values
 * each; never an entity, a run or a machine.
 */
export class RecoveryMetrics {
  private readonly runs: MetricsServiceCounter<{
    result: FinishedStatus;
    mode: RecoveryRun['mode'];
    trigger: RecoveryRun['trigger'];
  }>;
  private readonly rto: MetricsServiceHistogram<{
    mode: RecoveryRun['mode'];
    trigger: RecoveryRun['trigger'];
  }>;
  private readonly captures: MetricsServiceCounter<{ result: FinishedStatus }>;

  constructor(
    private readonly metrics: MetricsService,
    /** recovery.objectives.rto, in seconds: a bucket boundary of the RTO histogram. */
    rtoObjectiveSeconds?: number,
  ) {
    this.runs = metrics.createCounter('recovery.runs.finished', {
      description:
        'Test recoveries and failovers finished, by result (succeeded, failed, interrupted), mode (test, failover) and trigger (user, schedule)',
      unit: '{run}',
    });
    this.rto = metrics.createHistogram('recovery.runs.rto', {
      description:
        'Measured recovery time (RTO) of succeeded runs: from the lab created to the last machine ready',
      unit: 's',
      advice: {
        explicitBucketBoundaries: [
          ...new Set([
            ...RTO_BUCKETS_SECONDS,
            ...(rtoObjectiveSeconds ? [rtoObjectiveSeconds] : []),
          ]),
        ].sort((a, b) => a - b),
      },
    });
    this.captures = metrics.createCounter('recovery.captures.finished', {
      description:
        "Machines' captures finished, by result (succeeded, failed, interrupted: stopped by the backend's shutdown or its request ended elsewhere)",
      unit: '{capture}',
    });
  }

  /** A run that ended so; its RTO where it succeeded. */
  runFinished(
    { mode, trigger }: Pick<RecoveryRun, 'mode' | 'trigger'>,
    result: FinishedStatus,
    rtoSeconds?: number,
  ): void {
    this.runs.add(1, { result, mode, trigger });
    if (result === 'succeeded' && rtoSeconds !== undefined)
      this.rto.record(rtoSeconds, { mode, trigger });
  }

  /** A machine's capture that ended so. */
  captureFinished(result: FinishedStatus): void {
    this.captures.add(1, { result });
  }

  /**
   * Entities per readiness status, as `count` reads them at each collection (a scrape): its cost
   * is paid per scrape, so it must read what is kept, not assess readiness anew.
   */
  observeReadiness(
    count: () => Promise<Partial<Record<ReadinessStatus, number>>>,
  ): void {
    this.metrics
      .createObservableGauge<{ status: ReadinessStatus }>(
        'recovery.readiness.entities',
        {
          description:
            "Recoverable entities per readiness status (ready, at-risk, not-recoverable, unknown), as the readiness notices' last sweep found them",
          unit: '{entity}',
        },
      )
      .addCallback(async result => {
        const counts = await count();
        for (const status of READINESS_STATUSES)
          result.observe(counts[status] ?? 0, { status });
      });
  }
}
