import { Knex } from 'knex';
import { dbNow, heardBefore, heardBeforeColumn, iso } from './rows';

const TABLE = 'recovery_capture_claims';

/** A capture of a machine under way in some backend replica, claimed in the database. */
export interface CaptureClaim {
  machineRef: string;
  engine: string;
  container: string;
  /** The capture's id: what it is recorded under, and the claim's token. */
  captureId: string;
  /** The capture request it is of, where one. */
  requestId?: string;
  /** When the capture began (its createdAt). */
  since: string;
}

/**
 * The captures under way across backend replicas, one per machine (engine and container, as the
 * capture source locks it): a replica claims a machine before its source captures it, renews the
 * claim while it captures, and lets it go at the end. Judged by the database's clock, as
 * heartbeats are; a claim not renewed for its lease lost its replica and is taken over.
 */
export class CaptureClaimStore {
  constructor(private readonly db: Knex) {}

  /**
   * Claims the machine for `claim`'s capture where no other capture holds it: unclaimed, or its
   * claim not renewed for `leaseMs` (taken over). One statement checks and claims, so of two
   * replicas claiming at once one gets it. Undefined where claimed; else the claim holding it.
   */
  async claim(
    claim: CaptureClaim,
    leaseMs: number,
  ): Promise<CaptureClaim | undefined> {
    await this.db(TABLE)
      .insert({
        engine: claim.engine,
        container: claim.container,
        machine_ref: claim.machineRef,
        capture_id: claim.captureId,
        request_id: claim.requestId ?? null,
        since: new Date(claim.since),
        heard_at: dbNow(this.db),
      })
      .onConflict(['engine', 'container'])
      .merge()
      .where(free =>
        free
          .where(`${TABLE}.capture_id`, claim.captureId)
          .orWhere(q => q.modify(heardBefore, `${TABLE}.heard_at`, leaseMs)),
      );
    const holder = await this.holder(claim, leaseMs);
    return holder?.captureId === claim.captureId ? undefined : holder;
  }

  /** Renews capture `captureId`'s claim; false where it was taken over (or let go). */
  async renew(
    machine: { engine: string; container: string },
    captureId: string,
  ): Promise<boolean> {
    const updated = await this.db(TABLE)
      .where({ ...key(machine), capture_id: captureId })
      .update({ heard_at: dbNow(this.db) });
    return updated > 0;
  }

  /** Lets go of capture `captureId`'s claim; one taken over meanwhile stays its taker's. */
  async release(
    machine: { engine: string; container: string },
    captureId: string,
  ): Promise<void> {
    await this.db(TABLE)
      .where({ ...key(machine), capture_id: captureId })
      .delete();
  }

  /**
   * The claim on the machine, where one: `expired` where not renewed for `leaseMs` (its replica
   * stopped mid-capture).
   */
  async holder(
    machine: { engine: string; container: string },
    leaseMs: number,
  ): Promise<(CaptureClaim & { expired: boolean }) | undefined> {
    // One read: the claim and whether it is stale, of one row at one moment.
    const row = await this.db(TABLE)
      .where(key(machine))
      .first('*', heardBeforeColumn(this.db, 'heard_at', leaseMs, 'expired'));
    if (!row) return undefined;
    return {
      machineRef: row.machine_ref,
      engine: row.engine,
      container: row.container,
      captureId: row.capture_id,
      ...(row.request_id && { requestId: row.request_id }),
      since: iso(row.since)!,
      expired: Boolean(row.expired),
    };
  }
}

function key(machine: { engine: string; container: string }) {
  return { engine: machine.engine, container: machine.container };
}
