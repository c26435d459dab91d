import { LoggerService } from '@backstage/backend-plugin-api';
import { ServiceUnavailableError, toError } from '@backstage/errors';
import type {
  Capture,
  CaptureFailure,
  CaptureRequest,
  CaptureRequestError,
  CaptureRequestProgress,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  MachineLocator,
  TransferProgressListener,
} from '@backstage-recovery/plugin-recovery-node';
import { randomUUID } from 'node:crypto';
import type { CaptureStore } from '../../database/CaptureStore';
import { answered } from './captureErrors';
import { claimAbandoned, type CaptureClaims } from './claims';
import { captureInTurn, entityCaptureFailed, keptOf } from './entityCapture';
import type { CaptureHolds, Hold } from './holds';
import { CAPTURE_REQUEST_STALE_MS, REQUEST_HEARTBEAT_MS } from './liveness';
import type { MachineCaptures } from './machineCapture';

/** How long capture requests are kept after they were last heard from: a caller polls within seconds. */
const CAPTURE_REQUEST_RETENTION_MS = 24 * 3_600_000;
/**
 * Longest shutdown waits for the capture requests it stops to end on their own (their capture
 * under way stopped by its source, as the Docker source stops its own within 10 s): those still
 * under way then are failed as interrupted all the same, not left capturing till they turn stale.
 */
const REQUEST_STOP_WAIT_MS = 15_000;

/** How a capture request ended: its captures, and the error it failed with, if it did. */
export interface CaptureRequestEnd {
  requestId: string;
  captures: Capture[];
  error?: unknown;
}

/** A capture request this backend is taking: what it captures, those taken so far, its end. */
interface RequestUnderWay {
  request: Pick<
    CaptureRequest,
    'requestId' | 'entityRef' | 'machineRefs' | 'captures'
  >;
  done: Promise<void>;
}

/**
 * The capture requests (POST /captures): accepted at once, taken in the background by the backend
 * that accepted them, beating while they run, their state and progress in the database for every
 * replica to answer the caller's poll; one whose backend is no longer heard from is failed as
 * interrupted.
 */
export class CaptureRequests {
  /** Capture requests this backend is taking (requestCapture), by id. */
  private readonly requestsUnderWay = new Map<string, RequestUnderWay>();

  constructor(
    private readonly store: CaptureStore,
    private readonly logger: LoggerService,
    private readonly holds: CaptureHolds,
    private readonly claims: CaptureClaims,
    private readonly machines: MachineCaptures,
    /** Aborted by shutdown: the requests under way stop before their next machine. */
    private readonly stopping: AbortSignal,
  ) {}

  /**
   * CaptureService.requestCapture of `locators`, its machines (machinesToCapture). The machines
   * free are held for the request from now on: another capture of one is refused while it waits
   * for its turn (another request waits for it). Those held already are waited for after the
   * others, and their captures counted for this request.
   */
  async requestCapture(
    entityRef: string,
    machineRef: string | undefined,
    locators: MachineLocator[],
    ended?: (end: CaptureRequestEnd) => Promise<void>,
  ): Promise<CaptureRequest> {
    const requestId = randomUUID();
    const createdAt = new Date().toISOString();
    // From the look at the holds to the request's own, in one turn: nothing comes in between.
    const busy = new Map<string, Hold>();
    const held = new Map<string, Hold>();
    for (const locator of locators) {
      const hold = this.holds.heldFor(locator);
      if (hold && hold.requestId !== requestId)
        busy.set(locator.machineRef, hold);
      else
        held.set(
          locator.machineRef,
          this.holds.holdFor(locator, requestId, createdAt),
        );
    }
    const request = {
      requestId,
      entityRef,
      ...(machineRef !== undefined && { machineRef }),
      machineRefs: locators.map(l => l.machineRef),
      createdAt,
    };
    try {
      await this.store.requests.insert(request);
    } catch (error) {
      for (const hold of held.values()) this.holds.letGo(hold);
      throw error;
    }
    this.store.requests
      .prune(CAPTURE_REQUEST_RETENTION_MS)
      .catch(error =>
        this.logger.warn(
          'Could not prune old capture requests',
          toError(error),
        ),
      );
    const taking: RequestUnderWay = {
      request: { ...request, captures: [] },
      done: Promise.resolve(),
    };
    taking.done = this.takeRequest(request.requestId, entityRef, locators, {
      busy,
      held,
      ended,
      taking,
    }).finally(() => this.requestsUnderWay.delete(requestId));
    this.requestsUnderWay.set(requestId, taking);
    return { ...request, status: 'capturing', captures: [] };
  }

