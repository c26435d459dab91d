/**
 * How a backend taking a capture says it is still at it, across replicas, and how long one not
 * heard from is given before another replica takes what it held for lost.
 */

/** How often the backend capturing a request says so (CaptureRequestStore.heartbeat). */
export const REQUEST_HEARTBEAT_MS = 5_000;
/** A capture request not heard from for this long lost its backend (as runs' staleAfterMs). */
export const CAPTURE_REQUEST_STALE_MS = 60_000;
/**
 * A capture's claim on its machine (CaptureClaimStore) not renewed for this long lost its backend,
 * as a capture request not heard from does: another replica takes it over.
 */
export const CAPTURE_CLAIM_LEASE_MS = CAPTURE_REQUEST_STALE_MS;
/** How often a capture renews its claim on its machine. */
export const CAPTURE_CLAIM_RENEW_MS = REQUEST_HEARTBEAT_MS;
