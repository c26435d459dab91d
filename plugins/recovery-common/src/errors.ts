import { CustomErrorBase, ResponseError } from '@backstage/errors';
import {
  captureFailureKind,
  captureFailureStatus,
  type CaptureFailure,
  type MachineCaptureFailure,
  type MachineCaptureFailureKind,
} from './captureFailed';
import type { RecoveryPointTooEarly } from './recoveryPoint';
import type { Capture } from './types';

// The recovery API's errors: the names its answers carry (`{ error: { name, message, ... } }`, as
// Backstage's error handler writes an error), and how a client reads them. The names are the
// API's contract (openapi.yaml): the backend's errors are named so, and clients tell its
// refusals apart by them, through the guards below, never by reading `body.error.name` themselves.

/**
 * Name of the 409 error `POST /runs` answers while the hypervisor host runs another run: worth
 * retrying, unlike the other 409s (a machine never captured). Its body names that run:
 * `{ error: { name, message, runId, entityRef } }` ({@link hostBusy}).
 *
 * @public
 */
export const HOST_BUSY_ERROR_NAME = 'HypervisorHostBusyError';

/**
 * Name of the 409 error `POST /runs` answers where the catalog names dependencies the plan cannot
 * include (an entity not there, a Group): the run would not test the recovery production needs.
 * Sent again with `acceptMissingDependencies: true`, it recovers without them. Its body lists them:
 * `{ error: { name, message, missing: string[] } }`, each a problem's message ({@link missingDependencies}).
 *
 * @public
 */
export const MISSING_DEPENDENCIES_ERROR_NAME = 'MissingDependenciesError';

/**
 * Name of the 409 error `POST /runs` and `GET /plan` answer where the catalog declares a dependency
 * cycle among what the plan boots: no boot order satisfies it. Sent again with `acceptCycles: true`, the run
 * goes ahead on a plan that drops one edge per cycle, each named in its timeline. Its body says the
 * cycle (`cycle`: what `GET /plan` says of it, with what to change) and the edges that would be
 * dropped: `{ error: { name, message, cycle, wouldDrop: [{ from, waitsFor }] } }` ({@link dependencyCycle}).
 *
 * @public
 */
export const DEPENDENCY_CYCLE_ERROR_NAME = 'DependencyCycleError';

/**
 * Name of the 409 error `POST /runs` answers where a finished failover keeps machines on the
 * hypervisor host that serve production on subnets (or machines) the run's plan needs: it holds
 * for as long as that failover stays, so retrying is pointless until it is released. Its body
 * gives the parts of its message: `{ error: { name, message, failover, host, keeps, holding,
 * remedy, runId?, entityRef? } }` (`failover` as the caller may see it: `failover <id> of <entity>
 * (...)` or `an earlier failover`; `runId` and `entityRef`, the failover's, only where it is shown)
 * ({@link keptFailover}).
 *
 * @public
 */
export const KEPT_FAILOVER_ERROR_NAME = 'KeptFailoverError';

/**
 * Name of the 409 error `POST /runs` answers where machines of the plan were never captured (none
 * kept): nothing to restore them from, so the run is refused until they are. Its body lists them:
 * `{ error: { name, message, neverCaptured: string[] } }` ({@link machinesNotCaptured}).
 *
 * @public
 */
export const MACHINES_NOT_CAPTURED_ERROR_NAME = 'MachinesNotCapturedError';

/**
 * Name of the 409 error `POST /runs` answers where a machine of the plan has no capture kept taken
 * at or before the `recoveryPoint` asked. Its body names them:
 * `{ error: { name, message, recoveryPoint, machines, neverCaptured, earliestRecoveryPoint? } }`
 * ({@link recoveryPointTooEarly}).
 *
 * @public
 */
export const RECOVERY_POINT_TOO_EARLY_ERROR_NAME = 'RecoveryPointTooEarlyError';

/**
 * The name of the error a capture of an entity's machines ends with where some were not captured
 * (`POST /captures`: a 409, 502, 503 or 507; and captureInTurn's): {@link CaptureFailedError}, read by
 * {@link captureFailure}.
 */
