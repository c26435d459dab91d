import { isError } from '@backstage/errors';
import type {
  ApiErrorAnswer,
  Capture,
  NightlyCheckRecord,
  ReadinessSummary,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { answerOf } from './errorAnswer';

/**
 * `signal`: the scheduled task's. Its abort ends the wait, not the work under way: a capture
 * started goes on to the backend's own deadline (recovery.captures.timeout).
 *
 * @public
 */
export interface RecoveryTaskOptions {
  signal?: AbortSignal;
}

/**
 * What a sweep of every system's dependency analysis did: `skipped`, the systems none of whose
 * services has initialization events yet.
 *
 * @public
 */
export interface SystemsAnalysed {
  analysed: string[];
  skipped: string[];
  failed: Array<{ entityRef: string; message: string }>;
}

/**
 * What scheduled work (captures, dependency analysis, the nightly readiness check) asks of the
 * recovery plugin, in-process, as the plugin itself (its own service credentials): the same
 * admission, permission checks and audit events as the HTTP API's requests. A call that fails
 * rejects with a {@link RecoveryTaskError}, which recovery-common's guards (hostBusy,
 * keptFailover, machinesNotCaptured, …) read as they read the HTTP API's answers.
 *
 * @public
 */
export interface RecoveryTasksApi {
  /**
   * Captures one machine, on its own: the plan of a machine that needs others holds them too, and
   * they are captured in their own turn. A 409: another capture of it is under way.
   */
  capture(
    machineRef: string,
    options?: RecoveryTaskOptions,
  ): Promise<Capture[]>;
  /** A machine's newest capture, if it has one. */
  latestCapture(
    machineRef: string,
    options?: RecoveryTaskOptions,
  ): Promise<Capture | undefined>;
  /** Starts a test recovery of the entity, triggered by the schedule. */
  startRun(
    entityRef: string,
    options?: RecoveryTaskOptions,
  ): Promise<RecoveryRun>;
  getRun(runId: string, options?: RecoveryTaskOptions): Promise<RecoveryRun>;
  /** Readiness of every recoverable entity, with its boot plan in full. */
  listReadiness(options?: RecoveryTaskOptions): Promise<ReadinessSummary[]>;
  /** Analyses the boot history of every system. */
  analyzeSystems(options?: RecoveryTaskOptions): Promise<SystemsAnalysed>;
  /**
   * Records what a night's check did about each entity: `partial`, those it knows so far,
   * replacing those entities' outcomes alone; else the night whole, replacing the last. A night
   * older than the one recorded is a 409.
   */
  recordNightlyCheck(
    night: NightlyCheckRecord,
    options?: RecoveryTaskOptions,
  ): Promise<void>;
}

/**
 * A recovery service's error as the HTTP API answers it: its status, and its body as Backstage's
 * error handler writes it (`{ error: { name, message, ...its parts } }`), so that scheduled work
 * tells busy from broken with recovery-common's guards, as every client of the API does. Its
 * `name` and `message` are the service error's own.
 *
 * @public
 */
export class RecoveryTaskError extends Error implements ApiErrorAnswer {
  readonly body: { error: { [part: string]: unknown } };

  constructor(
    message: string,
    readonly statusCode: number,
    /** The service error's name (HypervisorHostBusyError, ConflictError, …). */
    name = 'Error',
    /** The parts of the error (`runId`, `neverCaptured`, …), as its body carries them. */
    parts: { [part: string]: unknown } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = name;
    this.body = { error: { ...parts, name, message } };
  }

  /** `error`, thrown by a recovery service, with the status the HTTP API answers it with. */
  static from(error: unknown): RecoveryTaskError {
    if (error instanceof RecoveryTaskError) return error;
    const { statusCode, body } = answerOf(error);
    return new RecoveryTaskError(
      body.error.message,
      statusCode,
      body.error.name,
      body.error,
      isError(error) ? { cause: error } : undefined,
    );
  }
}
