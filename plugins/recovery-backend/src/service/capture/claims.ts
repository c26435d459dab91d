import { LoggerService } from '@backstage/backend-plugin-api';
import {
  ConflictError,
  ServiceUnavailableError,
  toError,
} from '@backstage/errors';
import type { Capture } from '@backstage-recovery/plugin-recovery-common';
import {
  MAX_TIMER_MS,
  type MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CaptureStore } from '../../database/CaptureStore';
import { forwarded, withinTimeout } from './captureErrors';
import { ONE_AT_A_TIME, outcome, refusal, type Hold } from './holds';
import { CAPTURE_CLAIM_LEASE_MS, CAPTURE_CLAIM_RENEW_MS } from './liveness';
import { toApi } from './machineCapture';

/** How often a request waiting for a capture claimed in the database looks at that claim. */
const CAPTURE_CLAIM_POLL_MS = 500;

/** Marks the 409 of a capture refused as another capture holds the machine's claim: that hold. */
const CLAIMED = Symbol('claimed elsewhere');
/** Marks the end of a watched claim whose backend stopped renewing it mid-capture. */
const ABANDONED = Symbol('claim abandoned');

/** The capture whose claim on the machine refused this capture (captureMachine), where one did. */
export function claimedElsewhere(error: unknown): Hold | undefined {
  return (error as { [CLAIMED]?: Hold } | undefined)?.[CLAIMED];
}

export function claimAbandoned(error: unknown): boolean {
  return (error as { [ABANDONED]?: boolean } | undefined)?.[ABANDONED] === true;
}

/**
 * The captures' claims on their machines in the database (CaptureClaimStore), across backend
 * replicas: taken before a capture's source is called and renewed while it runs (claimFor), and
 * the capture another replica holds waited for by a capture request, by watching its claim
 * (waitForHold).
 */
export class CaptureClaims {
  constructor(
    private readonly store: CaptureStore,
    private readonly logger: LoggerService,
    /** recovery.captures.timeout: the longest a request waits for another's capture. */
    private readonly timeoutMs: number,
  ) {}

  /**
   * Claims the machine for `hold`'s capture in the database, across replicas, and renews the claim
   * while it runs: a 409 naming the capture that holds it otherwise (marked with that hold, for a
   * request to wait for). Returns the claim's let-go.
   */
  async claimFor(hold: Hold): Promise<() => Promise<void>> {
    const claims = this.store.claims;
    const holder = await claims.claim(
      {
        machineRef: hold.machineRef,
        engine: hold.engine,
        container: hold.container,
        captureId: hold.captureId,
        requestId: hold.requestId,
        since: hold.since,
      },
      CAPTURE_CLAIM_LEASE_MS,
    );
    if (holder) {
      const theirs: Hold = { ...holder, elsewhere: true, outcome: outcome() };
      throw Object.assign(
        new ConflictError(
          `${refusal(hold.machineRef, theirs)}; ${ONE_AT_A_TIME}`,
        ),
        { [CLAIMED]: theirs },
      );
    }
    const logger = this.logger.child({
      machineRef: hold.machineRef,
      captureId: hold.captureId,
    });
    let lost = false;
    const renew = setInterval(
      () =>
        void claims.renew(hold, hold.captureId).then(
          ours => {
            if (ours || lost) return;
            lost = true;
            // Its source's own lock still keeps two captures of the machine apart.
            logger.warn(
              `The capture's claim on the machine was taken over by another capture (not renewed for ${CAPTURE_CLAIM_LEASE_MS / 1000} s): the capture goes on`,
            );
          },
          error =>
            logger.warn(
              "Could not renew the capture's claim on the machine",
              toError(error),
            ),
        ),
      CAPTURE_CLAIM_RENEW_MS,
    );
    renew.unref?.();
    return async () => {
      clearInterval(renew);
      await claims
        .release(hold, hold.captureId)
        .catch(error =>
          logger.warn(
            `Could not let go of the capture's claim on the machine: another capture of it waits until it expires (${CAPTURE_CLAIM_LEASE_MS / 1000} s)`,
            toError(error),
          ),
        );
    };
  }