export const CAPTURE_FAILED_ERROR_NAME = 'CaptureFailedError';

/**
 * Name of the 502 error of an engine (a primary engine, or a hypervisor host) that answered an
 * operation with an error; one that could not be reached is a 503 `ServiceUnavailableError`, as
 * Backstage names it. `POST /captures` answers it, or names it as a machine's error in a
 * {@link CaptureFailedError}.
 *
 * @public
 */
export const ENGINE_FAILED_ERROR_NAME = 'EngineFailedError';

/**
 * Name of the 409 error `POST /runs` answers where a machine of the plan has captures kept, but
 * every one of them was found damaged: nothing intact to restore it from, at any recovery point.
 * Its body names them (and any machine of the plan never captured, in `neverCaptured`):
 * `{ error: { name, message, damaged: [{ machineRef, captureId, createdAt, reason }] } }`
 * ({@link capturesDamaged}). Capture the machine anew.
 *
 * @public
 */
export const CAPTURES_DAMAGED_ERROR_NAME = 'CapturesDamagedError';

/**
 * Name of the 507 error of a capture the capture store could not take (full, over its quota,
 * read-only, not writable): the store's condition, not a bug, its message naming the store's
 * directory and what is wrong. `POST /captures` answers it for one machine, or names it as a
 * machine's error in a {@link CaptureFailedError}.
 *
 * @public
 */
export const CAPTURE_STORE_ERROR_NAME = 'CaptureStoreError';

/**
 * Statuses of the names Backstage's error handler knows (of those a machine's capture fails with):
 * a failure in a `CaptureFailedError` body from a backend from before kinds gets its kind by them.
 */
const STATUS_BY_NAME: Record<string, number> = {
  ConflictError: 409,
  ServiceUnavailableError: 503,
  [CAPTURE_STORE_ERROR_NAME]: 507,
};

/**
 * A failed call to the recovery API as the guards here read it: the answer's HTTP status, and its
 * body as Backstage's error handler writes it, `{ error: { name, message, ...its parts } }`.
 * Backstage's `ResponseError` (thrown by the `RecoveryClient`, in the portal and the CLI) is
 * one; a client of its own (the scheduler module's) implements it.
 *
 * @public
 */
export interface ApiErrorAnswer {
  readonly statusCode: number;
  readonly body: { readonly error?: { readonly [part: string]: unknown } };
}

/** The body's `error` of a failed call answered `status` with an error named `name`; undefined for any other error. */
function answered(
  error: unknown,
  status: number | undefined,
  name: string,
): Record<string, unknown> | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { statusCode, body } = error as Partial<ApiErrorAnswer>;
  if (
    typeof statusCode !== 'number' ||
    (status !== undefined && statusCode !== status)
  )
    return undefined;
  const said = body?.error;
  return typeof said === 'object' && said !== null && said.name === name
    ? said
    : undefined;
}

/** Only the strings of a list in a body. */
const strings = (list: unknown): string[] =>
  Array.isArray(list)
    ? list.filter((s): s is string => typeof s === 'string')
    : [];

/**
 * How `ResponseError` words an answer whose body is not a Backstage error body (not JSON, a proxy's
 * HTML page; or JSON without a JSON content type): its status, then the whole body after a comma.
 */
const UNREAD_BODY = /^Request failed with status \d+[^,]*, ([\s\S]*)$/;

/** Longest body that is not JSON said as the answer's own words: a proxy's line, not a page. */
const SHORT_BODY_MAX = 200;

/** The words of a body `ResponseError` could not read as a Backstage error: never the body itself where it is a page. */
function unreadBodyWords(text: string): string {
  const body = text.trim();
  try {
    // A Backstage error body sent without `response`, or with another content type.
    const parsed = JSON.parse(body);
    const said = parsed?.error?.message ?? parsed?.message;
    if (typeof said === 'string' && said) return said;
    return 'the answer was JSON without an error message';
  } catch {
    // Not JSON: read on.
  }
  if (body.length <= SHORT_BODY_MAX && !/[<>\n]/.test(body)) return body;
  return `the answer was not JSON (${/^<|<html/i.test(body) ? 'an HTML page' : 'a body'} of ${body.length} characters, not shown)`;
}

