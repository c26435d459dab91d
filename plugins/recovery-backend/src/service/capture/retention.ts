import type {
  AuditorService,
  LoggerService,
} from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type {
  CaptureSource,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import type { CaptureStore, StoredCapture } from '../../database/CaptureStore';
import {
  type AuditMeta,
  capturesPrunedMeta,
  recordHousekeeping,
  unrecordedRemovedMeta,
} from '../audit';
import type { ProviderRegistry } from '../ProviderRegistry';

/** More than a machine ever has recorded: its last N, and those active runs restore. */
const ALL_CAPTURES = 1_000_000;

/**
 * Keeps the last N captures of each machine: prunes the older ones after a capture, and has the
 * capture sources remove what captures never recorded left. Each pass that removed something is
 * an audit event (capture-retention), failed where it also failed: recovery points are gone. A
 * failure that removed nothing is logged only: an engine down would put one on record every sweep.
 */
export class CaptureRetention {
  constructor(
    private readonly store: CaptureStore,
    private readonly providers: ProviderRegistry,
    private readonly logger: LoggerService,
    private readonly keepLast: number,
    /** Records each pass that removed something (capture-retention). */
    private readonly auditor: AuditorService,
  ) {}

  /** Prunes a machine's captures to the last N, and has the source remove what unrecorded ones left. */
  async tidyUp(source: CaptureSource, locator: MachineLocator): Promise<void> {
    const { machineRef } = locator;
    const removed = {
      machineRef,
      engine: source.engineId,
      keepLast: this.keepLast,
      captures: [] as StoredCapture[],
      artifactsLeft: [] as string[],
      unrecordedCaptureIds: [] as string[],
    };
    /** Per pruned capture whose files could not be discarded, why. */
    const notDiscarded = new Map<string, Error>();
    let unrecordedFailure: Error | undefined;
    // Its rows go in one transaction: where it fails, nothing was removed to put on record.
    removed.captures = await this.store.pruneCaptures(
      machineRef,
      this.keepLast,
    );
    for (const old of removed.captures) {
      try {
        await source.discard({
          captureId: old.id,
          artifact: old.artifact,
          volumes: old.runtime.volumes,
        });
      } catch (error) {
        notDiscarded.set(old.id, toError(error));
        this.logger
          .child({ machineRef, captureId: old.id })
          .warn('Could not discard the pruned capture', toError(error));
      }
    }
    // What earlier captures of the machine left that no record accounts for (a backend stopped
    // before recording one, a discard that failed above or before) goes too.
    removed.unrecordedCaptureIds =
      (await source
        .removeUnrecorded?.(this.recordedCaptureIds, locator)
        .catch(error => {
          unrecordedFailure = toError(error);
          this.logger
            .child({ machineRef })
            .warn(
              'Could not remove what unrecorded captures of the machine left',
              toError(error),
            );
          return [];
        })) ?? [];
    // A capture whose discard failed just above, its files removed by that sweep, is left no more.
    removed.artifactsLeft = [...notDiscarded.keys()].filter(
      id => !removed.unrecordedCaptureIds.includes(id),
    );
    const [firstLeft] = removed.artifactsLeft;
    const failure =
      firstLeft === undefined ? unrecordedFailure : notDiscarded.get(firstLeft);
    if (removed.captures.length > 0 || removed.unrecordedCaptureIds.length > 0)
      await this.audited(capturesPrunedMeta(removed), failure);
  }

  /**
   * Has every capture source remove what unrecorded captures left, of every machine: the next
   * capture of a machine removes its own, but a machine may never be captured again. Run at start
   * and on a schedule; a source that fails is logged, and the others still looked at.
   */
  async removeUnrecorded(): Promise<void> {
    const removed: Array<{ engine: string; captureIds: string[] }> = [];
    const failedEngines: string[] = [];
    let failure: Error | undefined;
    for (const source of this.providers.allCaptureSources()) {
      try {
        const captureIds =
          (await source.removeUnrecorded?.(this.recordedCaptureIds)) ?? [];
        if (captureIds.length > 0)
          removed.push({ engine: source.engineId, captureIds });
      } catch (error) {
        failure ??= toError(error);
        failedEngines.push(source.engineId);
        this.logger
          .child({ engine: source.engineId })
          .warn(
            'Could not remove what unrecorded captures on the engine left',
            toError(error),
          );
      }
    }
    if (removed.length > 0)
      await this.audited(
        unrecordedRemovedMeta(removed, failedEngines),
        failure,
      );
  }

  private async audited(meta: AuditMeta, error?: Error) {
    await recordHousekeeping(
      { auditor: this.auditor, logger: this.logger },
      'capture-retention',
      meta,
      error,
    );
  }

  private readonly recordedCaptureIds = async (
    machineRefs: string[],
  ): Promise<string[]> => {
    const recorded = await Promise.all(
      machineRefs.map(ref => this.store.listCaptures(ref, ALL_CAPTURES)),
    );
    return recorded.flat().map(c => c.id);
  };
}
