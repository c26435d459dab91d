import type { Capture } from './types';

/**
 * Where a capture request stands: `capturing` (its machines in turn), `succeeded` (every one
 * captured) or `failed` (see {@link CaptureRequest}).
 *
 * @public
 */
export type CaptureRequestStatus = 'capturing' | 'succeeded' | 'failed';

/**
 * Why a capture request failed, as `POST /captures` answered it before it was polled: the HTTP
 * status, and the error as Backstage's error handler writes it (`{ name, message, ... }`: a
 * `CaptureFailedError`'s `failed` and `captures`, a store's `directory`, ...), which the guards
 * (captureFailed, errors) read.
 *
 * @public
 */
export interface CaptureRequestError {
  statusCode: number;
  error: { name: string; message: string; [field: string]: unknown };
}

/**
 * A capture of an entity's machines, or of one of them, as `POST /captures` accepts it (202) and
 * `GET /captures/requests/:id` answers it: its machines are captured one after another while the
 * caller polls. `captures`: those taken so far (capturing), all of them (succeeded), those taken
 * and kept (failed). A failed one says why in `statusCode` and `error`.
 *
 * @public
 */
export interface CaptureRequest extends Partial<CaptureRequestError> {
  requestId: string;
  entityRef: string;
  /** The one machine asked for, where one was. */
  machineRef?: string;
  /** The machines it captures, in turn. */
  machineRefs: string[];
  status: CaptureRequestStatus;
  createdAt: string;
  finishedAt?: string;
  captures: Capture[];
}
