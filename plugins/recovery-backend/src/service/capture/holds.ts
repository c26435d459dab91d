import { ServiceUnavailableError } from '@backstage/errors';
import type { Capture } from '@backstage-recovery/plugin-recovery-common';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { randomUUID } from 'node:crypto';

/**
 * A capture this backend is taking: of which machine, since when (its createdAt), and its id. Or
 * one a capture request accepted is to take in its turn (`queued`): since when it was accepted.
 */
export interface Hold {
  machineRef: string;
  engine: string;
  container: string;
  captureId: string;
  since: string;
  /** The capture request it is of, where one (POST /captures). */
  requestId?: string;
  /** Not begun: the request captures machines before it. */
  queued?: boolean;
  /**
   * Another capture's claim on the machine in the database (another replica's, mostly): its
   * outcome is known by watching that claim (watchClaim), not from this backend.
   */
  elsewhere?: boolean;
  /**
   * Its capture as it ends (or why there is none): a capture request that found the machine held
   * waits for it and counts it as its own (waitForHold).
   */
  outcome: Outcome;
}

/** A capture's end, for those waiting on it: settled once, its failure never unhandled. */
export interface Outcome {
  taken: Promise<Capture>;
  settle: (capture: Capture | Error) => void;
}

export function outcome(): Outcome {
  let settle!: Outcome['settle'];
  const taken = new Promise<Capture>((resolve, reject) => {
    settle = ended => (ended instanceof Error ? reject(ended) : resolve(ended));
  });
  taken.catch(() => {});
  return { taken, settle };
}

export const ONE_AT_A_TIME =
  'one capture of a machine at a time: try again once it has finished';

/** The refusal of a capture of `ref` while `hold` is under way: the machine, when it started, its id. */
export function refusal(ref: string, hold: Hold): string {
  const as =
    hold.machineRef === ref
      ? ''
      : `, as ${hold.machineRef}: its container ${hold.container} on engine ${hold.engine}`;
  if (hold.queued)
    return `capture of ${ref} refused: capture request ${hold.requestId}, accepted at ${hold.since}, is to capture it${as}`;
  const where = hold.elsewhere ? ', by another backend' : '';
  return `capture of ${ref} refused: it is being captured since ${hold.since} (capture ${hold.captureId}${as}${where})`;
}

/** Where a capture of the machine is held: by its ref, and by its engine and container. */
function holdKeys(locator: Omit<MachineLocator, 'labels'> | Hold): string[] {
  return [
    `machine ${locator.machineRef}`,
    `container ${locator.engine}/${locator.container}`,
  ];
}

/**
 * The captures under way in this backend, by machine ref and by engine and container (two
 * machine entities naming one container are one machine): one capture of a machine at a time,
 * whatever its capture source keeps of its own. A second one is refused with a 409 naming the
 * machine and when the one under way started, rather than made to wait for it and answered with
 * its result: a capture is a copy of the machine at the moment it paused it, and one started
 * before the request holds the state from before it (a change just made, the reason to capture
 * now), which the caller would take for theirs; a refusal saying since when lets them judge, is
 * what the Docker source's own notes already answer (across replicas), and holds no request open
 * on someone else's capture for up to recovery.captures.timeout. The scheduled capture, a machine
 * a request, reports a refused one among those it did not capture and goes on with the others;
 * an entity's capture goes on with its other machines and refuses the busy ones at its end.
 * A capture request (POST /captures) waits instead, after its other machines, for the capture
 * under way or queued of a machine it found held, and counts it (waitForHold): two requests
 * overlapping on a machine must not fail one of them with everything captured. Holds are this
 * backend's; across replicas, each capture also claims its machine in the database
 * (CaptureClaimStore) before its source is called: a capture another replica holds is refused
 * or waited for alike, watching its claim (watchClaim), never sent to the source for its own 409.
 */
export class CaptureHolds {
  private readonly holds = new Map<string, Hold>();

  /** The capture under way in this backend of the machine, by its ref or its engine and container. */
  heldFor(locator: MachineLocator): Hold | undefined {
    return (
      this.holds.get(`machine ${locator.machineRef}`) ??
      this.holds.get(`container ${locator.engine}/${locator.container}`)
    );
  }

  /** A capture request's hold of a machine it is to capture in its turn (queued till then). */
  holdFor(locator: MachineLocator, requestId: string, since: string): Hold {
    const hold: Hold = {
      ...locator,
      captureId: randomUUID(),
      since,
      requestId,
      queued: true,
      outcome: outcome(),
    };
    // A second machine entity naming the same container: the first's hold stands for both.
    for (const key of holdKeys(locator))
      if (!this.holds.has(key)) this.holds.set(key, hold);
    return hold;
  }

  /**
   * Holds the machine for a capture beginning now: `reserved`, the hold of it a capture request
   * took (holdFor), or a new one.
   */
  begin(locator: MachineLocator, reserved?: Hold): Hold {
    // Its moment is now: the capture's time is when it begins, not when its request was accepted.
    const hold: Hold = reserved
      ? Object.assign(reserved, {
          since: new Date().toISOString(),
          queued: false,
        })
      : {
          ...locator,
          captureId: randomUUID(),
          since: new Date().toISOString(),
          outcome: outcome(),
        };
    for (const key of holdKeys(locator)) this.holds.set(key, hold);
    return hold;
  }

  /** Lets go of the machine, where `hold` still holds it (no other capture took it since). */
  end(hold: Hold): void {
    for (const key of holdKeys(hold))
      if (this.holds.get(key) === hold) this.holds.delete(key);
  }

  /** Lets go of a capture request's hold of a machine it ended without capturing. */
  letGo(hold: Hold): void {
    // Not captured by its request (it ended first): those waiting for it are told so.
    hold.outcome.settle(
      new ServiceUnavailableError(
        `capture request ${hold.requestId} ended before it captured ${hold.machineRef}: capture again`,
      ),
    );
    this.end(hold);
  }
}
