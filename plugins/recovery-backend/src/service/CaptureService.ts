import type {
  AuditorService,
  LoggerService,
} from '@backstage/backend-plugin-api';
import type {
  Capture,
  CaptureRequest,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  MachineLocator,
  TransferProgressListener,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { CaptureClaims } from './capture/claims';
import { DamagedCaptureRechecks } from './capture/damageRechecks';
import { captureInTurn, machinesToCapture } from './capture/entityCapture';
import { CaptureHolds, type Hold } from './capture/holds';
import { MachineCaptures, toApi } from './capture/machineCapture';
import { CaptureRequests, type CaptureRequestEnd } from './capture/requests';
import { CaptureRetention } from './capture/retention';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';
import type { RecoveryMetrics } from './RecoveryMetrics';

export { toApi, type CaptureRequestEnd };

/** Longest a capture of one machine may take unless configured (recovery.captures.timeout). */
export const DEFAULT_CAPTURE_TIMEOUT_MS = 30 * 60_000;

/**
 * Takes captures of primary machines and keeps the last N of each: what the router, the
 * scheduler's tasks and readiness use. The parts are in ./capture: one capture of a machine at a
 * time in this backend (holds) and across replicas (claims), the capture of one machine
 * (machineCapture), an entity's machines in turn (entityCapture), capture requests taken in the
 * background (requests), keeping the last N (retention), and the re-check of damaged captures
 * after a capture (damageRechecks).
 */
export class CaptureService {
  /** Aborted by shutdown: no re-check starts after it, and requests stop before their next machine. */
  private readonly stopping = new AbortController();
  private readonly holds = new CaptureHolds();
  private readonly retention: CaptureRetention;
  private readonly rechecks: DamagedCaptureRechecks;
  private readonly machines: MachineCaptures;
  private readonly requests: CaptureRequests;

  constructor(
    private readonly store: CaptureStore,
    providers: ProviderRegistry,
    private readonly plans: PlanService,
    logger: LoggerService,
    keepLast: number,
    /** Records what retention removes (capture-retention). */
    auditor: AuditorService,
    /** recovery.captures.timeout: a machine's capture stops at it, and fails. */
    timeoutMs: number = DEFAULT_CAPTURE_TIMEOUT_MS,
    /**
     * recovery.hypervisorHost: the host whose verifyCapture runs verify captures with, which
     * verifies again those marked damaged after a capture (recheckDamaged).
     */
    hypervisorHost?: string,
    metrics?: RecoveryMetrics,
  ) {
    const claims = new CaptureClaims(store, logger, timeoutMs);
    this.retention = new CaptureRetention(
      store,
      providers,
      logger,
      keepLast,
      auditor,
    );
    this.rechecks = new DamagedCaptureRechecks(
      store,
      providers,
      logger,
      timeoutMs,
      this.stopping.signal,
      hypervisorHost,
    );
    this.machines = new MachineCaptures(
      store,
      providers,
      logger,
      timeoutMs,
      this.holds,
      claims,
      this.retention,
      this.rechecks,
      metrics,
    );
    this.requests = new CaptureRequests(
      store,
      logger,
      this.holds,
      claims,
      this.machines,
      this.stopping.signal,
    );
  }

  /**
   * Captures every machine in the entity's boot plan, or only `machineRef` of them: a portal or
   * pipeline capturing one machine a request shows its progress, and no request lasts as long
   * as a whole site's images take to save. An entity that runs on no machine is a 400. A machine
   * whose capture fails does not stop the others: the one machine asked for fails with its own
   * error (never a 404); of several, a {@link CaptureFailedError} names each not captured and why,
   * with those captured. `machines`, where given, are those it captures, as the caller found and
   * authorized them (machinesToCapture): the plan is not read again, so a machine added to it since
   * is not captured unchecked.
   */
  async captureEntity(
    entityRef: string,
    machineRef?: string,
    machines?: MachineLocator[],
  ): Promise<Capture[]> {
    const locators =
      machines ?? (await machinesToCapture(this.plans, entityRef, machineRef));
    return captureInTurn(entityRef, locators, {
      // Looked at in the same turn as captureMachine takes its hold: nothing comes in between.
      busy: locator => this.holds.heldFor(locator),
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
   * counted for this request. `ended` hears how it ended. `machines`, as captureEntity's.
   */
  async requestCapture(
    entityRef: string,
    machineRef?: string,
    ended?: (end: CaptureRequestEnd) => Promise<void>,
    machines?: MachineLocator[],
  ): Promise<CaptureRequest> {
    const locators =
      machines ?? (await machinesToCapture(this.plans, entityRef, machineRef));
    return this.requests.requestCapture(entityRef, machineRef, locators, ended);
  }

  /**
   * A capture request as its caller polls it, or undefined where none has that id (or it was
   * pruned). One still capturing whose backend is no longer heard from (stopped mid-capture) is
   * failed as interrupted, by whichever replica is asked first: never capturing for ever.
   */
  captureRequest(requestId: string): Promise<CaptureRequest | undefined> {
    return this.requests.captureRequest(requestId);
  }

  /**
   * Captures one machine, refused (409) while this backend captures it already, unless `reserved`
   * is the hold of it a capture request took (requestCapture), or while another backend's capture
   * holds its claim in the database: as MachineCaptures.captureMachine says.
   */
  captureMachine(
    locator: MachineLocator,
    reserved?: Hold,
    signal?: AbortSignal,
    /** Hears how its large copies come along, as the log does. */
    progress?: TransferProgressListener,
  ): Promise<Capture> {
    return this.machines.captureMachine(locator, reserved, signal, progress);
  }

  /** Once no re-check of damaged captures is under way or queued. */
  idle(): Promise<void> {
    return this.rechecks.idle();
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
    await Promise.all([this.rechecks.idle(), this.requests.stopRequests()]);
  }

  /**
   * Has every capture source remove what unrecorded captures left, of every machine: the next
   * capture of a machine removes its own, but a machine may never be captured again. Run at start
   * and on a schedule; a source that fails is logged, and the others still looked at.
   */
  removeUnrecorded(): Promise<void> {
    return this.retention.removeUnrecorded();
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
}
