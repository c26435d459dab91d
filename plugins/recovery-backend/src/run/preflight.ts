import type { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type {
  CaptureDamage,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  formatBytes,
  formatSeconds,
  formatSecondsAgainst,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  HostPortInUse,
  HostRoom,
  HypervisorHost,
} from '@backstage-recovery/plugin-recovery-node';
import {
  counted,
  describePortBinding,
  failoverPorts,
  hostPortsClash,
  isCaptureDamaged,
  protocolOf,
} from '@backstage-recovery/plugin-recovery-node';
import type { StoredCapture } from '../database/CaptureStore';
import { restorable } from './boot';
import { NEVER_ABORTED, withDeadline } from './deadline';
import {
  HostUnreachable,
  hostUnreachable,
  isHostUnreachable,
  MachineFailure,
  messageOf,
} from './errors';
import { progressSteps } from './progressSteps';
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
 * How much further apart than capturing them one after another takes (their durations added up)
 * the captures a run restores may be before its timeline warns that they are of different moments.
 */
export const CAPTURE_SPREAD_SLACK_MS = 30_000;

/**
 * Warns where the captures a run restores (those it verified, a damaged one's stand-in included)
 * were not taken in one go: a machine whose latest capture failed, or captured on its own, is
 * restored from another moment than the rest, and what the machines exchanged in between (a write
 * to a database, a message) may be on one side and not the other. Names the oldest and the newest.
 */
export async function warnCaptureSpread(
  recorder: RunRecorder,
  captures: StoredCapture[],
): Promise<void> {
  if (captures.length < 2) return;
  const at = (c: StoredCapture) => Date.parse(c.createdAt);
  const byTime = [...captures].sort((a, b) => at(a) - at(b));
  const [oldest, newest] = [byTime[0], byTime[byTime.length - 1]];
  const spreadMs = at(newest) - at(oldest);
  const takingMs = captures.reduce((sum, c) => sum + (c.durationMs || 0), 0);
  if (!(spreadMs > takingMs + CAPTURE_SPREAD_SLACK_MS)) return;
  await recorder.step(
    `Restores captures taken ${formatSeconds(spreadMs / 1000)} apart, from ${oldest.machineRef}'s of ${oldest.createdAt} (the oldest) to ${newest.machineRef}'s of ${newest.createdAt} (the newest): ` +
      `more than taking them one after another would (${formatSeconds(takingMs / 1000)}), so the machines come back as they were at different moments, and what they exchanged in between may be on one side only`,
    undefined,
    'warning',
  );
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
      () => {
        building();
        return host.room!(
          recorder.runId,
          waves.map(wave => wave.map(restorable)),
        );
      },
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

/**
 * A failover's host ports, before it builds anything: it publishes production's (failoverPorts
 * says which), so each must be free on the host. The rule: a port another container of the host's
 * engine publishes, or that two of the run's machines both published in production, refuses the
 * run now, naming the machine, the port and what holds it. A port held by anything else (a process
 * of the host) only the engine sees, when it starts the machine: that start fails the run at the
 * host, naming the port and the machine. A host that cannot list its ports, or a look that fails,
 * holds up no run: the timeline says so, as it says of machines whose captures predate the
 * recording of host ports (their production ports are not published).
 */
export async function checkHostPorts(
  recorder: RunRecorder,
  host: HypervisorHost,
  /** The captures the run restores, in boot order. */
  captures: StoredCapture[],
  stepTimeoutMs: number,
  signal: AbortSignal,
): Promise<void> {
  const unrecorded = unrecordedPorts(captures);
  if (unrecorded.length > 0) {
    const one = unrecorded.length === 1;
    await recorder.step(
      `Host ports production published for ${unrecorded.join(', ')} are not published: ${one ? 'its capture predates' : 'their captures predate'} the recording of host ports. ` +
        `Capture ${one ? 'it' : 'them'} again for a failover to publish production's ports`,
      undefined,
      'warning',
    );
  }
  const wanted = captures.flatMap(c =>
    failoverPorts(c.runtime.portBindings).publish.map(port => ({
      machineRef: c.machineRef,
      port,
      hostPort: port.hostPort,
      protocol: protocolOf(port.containerPort),
      hostIp: port.hostIp,
    })),
  );
  if (wanted.length === 0) return;
  const port = (w: (typeof wanted)[number]) =>
    `host port ${describePortBinding(w.port)}`;
  const twice = wanted.flatMap((w, i) =>
    wanted
      .slice(0, i)
      .filter(o => o.machineRef !== w.machineRef && hostPortsClash(o, w))
      .map(
        o =>
          `${o.machineRef} and ${w.machineRef} both published ${port(w)} in production`,
      ),
  );
  if (twice.length > 0)
    throw new Error(
      `${twice.join('; ')}: ${host.id} can publish it for one of them only. Publish another port for one of them in production and capture it again, or fail them over onto different hypervisor hosts`,
    );
  let inUse: HostPortInUse[] | undefined;
  let unknown = host.hostPortsInUse ? undefined : 'the host does not say';
  if (host.hostPortsInUse) {
    try {
      inUse = await withDeadline(
        () => host.hostPortsInUse!(),
        stepTimeoutMs,
        'Listing the host ports in use',
        signal,
        async () => {},
      );
    } catch (error) {
      signal.throwIfAborted();
      if (isHostUnreachable(error)) throw hostUnreachable(host, error);
      unknown = messageOf(error);
    }
  }
  const listed = wanted
    .map(w => `${describePortBinding(w.port)} (${w.machineRef})`)
    .join(', ');
  if (!inUse) {
    await recorder.step(
      `Host ports on ${host.id} not checked (${unknown}): a port taken there fails the start of the machine publishing it; this failover publishes ${listed}`,
      undefined,
      'warning',
    );
    return;
  }
  const taken = wanted.flatMap(w => {
    // Docker lists a port published on every address once per address family: named once.
    const holders = [
      ...new Set(inUse!.filter(u => hostPortsClash(u, w)).map(u => u.holder)),
    ];
    return holders.map(
      holder =>
        `${w.machineRef} cannot publish ${port(w)} on ${host.id}: ${holder} holds it there`,
    );
  });
  if (taken.length > 0)
    throw new Error(
      `${taken.join('; ')}. Free the port (stop what holds it), or fail over onto another hypervisor host`,
    );
  await recorder.step(
    `Host ports this failover publishes are free on ${host.id}: ${listed}`,
  );
}

/**
 * The machines whose captures predate the recording of host ports (no portBindings, while their
 * adaptations say a host port binding was dropped, as captures said before), each with the ports
 * those say: `resource:default/web-01 (8080 -> 80/tcp)`.
 */
function unrecordedPorts(captures: StoredCapture[]): string[] {
  return captures.flatMap(c => {
    if (c.runtime.portBindings) return [];
    const said = c.adaptations.filter(
      a => /host port binding/i.test(a) && /dropped/i.test(a),
    );
    if (said.length === 0) return [];
    const ports = said.flatMap(
      a => /^host port binding (.+?) dropped/i.exec(a)?.[1] ?? [],
    );
    return [
      `${c.machineRef}${ports.length > 0 ? ` (${ports.join(', ')})` : ''}`,
    ];
  });
}

/** Where a capture found damaged is marked, and what a run restores instead. */
export interface DamageStore {
  markCaptureDamaged(
    captureId: string,
    damage: CaptureDamage,
  ): Promise<boolean>;
  latestCaptures(
    machineRefs: string[],
    atOrBefore?: string,
    options?: { intact?: boolean },
  ): Promise<Map<string, StoredCapture>>;
  intactCaptures(
    machineRef: string,
    atOrBefore?: string,
  ): Promise<StoredCapture[]>;
  captureKept(captureId: string): Promise<boolean>;
  restoreInstead(
    runId: string,
    machineRef: string,
    capture: StoredCapture,
  ): Promise<boolean>;
}

/**
 * Marks a capture found damaged, its verification's words as `reason`; a mark that cannot be
 * written, or a capture pruned meanwhile, is said in the run's timeline. Whether it was marked.
 */
async function mark(
  store: DamageStore,
  recorder: RunRecorder,
  capture: StoredCapture,
  reason: string,
): Promise<boolean> {
  try {
    if (
      await store.markCaptureDamaged(capture.id, {
        at: new Date().toISOString(),
        reason,
      })
    )
      return true;
    await recorder
      .step(
        `Capture ${capture.id} of ${capture.createdAt}, found damaged, is no longer kept (pruned meanwhile): nothing to mark`,
        capture.machineRef,
        'warning',
      )
      .catch(() => {});
    return false;
  } catch (error) {
    await recorder
      .step(
        `Could not mark capture ${capture.id} damaged: ${messageOf(error)}`,
        capture.machineRef,
        'warning',
      )
      .catch(() => {});
    return false;
  }
}

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
  return (await markAndSay(store, recorder, capture, reason, recoveryPoint))
    .remedy;
}

/** markDamaged, and whether the capture was marked. */
async function markAndSay(
  store: DamageStore,
  recorder: RunRecorder,
  capture: StoredCapture,
  reason: string,
  recoveryPoint: string | undefined,
): Promise<{ marked: boolean; remedy: string }> {
  if (!(await mark(store, recorder, capture, reason)))
    return { marked: false, remedy: `capture ${capture.machineRef} anew` };
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
  return { marked: true, remedy };
}

/** A capture found damaged, why, and (once marking was tried) whether it is marked so. */
interface Damaged {
  capture: StoredCapture;
  reason: string;
  marked?: boolean;
}

/** What verifying a machine's captures found: those damaged, newest first, and the intact one restored instead. */
interface MachineFinding {
  damaged: Damaged[];
  instead?: StoredCapture;
}

/**
 * The kept captures of the machine a run may restore in place of `capture` (found damaged), newest
 * first: those not marked damaged, older than it in the order runs choose (at or before the
 * run's recovery point, where it has one).
 */
async function olderCandidates(
  store: DamageStore,
  capture: StoredCapture,
  recoveryPoint: string | undefined,
): Promise<StoredCapture[]> {
  const intact = await store.intactCaptures(capture.machineRef, recoveryPoint);
  const at = intact.findIndex(c => c.id === capture.id);
  return at >= 0
    ? intact.slice(at + 1)
    : intact.filter(
        c => Date.parse(c.createdAt) < Date.parse(capture.createdAt),
      );
}

/**
 * Verifies every capture the run restores before it builds anything (host.verifyCapture): each
 * byte read against its checksums, a capture at a time, each within the step deadline. A machine
 * whose capture is damaged (CaptureDamagedError) does not give the recovery up while an intact
 * capture of it is kept: its older captures are verified newest first (at or before the run's
 * recovery point), until one is intact; the run restores that one instead (recorded as its
 * machine's capture, so pruning leaves it), and its timeline says so with that capture's time, as
 * what the run recovers is older than the machine's latest capture. An older one pruned as it was
 * read (its files gone) is passed over as gone, not damaged. Every damaged capture found is
 * marked, once every capture has been looked at: a run stopped meanwhile marks nothing (a read cut
 * off may look like damage); one pruned before its mark is said so, not said marked. Only a machine with no intact capture left fails the run, naming the
 * first such in boot order (and counting the other damaged ones), before any machine boots. A
 * capture that could not be read for another reason (the store unreadable now) fails the run as a
 * whole, marking nothing. Returns the captures the run restores, by machine. A host without
 * verifyCapture verifies each capture at its restore only. A large capture's reading says how far
 * it is in the timeline, as its machine's (progressSteps).
 */
export async function verifyCaptures(
  recorder: RunRecorder,
  host: HypervisorHost,
  /** The captures by wave, in boot order, as the run was admitted with them. */
  waves: StoredCapture[][],
  store: DamageStore,
  run: Pick<RecoveryRun, 'recoveryPoint' | 'createdAt'>,
  /** The recovered entity's RPO: a capture restored instead that is older than it is said to be. */
  rpoSeconds: number,
  stepTimeoutMs: number,
  signal: AbortSignal,
  /** The run's logger: where a progress line that could not be written is said. */
  logger?: LoggerService,
): Promise<Map<string, StoredCapture>> {
  const captures = waves.flat();
  const chosen = new Map(captures.map(c => [c.machineRef, c]));
  if (!host.verifyCapture) return chosen;
  // A capture's size counts its volumes' archives too.
  const bytes = captures.reduce((sum, c) => sum + c.sizeBytes, 0);
  const what = `${counted(captures.length, 'machine')}, ${formatBytes(bytes)}`;
  await recorder.step(
    `Verifying captures (${what}): every byte read against its checksums, before the lab is built`,
  );
  const started = Date.now();
  /** Why the capture is damaged, or undefined where it is intact. */
  const verify = async (capture: StoredCapture) => {
    // Past its deadline the reading stops too: it holds the disk, and the run has failed.
    const stop = new AbortController();
    const progress = progressSteps(recorder, capture.machineRef, error =>
      logger
        ?.child({ machineRef: capture.machineRef })
        .warn("Could not record the verification's progress", toError(error)),
    );
    try {
      await withDeadline(
        () =>
          host.verifyCapture!(restorable(capture), {
            signal: AbortSignal.any([signal, stop.signal]),
            progress: progress.listener,
          }),
        stepTimeoutMs,
        `Verifying the capture of ${capture.machineRef}`,
        signal,
        async () => {},
      );
      return undefined;
    } catch (error) {
      signal.throwIfAborted();
      if (isCaptureDamaged(error)) return messageOf(error);
      if (isHostUnreachable(error)) throw hostUnreachable(host, error);
      throw new Error(
        `the capture of ${capture.machineRef} (${capture.id}) could not be verified: ${messageOf(error)}`,
      );
    } finally {
      stop.abort();
      await progress.done();
    }
  };
  const findings = new Map<string, MachineFinding>();
  for (const capture of captures) {
    const reason = await verify(capture);
    if (reason === undefined) continue;
    const finding: MachineFinding = { damaged: [{ capture, reason }] };
    findings.set(capture.machineRef, finding);
    for (const older of await olderCandidates(
      store,
      capture,
      run.recoveryPoint,
    )) {
      const why = await verify(older);
      if (why !== undefined) {
        // Its files gone under the read as pruning deleted it (record first): pruned, not damaged.
        if (await store.captureKept(older.id))
          finding.damaged.push({ capture: older, reason: why });
        continue;
      }
      // Recorded as what the run restores, which keeps pruning off it; pruned already: the next.
      if (
        !(await store.restoreInstead(recorder.runId, capture.machineRef, older))
      )
        continue;
      finding.instead = older;
      chosen.set(capture.machineRef, older);
      break;
    }
  }
  signal.throwIfAborted();
  const lost = [...findings].filter(([, f]) => !f.instead);
  const replaced = findings.size - lost.length;
  if (lost.length === 0) {
    const took = Number(((Date.now() - started) / 1000).toFixed(1));
    await recorder.step(
      `Verified captures (${what}) in ${took} s${replaced > 0 ? `; ${counted(replaced, 'machine')} restore${replaced === 1 ? 's' : ''} an older capture in place of a damaged one` : ''}`,
      undefined,
      replaced > 0 ? 'warning' : 'info',
    );
  }
  for (const [machineRef, { damaged, instead }] of findings) {
    if (!instead) continue;
    // The capture passed over may be pruned meanwhile: the run no longer records it as its own.
    for (const d of damaged)
      d.marked = await mark(store, recorder, d.capture, d.reason);
    await recorder.step(
      restoredInstead(machineRef, damaged, instead, run, rpoSeconds),
      machineRef,
      'warning',
    );
  }
  if (lost.length === 0) return chosen;
  const remedies: string[] = [];
  for (const [machineRef, { damaged }] of lost) {
    for (const d of damaged) {
      const { marked, remedy } = await markAndSay(
        store,
        recorder,
        d.capture,
        d.reason,
        run.recoveryPoint,
      );
      d.marked = marked;
      remedies.push(remedy);
    }
    await recorder.machine(machineRef, 'failed', {
      finishedAt: new Date().toISOString(),
      message: damaged[0].reason,
    });
  }
  const first = lost[0][1].damaged[0];
  const others = [...findings.values()]
    .flatMap(f => f.damaged)
    .filter(d => d !== first && d.marked);
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

/**
 * The timeline's word for a machine whose damaged captures were passed over: which, why, and the
 * capture restored instead with its time and age, as the run recovers the machine as it was then.
 */
function restoredInstead(
  machineRef: string,
  found: Damaged[],
  instead: StoredCapture,
  run: Pick<RecoveryRun, 'recoveryPoint' | 'createdAt'>,
  rpoSeconds: number,
): string {
  // Those left unmarked (pruned meanwhile, or the mark failed) have a step of their own.
  const damaged = found.filter(d => d.marked);
  const which = damaged
    .map(
      ({ capture, reason }) =>
        `${capture.id} of ${capture.createdAt} (${reason})`,
    )
    .join('; ');
  const age = Math.max(
    0,
    Math.round(
      (Date.parse(run.recoveryPoint ?? run.createdAt) -
        Date.parse(instead.createdAt)) /
        1000,
    ),
  );
  const over =
    age > rpoSeconds ? `, over the RPO of ${formatSeconds(rpoSeconds)}` : '';
  const atPoint = run.recoveryPoint ? ' at or before the recovery point' : '';
  const marked =
    damaged.length === 0
      ? ''
      : `${damaged.length === 1 ? 'Capture' : 'Captures'} ${which} ${damaged.length === 1 ? 'is' : 'are'} damaged, and marked so: no run restores ${damaged.length === 1 ? 'it' : 'them'} again. `;
  return (
    `${marked}Restores its capture ${instead.id} of ${instead.createdAt} instead, the newest intact${atPoint} (verified now), ` +
    `${formatSecondsAgainst(age, rpoSeconds)} old ${run.recoveryPoint ? 'at the recovery point' : 'when the run was admitted'}${over}: ` +
    `${machineRef} is recovered as it was then, not as its latest capture holds it`
  );
}
