import { LoggerService } from '@backstage/backend-plugin-api';
import {
  ConflictError,
  ForwardedError,
  InputError,
  ServiceUnavailableError,
  toError,
} from '@backstage/errors';
import {
  CaptureFailedError,
  captureFailureKind,
  captureStoreAdvice,
  formatSeconds,
  nothingToCapture,
  notServingWhenCaptured,
  type Capture,
  type CaptureFailure,
  type CaptureRequest,
  type CaptureRequestError,
  type CaptureRequestProgress,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedMachine,
  CaptureSource,
  MachineLocator,
  TransferProgressListener,
} from '@backstage-recovery/plugin-recovery-node';
import {
  answerOf,
  httpStatusOf,
  isCaptureDamaged,
  isCaptureStopped,
  isCaptureStoreError,
  isEngineError,
  MAX_TIMER_MS,
} from '@backstage-recovery/plugin-recovery-node';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { CaptureStore, StoredCapture } from '../database/CaptureStore';
import { restorable } from '../run/boot';
import { restartWarning } from './captureRestarts';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';

/** More than a machine ever has recorded: its last N, and those active runs restore. */
const ALL_CAPTURES = 1_000_000;

/** Longest a capture of one machine may take unless configured (recovery.captures.timeout). */
export const DEFAULT_CAPTURE_TIMEOUT_MS = 30 * 60_000;

/**
 * How long past its deadline a capture source may take to stop (unpause production, remove what
 * it wrote) before the capture fails without it: one that ignores the signal must not hold the
 * capture, and the request, for good. What it records after that is refused.
 */
const SOURCE_STOP_GRACE_MS = 60_000;

/**
 * A capture this backend is taking: of which machine, since when (its createdAt), and its id. Or
 * one a capture request accepted is to take in its turn (`queued`): since when it was accepted.
 */
interface Hold {
  machineRef: string;
  engine: string;
  container: string;
  captureId: string;
  since: string;
  /** The capture request it is of, where one (POST /captures). */
  requestId?: string;
  /** Not begun: the request captures machines before it. */
  queued?: boolean;
  /**
   * Another capture's claim on the machine in the database (another replica's, mostly): its
   * outcome is known by watching that claim (watchClaim), not from this backend.
   */
  elsewhere?: boolean;
  /**
   * Its capture as it ends (or why there is none): a capture request that found the machine held
   * waits for it and counts it as its own (waitForHold).
   */
  outcome: Outcome;
}

/** A capture's end, for those waiting on it: settled once, its failure never unhandled. */
interface Outcome {
  taken: Promise<Capture>;
  settle: (capture: Capture | Error) => void;
}

function outcome(): Outcome {
  let settle!: Outcome['settle'];
  const taken = new Promise<Capture>((resolve, reject) => {
    settle = ended => (ended instanceof Error ? reject(ended) : resolve(ended));
  });
  taken.catch(() => {});
  return { taken, settle };
}

/** recovery.captures.timeout as a capture past it says it. */
function withinTimeout(ms: number): string {
  return `${ms < 120_000 ? `${ms / 1000} s` : formatSeconds(ms / 1000)} (recovery.captures.timeout)`;
}

/** The refusal of a capture of `ref` while `hold` is under way: the machine, when it started, its id. */
function refusal(ref: string, hold: Hold): string {
  const as =
    hold.machineRef === ref
      ? ''
      : `, as ${hold.machineRef}: its container ${hold.container} on engine ${hold.engine}`;
  if (hold.queued)
    return `capture of ${ref} refused: capture request ${hold.requestId}, accepted at ${hold.since}, is to capture it${as}`;
  const where = hold.elsewhere ? ', by another backend' : '';
  return `capture of ${ref} refused: it is being captured since ${hold.since} (capture ${hold.captureId}${as}${where})`;
}

/** Marks the 409 of a capture refused as another capture holds the machine's claim: that hold. */
const CLAIMED = Symbol('claimed elsewhere');
/** Marks the end of a watched claim whose backend stopped renewing it mid-capture. */
const ABANDONED = Symbol('claim abandoned');

/** The capture whose claim on the machine refused this capture (captureMachine), where one did. */
function claimedElsewhere(error: unknown): Hold | undefined {
  return (error as { [CLAIMED]?: Hold } | undefined)?.[CLAIMED];
}

