import type {
  AuditorService,
  LoggerService,
} from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import { formatDuration } from '@backstage-recovery/plugin-recovery-common';
import type { RunStore } from '../database/RunStore';
import { recordHousekeeping, runsPrunedMeta } from '../service/audit';
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
    /** Records each pass that deleted runs (run-retention), or failed. */
    private readonly auditor: AuditorService,
    /** `recovery.runs.retention`. */
    private readonly retentionMs: number,
  ) {}

  /** Deletes the runs past the retention that nothing rests on; returns how many. */
  async prune(now = Date.now()): Promise<number> {
    const deleted: string[] = [];
    try {
      // Read before the cut-off is applied: a run that finishes meanwhile is newer than it anyway.
      const kept = await this.readiness.runsRestedOn();
      await this.runStore.pruneRuns(
        new Date(now - this.retentionMs),
        kept,
        deleted,
      );
    } catch (error) {
      // The batches committed before the failure stay deleted: said, as the caller logs only the error.
      if (deleted.length > 0) this.logger.info(this.deletedLine(deleted, true));
      await this.audited(deleted, toError(error));
      throw error;
    }
    if (deleted.length > 0) {
      this.logger.info(this.deletedLine(deleted));
      await this.audited(deleted);
    }
    return deleted.length;
  }

  private deletedLine(deleted: string[], beforeFailure = false) {
    return `Deleted ${deleted.length} recovery run${deleted.length === 1 ? '' : 's'} older than ${formatDuration(this.retentionMs / 1000)}, with their machines and steps (recovery.runs.retention)${beforeFailure ? ', before the pass failed' : ''}`;
  }

  private audited(deleted: string[], error?: Error) {
    return recordHousekeeping(
      { auditor: this.auditor, logger: this.logger },
      'run-retention',
      runsPrunedMeta(deleted, this.retentionMs),
      error,
    );
  }
}
