import { ConflictError } from '@backstage/errors';
import type { RecoveryApi } from './api';
import {
  captureFailureKind,
  captureStoreAdvice,
  type CaptureFailure,
  type MachineCaptureFailure,
} from './captureFailed';
import { CaptureFailedError, dependencyCycle } from './errors';
import type { Capture } from './types';

/**
 * A machine just captured by captureInTurn, and how far along the entity's plan that is.
 *
 * @public
 */
export interface CaptureProgress {
  capture: Capture;
  /** Machines captured so far, this one included, of `total`. */
  done: number;
  total: number;
}

/**
 * Why a capture of an entity whose boot plan has no machines is refused: one wording for the
 * API (POST /captures) and the CLI, which each refuse it rather than succeed having captured nothing.
 *
 * @public
 */
export function nothingToCapture(entityRef: string): string {
  return `${entityRef} runs on no machine, so there is nothing to capture: add dependsOn relations to machine Resources`;
}

/**
 * The end of a capture in turn where machines failed, in the words the CLI and the portal show:
 * each failure as the backend said it (naming its machine), then those another capture was taking,
 * and those taken (and kept).
 */
function notCaptured(failure: CaptureFailure): string {
  const { failed, captures } = failure;
  const kept =
    captures.length > 0
      ? ` (captured, and kept: ${captures.map(c => c.machineRef).join(', ')})`
      : '';
  // Every one on the capture store: what to do is the same for all, and not the engines' look.
  const store = captureStoreAdvice(failure);
  return `${failed.length} machine${failed.length === 1 ? '' : 's'} not captured: ${failed.map(f => f.error.message).join('; ')}${kept}${store ? `: ${store}` : ''}`;
}

/**
 * A machine's failed request as a {@link MachineCaptureFailure}: the backend's words (its error's
 * name and message in the body, not the client's "Request failed with 502 Bad Gateway"), its kind
 * by the answer's status.
 */
function machineFailure(
  machineRef: string,
  error: unknown,
  statusCode: number,
): MachineCaptureFailure {
  const said = (
    error as { body?: { error?: { name?: string; message?: string } } }
  ).body?.error;
  return {
    machineRef,
    kind: captureFailureKind(statusCode),
    error: {
      name: said?.name ?? (error as Error).name ?? 'Error',
      message: said?.message ?? (error as Error).message,
    },
  };
}

/**
 * Captures the machines of an entity's boot plan one request each, in the plan's order: the
 * caller shows each as it is taken, and no request lasts as long as a whole site's images take
 * to save. `on.start` hears of each machine before its capture begins, `on.captured` of each taken.
 * A machine whose capture the backend answers failed (an HTTP status: its container gone, its
 * engine failing) does not stop the others, nor does one being captured already (a 409): they are
 * named at the end, the failures first. The one failure alone is thrown as the backend answered
 * it; more, or with machines being captured, as a {@link CaptureFailedError} naming each (busy
 * ones alone: a ConflictError). A request that got no answer (the backend out of reach, no answer
 * in time) stops it: the machine may be being captured still, and the next would fare alike.
 * Without a plan (a dependency cycle stops it: GET /plan answers 409 `DependencyCycleError`) the
 * backend still captures, as a cycle stops recoveries, not captures: then the machines readiness
 * lists are taken, or `on.machines` where the caller holds them already.
 *
 * @public
 */
export async function captureInTurn(
  api: Pick<RecoveryApi, 'getBootPlan' | 'captureNow' | 'getReadiness'>,
  entityRef: string,
  on: {
    machines?: string[];
    start?: (machineRef: string, index: number, total: number) => void;
    captured?: (progress: CaptureProgress) => void;
  } = {},
): Promise<Capture[]> {
  const machines = on.machines ?? (await machinesToCapture(api, entityRef));
  const captures: Capture[] = [];
  // Machines another capture is taking (the scheduled one, say): left to it, the others taken,
  // and a 409 at the end naming them, as the backend answers for an entity's capture.
  const busy: MachineCaptureFailure[] = [];
  const failed: MachineCaptureFailure[] = [];
  // The first failure as the backend answered it: thrown as it is where it is the only one.
  let first: unknown;
  for (const [index, machineRef] of machines.entries()) {
    on.start?.(machineRef, index, machines.length);
    try {
      captures.push(...(await api.captureNow(entityRef, machineRef)));
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      if (typeof status !== 'number') throw error;
      const failure = machineFailure(machineRef, error, status);
      if (failure.kind === 'busy') busy.push(failure);
      else {
        if (failed.length === 0) first = error;
        failed.push(failure);
      }
      continue;
    }
    on.captured?.({
      capture: captures[captures.length - 1],
      done: index + 1,
      total: machines.length,
    });
  }
  if (failed.length === 1 && busy.length === 0) throw first;
  if (failed.length > 0) {
    const failure = { failed: [...failed, ...busy], captures };
    throw new CaptureFailedError(notCaptured(failure), failure);
  }
  if (busy.length > 0) {
    const taken =
      captures.length > 0
        ? ` (captured, and kept: ${captures.map(c => c.machineRef).join(', ')})`
        : '';
    throw new ConflictError(
      `${busy.map(b => b.error.message).join('; ')}${taken}`,
    );
  }
  return captures;
}

/** The plan's machines in boot order, or where no plan can be made, those readiness lists. */
async function machinesToCapture(
  api: Pick<RecoveryApi, 'getBootPlan' | 'getReadiness'>,
  entityRef: string,
): Promise<string[]> {
  try {
    return (await api.getBootPlan(entityRef)).waves.flat();
  } catch (error) {
    if (!dependencyCycle(error)) throw error;
    const readiness = await api.getReadiness(entityRef);
    if (readiness.plan || readiness.captures.length === 0) throw error;
    return readiness.captures.map(c => c.machineRef);
  }
}