/**
 * The most useful message of an error: the server's own message for a `ResponseError`
 * (e.g. "Missing permission recovery.run.create"), else the error's message. An answer whose body
 * is not a Backstage error body (a proxy's HTML page) is said as such, never dumped.
 *
 * @public
 */
export function errorMessage(error: unknown): string {
  if (error instanceof ResponseError) {
    const said = error.body?.error?.message;
    if (typeof said !== 'string' || !said) return error.message;
    const unread = UNREAD_BODY.exec(said);
    return unread ? unreadBodyWords(unread[1]) : said;
  }
  return error instanceof Error ? error.message : String(error);
}

/** `503 Service Unavailable` of a failed call's answer; undefined for one that got none. */
function answerStatus(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const { statusCode, statusText } = error as {
    statusCode?: unknown;
    statusText?: unknown;
  };
  if (typeof statusCode !== 'number') return undefined;
  return typeof statusText === 'string' && statusText
    ? `${statusCode} ${statusText}`
    : String(statusCode);
}

/**
 * What failed, in one sentence a page shows: `Could not load readiness (503 Service
 * Unavailable): Catalog unreachable`: `what` (`load readiness`), the answer's status where there
 * was one, and the backend's own message (errorMessage: never a raw body). Every page words a
 * failed call with it.
 *
 * @public
 */
export function couldNot(what: string, error: unknown): string {
  const status = answerStatus(error);
  return `Could not ${what}${status ? ` (${status})` : ''}: ${errorMessage(error)}`;
}

/**
 * What a start refused because the hypervisor host is running another run (409
 * `HypervisorHostBusyError`) says of that run: its `runId` and `entityRef` where the caller may
 * see it (each where the body gives it); undefined for any other error, a 409 for a machine never
 * captured among them.
 *
 * @public
 */
export function hostBusy(
  error: unknown,
): { runId?: string; entityRef?: string } | undefined {
  const said = answered(error, 409, HOST_BUSY_ERROR_NAME);
  if (!said) return undefined;
  const { runId, entityRef } = said;
  return {
    ...(typeof runId === 'string' && { runId }),
    ...(typeof entityRef === 'string' && { entityRef }),
  };
}

/**
 * Whether a start was refused because the hypervisor host is running another run (409
 * `HypervisorHostBusyError`), rather than for a machine never captured (another 409).
 *
 * @public
 */
export function isHostBusy(error: unknown): error is ApiErrorAnswer {
  return hostBusy(error) !== undefined;
}

/**
 * The run a start refused for a busy hypervisor host ran into; undefined for any other error.
 *
 * @public
 */
export function busyWithRunId(error: unknown): string | undefined {
  return hostBusy(error)?.runId;
}

/**
 * What a start refused for dependencies the plan cannot include names (409
 * `MissingDependenciesError`), each a problem's message; undefined for any other error.
 *
 * @public
 */
export function missingDependencies(error: unknown): string[] | undefined {
  const said = answered(error, 409, MISSING_DEPENDENCIES_ERROR_NAME);
  return said && strings(said.missing);
}

/**
 * A start refused for a dependency cycle the catalog declares (409 `DependencyCycleError`): the
 * cycle, and what a run accepting cycles would boot without waiting for.
 *
 * @public
 */
export interface DependencyCycle {
  /** The cycle, entity by entity, and what to change. */
  cycle: string;
  /** Each edge a run accepting cycles drops: `from` boots without waiting for `waitsFor`. */
  wouldDrop: Array<{ from: string; waitsFor: string }>;
}

/**
 * What a start (or `GET /plan`) refused for a dependency cycle says (409 `DependencyCycleError`);
 * undefined for any other error.
 *
 * @public
 */
