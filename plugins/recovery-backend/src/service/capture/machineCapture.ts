import { LoggerService } from '@backstage/backend-plugin-api';
import {
  ConflictError,
  ServiceUnavailableError,
  toError,
} from '@backstage/errors';
import {
  notServingWhenCaptured,
  type Capture,
} from '@backstage-recovery/plugin-recovery-common';
import {
  httpStatusOf,
  isCaptureStopped,
  MAX_TIMER_MS,
  type CapturedMachine,
  type MachineLocator,
  type TransferProgressListener,
} from '@backstage-recovery/plugin-recovery-node';
import type { CaptureStore, StoredCapture } from '../../database/CaptureStore';
import { restartWarning } from '../captureRestarts';
import type { ProviderRegistry } from '../ProviderRegistry';
import type { RecoveryMetrics } from '../RecoveryMetrics';
import { errorOf, forwarded, withinTimeout } from './captureErrors';
import type { CaptureClaims } from './claims';
import type { DamagedCaptureRechecks } from './damageRechecks';
import { ONE_AT_A_TIME, refusal, type CaptureHolds, type Hold } from './holds';
import type { CaptureRetention } from './retention';

/**
 * How long past its deadline a capture source may take to stop (unpause production, remove what
 * it wrote) before the capture fails without it: one that ignores the signal must not hold the
 * capture, and the request, for good. What it records after that is refused.
 */
const SOURCE_STOP_GRACE_MS = 60_000;

/** A capture as the API gives it: without where its files are and how to run it. */
export function toApi(capture: StoredCapture): Capture {
  const { artifact: _artifact, runtime: _runtime, ...rest } = capture;
  return rest;
}

/**
 * The capture of one machine: held in this backend and claimed across replicas for as long as it
 * runs, taken by its engine's capture source within recovery.captures.timeout, recorded, and
 * followed by the pruning of the machine's older captures and the re-check of its damaged ones.
 */
export class MachineCaptures {
  constructor(
    private readonly store: CaptureStore,
    private readonly providers: ProviderRegistry,
    private readonly logger: LoggerService,
    /** recovery.captures.timeout: a machine's capture stops at it, and fails. */
    private readonly timeoutMs: number,
    private readonly holds: CaptureHolds,
    private readonly claims: CaptureClaims,
    private readonly retention: CaptureRetention,
    private readonly rechecks: DamagedCaptureRechecks,
    private readonly metrics?: RecoveryMetrics,
  ) {}

  /**
   * Captures one machine, refused (409) while this backend captures it already, unless `reserved`
   * is the hold of it a capture request took (requestCapture), or while another backend's capture
   * holds its claim in the database (claimFor). The hold and claim are let go however the
   * capture ends: recorded, failed, past its deadline (also where its source does not stop: what it
   * returns late is discarded, not recorded, and the claim is kept until the source is done),
   * stopped as the backend shuts down or as `signal` aborts (its capture request ended elsewhere:
   * no failure of the machine).
   */
  async captureMachine(
    locator: MachineLocator,
    reserved?: Hold,
    signal?: AbortSignal,
    /** Hears how its large copies come along, as the log does. */
    progress?: TransferProgressListener,
  ): Promise<Capture> {
    const held = this.holds.heldFor(locator);
    if (held && held !== reserved)
      throw new ConflictError(
        `${refusal(locator.machineRef, held)}; ${ONE_AT_A_TIME}`,
      );
    const hold = this.holds.begin(locator, reserved);
    let letGoClaim: (() => Promise<void>) | undefined;
    let sourceDone: Promise<void> | undefined;
    try {
      letGoClaim = await this.claims.claimFor(hold);
      const capture = await this.take(
        locator,
        hold.captureId,
        hold.since,
        signal,
        progress,
        done => {
          sourceDone = done;
        },
      );
      // After the answer and the hold: reading every marked capture may take the capture deadline.
      this.rechecks.recheckLater(locator.machineRef, capture.id);
      hold.outcome.settle(capture);
      this.metrics?.captureFinished('succeeded');
      return capture;
    } catch (error) {
      hold.outcome.settle(toError(error));
      // Readiness names the machine's last failure until a capture of it succeeds; a capture
      // under way elsewhere (the source's own 409), or one stopped by the backend's shutdown, is
      // no failure of the machine.
      if (
        httpStatusOf(error) !== 409 &&
        !isCaptureStopped(error) &&
        !signal?.aborted
      ) {
        this.metrics?.captureFinished('failed');
        await this.store
          .recordCaptureFailure({
            ...locator,
            failedAt: hold.since,
            message: errorOf(error).message,
          })
          .catch(recordError =>
            this.logger
              .child({ machineRef: locator.machineRef })
              .warn(
                'Could not record the failed capture',
                toError(recordError),
              ),
          );
      } else if (httpStatusOf(error) !== 409)
        this.metrics?.captureFinished('interrupted');
      throw error;
    } finally {
      // After its capture or failure is recorded: a replica waiting on the claim reads it then.
      // A source given up at the deadline may still pause and commit the machine: the claim, still
      // renewed, keeps other replicas' captures off it until the source is done.
      if (sourceDone && letGoClaim) void sourceDone.then(letGoClaim);
      else await letGoClaim?.();
      this.holds.end(hold);
    }
  }

