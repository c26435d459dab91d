import type {
  MetricsService,
  MetricsServiceGauge,
} from '@backstage/backend-plugin-api/alpha';
import {
  type NightlyFailure,
  nightlyCounts,
  type NightlyReport,
} from './nightlyCheck';

/**
 * The nightly check's last pass, in the recovery plugin's metrics: entities checked, and those
 * that did not recover by why. Its task no longer fails where an entity does not recover, so the
 * task's own failures tell nothing of them: an alert on these does. Gauges of the replica that ran
 * the pass, each made once; every reason is recorded at each pass (0 where none), so that none
 * keeps an earlier pass's figure.
 */
export class NightlyCheckMetrics {
  private readonly checked: MetricsServiceGauge;
  private readonly failed: MetricsServiceGauge<{ reason: NightlyFailure }>;
  private readonly endedAt: MetricsServiceGauge;

  constructor(metrics: MetricsService) {
    this.checked = metrics.createGauge(
      'recovery.nightly_check.entities.checked',
      {
        description:
          'Entities the last pass of the nightly readiness check checked (recovered or not)',
        unit: '{entity}',
      },
    );
    this.failed = metrics.createGauge(
      'recovery.nightly_check.entities.failed',
      {
        description:
          "Entities that did not recover in the nightly readiness check's last pass, by reason (run-failed, run-interrupted, refused, no-machine, host-unreachable)",
        unit: '{entity}',
      },
    );
    // Tells which replica's figures are the last pass's, and a check that stopped running.
    this.endedAt = metrics.createGauge('recovery.nightly_check.last_pass', {
      description:
        "When the nightly readiness check's last pass ended, in seconds since the Unix epoch",
      unit: 's',
    });
  }

  /** Records a pass that ended (its report, as the summary counts it). */
  recordPass(report: NightlyReport): void {
    const { checked, failed } = nightlyCounts(report);
    this.checked.record(checked);
    for (const [reason, count] of Object.entries(failed))
      this.failed.record(count, { reason: reason as NightlyFailure });
    this.endedAt.record(Math.floor(Date.now() / 1000));
  }
}
