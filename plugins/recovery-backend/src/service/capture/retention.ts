import { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type {
  CaptureSource,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import type { CaptureStore } from '../../database/CaptureStore';
import type { ProviderRegistry } from '../ProviderRegistry';

/** More than a machine ever has recorded: its last N, and those active runs restore. */
const ALL_CAPTURES = 1_000_000;

/**
 * Keeps the last N captures of each machine: prunes the older ones after a capture, and has the
 * capture sources remove what captures never recorded left.
 */
export class CaptureRetention {
  constructor(
    private readonly store: CaptureStore,
    private readonly providers: ProviderRegistry,
    private readonly logger: LoggerService,
    private readonly keepLast: number,
  ) {}

  /** Prunes a machine's captures to the last N, and has the source remove what unrecorded ones left. */
  async tidyUp(source: CaptureSource, locator: MachineLocator): Promise<void> {
    for (const old of await this.store.pruneCaptures(
      locator.machineRef,
      this.keepLast,
    )) {
      await source
        .discard({
          captureId: old.id,
          artifact: old.artifact,
          volumes: old.runtime.volumes,
        })
        .catch(error =>
          this.logger
            .child({ machineRef: locator.machineRef, captureId: old.id })
            .warn('Could not discard the pruned capture', toError(error)),
        );
    }
    // What earlier captures of the machine left that no record accounts for (a backend stopped
    // before recording one, a discard that failed above or before) goes too.
    await source
      .removeUnrecorded?.(this.recordedCaptureIds, locator)
      .catch(error =>
        this.logger
          .child({ machineRef: locator.machineRef })
          .warn(
            'Could not remove what unrecorded captures of the machine left',
            toError(error),
          ),
      );
  }

  /**
   * Has every capture source remove what unrecorded captures left, of every machine: the next
   * capture of a machine removes its own, but a machine may never be captured again. Run at start
   * and on a schedule; a source that fails is logged, and the others still looked at.
   */
  async removeUnrecorded(): Promise<void> {
    for (const source of this.providers.allCaptureSources()) {
      try {
        await source.removeUnrecorded?.(this.recordedCaptureIds);
      } catch (error) {
        this.logger
          .child({ engine: source.engineId })
          .warn(
            'Could not remove what unrecorded captures on the engine left',
            toError(error),
          );
      }
    }
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
