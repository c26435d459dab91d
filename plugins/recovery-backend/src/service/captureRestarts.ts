import {
  describeMachineState,
  type Capture,
  withoutHealthOutput,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineRuntime } from '@backstage-recovery/plugin-recovery-node';

/**
 * How many more restarts by its restart policy since a machine's previous capture make its capture
 * warn of a crash loop: one or two between captures hours apart is a crash the policy cured (an
 * OOM kill, a dependency not up yet at its start); three or more is a machine that keeps failing.
 */
export const RESTART_GROWTH_WARNING = 3;

type CaptureOfMachine = Pick<
  Capture,
  'engine' | 'container' | 'machineState'
> & {
  runtime?: Pick<MachineRuntime, 'productionContainerId'>;
};

/**
 * How many times the machine's restart policy restarted it since its previous capture, from the
 * engine's count each recorded. A count lower than before was reset since (started by hand, its
 * engine restarted): every restart it counts came after. So was the count of a container made anew
 * under its name (another production container id, where both captures recorded one), whatever it
 * counts. Undefined where it cannot be told: a count not recorded (a capture from before counts
 * were recorded with every capture), or a previous capture of another container (the catalog's
 * machine moved since), whose restarts are not this one's.
 */
export function restartsSince(
  previous: CaptureOfMachine | undefined,
  current: CaptureOfMachine,
): number | undefined {
  const before = previous?.machineState?.restartCount;
  const now = current.machineState?.restartCount;
  if (before === undefined || now === undefined) return undefined;
  if (
    previous!.engine !== current.engine ||
    previous!.container !== current.container
  )
    return undefined;
  const was = previous!.runtime?.productionContainerId;
  const is = current.runtime?.productionContainerId;
  if (was && is && was !== is) return now;
  return now >= before ? now - before : now;
}

/**
 * What a capture says where its machine's restart policy restarted it RESTART_GROWTH_WARNING times
 * or more since its previous capture: `restarted 12 times by its restart policy since its previous
 * capture (cap-1 of …), running when captured: a crash loop, …`. Undefined otherwise, and for a
 * machine captured `restarting`, whose state says its crash loop already.
 */
export function restartWarning(
  previous: (CaptureOfMachine & Pick<Capture, 'id' | 'createdAt'>) | undefined,
  current: CaptureOfMachine,
): string | undefined {
  const state = current.machineState;
  const restarts = restartsSince(previous, current);
  if (
    !state ||
    state.status === 'restarting' ||
    restarts === undefined ||
    restarts < RESTART_GROWTH_WARNING
  )
    return undefined;
  return `restarted ${restarts} times by its restart policy since its previous capture (${previous!.id} of ${previous!.createdAt}), ${describeMachineState(withoutHealthOutput(state))} when captured: a crash loop, whose capture may hold the machine between two crashes`;
}
