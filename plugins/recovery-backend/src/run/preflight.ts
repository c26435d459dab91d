import { formatBytes } from '@backstage-recovery/plugin-recovery-common';
import type { HostRoom, HypervisorHost } from '@backstage-recovery/plugin-recovery-node';
import type { StoredCapture } from '../database/RecoveryStore';
import { restorable } from './boot';
import { NEVER_ABORTED, withDeadline } from './deadline';
import { HostUnreachable, hostUnreachable, isHostUnreachable, MachineFailure, messageOf } from './errors';
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
export async function reachHost(host: HypervisorHost, runId: string, stepTimeoutMs: number): Promise<void> {
  const timedOut = new MachineFailure(
    `hypervisor host ${host.id} did not answer within ${stepTimeoutMs / 1000} s when asked what it holds of this run: is its engine hung?`,
  );
  try {
    await withDeadline(() => host.listLabResources(runId), stepTimeoutMs, () => timedOut, NEVER_ABORTED, async () => {});
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
      () => (building(), host.room!(recorder.runId, waves.map(wave => wave.map(restorable)))),
      stepTimeoutMs,
      'Reading the room on the host',
      signal,
      removeLate,
    );
  } catch (error) {
    signal.throwIfAborted();
    // Its engine went out of reach since the run found it: nothing else of the run would reach it.
    if (isHostUnreachable(error)) throw hostUnreachable(host, error);
    await recorder.step(`Room on ${host.id} unknown, the run goes on without that check: ${messageOf(error)}`, undefined, 'warning');
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
    const whose = room.memoryKnownFor === captures.length ? 'the machines' : `${room.memoryKnownFor} of the ${captures.length} machines (those whose captures say)`;
    const held = `${whose} held ${formatBytes(room.neededMemoryBytes)} of memory when captured`;
    const available = room.availableMemoryBytes;
    if (available !== undefined && room.neededMemoryBytes > available) {
      throw new Error(`${host.id} has ${formatBytes(available)} of memory available, but ${held}: stop what else runs there, or recover onto a larger host`);
    }
    memory = `; ${held}${available === undefined ? '' : `, ${formatBytes(available)} available`}`;
  }
  const disk = room.freeBytes === undefined
    ? `; free space unknown (${room.unknown ?? 'the host does not say'})`
    : `, ${formatBytes(room.freeBytes)} free in ${room.where}`;
  await recorder.step(`Room on ${host.id}: ${needed}${disk}${memory}`, undefined, room.freeBytes === undefined ? 'warning' : 'info');
}
