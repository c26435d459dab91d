import type {
  Capture,
  CaptureRequest,
  CaptureRequestError,
  CaptureRequestProgress,
} from '@backstage-recovery/plugin-recovery-common';
import { Knex } from 'knex';
import { dbNow, heardBefore, iso, json } from './rows';

const TABLE = 'recovery_capture_requests';

/** A capture request as accepted: what it captures, in turn. */
export interface NewCaptureRequest {
  requestId: string;
  entityRef: string;
  machineRef?: string;
  machineRefs: string[];
  createdAt: string;
}

/**
 * Persistence of capture requests (`POST /captures`, polled at `GET /captures/requests/:id`): in
 * the database, so that every replica answers the poll alike. The backend capturing a request
 * beats (heartbeat) while it works, by the database's clock as runs do (replicas' clocks may
 * disagree); one not heard from for a while died mid-capture (claimStale).
 */
export class CaptureRequestStore {
  private readonly changed: (requestId: string) => void;

  constructor(
    private readonly db: Knex,
    options: {
      /** Told the id of each request a write changed, once committed (RecoverySignals). */
      onChange?: (requestId: string) => void;
    } = {},
  ) {
    this.changed = options.onChange ?? (() => {});
  }

  async insert(request: NewCaptureRequest): Promise<void> {
    await this.db(TABLE).insert({
      id: request.requestId,
      entity_ref: request.entityRef,
      machine_ref: request.machineRef ?? null,
      machine_refs: JSON.stringify(request.machineRefs),
      status: 'capturing',
      captures: '[]',
      created_at: new Date(request.createdAt),
      heard_at: dbNow(this.db),
    });
    this.changed(request.requestId);
  }

  /** The entity a request captures, undefined where there is no such request (pruned). */
  async entityRefOf(requestId: string): Promise<string | undefined> {
    const row = await this.db(TABLE)
      .where({ id: requestId })
      .first('entity_ref');
    return row?.entity_ref;
  }

  async get(requestId: string): Promise<CaptureRequest | undefined> {
    // As runs: ids are UUIDs, and PostgreSQL refuses to compare text holding a NUL (`/%00`).
    if (requestId.includes('\0')) return undefined;
    const row = await this.db(TABLE).where({ id: requestId }).first();
    return row ? toCaptureRequest(row) : undefined;
  }

  /**
   * The captures taken so far, with a heartbeat. False where the request is no longer capturing
   * (claimed as interrupted meanwhile): what it found stays as it was.
   */
  async progress(requestId: string, captures: Capture[]): Promise<boolean> {
    const ours = await this.capturing(requestId, {
      captures: JSON.stringify(captures),
      heard_at: dbNow(this.db),
    });
    if (ours) this.changed(requestId);
    return ours;
  }

  /**
   * How far the capture under way is (its source's last progress line), with a heartbeat; without
   * a line, none (its capture ended). False where the request no longer captures. Shown while it
   * captures only.
   */
  async progressLine(
    requestId: string,
    line?: CaptureRequestProgress,
  ): Promise<boolean> {
    const ours = await this.capturing(requestId, {
      progress: line ? JSON.stringify(line) : null,
      heard_at: dbNow(this.db),
    });
    if (ours) this.changed(requestId);
    return ours;
  }

  /** Says the capturing backend is still at work; false where the request no longer captures. */
  async heartbeat(requestId: string): Promise<boolean> {
    return this.capturing(requestId, { heard_at: dbNow(this.db) });
  }

  /** Ends a request still capturing; false where it had ended already (claimed as interrupted). */
  async finish(
    requestId: string,
    end: { captures: Capture[]; failure?: CaptureRequestError },
    at: Date,
  ): Promise<boolean> {
    const ours = await this.capturing(requestId, {
      ...ended(end),
      heard_at: dbNow(this.db),
      finished_at: at,
    });
    if (ours) this.changed(requestId);
    return ours;
  }

  /**
   * Ends a request still capturing whose backend has not beaten for `staleForMs`, by the
   * database's clock: failed with the failure `interrupted` makes of it, or succeeded with its
   * captures where it makes none (every machine captured, its end not recorded). One statement
   * checks and ends it, so of the replicas polling it one claims it, and a backend that beat
   * meanwhile keeps it.
   */
  async claimStale(
    requestId: string,
    staleForMs: number,
    interrupted: (request: CaptureRequest) => CaptureRequestError | undefined,
    at: Date,
  ): Promise<boolean> {
    const claimed = await this.db.transaction(async tx => {
      const stale = () =>
        tx(TABLE)
          .where({ id: requestId, status: 'capturing' })
          .modify(heardBefore, 'heard_at', staleForMs);
      const row = await stale().first();
      if (!row) return false;
      const request = toCaptureRequest(row);
      const updated = await stale().update({
        ...ended({
          captures: request.captures,
          failure: interrupted(request),
        }),
        finished_at: at,
      });
      return updated > 0;
    });
    if (claimed) this.changed(requestId);
    return claimed;
  }

  /**
   * Deletes the requests not heard from for `olderThanMs` (ended that long ago, or whose backend
   * died that long ago): a caller polls within seconds of its capture's end. Returns how many.
   */
  async prune(olderThanMs: number): Promise<number> {
    return this.db(TABLE).modify(heardBefore, 'heard_at', olderThanMs).delete();
  }

  private async capturing(
    requestId: string,
    row: Record<string, unknown>,
  ): Promise<boolean> {
    const updated = await this.db(TABLE)
      .where({ id: requestId, status: 'capturing' })
      .update(row);
    return updated > 0;
  }
}

function ended(end: { captures: Capture[]; failure?: CaptureRequestError }) {
  return {
    status: end.failure ? 'failed' : 'succeeded',
    captures: JSON.stringify(end.captures),
    error: end.failure ? JSON.stringify(end.failure.error) : null,
    status_code: end.failure?.statusCode ?? null,
  };
}

function toCaptureRequest(row: any): CaptureRequest {
  const failed = row.status === 'failed';
  return {
    requestId: row.id,
    entityRef: row.entity_ref,
    ...(row.machine_ref !== null &&
      row.machine_ref !== undefined && { machineRef: row.machine_ref }),
    machineRefs: json<string[]>(row.machine_refs)!,
    status: row.status,
    createdAt: iso(row.created_at)!,
    ...(row.finished_at !== null &&
      row.finished_at !== undefined && { finishedAt: iso(row.finished_at) }),
    captures: json<Capture[]>(row.captures)!,
    ...(row.status === 'capturing' &&
      row.progress && {
        progress: json<CaptureRequestProgress>(row.progress)!,
      }),
    ...(failed && {
      statusCode: Number(row.status_code),
      error: json<CaptureRequestError['error']>(row.error)!,
    }),
  };
}