export function dependencyCycle(error: unknown): DependencyCycle | undefined {
  const said = answered(error, 409, DEPENDENCY_CYCLE_ERROR_NAME);
  if (!said) return undefined;
  const edges = Array.isArray(said.wouldDrop) ? said.wouldDrop : [];
  return {
    cycle:
      typeof said.cycle === 'string' ? said.cycle : String(said.message ?? ''),
    wouldDrop: edges.flatMap(e =>
      typeof e?.from === 'string' && typeof e?.waitsFor === 'string'
        ? [{ from: e.from, waitsFor: e.waitsFor }]
        : [],
    ),
  };
}

/**
 * The machines a start refused for machines never captured names (409 `MachinesNotCapturedError`),
 * in boot order (none where the body lists none); undefined for any other error.
 *
 * @public
 */
export function machinesNotCaptured(error: unknown): string[] | undefined {
  const said = answered(error, 409, MACHINES_NOT_CAPTURED_ERROR_NAME);
  return said && strings(said.neverCaptured);
}

/**
 * A start refused because a finished failover keeps its machines on the hypervisor host, serving
 * production on what the run's plan needs (409 `KeptFailoverError`): the parts of its message.
 *
 * @public
 */
export interface KeptFailover {
  /** The failover as the refusal names it (`failover <id> of <entity> (<status> at <time>)`, or `an earlier failover`). */
  failover: string;
  host: string;
  /** What it keeps there (`3 containers and 1 network`). */
  keeps: string;
  /** What of this run's plan it holds (`production's subnet 10.1.0.0/24`). */
  holding: string;
  /** Why that refuses the run, and how to free the host. */
  remedy: string;
  /** The failover's id and entity, where the caller may see it. */
  runId?: string;
  entityRef?: string;
}

/**
 * What a start refused beside a failover kept on the host says ({@link KeptFailover}); undefined for any other error, or a body without its parts.
 *
 * @public
 */
export function keptFailover(error: unknown): KeptFailover | undefined {
  const said = answered(error, 409, KEPT_FAILOVER_ERROR_NAME);
  if (!said) return undefined;
  const { failover, host, keeps, holding, remedy, runId, entityRef } = said;
  if (
    ![failover, host, keeps, holding, remedy].every(
      part => typeof part === 'string',
    )
  )
    return undefined;
  return {
    ...({ failover, host, keeps, holding, remedy } as Pick<
      KeptFailover,
      'failover' | 'host' | 'keeps' | 'holding' | 'remedy'
    >),
    ...(typeof runId === 'string' && { runId }),
    ...(typeof entityRef === 'string' && { entityRef }),
  };
}

/**
 * What a start refused for a recovery point earlier than some machines' kept captures names; undefined for any other error.
 *
 * @public
 */
export function recoveryPointTooEarly(
  error: unknown,
): RecoveryPointTooEarly | undefined {
  const body = answered(error, 409, RECOVERY_POINT_TOO_EARLY_ERROR_NAME);
  if (typeof body?.recoveryPoint !== 'string') return undefined;
  const machines = (Array.isArray(body.machines) ? body.machines : []).filter(
    (m): m is { machineRef: string; oldestCaptureAt: string } =>
      typeof m?.machineRef === 'string' &&
      typeof m?.oldestCaptureAt === 'string',
  );
  const neverCaptured = strings(body.neverCaptured);
  const earliest =
    typeof body.earliestRecoveryPoint === 'string'
      ? body.earliestRecoveryPoint
      : undefined;
  return {
    recoveryPoint: body.recoveryPoint,
    machines: machines.map(({ machineRef, oldestCaptureAt }) => ({
      machineRef,
      oldestCaptureAt,
    })),
    neverCaptured,
    ...(earliest !== undefined &&
      neverCaptured.length === 0 && { earliestRecoveryPoint: earliest }),
  };
}

