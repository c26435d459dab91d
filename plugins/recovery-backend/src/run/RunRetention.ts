import type { LoggerService } from '@backstage/backend-plugin-api';
import { formatDuration } from '@backstage-recovery/plugin-recovery-common';
import type { RunStore } from '../database/RunStore';
import type { ReadinessService } from '../service/ReadinessService';

/**
 * Bounds the runs kept: the nightly check adds runs every night, each with its timeline, probe
 * lines and console tails. Runs older than the retention go, but never one readiness rests on
 * now (however old: an entity tested long ago still shows that test), nor those RunStore.pruneRuns
 * always keeps (active runs, failovers, labs left, each entity's newest finished run).
 */
export class RunRetention {
  constructor(
    private readonly runStore: Pick<RunStore, 'pruneRuns'>,
    private readonly readiness: Pick<ReadinessService, 'runsRestedOn'>,
    private readonly logger: LoggerService,
    /** `recovery.runs.retention`. */
    private readonly retentionMs: number,
  ) {}

  /** Deletes the runs past the retention that nothing rests on; returns how many. */
  async prune(now = Date.now()): Promise<number> {
    // Read before the cut-off is applied: a run that finishes meanwhile is newer than it anyway.
    const kept = await this.readiness.runsRestedOn();
    const pruned = await this.runStore.pruneRuns(
      new Date(now - this.retentionMs),
      kept,
    );
    if (pruned > 0) {
      this.logger.info(
        `Deleted ${pruned} recovery run${pruned === 1 ? '' : 's'} older than ${formatDuration(this.retentionMs / 1000)}, with their machines and steps (recovery.runs.retention)`,
      );
    }
    return pruned;
  }
}