  private async take(
    locator: MachineLocator,
    captureId: string,
    createdAt: string,
    signal?: AbortSignal,
    progress?: TransferProgressListener,
    /** Told, where the capture is given up while its source goes on, when the source is done. */
    sourceGoesOn?: (sourceDone: Promise<void>) => void,
  ): Promise<Capture> {
    const source = this.providers.captureSource(locator.engine);
    const logger = this.logger.child({
      machineRef: locator.machineRef,
      captureId,
    });
    let recorded: StoredCapture | undefined;
    // The capture's deadline, passed to the source, which stops its engine calls at it: an engine
    // that accepts and never answers would otherwise hold the capture, and the machine, for good.
    const ms = this.timeoutMs;
    const deadline = new AbortController();
    const timer = setTimeout(
      () =>
        deadline.abort(
          new ServiceUnavailableError(
            `capture of ${locator.machineRef} on engine ${locator.engine} did not finish within ${withinTimeout(ms)}`,
          ),
        ),
      Math.min(ms, MAX_TIMER_MS),
    );
    // Its caller's stop ends the source's capture as its deadline does (until the source is done).
    const stop = () => deadline.abort(signal!.reason);
    if (signal?.aborted) stop();
    else signal?.addEventListener('abort', stop, { once: true });
    let gaveUp = false;
    // Through the source, which holds its note of the capture until the record is in: a backend
    // stopped before that leaves the note, not files and a tag nothing accounts for.
    const record = async (captured: CapturedMachine) => {
      // Its caller was told it failed: the source removes what it wrote.
      if (gaveUp) throw deadline.signal.reason;
      const capture: StoredCapture = {
        id: captureId,
        machineRef: locator.machineRef,
        engine: locator.engine,
        container: locator.container,
        imageId: captured.imageId,
        sizeBytes: captured.sizeBytes,
        checksum: captured.checksum,
        artifact: captured.artifact,
        runtime: captured.runtime,
        adaptations: captured.adaptations,
        durationMs: captured.durationMs,
        ...(captured.pausedMs !== undefined && { pausedMs: captured.pausedMs }),
        ...(captured.machineState && { machineState: captured.machineState }),
        ...(captured.pauseWarning && { pauseWarning: captured.pauseWarning }),
        createdAt,
      };
      // Its restart count against the one before: a crash loop between two captures, not caught in one.
      const [previous] = await this.store.listCaptures(locator.machineRef, 1);
      const restarted = restartWarning(previous, capture);
      if (restarted) capture.restartWarning = restarted;
      await this.store.insertCapture(capture);
      recorded = capture;
    };
    let captured: CapturedMachine;
    try {
      captured = await this.withinDeadline(
        source.capture(locator, {
          captureId,
          signal: deadline.signal,
          record,
          // A large volume or image takes a while to copy (its volumes while production is
          // paused): how far it is, as it goes.
          progress: line => {
            logger.info(line.message);
            progress?.(line);
          },
        }),
        deadline.signal,
        sourceDone => {
          gaveUp = true;
          sourceGoesOn?.(sourceDone);
        },
        async late => {
          // Settled after the capture failed, and never recorded: its files go.
          if (!recorded) {
            await source
              .discard({
                captureId,
                artifact: late.artifact,
                volumes: late.runtime.volumes,
              })
              .catch(error =>
                logger.warn(
                  'Could not discard the capture, which finished after its deadline',
                  toError(error),
                ),
              );
          }
        },
      );
      signal?.removeEventListener('abort', stop);
      if (!recorded) {
        // A source that holds no note leaves the record to its caller.
        try {
          await record(captured);
        } catch (error) {
          // Unrecorded, the archive and image would never be pruned: remove them now.
          await source
            .discard({
              captureId,
              artifact: captured.artifact,
              volumes: captured.runtime.volumes,
            })
            .catch(discardError =>
              logger.warn(
                'Could not discard the unrecorded capture',
                toError(discardError),
              ),
            );
          throw error;
        }
      }
      logger.info(
        `Captured the machine (${captured.sizeBytes} bytes${captured.storedBytes !== undefined ? `, ${captured.storedBytes} of them new in the capture store` : ''}, ${captured.durationMs} ms${captured.pausedMs ? `, paused ${captured.pausedMs} ms` : ''})`,
      );
      // Kept all the same (its disk is the best copy there is), but no proof production was well.
      const notServing = recorded && notServingWhenCaptured(recorded);
      if (notServing)
        logger.warn(
          `${notServing}: readiness puts what it serves at risk until a capture of it taken while it runs and is not unhealthy`,
        );
      if (captured.pauseWarning)
        logger.warn(`Capture: ${captured.pauseWarning}`);
      if (recorded?.restartWarning)
        logger.warn(`Capture: ${recorded.restartWarning}`);
      // What that leaves undone the sweep of unrecorded captures finishes: not waited for past the
      // deadline (an engine gone silent since the capture), the capture being recorded.
      const tidying = this.retention.tidyUp(source, locator);
      tidying.catch(() => {});
      const stopped = deadline.signal.aborted
        ? Promise.resolve()
        : new Promise<void>(resolve =>
            deadline.signal.addEventListener('abort', () => resolve(), {
              once: true,
            }),
          );
      await Promise.race([tidying, stopped]);
      if (deadline.signal.aborted) {
        logger.warn(
          'Captured the machine, but pruning its older captures and removing what unrecorded ones left did not finish within its deadline (recovery.captures.timeout): left to the sweep of unrecorded captures',
        );
      }
    } finally {
      signal?.removeEventListener('abort', stop);
      clearTimeout(timer);
    }
    return toApi(recorded!);
  }