  /**
   * The capture of a machine another capture (a request's, the scheduled one) holds, for capture
   * request `requestId`: waited for up to recovery.captures.timeout, and its failure this
   * request's for that machine. Begun before or after this request was accepted, it is the one
   * capture of the machine at a time (ONE_AT_A_TIME), as fresh as this backend can take it then.
   */
  async waitForHold(
    requestId: string,
    locator: MachineLocator,
    hold: Hold,
    signal: AbortSignal,
    logger: LoggerService,
  ): Promise<Capture> {
    const ref = locator.machineRef;
    const by = hold.requestId
      ? `capture request ${hold.requestId}`
      : `capture ${hold.captureId}`;
    await this.store.requests
      .progressLine(requestId, {
        machineRef: ref,
        message: `Waiting for ${by}, which is capturing ${hold.machineRef}: its capture counts for this request`,
        at: new Date().toISOString(),
      })
      .catch(error =>
        logger.warn(
          'Capture request: could not record how far its capture is',
          toError(error),
        ),
      );
    const ms = this.timeoutMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let onAbort: (() => void) | undefined;
    const watching = new AbortController();
    if (hold.elsewhere) this.watchClaim(hold, watching.signal);
    try {
      const capture = await Promise.race([
        hold.outcome.taken.catch(error => {
          // Refused by a claim in the database (waited for next), or its backend gone (taken over).
          if (claimedElsewhere(error) || claimAbandoned(error)) throw error;
          throw forwarded(`${by} failed to capture it`, error, true);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new ServiceUnavailableError(
                  `capture of ${ref} by ${by} did not finish within ${withinTimeout(ms)}`,
                ),
              ),
            Math.min(ms, MAX_TIMER_MS),
          );
          onAbort = () => reject(signal.reason);
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
      logger.info(
        `Capture request: ${ref} was captured by ${by} (capture ${capture.id} at ${capture.createdAt}), counted for this request`,
      );
      return capture;
    } finally {
      watching.abort();
      clearTimeout(timer);
      if (onAbort) signal.removeEventListener('abort', onAbort);
      await this.store.requests
        .progressLine(requestId, undefined)
        .catch(() => {});
    }
  }

  /**
   * Settles `hold`, a capture claimed in the database (another replica's), as it ends: looks at its
   * claim until it is let go or another capture's, then at the capture store for the capture it
   * recorded, or the failure recorded of the machine since it began. A claim left unrenewed past
   * its lease settles as abandoned (its backend stopped mid-capture): the waiter takes it over.
   */
  private async watchClaim(hold: Hold, stop: AbortSignal): Promise<void> {
    const logger = this.logger.child({
      machineRef: hold.machineRef,
      captureId: hold.captureId,
    });
    while (!stop.aborted) {
      try {
        const holder = await this.store.claims.holder(
          hold,
          CAPTURE_CLAIM_LEASE_MS,
        );
        if (holder?.captureId !== hold.captureId) {
          hold.outcome.settle(await this.claimedCapture(hold));
          return;
        }
        if (holder.expired) {
          hold.outcome.settle(
            Object.assign(
              new ServiceUnavailableError(
                `capture ${hold.captureId} of ${hold.machineRef}, begun at ${hold.since} by another backend, lost it: its claim was not renewed for ${CAPTURE_CLAIM_LEASE_MS / 1000} s`,
              ),
              { [ABANDONED]: true },
            ),
          );
          return;
        }
      } catch (error) {
        logger.warn(
          "Could not look at another backend's capture of the machine, waited for",
          toError(error),
        );
      }
      await sleep(CAPTURE_CLAIM_POLL_MS, undefined, { signal: stop }).catch(
        () => {},
      );
    }
  }

  /** How a capture claimed in the database ended, once its claim went: its capture, or why none. */
  private async claimedCapture(hold: Hold): Promise<Capture | Error> {
    const recorded = await this.store.getCapture(hold.captureId);
    if (recorded) return toApi(recorded);
    const failure = (await this.store.captureFailures([hold.machineRef])).get(
      hold.machineRef,
    );
    if (failure?.failedAt === hold.since) return new Error(failure.message);
    return new ServiceUnavailableError(
      `capture ${hold.captureId} of ${hold.machineRef} ended unrecorded (stopped, or refused by its capture source): capture again`,
    );
  }
}
