import { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import {
  isCaptureDamaged,
  MAX_TIMER_MS,
} from '@backstage-recovery/plugin-recovery-node';
import type { CaptureStore } from '../../database/CaptureStore';
import { restorable } from '../../run/boot';
import type { ProviderRegistry } from '../ProviderRegistry';

/**
 * Verifies again a machine's captures marked damaged once a capture of it succeeded, which may
 * have mended them (recheckDamaged), in the background.
 */
export class DamagedCaptureRechecks {
  /**
   * The re-checks of damaged captures under way or queued after a capture (recheckDamaged), by
   * machine: one machine's at a time, after the one before it; shutdown stops and waits for them.
   */
  private readonly rechecks = new Map<string, Promise<void>>();
  /** Machines whose re-check is queued, not yet begun: it reads the marks as they are then. */
  private readonly recheckQueued = new Set<string>();

  constructor(
    private readonly store: CaptureStore,
    private readonly providers: ProviderRegistry,
    private readonly logger: LoggerService,
    /** recovery.captures.timeout: a re-check stops at it, its marks kept. */
    private readonly timeoutMs: number,
    /** Aborted by shutdown: no re-check starts after it, and one under way stops reading. */
    private readonly stopping: AbortSignal,
    /**
     * recovery.hypervisorHost: the host whose verifyCapture runs verify captures with, which
     * verifies again those marked damaged after a capture (recheckDamaged).
     */
    private readonly hypervisorHost?: string,
  ) {}

  /**
   * Has the machine's captures marked damaged verified again in the background (recheckDamaged),
   * after any re-check of it under way: the capture already answered, a failure is logged.
   */
  recheckLater(machineRef: string, after: string): void {
    if (this.stopping.aborted || this.recheckQueued.has(machineRef)) return;
    this.recheckQueued.add(machineRef);
    const before = this.rechecks.get(machineRef) ?? Promise.resolve();
    const recheck: Promise<void> = before
      .then(() => {
        this.recheckQueued.delete(machineRef);
        return this.recheckDamaged(machineRef, after);
      })
      .catch(error =>
        this.logger
          .child({ machineRef, captureId: after })
          .warn(
            'Could not verify again the captures of the machine marked damaged, after its capture; their marks stay',
            toError(error),
          ),
      )
      .finally(() => {
        if (this.rechecks.get(machineRef) === recheck)
          this.rechecks.delete(machineRef);
      });
    this.rechecks.set(machineRef, recheck);
  }

  /** Once no re-check of damaged captures is under way or queued. */
  async idle(): Promise<void> {
    while (this.rechecks.size > 0) await Promise.all(this.rechecks.values());
  }

  /**
   * Verifies again, after a capture of the machine succeeded, its captures marked damaged (few:
   * runs pass over them): a capture writes anew each layer file the store held with content it no
   * longer matched, which mends every capture sharing that layer. The mark of each found intact is
   * lifted, so runs restore it again and readiness stops naming it; one still damaged keeps its
   * mark. Verified by the designated hypervisor host, as runs verify them (none that can: the
   * marks stay), within the capture deadline.
   */
  private async recheckDamaged(
    machineRef: string,
    after: string,
  ): Promise<void> {
    if (this.stopping.aborted) return;
    const damaged =
      (await this.store.damagedCaptures([machineRef])).get(machineRef) ?? [];
    if (damaged.length === 0) return;
    // Several hosts and none designated: runs are refused until one is, and the marks wait too.
    if (
      !this.hypervisorHost &&
      this.providers.hypervisorHostIds().length !== 1
    ) {
      this.logger.debug(
        'Captures of the machine marked damaged not verified again after its capture: no single hypervisor host is designated (recovery.hypervisorHost)',
        { machineRef, captureId: after },
      );
      return;
    }
    const host = this.providers.hypervisorHost(this.hypervisorHost);
    if (!host.verifyCapture) return;
    const signal = AbortSignal.any([
      AbortSignal.timeout(Math.min(this.timeoutMs, MAX_TIMER_MS)),
      this.stopping,
    ]);
    for (const capture of damaged) {
      try {
        await host.verifyCapture(restorable(capture), { signal });
      } catch (error) {
        // Stopped by shutdown: a read cut off proves nothing either way.
        if (this.stopping.aborted) return;
        if (isCaptureDamaged(error)) continue;
        throw error;
      }
      if (this.stopping.aborted) return;
      if (await this.store.clearCaptureDamaged(capture.id)) {
        this.logger.info(
          `Capture marked damaged since ${capture.damaged!.at} verified intact after the machine's next capture, which mended what it shares with it: its mark lifted, runs restore it again`,
          {
            machineRef,
            captureId: capture.id,
            capturedAt: capture.createdAt,
            mendedBy: after,
          },
        );
      }
    }
  }
}
