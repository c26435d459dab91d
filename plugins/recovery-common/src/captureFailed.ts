import type { Capture } from './types';

/**
 * Why a machine was not captured, by what it asks of whoever reads it:
 * - `busy`: another capture of it was under way (a 409): that one takes it; try again once it has finished;
 * - `unreachable`: its engine could not be reached, its capture did not finish in time, or its
 *   capture source refused for now (a 503): worth trying again;
 * - `failed`: its engine answered with an error, or lacks its container (a 502, or any other
 *   status): the engine or the catalog needs a look first.
 */
export type MachineCaptureFailureKind = 'busy' | 'unreachable' | 'failed';

/** A machine not captured: which, what kind of failure, and why in the words of the error that stopped it. */
export interface MachineCaptureFailure {
  machineRef: string;
  kind: MachineCaptureFailureKind;
  error: { name: string; message: string };
}

/**
 * A capture of an entity's machines where some failed: the backend's answer to an entity's
 * `POST /captures` (a `CaptureFailedError` body), and how a capture machine by machine (the CLI's,
 * the portal's: captureInTurn) ends. The machines that failed did not stop the others.
 */
export interface CaptureFailure {
  /** Each machine not captured, the failures before those another capture was taking. */
  failed: MachineCaptureFailure[];
  /** The machines captured, and kept. */
  captures: Capture[];
}

/** The kind of a machine's failure by the HTTP status of the error that stopped it. */
export function captureFailureKind(
  statusCode: number | undefined,
): MachineCaptureFailureKind {
  if (statusCode === 409) return 'busy';
  if (statusCode === 503) return 'unreachable';
  return 'failed';
}

/**
 * The status of a capture where machines failed: 409 where every machine not captured was being
 * captured already, 503 where every one was out of reach (each worth trying again), else 502
 * (what the engines answered, or lacked). Never a 404: the entity exists.
 */
export function captureFailureStatus(
  failed: ReadonlyArray<Pick<MachineCaptureFailure, 'kind'>>,
): 409 | 502 | 503 {
  const kinds = new Set(failed.map(f => f.kind));
  if (kinds.size === 1 && kinds.has('busy')) return 409;
  if (kinds.size === 1 && kinds.has('unreachable')) return 503;
  return 502;
}
