import { formatBytes } from '@backstage-recovery/plugin-recovery-common';
import type {
  HostRoom,
  HypervisorHost,
} from '@backstage-recovery/plugin-recovery-node';
import {
  counted,
  isCaptureDamaged,
} from '@backstage-recovery/plugin-recovery-node';
import type { RecoveryStore, StoredCapture } from '../database/RecoveryStore';
import { restorable } from './boot';
import { NEVER_ABORTED, withDeadline } from './deadline';
import {
  HostUnreachable,
  hostUnreachable,
  isHostUnreachable,
  MachineFailure,
  messageOf,
} from './errors';
import { RunRecorder } from './RunRecorder';

// The host's pre-flight: what a run asks the host before it builds its lab there.

/**
 * Asks the host what it holds of the run, before the run asks it for anything that may make
 * part of its lab there: a host whose engine cannot be reached, or does not answer within the
 * step deadline, fails the run as that, with nothing of its lab to remove. An error the host
 * answers with holds up nothing: the run's own steps say whether it can build the lab. Not cut
 * short by the run's interruption, as the removal of labs left after it is not: an interrupted
 * run still clears those away; it stops at its next step.
 */
export async function reachHost(
  host: HypervisorHost,
  runId: string,
  stepTimeoutMs: number,
): Promise<void> {
  const timedOut = new MachineFailure(
    `hypervisor host ${host.id} did not answer within ${stepTimeoutMs / 1000} s when asked what it holds of this run: is its engine hung?`,
  );
  try {
    await withDeadline(
      () => host.listLabResources(runId),
      stepTimeoutMs,
      () => timedOut,
      NEVER_ABORTED,
      async () => {},
    );
  } catch (error) {
    if (error === timedOut) throw new HostUnreachable(timedOut.message);
    if (isHostUnreachable(error)) throw hostUnreachable(host, error);
  }
}

/**
 * Fails the run before it builds anything where the host has less room than restoring its
 * captures takes; says how much it takes, and how much there is. A host that cannot tell, or a
 * look that fails, holds up no run: the timeline says so.
 */
export async function checkRoom(
  recorder: RunRecorder,
  host: HypervisorHost,
  /** The captures by wave, in boot order. */
  waves: StoredCapture[][],
  stepTimeoutMs: number,
  signal: AbortSignal,
  removeLate: () => Promise<unknown>,
  /** Hears that the room is asked: the host may leave something of the run's there (a helper). */
  building: () => void,
): Promise<void> {
  if (!host.room) return;
  const captures = waves.flat();
  let room: HostRoom;
  try {
    room = await withDeadline(
      () => (
        building(),
        host.room!(
          recorder.runId,
          waves.map(wave => wave.map(restorable)),
        )
      ),
      stepTimeoutMs,
      'Reading the room on the host',
      signal,
      removeLate,
    );
  } catch (error) {
    signal.throwIfAborted();
    // Its engine went out of reach since the run found it: nothing else of the run would reach it.
    if (isHostUnreachable(error)) throw hostUnreachable(host, error);
    await recorder.step(
      `Room on ${host.id} unknown, the run goes on without that check: ${messageOf(error)}`,
      undefined,
      'warning',
    );
    return;
  }
  const needed = `restoring the ${captures.length} capture${captures.length === 1 ? '' : 's'} takes ${formatBytes(room.neededBytes)}`;
  if (room.freeBytes !== undefined && room.neededBytes > room.freeBytes) {
    throw new Error(
      `${host.id} has ${formatBytes(room.freeBytes)} free in ${room.where}, but ${needed}: free space there (images and volumes no run uses), or recover onto a larger host`,
    );
  }
  // Every wave stays up until the run ends: the machines hold at once what they held in production.
  let memory = '';
  if (room.neededMemoryBytes !== undefined) {
    const whose =
      room.memoryKnownFor === captures.length
        ? 'the machines'
        : `${room.memoryKnownFor} of the ${captures.length} machines (those whose captures say)`;
    const held = `${whose} held ${formatBytes(room.neededMemoryBytes)} of memory when captured`;
    const available = room.availableMemoryBytes;
    if (available !== undefined && room.neededMemoryBytes > available) {
      throw new Error(
        `${host.id} has ${formatBytes(available)} of memory available, but ${held}: stop what else runs there, or recover onto a larger host`,
      );
    }
    memory = `; ${held}${available === undefined ? '' : `, ${formatBytes(available)} available`}`;
  }
  const disk =
    room.freeBytes === undefined
      ? `; free space unknown (${room.unknown ?? 'the host does not say'})`
      : `, ${formatBytes(room.freeBytes)} free in ${room.where}`;
  await recorder.step(
    `Room on ${host.id}: ${needed}${disk}${memory}`,
    undefined,
    room.freeBytes === undefined ? 'warning' : 'info',
  );
}

/** Where a capture found damaged is marked, and what a run restores instead. */
export type DamageStore = Pick<
  RecoveryStore,
  'markCaptureDamaged' | 'latestCaptures'
>;