function claimAbandoned(error: unknown): boolean {
  return (error as { [ABANDONED]?: boolean } | undefined)?.[ABANDONED] === true;
}

/** How a capture request ended: its captures, and the error it failed with, if it did. */
export interface CaptureRequestEnd {
  requestId: string;
  captures: Capture[];
  error?: unknown;
}

/** How often the backend capturing a request says so (CaptureRequestStore.heartbeat). */
const REQUEST_HEARTBEAT_MS = 5_000;
/** A capture request not heard from for this long lost its backend (as runs' staleAfterMs). */
const CAPTURE_REQUEST_STALE_MS = 60_000;
/** How long capture requests are kept after they were last heard from: a caller polls within seconds. */
const CAPTURE_REQUEST_RETENTION_MS = 24 * 3_600_000;
/**
 * Longest shutdown waits for the capture requests it stops to end on their own (their capture
 * under way stopped by its source, as the Docker source stops its own within 10 s): those still
 * under way then are failed as interrupted all the same, not left capturing till they turn stale.
 */
const REQUEST_STOP_WAIT_MS = 15_000;
/**
 * A capture's claim on its machine (CaptureClaimStore) not renewed for this long lost its backend,
 * as a capture request not heard from does: another replica takes it over.
 */
const CAPTURE_CLAIM_LEASE_MS = CAPTURE_REQUEST_STALE_MS;
/** How often a capture renews its claim on its machine. */
const CAPTURE_CLAIM_RENEW_MS = REQUEST_HEARTBEAT_MS;
/** How often a request waiting for a capture claimed in the database looks at that claim. */
const CAPTURE_CLAIM_POLL_MS = 500;

/** A capture request this backend is taking: what it captures, those taken so far, its end. */
interface RequestUnderWay {
  request: Pick<
    CaptureRequest,
    'requestId' | 'entityRef' | 'machineRefs' | 'captures'
  >;
  done: Promise<void>;
}

/**
 * An error as Backstage's error handler answers a client (its status, its serialized body without
 * a stack, a database's error hidden): a capture request's failure, answered by the poll as POST
 * answered it before.
 */
function answered(error: unknown): CaptureRequestError {
  const { statusCode, body } = answerOf(error, { hideInternal: true });
  return { statusCode, error: body.error };
}

const ONE_AT_A_TIME =
  'one capture of a machine at a time: try again once it has finished';

/**
 * A ForwardedError, which keeps its cause's name (by which Backstage's error handler answers 404,
 * 503, …), and the status of a cause that says it by its status instead: an engine's failure
 * (EngineError, 502).
 */
function forwarded(
  message: string,
  cause: unknown,
  notFoundIsEngines = false,
): ForwardedError {
  const error = new ForwardedError(message, cause);
  if (isEngineError(cause))
    return Object.assign(error, { statusCode: cause.statusCode });
  // A capture store full or read-only: 507 (Insufficient Storage), the store's condition, not a 500.
  if (isCaptureStoreError(cause))
    return Object.assign(error, {
      statusCode: cause.statusCode,
      directory: cause.directory,
    });
  // A machine's capture the source answers 404 (no such container on its engine): the engine
  // lacks what the catalog names, a 502 as an engine's failure is; a 404 would read as an entity
  // the catalog does not hold.
  if (notFoundIsEngines && httpStatusOf(cause) === 404)
    return Object.assign(error, { statusCode: 502 });
  return error;
}

/** An error as the API names it: its name and message. */
function errorOf(error: unknown): { name: string; message: string } {
  return {
    name: (error as Error)?.name ?? 'Error',
    message: String((error as Error)?.message ?? error),
  };
}

/**
 * An entity's capture in which some machines failed (or were being captured already) while the
 * others went on, as the API answers it: a {@link CaptureFailedError} (`failed`, `captures`),
 * its message naming the entity, each machine not captured and why, and those kept. Never a 404
 * (the entity exists): a 503 where every failure is an engine out of reach or past its deadline
 * (worth trying again), a 409 where every one is a capture under way, a 507 where every one
 * failed on the capture store (as one machine's capture answers it), else a 502 (what the engines
 * answered, or lacked: a container gone).
 */