  /**
   * CaptureService.captureRequest: one still capturing whose backend is no longer heard from is
   * failed as interrupted, by whichever replica is asked first.
   */
  async captureRequest(requestId: string): Promise<CaptureRequest | undefined> {
    const request = await this.store.requests.get(requestId);
    if (request?.status !== 'capturing') return request;
    const claimed = await this.store.requests.claimStale(
      requestId,
      CAPTURE_REQUEST_STALE_MS,
      stale =>
        interrupted(
          stale,
          `the backend taking it stopped (no heartbeat for ${CAPTURE_REQUEST_STALE_MS / 1000} s) before it finished`,
        ),
      new Date(),
    );
    return claimed ? this.store.requests.get(requestId) : request;
  }

  /**
   * Takes a capture request's machines in turn, beating, and records how it ended. Stops before
   * its next machine, and stops the capture under way, once the request is no longer its own (a
   * heartbeat or its progress finds it ended: another replica took it for interrupted and told
   * its caller to capture again); stops before its next machine as the backend shuts down.
   */
  private async takeRequest(
    requestId: string,
    entityRef: string,
    locators: MachineLocator[],
    {
      busy,
      held,
      ended,
      taking,
    }: {
      busy: Map<string, Hold>;
      held: Map<string, Hold>;
      ended?: (end: CaptureRequestEnd) => Promise<void>;
      taking: RequestUnderWay;
    },
  ): Promise<void> {
    const requests = this.store.requests;
    const logger = this.logger.child({ requestId, entityRef });
    const warn = (what: string) => (error: unknown) =>
      logger.warn(`Capture request: could not ${what}`, toError(error));
    // Ended by another replica: what it captures now nobody waits for, and holds the machine.
    const lost = new AbortController();
    const stop = new AbortController();
    const stillOurs = (ours: boolean) => {
      if (ours || lost.signal.aborted) return;
      const error = new ServiceUnavailableError(
        `capture request ${requestId} was ended by another backend, which found it interrupted: its captures stop`,
      );
      lost.abort(error);
      stop.abort(error);
    };
    const shutDown = () =>
      stop.abort(
        new ServiceUnavailableError(
          `capture request ${requestId} was interrupted: the backend taking it shut down before it finished: capture again`,
        ),
      );
    if (this.stopping.aborted) shutDown();
    else this.stopping.addEventListener('abort', shutDown);
    const beat = setInterval(
      () => void requests.heartbeat(requestId).then(stillOurs, warn('beat')),
      REQUEST_HEARTBEAT_MS,
    );
    beat.unref?.();
    let captures: Capture[] = [];
    let end: CaptureRequestEnd;
    const capture = async (locator: MachineLocator) => {
      const progress = this.requestProgress(
        requestId,
        locator.machineRef,
        stillOurs,
        warn,
      );
      // Its hold serves its first capture: one taken again (a claim elsewhere abandoned) holds anew.
      const reserved = held.get(locator.machineRef);
      held.delete(locator.machineRef);
      try {
        return await this.machines.captureMachine(
          locator,
          reserved,
          lost.signal,
          progress.listener,
        );
      } finally {
        await progress.done();
      }
    };
    try {
      end = {
        requestId,
        captures: await captureInTurn(entityRef, locators, {
          busy: locator => busy.get(locator.machineRef),
          waitFor: async (locator, hold) => {
            try {
              return await this.claims.waitForHold(
                requestId,
                locator,
                hold,
                stop.signal,
                logger,
              );
            } catch (error) {
              if (!claimAbandoned(error)) throw error;
              logger.warn(
                `Capture request: ${(error as Error).message}: capturing ${locator.machineRef} for this request`,
              );
            }
            return capture(locator);
          },
          capture,
          captured: async taken => {
            captures = taken;
            taking.request.captures = taken;
            await requests
              .progress(requestId, taken)
              .then(stillOurs, warn('record its progress'));
          },
          signal: stop.signal,
        }),
      };
    } catch (error) {
      end = { requestId, captures, error };
    } finally {
      clearInterval(beat);
      this.stopping.removeEventListener('abort', shutDown);
      // Any not reached (an unexpected failure): their holds go too.
      for (const hold of held.values()) this.holds.letGo(hold);
    }
    const failure = end.error === undefined ? undefined : answered(end.error);
    const finished = await requests
      .finish(requestId, { captures: end.captures, failure }, new Date())
      .catch(error => {
        warn('record its end')(error);
        return true;
      });
    // Ended meanwhile (by another replica, or by shutdown): it ended as recorded, not as here.
    if (!finished) end = await this.endedElsewhere(requestId, end);
    if (end.error !== undefined) {
      const { statusCode, error } = answered(end.error);
      logger.warn('Capture request failed', {
        statusCode,
        error: error.message,
      });
    }
    await ended?.(end).catch(warn('tell how it ended'));
  }