/**
 * Marks a capture found damaged (its verification's words as `reason`), so that no run restores it
 * again, and says so in the run's timeline; a mark that cannot be written is said too (the run
 * fails all the same). Returns what a run started again restores instead, and what else to do.
 */
export async function markDamaged(
  store: DamageStore,
  recorder: RunRecorder,
  capture: StoredCapture,
  reason: string,
  /** The run's recovery point: a run started again restores at or before it too. */
  recoveryPoint?: string,
): Promise<string> {
  try {
    await store.markCaptureDamaged(capture.id, {
      at: new Date().toISOString(),
      reason,
    });
  } catch (error) {
    await recorder
      .step(
        `Could not mark capture ${capture.id} damaged: ${messageOf(error)}`,
        capture.machineRef,
        'warning',
      )
      .catch(() => {});
    return `capture ${capture.machineRef} anew`;
  }
  const atPoint = recoveryPoint ? ' at or before the recovery point' : '';
  const instead = (
    await store
      .latestCaptures([capture.machineRef], recoveryPoint, { intact: true })
      .catch(() => undefined)
  )?.get(capture.machineRef);
  const remedy = instead
    ? `a run started again restores its capture of ${instead.createdAt} instead, the newest not found damaged${atPoint} (verified then); or capture ${capture.machineRef} anew first, to recover its latest state`
    : `none of its kept captures${atPoint} is intact: capture ${capture.machineRef} anew${recoveryPoint ? ', or choose a later recovery point' : ''}`;
  await recorder.step(
    `Capture ${capture.id} of ${capture.createdAt} is damaged, and marked so: no run restores it again; ${remedy}`,
    capture.machineRef,
    'error',
  );
  return remedy;
}

/**
 * Verifies every capture the run restores before it builds anything (host.verifyCapture): each
 * byte read against its checksums, a capture at a time, each within the step deadline. A damaged
 * capture (CaptureDamagedError) is marked (markDamaged) and its machine failed; having looked at
 * every capture, the run fails naming the first damaged in boot order (and counting the others),
 * before any machine boots, rather than at that machine's wave. A capture that could not be read
 * for another reason (the store unreadable now) fails the run as a whole, marking nothing. A host
 * without verifyCapture verifies each capture at its restore only.
 */
export async function verifyCaptures(
  recorder: RunRecorder,
  host: HypervisorHost,
  /** The captures by wave, in boot order. */
  waves: StoredCapture[][],
  store: DamageStore,
  recoveryPoint: string | undefined,
  stepTimeoutMs: number,
  signal: AbortSignal,
): Promise<void> {
  if (!host.verifyCapture) return;
  const captures = waves.flat();
  const bytes = captures.reduce(
    (sum, c) =>
      sum +
      c.sizeBytes +
      (c.runtime.volumes ?? []).reduce((v, volume) => v + volume.sizeBytes, 0),
    0,
  );
  const what = `${counted(captures.length, 'machine')}, ${formatBytes(bytes)}`;
  await recorder.step(
    `Verifying captures (${what}): every byte read against its checksums, before the lab is built`,
  );
  const started = Date.now();
  const damaged: Array<{ capture: StoredCapture; reason: string }> = [];
  for (const capture of captures) {
    // Past its deadline the reading stops too: it holds the disk, and the run has failed.
    const stop = new AbortController();
    try {
      await withDeadline(
        () =>
          host.verifyCapture!(restorable(capture), {
            signal: AbortSignal.any([signal, stop.signal]),
          }),
        stepTimeoutMs,
        `Verifying the capture of ${capture.machineRef}`,
        signal,
        async () => {},
      );
    } catch (error) {
      signal.throwIfAborted();
      if (isCaptureDamaged(error)) {
        damaged.push({ capture, reason: messageOf(error) });
        continue;
      }
      if (isHostUnreachable(error)) throw hostUnreachable(host, error);
      throw new Error(
        `the capture of ${capture.machineRef} (${capture.id}) could not be verified: ${messageOf(error)}`,
      );
    } finally {
      stop.abort();
    }
  }
  if (damaged.length === 0) {
    await recorder.step(
      `Verified captures (${what}) in ${Number(((Date.now() - started) / 1000).toFixed(1))} s`,
    );
    return;
  }
  const remedies: string[] = [];
  for (const { capture, reason } of damaged) {
    remedies.push(
      await markDamaged(store, recorder, capture, reason, recoveryPoint),
    );
    await recorder.machine(capture.machineRef, 'failed', {
      finishedAt: new Date().toISOString(),
      message: reason,
    });
  }
  const [first, ...others] = damaged;
  const also =
    others.length > 0
      ? `; also damaged, and marked so: ${others.map(({ capture }) => `capture ${capture.id} of ${capture.machineRef}`).join(', ')}`
      : '';
  throw Object.assign(
    new Error(
      `${first.capture.machineRef} failed: ${first.reason}; no machine was booted: ${remedies[0]}${also}`,
    ),
    {
      machineRef: first.capture.machineRef,
    },
  );
}