function entityCaptureFailed(
  entityRef: string,
  total: number,
  failure: CaptureFailure,
  kept: string,
): CaptureFailedError {
  const { failed } = failure;
  const store = captureStoreAdvice(failure);
  return new CaptureFailedError(
    `capture of ${entityRef}: ${failed.length} of ${total} machines not captured: ` +
      `${failed.map(f => `${f.machineRef}: ${f.error.name}: ${f.error.message}`).join('; ')}${kept ? `; ${kept}` : ''}${store ? `: ${store}` : ''}`,
    failure,
  );
}

/** Takes captures of primary machines and keeps the last N of each. */
export class CaptureService {
  /**
   * The captures under way in this backend, by machine ref and by engine and container (two
   * machine entities naming one container are one machine): one capture of a machine at a time,
   * whatever its capture source keeps of its own. A second one is refused with a 409 naming the
   * machine and when the one under way started, rather than made to wait for it and answered with
   * its result: a capture is a copy of the machine at the moment it paused it, and one started
   * before the request holds the state from before it (a change just made, the reason to capture
   * now), which the caller would take for theirs; a refusal saying since when lets them judge, is
   * what the Docker source's own notes already answer (across replicas), and holds no request open
   * on someone else's capture for up to recovery.captures.timeout. The scheduled capture, a machine
   * a request, reports a refused one among those it did not capture and goes on with the others;
   * an entity's capture goes on with its other machines and refuses the busy ones at its end.
   * A capture request (POST /captures) waits instead, after its other machines, for the capture
   * under way or queued of a machine it found held, and counts it (waitForHold): two requests
   * overlapping on a machine must not fail one of them with everything captured. Holds are this
   * backend's; across replicas, each capture also claims its machine in the database
   * (CaptureClaimStore) before its source is called: a capture another replica holds is refused
   * or waited for alike, watching its claim (watchClaim), never sent to the source for its own 409.
   */
  private readonly holds = new Map<string, Hold>();
  /**
   * The re-checks of damaged captures under way or queued after a capture (recheckDamaged), by
   * machine: one machine's at a time, after the one before it; shutdown stops and waits for them.
   */
  private readonly rechecks = new Map<string, Promise<void>>();
  /** Machines whose re-check is queued, not yet begun: it reads the marks as they are then. */
  private readonly recheckQueued = new Set<string>();
  /** Aborted by shutdown: no re-check starts after it, and one under way stops reading. */
  private readonly stopping = new AbortController();

  constructor(
    private readonly store: CaptureStore,
    private readonly providers: ProviderRegistry,
    private readonly plans: PlanService,
    private readonly logger: LoggerService,
    private readonly keepLast: number,
    /** recovery.captures.timeout: a machine's capture stops at it, and fails. */
    private readonly timeoutMs: number = DEFAULT_CAPTURE_TIMEOUT_MS,
    /**
     * recovery.hypervisorHost: the host whose verifyCapture runs verify captures with, which
     * verifies again those marked damaged after a capture (recheckDamaged).
     */
    private readonly hypervisorHost?: string,
  ) {}

  /**
   * Captures every machine in the entity's boot plan, or only `machineRef` of them: a portal or
   * pipeline capturing one machine a request shows its progress, and no request lasts as long
   * as a whole site's images take to save. An entity that runs on no machine is a 400. A machine
   * whose capture fails does not stop the others: the one machine asked for fails with its own
   * error (never a 404); of several, a {@link CaptureFailedError} names each not captured and why,
   * with those captured.
   */
  async captureEntity(
    entityRef: string,
    machineRef?: string,
  ): Promise<Capture[]> {
    const locators = await this.locatorsOf(entityRef, machineRef);
    return this.captureInTurn(entityRef, locators, {
      // Looked at in the same turn as captureMachine takes its hold: nothing comes in between.
      busy: locator => this.heldFor(locator),
      capture: locator => this.captureMachine(locator),
    });
  }

