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
 * How far the capture under way of a capture request is: the last progress line its capture source
 * said of a large copy (`Archiving volume /data (machine paused): 300.0 MiB so far at 120.0 MiB/s`,
 * `Saved the image: 1.1 GiB in 9.8 s (114.9 MiB/s)`), at most one every 2 s.
 *
 * @public
 */
export interface CaptureRequestProgress {
  machineRef: string;
  message: string;
  /** When it was said. */
  at: string;
  /**
   * The numbers the line is made of (absent from lines recorded before they were kept): what is
   * copied, in words (`volume /data (machine paused)`, `the image`).
   */
  what?: string;
  doneBytes?: number;
  /** All it copies, where known beforehand (a capture's copy mostly does not know it). */
  totalBytes?: number;
  /** Since the copy began. */
  elapsedMs?: number;
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
  /**
   * While capturing: how far the capture under way is, where its source said (large copies only);
   * gone once that machine's capture ends.
   */
  progress?: CaptureRequestProgress;
}