  /**
   * A machine's capture's progress lines as its request's `progress`, written one after another in
   * the order said; `done` waits for them, and takes the last away once the capture ended (a source
   * still at it past the capture's deadline says no more).
   */
  private requestProgress(
    requestId: string,
    machineRef: string,
    stillOurs: (ours: boolean) => void,
    warn: (what: string) => (error: unknown) => void,
  ): { listener: TransferProgressListener; done: () => Promise<void> } {
    const requests = this.store.requests;
    let writing = Promise.resolve();
    let said = false;
    let open = true;
    const write = (line?: CaptureRequestProgress) => {
      writing = writing.then(() =>
        requests
          .progressLine(requestId, line)
          .then(stillOurs, warn('record how far its capture is')),
      );
    };
    return {
      listener: ({ message, what, doneBytes, totalBytes, elapsedMs }) => {
        if (!open) return;
        said = true;
        write({
          machineRef,
          message,
          at: new Date().toISOString(),
          what,
          doneBytes,
          ...(totalBytes !== undefined && { totalBytes }),
          elapsedMs,
        });
      },
      done: () => {
        open = false;
        if (said) write(undefined);
        return writing;
      },
    };
  }

  /**
   * How a capture request this backend took ended where it ended it no more: as its record says
   * (failed as interrupted, its caller told to capture again; or succeeded, every machine
   * captured), however it ended here.
   */
  private async endedElsewhere(
    requestId: string,
    here: CaptureRequestEnd,
  ): Promise<CaptureRequestEnd> {
    const recorded = await this.store.requests.get(requestId).catch(error => {
      this.logger
        .child({ requestId })
        .warn('Capture request: could not read how it ended', toError(error));
      return undefined;
    });
    if (recorded?.status === 'succeeded')
      return { requestId, captures: recorded.captures };
    const error = Object.assign(
      new Error(
        recorded?.error?.message ??
          `capture request ${requestId} was ended by another backend before this one finished it`,
      ),
      { statusCode: recorded?.statusCode ?? 503 },
    );
    error.name = recorded?.error?.name ?? 'ServiceUnavailableError';
    return {
      requestId,
      captures: recorded?.captures ?? here.captures,
      error,
    };
  }

  /**
   * Fails each capture request this backend is taking as interrupted by the shutdown (503) once
   * its capture under way has stopped, or after REQUEST_STOP_WAIT_MS at most.
   */
  async stopRequests(): Promise<void> {
    const taking = [...this.requestsUnderWay.values()];
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.all(taking.map(t => t.done)),
      new Promise<void>(resolve => {
        waited = setTimeout(resolve, REQUEST_STOP_WAIT_MS);
      }),
    ]);
    clearTimeout(waited);
    for (const { request } of this.requestsUnderWay.values()) {
      const failure = interrupted(
        request,
        'the backend taking it shut down before it finished',
      );
      await this.store.requests
        .finish(
          request.requestId,
          { captures: request.captures, failure },
          new Date(),
        )
        .catch(error =>
          this.logger
            .child({ requestId: request.requestId })
            .warn(
              'Capture request: could not record it interrupted by the shutdown',
              toError(error),
            ),
        );
    }
  }
}

/**
 * The failure of a capture request whose backend stopped (`why`) before it ended (killed,
 * restarted, shut down): a 503, worth asking again, as an engine out of reach is; of several
 * machines, a {@link CaptureFailedError} naming each not captured, with those kept. None where
 * every machine was captured (it stopped before it recorded its end): it succeeded.
 */
function interrupted(
  request: Pick<
    CaptureRequest,
    'requestId' | 'entityRef' | 'machineRefs' | 'captures'
  >,
  why: string,
): CaptureRequestError | undefined {
  const done = new Set(request.captures.map(c => c.machineRef));
  const left = request.machineRefs.filter(ref => !done.has(ref));
  if (left.length === 0) return undefined;
  const message = `capture request ${request.requestId} was interrupted: ${why}: capture again`;
  if (request.machineRefs.length === 1) {
    return answered(
      new ServiceUnavailableError(`capture of ${left[0]} failed: ${message}`),
    );
  }
  const failure: CaptureFailure = {
    failed: left.map(machineRef => ({
      machineRef,
      kind: 'unreachable',
      error: { name: 'ServiceUnavailableError', message },
    })),
    captures: request.captures,
  };
  return answered(
    entityCaptureFailed(
      request.entityRef,
      request.machineRefs.length,
      failure,
      keptOf(request.captures),
    ),
  );
}