  /**
   * Accepts a capture of the entity's machines, or only `machineRef` of them, as captureEntity
   * takes it, and takes it in the background: the caller polls the request (captureRequest), the
   * state of which is in the database for every replica to answer. What captureEntity refuses
   * before it captures anything (a 400) is refused here, at once. The machines free are held for
   * the request from now on: another capture of one is refused while it waits for its turn (another
   * request waits for it). Those held already are waited for after the others, and their captures
   * counted for this request. `ended` hears how it ended.
   */
  async requestCapture(
    entityRef: string,
    machineRef?: string,
    ended?: (end: CaptureRequestEnd) => Promise<void>,
  ): Promise<CaptureRequest> {
    const locators = await this.locatorsOf(entityRef, machineRef);
    const requestId = randomUUID();
    const createdAt = new Date().toISOString();
    // From the look at the holds to the request's own, in one turn: nothing comes in between.
    const busy = new Map<string, Hold>();
    const held = new Map<string, Hold>();
    for (const locator of locators) {
      const hold = this.heldFor(locator);
      if (hold && hold.requestId !== requestId)
        busy.set(locator.machineRef, hold);
      else
        held.set(
          locator.machineRef,
          this.holdFor(locator, requestId, createdAt),
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
      for (const hold of held.values()) this.letGo(hold);
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
   * A capture request as its caller polls it, or undefined where none has that id (or it was
   * pruned). One still capturing whose backend is no longer heard from (stopped mid-capture) is
   * failed as interrupted, by whichever replica is asked first: never capturing for ever.
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
    if (this.stopping.signal.aborted) shutDown();
    else this.stopping.signal.addEventListener('abort', shutDown);
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
        return await this.captureMachine(
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
        captures: await this.captureInTurn(entityRef, locators, {
          busy: locator => busy.get(locator.machineRef),
          waitFor: async (locator, hold) => {
            try {
              return await this.waitForHold(
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
      this.stopping.signal.removeEventListener('abort', shutDown);
      // Any not reached (an unexpected failure): their holds go too.
      for (const hold of held.values()) this.letGo(hold);
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

  /** The machines to capture of an entity's boot plan, or only `machineRef` of them: else a 400. */
  private async locatorsOf(
    entityRef: string,
    machineRef?: string,
  ): Promise<MachineLocator[]> {
    const { graph, plan } = await this.plans.plan(entityRef);
    // A plan that cannot be made (a dependency cycle) stops recoveries, not captures: what the
    // machines hold now is worth keeping while the catalog is mended.
    const planned = plan
      ? plan.waves.flat()
      : [...graph.machines.keys()].sort();
    if (planned.length === 0) {
      throw new InputError(nothingToCapture(entityRef));
    }
    if (machineRef !== undefined && !planned.includes(machineRef)) {
      throw new InputError(
        `machineRef: ${machineRef} is not a machine of ${entityRef}'s boot plan (${planned.join(', ')})`,
      );
    }
    const locators: MachineLocator[] = [];
    const unmapped: string[] = [];
    for (const ref of machineRef === undefined ? planned : [machineRef]) {
      const locator = graph.machines.get(ref)?.locator;
      if (locator) locators.push(locator);
      else unmapped.push(ref);
    }
    if (unmapped.length > 0) {
      const details = graph.problems
        .filter(p => unmapped.includes(p.entityRef))
        .map(p => p.message);
      throw new InputError(
        `Cannot capture ${unmapped.join(', ')}: ${details.join('; ') || 'not mapped to a primary engine'}`,
      );
    }
    return locators;
  }

  /**
   * Captures the machines one after another (`capture`), leaving those `busy` names to the capture
   * under way, or with `waitFor`, counting that capture once the others are taken (as a capture
   * refused by another's claim on the machine in the database, then waited for); `captured`
   * hears of those taken so far after each. Once `signal` aborts, the machines not begun fail with
   * its reason. Ends as captureEntity says.
   */
  private async captureInTurn(
    entityRef: string,
    locators: MachineLocator[],
    turn: {
      busy: (locator: MachineLocator) => Hold | undefined;
      capture: (locator: MachineLocator) => Promise<Capture>;
      waitFor?: (locator: MachineLocator, hold: Hold) => Promise<Capture>;
      captured?: (captures: Capture[]) => Promise<void>;
      signal?: AbortSignal;
    },
  ): Promise<Capture[]> {
    // One at a time: each capture pauses its machine briefly and streams a whole image.
    const captures: Capture[] = [];
    // Machines another capture in this backend is taking: left to it, and refused at the end.
    const busy: Array<{ ref: string; hold: Hold }> = [];
    // Machines whose capture failed: the others are still taken (one machine's container gone
    // must not leave the rest of the site uncaptured), and the failures said at the end.
    const failed: Array<{ ref: string; error: unknown }> = [];
    // Machines held by another capture, waited for once this one's own are taken (never before:
    // two requests each waiting on the other's queued machine would wait for ever).
    const waiting: Array<{ locator: MachineLocator; hold: Hold }> = [];
    const taken = async (
      locator: MachineLocator,
      capture: () => Promise<Capture>,
    ) => {
      if (turn.signal?.aborted) {
        failed.push({ ref: locator.machineRef, error: turn.signal.reason });
        return;
      }
      try {
        captures.push(await capture());
      } catch (error) {
        // Held by a capture claimed in the database (another replica's): waited for in its turn.
        const elsewhere = turn.waitFor && claimedElsewhere(error);
        if (elsewhere) waiting.push({ locator, hold: elsewhere });
        else failed.push({ ref: locator.machineRef, error });
        return;
      }
      await turn.captured?.([...captures]);
    };
    for (const locator of locators) {
      const hold = turn.busy(locator);
      if (hold && turn.waitFor) waiting.push({ locator, hold });
      else if (hold) busy.push({ ref: locator.machineRef, hold });
      else await taken(locator, () => turn.capture(locator));
    }
    // Those found claimed meanwhile are appended, and waited for in their turn too.
    for (const { locator, hold } of waiting)
      await taken(locator, () => turn.waitFor!(locator, hold));
    const kept =
      captures.length > 0
        ? `captured, and kept: ${captures.map(c => c.machineRef).join(', ')}`
        : '';
    if (failed.length === 1 && busy.length === 0 && captures.length === 0) {
      // The one machine asked for: its own failure, keeping the cause's name and status (an
      // engine's 502, 503), but never a 404: the entity and machine exist, the engine lacks them.
      throw forwarded(
        `capture of ${failed[0].ref} failed`,
        failed[0].error,
        true,
      );
    }
    if (failed.length > 0) {
      const failure: CaptureFailure = {
        failed: [
          ...failed.map(f => ({
            machineRef: f.ref,
            kind: captureFailureKind(httpStatusOf(f.error)),
            error: errorOf(f.error),
          })),
          ...busy.map(b => ({
            machineRef: b.ref,
            kind: 'busy' as const,
            error: {
              name: 'ConflictError',
              message: `${refusal(b.ref, b.hold)}; ${ONE_AT_A_TIME}`,
            },
          })),
        ],
        captures,
      };
      throw entityCaptureFailed(entityRef, locators.length, failure, kept);
    }
    if (busy.length > 0) {
      throw new ConflictError(
        `${busy.map(b => refusal(b.ref, b.hold)).join('; ')}; ${ONE_AT_A_TIME}${kept ? ` (${kept})` : ''}`,
      );
    }
    return captures;
  }

  /** Capture requests this backend is taking (requestCapture), by id. */
  private readonly requestsUnderWay = new Map<string, RequestUnderWay>();

  /**
   * The capture of a machine another capture (a request's, the scheduled one) holds, for capture
   * request `requestId`: waited for up to recovery.captures.timeout, and its failure this
   * request's for that machine. Begun before or after this request was accepted, it is the one
   * capture of the machine at a time (ONE_AT_A_TIME), as fresh as this backend can take it then.
   */
  private async waitForHold(
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

  /**
   * Claims the machine for `hold`'s capture in the database, across replicas, and renews the claim
   * while it runs: a 409 naming the capture that holds it otherwise (marked with that hold, for a
   * request to wait for). Returns the claim's let-go.
   */
  private async claimFor(hold: Hold): Promise<() => Promise<void>> {
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

  /** The capture under way in this backend of the machine, by its ref or its engine and container. */
  private heldFor(locator: MachineLocator): Hold | undefined {
    return (
      this.holds.get(`machine ${locator.machineRef}`) ??
      this.holds.get(`container ${locator.engine}/${locator.container}`)
    );
  }

  /** A capture request's hold of a machine it is to capture in its turn (queued till then). */
  private holdFor(
    locator: MachineLocator,
    requestId: string,
    since: string,
  ): Hold {
    const hold: Hold = {
      ...locator,
      captureId: randomUUID(),
      since,
      requestId,
      queued: true,
      outcome: outcome(),
    };
    // A second machine entity naming the same container: the first's hold stands for both.
    for (const key of holdKeys(locator))
      if (!this.holds.has(key)) this.holds.set(key, hold);
    return hold;
  }

  private letGo(hold: Hold): void {
    // Not captured by its request (it ended first): those waiting for it are told so.
    hold.outcome.settle(
      new ServiceUnavailableError(
        `capture request ${hold.requestId} ended before it captured ${hold.machineRef}: capture again`,
      ),
    );
    for (const key of holdKeys(hold))
      if (this.holds.get(key) === hold) this.holds.delete(key);
  }

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
    const held = this.heldFor(locator);
    if (held && held !== reserved)
      throw new ConflictError(
        `${refusal(locator.machineRef, held)}; ${ONE_AT_A_TIME}`,
      );
    // Its moment is now: the capture's time is when it begins, not when its request was accepted.
    const hold: Hold = reserved
      ? Object.assign(reserved, {
          since: new Date().toISOString(),
          queued: false,
        })
      : {
          ...locator,
          captureId: randomUUID(),
          since: new Date().toISOString(),
          outcome: outcome(),
        };
    const keys = holdKeys(locator);
    for (const key of keys) this.holds.set(key, hold);
    let letGoClaim: (() => Promise<void>) | undefined;
    let sourceDone: Promise<void> | undefined;
    try {
      letGoClaim = await this.claimFor(hold);
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
      this.recheckLater(locator.machineRef, capture.id);
      hold.outcome.settle(capture);
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
      }
      throw error;
    } finally {
      // After its capture or failure is recorded: a replica waiting on the claim reads it then.
      // A source given up at the deadline may still pause and commit the machine: the claim, still
      // renewed, keeps other replicas' captures off it until the source is done.
      if (sourceDone && letGoClaim) void sourceDone.then(letGoClaim);
      else await letGoClaim?.();
      for (const key of keys)
        if (this.holds.get(key) === hold) this.holds.delete(key);
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
      const tidying = this.tidyUp(source, locator);
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
   * Has the machine's captures marked damaged verified again in the background (recheckDamaged),
   * after any re-check of it under way: the capture already answered, a failure is logged.
   */
  private recheckLater(machineRef: string, after: string): void {
    if (this.stopping.signal.aborted || this.recheckQueued.has(machineRef))
      return;
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
   * Stops the re-checks of damaged captures under way (their marks stay), and waits for them; stops
   * the capture requests this backend is taking before their next machine, and fails each as
   * interrupted by the shutdown (503) once its capture under way has stopped (its source stops it
   * as the backend shuts down), or after REQUEST_STOP_WAIT_MS at most: never left capturing until
   * a replica finds it stale.
   */
  async shutdown(): Promise<void> {
    this.stopping.abort();
    await Promise.all([this.idle(), this.stopRequests()]);
  }

  private async stopRequests(): Promise<void> {
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
    if (this.stopping.signal.aborted) return;
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
      this.stopping.signal,
    ]);
    for (const capture of damaged) {
      try {
        await host.verifyCapture(restorable(capture), { signal });
      } catch (error) {
        // Stopped by shutdown: a read cut off proves nothing either way.
        if (this.stopping.signal.aborted) return;
        if (isCaptureDamaged(error)) continue;
        throw error;
      }
      if (this.stopping.signal.aborted) return;
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

  /** Prunes a machine's captures to the last N, and has the source remove what unrecorded ones left. */
  private async tidyUp(
    source: CaptureSource,
    locator: MachineLocator,
  ): Promise<void> {
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
    deadline.addEventListener('abort', startGrace, { once: true });
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

  /** A machine's captures as the API gives them, newest first: `limit` of them, after `after` if given. */
  async listCaptures(
    machineRef: string,
    limit: number,
    after?: Pick<Capture, 'createdAt' | 'id'>,
  ): Promise<Capture[]> {
    return (await this.store.listCaptures(machineRef, limit, after)).map(toApi);
  }

  /** How many captures of a machine are kept (every page of listCaptures). */
  countCaptures(machineRef: string): Promise<number> {
    return this.store.countCaptures(machineRef);
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

/** Where a capture of the machine is held: by its ref, and by its engine and container. */
function holdKeys(locator: Omit<MachineLocator, 'labels'> | Hold): string[] {
  return [
    `machine ${locator.machineRef}`,
    `container ${locator.engine}/${locator.container}`,
  ];
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
  const kept =
    request.captures.length > 0
      ? `captured, and kept: ${request.captures.map(c => c.machineRef).join(', ')}`
      : '';
  return answered(
    entityCaptureFailed(
      request.entityRef,
      request.machineRefs.length,
      failure,
      kept,
    ),
  );
}

export function toApi(capture: StoredCapture): Capture {
  const { artifact: _artifact, runtime: _runtime, ...rest } = capture;
  return rest;
}