/**
 * A {@link CaptureFailure} thrown: by the backend (its error handler writes `failed` and
 * `captures` into the body, and answers `statusCode`), and by captureInTurn. Each words its
 * message as its users read it; the fields are the same. Read with {@link captureFailure}.
 *
 * @public
 */
export class CaptureFailedError
  extends CustomErrorBase
  implements CaptureFailure
{
  name = CAPTURE_FAILED_ERROR_NAME;

  /** Backstage's error handler knows no status by this name: it answers this one. */
  readonly statusCode: 409 | 502 | 503 | 507;

  readonly failed: MachineCaptureFailure[];

  readonly captures: Capture[];

  constructor(message: string, failure: CaptureFailure) {
    super(message);
    this.failed = failure.failed.map(({ machineRef, kind, error }) => ({
      machineRef,
      kind,
      error: { name: error.name, message: error.message },
    }));
    this.captures = failure.captures;
    this.statusCode = captureFailureStatus(this.failed);
  }
}

const FAILURE_KINDS: readonly string[] = [
  'busy',
  'unreachable',
  'store',
  'failed',
] satisfies MachineCaptureFailureKind[];

/**
 * The capture of an entity's machines where some failed: from the body of a `POST /captures`
 * answer (`CaptureFailedError`, a 409, 502, 503 or 507: `failed` and `captures`), or the
 * {@link CaptureFailedError} a capture machine by machine ended with; undefined for any other
 * error. A machine the body gives no kind (a backend from before kinds) gets its error's.
 *
 * @public
 */
export function captureFailure(error: unknown): CaptureFailure | undefined {
  if (error instanceof CaptureFailedError) return error;
  const body = answered(error, undefined, CAPTURE_FAILED_ERROR_NAME);
  if (!body) return undefined;
  const failed: MachineCaptureFailure[] = [];
  for (const item of Array.isArray(body.failed) ? body.failed : []) {
    const {
      machineRef,
      kind,
      error: cause,
    } = (item ?? {}) as {
      machineRef?: unknown;
      kind?: unknown;
      error?: { name?: unknown; message?: unknown };
    };
    if (typeof machineRef !== 'string') continue;
    const name = typeof cause?.name === 'string' ? cause.name : 'Error';
    const message = typeof cause?.message === 'string' ? cause.message : '';
    failed.push({
      machineRef,
      kind:
        typeof kind === 'string' && FAILURE_KINDS.includes(kind)
          ? (kind as MachineCaptureFailureKind)
          : captureFailureKind(STATUS_BY_NAME[name]),
      error: { name, message },
    });
  }
  return {
    failed,
    captures: Array.isArray(body.captures) ? (body.captures as Capture[]) : [],
  };
}

/**
 * A machine's damaged capture, as a start refused for captures all damaged names it.
 *
 * @public
 */
export interface DamagedCapture {
  machineRef: string;
  captureId: string;
  /** When the capture was taken. */
  createdAt: string;
  /** Why it is damaged. */
  reason: string;
}

/**
 * What a start refused because every kept capture of some machines is damaged (409
 * `CapturesDamagedError`) names: those captures, in boot order, and the plan's machines never
 * captured beside them; undefined for any other error.
 *
 * @public
 */
export function capturesDamaged(
  error: unknown,
): { damaged: DamagedCapture[]; neverCaptured: string[] } | undefined {
  const said = answered(error, 409, CAPTURES_DAMAGED_ERROR_NAME);
  if (!said) return undefined;
  const damaged = (Array.isArray(said.damaged) ? said.damaged : [])
    .filter(
      (d): d is DamagedCapture =>
        typeof d?.machineRef === 'string' &&
        typeof d?.captureId === 'string' &&
        typeof d?.createdAt === 'string' &&
        typeof d?.reason === 'string',
    )
    .map(({ machineRef, captureId, createdAt, reason }) => ({
      machineRef,
      captureId,
      createdAt,
      reason,
    }));
  const neverCaptured = (
    Array.isArray(said.neverCaptured) ? said.neverCaptured : []
  ).filter((m): m is string => typeof m === 'string');
  return { damaged, neverCaptured };
}
