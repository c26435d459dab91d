import type { Capture } from './types';

/**
 * Why a machine was not captured, by what it asks of whoever reads it:
 * - `busy`: another capture of it was under way (a 409): that one takes it; try again once it has finished;
 * - `unreachable`: its engine could not be reached, its capture did not finish in time, or its
 *   capture source refused for now (a 503): worth trying again;
 * - `store`: the capture store could not take it (a 507: full, over its quota, read-only, not
 *   writable): room in the store first, then capture again; its engine and machine are fine;
 * - `failed`: its engine answered with an error, or lacks its container (a 502, or any other
 *   status): the engine or the catalog needs a look first.
 *
 * @public
 */
export type MachineCaptureFailureKind =
  'busy' | 'unreachable' | 'store' | 'failed';

/**
 * A machine not captured: which, what kind of failure, and why in the words of the error that stopped it.
 *
 * @public
 */
export interface MachineCaptureFailure {
  machineRef: string;
  kind: MachineCaptureFailureKind;
  error: { name: string; message: string };
}

/**
 * A capture of an entity's machines where some failed: the backend's answer to an entity's
 * `POST /captures` (a `CaptureFailedError` body), and how a capture machine by machine (the CLI's,
 * the portal's: captureInTurn) ends. The machines that failed did not stop the others.
 *
 * @public
 */
export interface CaptureFailure {
  /** Each machine not captured, the failures before those another capture was taking. */
  failed: MachineCaptureFailure[];
  /** The machines captured, and kept. */
  captures: Capture[];
}

/**
 * The kind of a machine's failure by the HTTP status of the error that stopped it.
 *
 * @public
 */
export function captureFailureKind(
  statusCode: number | undefined,
): MachineCaptureFailureKind {
  if (statusCode === 409) return 'busy';
  if (statusCode === 503) return 'unreachable';
  if (statusCode === 507) return 'store';
  return 'failed';
}

/**
 * The status of a capture where machines failed: 409 where every machine not captured was being
 * captured already, 503 where every one was out of reach (each worth trying again), 507 where
 * every one failed on the capture store (as one machine's capture answers it: the store needs
 * room, not the engines a look), else 502 (what the engines answered, or lacked). Never a 404:
 * the entity exists.
 */
export function captureFailureStatus(
  failed: ReadonlyArray<Pick<MachineCaptureFailure, 'kind'>>,
): 409 | 502 | 503 | 507 {
  const kinds = new Set(failed.map(f => f.kind));
  if (kinds.size === 1 && kinds.has('busy')) return 409;
  if (kinds.size === 1 && kinds.has('unreachable')) return 503;
  if (kinds.size === 1 && kinds.has('store')) return 507;
  return 502;
}

/**
 * What to do where every machine not captured failed on the capture store, in the words the CLI
 * and the portal add to the failure (the machines' errors name the store and what is wrong with
 * it); undefined for any other failure.
 *
 * @public
 */
export function captureStoreAdvice(
  failure: Pick<CaptureFailure, 'failed'>,
): string | undefined {
  const { failed } = failure;
  if (failed.length === 0 || failed.some(f => f.kind !== 'store'))
    return undefined;
  return `the capture store could not take ${failed.length === 1 ? 'the capture' : `any of the ${failed.length} captures`} (full, over its quota, or not writable): make room in it (or mend it), then capture again`;
}