  /**
   * Waits for a source's capture: past the deadline, for no longer than the grace a source has to
   * stop (then `giveUp`, told when the source is done at last, after `late` with what it still
   * returns, where it returns anything). A failure after the deadline names the deadline, whatever
   * the source said.
   */
  private async withinDeadline(
    capture: Promise<CapturedMachine>,
    deadline: AbortSignal,
    giveUp: (sourceDone: Promise<void>) => void,
    late: (captured: CapturedMachine) => void | Promise<void>,
  ): Promise<CapturedMachine> {
    let grace: NodeJS.Timeout | undefined;
    let startGrace = () => {};
    const abandoned = new Promise<never>((_resolve, reject) => {
      startGrace = () => {
        grace = setTimeout(() => {
          // `late` runs a turn later than `giveUp`: the record it refuses is refused by then.
          giveUp(capture.then(late, () => {}));
          reject(
            new ServiceUnavailableError(
              `${(deadline.reason as Error).message}, and its capture source did not stop within ${SOURCE_STOP_GRACE_MS / 1000} s of it`,
            ),
          );
        }, SOURCE_STOP_GRACE_MS);
      };
    });
    // Stopped before the source was called (its request ended while the machine was claimed): an
    // abort listened for now would never come, and a source ignoring it would hold the machine.
    if (deadline.aborted) startGrace();
    else deadline.addEventListener('abort', startGrace, { once: true });
    try {
      return await Promise.race([capture, abandoned]);
    } catch (error) {
      const reason = (deadline.reason as Error | undefined)?.message;
      if (
        deadline.aborted &&
        !String((error as Error)?.message).includes(reason!)
      )
        throw forwarded(reason!, error);
      throw error;
    } finally {
      deadline.removeEventListener('abort', startGrace);
      clearTimeout(grace);
    }
  }
}
