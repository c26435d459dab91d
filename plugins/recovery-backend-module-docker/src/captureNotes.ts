import type Docker from 'dockerode';
import {
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
  type FileHandle,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { ConflictError } from '@backstage/errors';
import { dockerName } from './adapt';
import { isStatus } from './lib/dockerStreams';
import { removeImage } from './lib/engineImages';
import {
  answerWithin,
  explainEngineError,
  isUnanswered,
  onEngine,
} from './lib/engineErrors';
import {
  STORE_DIRECTORY_MODE,
  STORE_FILE_MODE,
  syncToDisk,
} from './lib/layerStore';

// The note a capture keeps of itself in the capture store while it runs, and what settles the
// notes that stopped captures left: at the start, once a note is stale, at the machine's next
// capture.

/**
 * Where a capture keeps a note of itself (one file per engine and container), from before it
 * pauses the machine until the backend has recorded it or it has removed its files: a backend
 * stopped in between leaves the note, by which the next start or capture of that machine unpauses
 * it (if the note says it is paused) and removes that capture's files and tag, instead of
 * production staying paused, or the store and the engine filling up, for good. (Named when the
 * note only covered the pause: notes that older backends left are found still.)
 */
const CAPTURE_NOTES = '.paused';

/** What a capture notes of itself: whose it is, what it makes, and how far it got. */
export interface CaptureNote {
  machineRef: string;
  captureId: string;
  /** The capture's image tag and the prefix of its files, removed with the note: never stored. */
  imageRef: string;
  filePrefix: string;
  /**
   * `paused`: the capture has the machine paused, since `pausedAt`; `saving`: it has not (never
   * paused it, or unpaused it) and copies into the capture store; `recording`: its files are
   * kept, and the backend records it. Older backends' notes have no phase: they only noted a pause.
   */
  phase?: 'paused' | 'saving' | 'recording';
  pausedAt?: string;
  /**
   * Of the paused phase: how often its capture refreshes the note while it has the machine paused
   * (PAUSED_NOTE_HEARTBEAT_MS). Such a note seen unrefreshed for PAUSED_NOTE_SILENT_BEATS of them
   * was left by a capture that no longer runs (a backend killed mid-pause): its machine is
   * unpaused then, not once the pause limit and its grace are past. Older notes do not say.
   */
  heartbeatMs?: number;
}

/** A note as found: `heartbeatAt` is its mtime, which its capture refreshes while it runs. */
export interface HeldNote {
  note: CaptureNote;
  heartbeatAt: number;
  /** Where it was found (read from the store; not of a note this backend's capture kept in memory). */
  path?: string;
}

/** A full container id, as `docker inspect` gives it: what a note's name ends with. */
const CONTAINER_ID = /^[0-9a-f]{64}$/;

/** Age past which a note that does not parse was cut short by a kill, not being written now. */
const TORN_NOTE_AGE_MS = 60_000;

/**
 * How often a capture refreshes its note's mtime, and how long a note of the saving or recording
 * phase may go unrefreshed before it counts as left by a stopped capture (neither has a limit of
 * its own).
 */
export const NOTE_HEARTBEAT_MS = 20_000;
const SAVING_NOTE_STALE_MS = 2 * 60_000;

/**
 * How often a capture refreshes its note while it has its machine paused: production waits, so a
 * capture that no longer runs must be told from one that does within seconds, not at its pause limit.
 */
export const PAUSED_NOTE_HEARTBEAT_MS = 1_000;

/**
 * How many of its heartbeats a note of the paused phase may miss, as this backend watches it (its
 * own clock, from the first look at that mtime, so no two hosts' clocks need agree), before it
 * counts as left by a stopped capture: 10 s at a beat a second, well past a busy event loop's or a
 * shared store's attribute cache's delay (NFS: 3 s for a file that keeps changing).
 */
const PAUSED_NOTE_SILENT_BEATS = 10;

/** How long past its pause limit a note of the paused phase must be before it counts as left by a stopped capture. */
const NOTE_GRACE_MS = 30_000;

/** How often resuming a stale note is tried again while it fails (an engine that does not answer). */
const RESUME_RETRY_MS = 60_000;

/**
 * How soon the unpause a capture here could not make (its engine gone for a moment) is tried
 * again, and the longest wait between tries as they keep failing: not once its note is stale, the
 * pause limit plus its grace on (5.5 min by default), which kept production paused all that time
 * after an engine that was back within a second.
 */
export const UNPAUSE_RETRY_FIRST_MS = 2_000;
export const UNPAUSE_RETRY_MAX_MS = 30_000;

/**
 * Longest each engine call of a sweep waits (resuming a note, the look for unrecorded captures, a
 * discard): an engine that never answers fails the sweep, naming it, and is tried again at the
 * next, rather than hold it (and the scheduled task that runs it) for good.
 */
export const SWEEP_WAIT_MS = 60_000;

/** The refusal of a capture while another capture of its machine holds the note. */
function underWay(machineRef: string, held: CaptureNote) {
  const doing =
    held.phase === 'saving'
      ? 'saving it into the capture store'
      : held.phase === 'recording'
        ? 'recording it'
        : `paused it at ${held.pausedAt}`;
  return new ConflictError(
    `machine ${machineRef}: capture ${held.captureId} is under way (${doing}); one capture of a machine at a time`,
  );
}

/** What the notes and the sweeps read of the capture source's options. */
export interface SweepOptions {
  storeDirectory: string;
  logger?: LoggerService;
  /** Longest each engine call of a sweep waits (SWEEP_WAIT_MS unless said). */
  sweepWaitMs?: number;
}

/** The capture notes of one engine, and the resumption of the captures that left theirs. */
/**
 * Called once a capture's machine, left paused by a failed unpause, is unpaused: `now` by the
 * retry, `found` so already (its guard, someone, or the failed unpause took after all); neither
 * where the note was settled without a look at the machine.
 */
export type AfterUnpause = (unpaused?: 'now' | 'found') => void;

export class CaptureNotes {
  /** The start-up look at the notes, which removeUnrecorded waits for (see there). */
  resuming?: Promise<unknown>;
  /**
   * Captures that ended here but left their note: their machine's unpause failed (the engine
   * went away), or the note could not be removed (the store turned read-only). The machine's next
   * capture, and a look at the note, settle it at once rather than refuse it as a capture under
   * way until the pause limit or the heartbeat's silence says it is stale.
   */
  readonly ended = new Set<string>();
  /**
   * What to do once the note of a capture that ended here leaving its machine paused is settled
   * (the machine unpaused, the note gone), by capture id: release its pause guard, and measure
   * its pause (told whether the machine was unpaused then, or found so).
   */
  private readonly guards = new Map<string, AfterUnpause>();
  /** The notes of the paused phase looked at, by path: the mtime each had, and since when it has (staleFrom). */
  private readonly watched = new Map<
    string,
    { captureId: string; heartbeatAt: number; since: number }
  >();

  constructor(
    private readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: SweepOptions,
    /** The capture's pause limit, by which a note of the paused phase grows stale. */
    private readonly maxPauseMs: number,
    /** Aborted when the backend shuts down: no note is looked at again. */
    private readonly stopping: AbortSignal,
  ) {}

  /** One engine call of a sweep (these notes' or the others', CaptureSweeps), bounded as SWEEP_WAIT_MS says. */
  answerSweep<T>(
    what: string,
    call: (abortSignal: AbortSignal) => Promise<T>,
    also?: AbortSignal,
  ): Promise<T> {
    return answerWithin(
      this.engineId,
      what,
      this.options.sweepWaitMs ?? SWEEP_WAIT_MS,
      call,
      also,
    );
  }

  /** Where the note of a capture of container `containerId` (its full id) on this engine is. */
  notePath(containerId: string) {
    return join(
      this.options.storeDirectory,
      CAPTURE_NOTES,
      `${dockerName(this.engineId)}.${containerId}`,
    );
  }

  /**
   * When a note counts as left by a stopped capture: paused, once its capture, if it still ran,
   * would have unpaused its machine by its own limit, or, where it says it is refreshed while paused
   * (heartbeatMs), once this backend has seen it unrefreshed for PAUSED_NOTE_SILENT_BEATS of them;
   * saving or recording, once it was not refreshed for a while.
   */
  staleFrom(held: HeldNote): number {
    const { note, heartbeatAt } = held;
    if (note.phase === 'saving' || note.phase === 'recording')
      return heartbeatAt + SAVING_NOTE_STALE_MS;
    const atLimit =
      Date.parse(note.pausedAt!) + this.maxPauseMs + NOTE_GRACE_MS;
    const beat = note.heartbeatMs;
    if (!held.path || typeof beat !== 'number' || !(beat > 0)) return atLimit;
    return Math.min(
      atLimit,
      this.unrefreshedSince(held.path, held) + beat * PAUSED_NOTE_SILENT_BEATS,
    );
  }

  /**
   * How soon to look at a note again: once it would be stale, and, for one refreshed while paused,
   * at each of its heartbeats, so that its last refresh is seen within a heartbeat of it and its
   * machine unpaused PAUSED_NOTE_SILENT_BEATS on, not up to twice that.
   */
  private nextLookIn(held: HeldNote): number {
    const untilStale = this.staleFrom(held) - Date.now();
    const beat =
      held.note.phase === 'paused' ? held.note.heartbeatMs : undefined;
    return held.path && typeof beat === 'number' && beat > 0
      ? Math.min(untilStale, beat)
      : untilStale;
  }

  /** Since when, by this backend's clock, the note at `path` has been seen with the mtime it has now. */
  private unrefreshedSince(
    path: string,
    { note, heartbeatAt }: HeldNote,
  ): number {
    const seen = this.watched.get(path);
    if (seen?.captureId === note.captureId && seen.heartbeatAt === heartbeatAt)
      return seen.since;
    const since = Date.now();
    this.watched.set(path, { captureId: note.captureId, heartbeatAt, since });
    return since;
  }

  private async readNote(path: string): Promise<HeldNote | undefined> {
    const unreadable = (e: unknown) =>
      new Error(
        `capture note ${path} is unreadable, so its machine may still be paused: ${(e as Error).message}`,
      );
    let text: string;
    let mtimeMs: number;
    try {
      [text, { mtimeMs }] = await Promise.all([
        readFile(path, 'utf8'),
        stat(path),
      ]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw unreadable(e);
    }
    try {
      return { note: JSON.parse(text), heartbeatAt: mtimeMs, path };
    } catch (e) {
      // Cut short while it was first written (a backend killed then): its capture never paused
      // anything, which comes only once the write returned. A young one may be being written now.
      if (Date.now() - mtimeMs < TORN_NOTE_AGE_MS) throw unreadable(e);
      await rm(path, { force: true });
      return undefined;
    }
  }

  /**
   * Writes the note before anything else, exclusively: a note there already is another capture's
   * of the same machine (a conflict), unless it is stale, when its capture is resumed first.
   */
  async takeNote(
    containerId: string,
    note: CaptureNote,
    signal?: AbortSignal,
  ): Promise<void> {
    const path = this.notePath(containerId);
    // The store too, where this is its first capture: the backend's user's alone.
    await mkdir(join(this.options.storeDirectory, CAPTURE_NOTES), {
      recursive: true,
      mode: STORE_DIRECTORY_MODE,
    });
    for (let attempt = 0; ; attempt++) {
      let handle: FileHandle | undefined;
      try {
        handle = await open(path, 'wx', STORE_FILE_MODE);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt === 2)
          throw e;
      }
      if (handle) {
        try {
          // On the disk before the machine is paused: after a power loss of the backend's host, the
          // note is what unpauses it.
          await handle.writeFile(JSON.stringify(note));
          await handle.sync();
        } catch (e) {
          // Created but not written (a full store): gone again, or the machine's next capture
          // would find a note it cannot read, and be refused as if a machine might be paused.
          await handle.close().catch(() => {});
          await rm(path, { force: true }).catch(() => {});
          throw e;
        }
        await handle.close();
        await syncToDisk(dirname(path), { directory: true });
        return;
      }
      await this.settleNote(containerId, note.machineRef, signal);
    }
  }

  /**
   * A note on the machine is another capture's: a conflict while it may still run, else
   * resolved (its capture resumed). True where one was resolved.
   */
  async settleNote(
    containerId: string,
    machineRef: string,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const held = await this.readNote(this.notePath(containerId));
    if (!held) return false;
    if (
      Date.now() < this.staleFrom(held) &&
      !this.ended.has(held.note.captureId)
    )
      throw underWay(machineRef, held.note);
    await this.resumeInterrupted(containerId, held.note, signal);
    return true;
  }

  /**
   * Rewrites the capture's own note (no one else writes it while it is there): through a rename,
   * so that no reader, nor a backend killed mid-write, leaves it half written; flushed to the disk,
   * so that a power loss does not bring back the phase before (a note of the saving phase found
   * after its capture was recorded would have its files removed).
   */
  async rewriteNote(path: string, note: CaptureNote): Promise<void> {
    await writeFile(`${path}.tmp`, JSON.stringify(note), {
      flush: true,
      mode: STORE_FILE_MODE,
    });
    await rename(`${path}.tmp`, path);
    await syncToDisk(dirname(path), { directory: true });
  }

  /**
   * Lets go of a note, and first of the rewrite a backend killed mid-rewriteNote left beside it:
   * nothing else would remove that, once the note is gone.
   */
  async dropNote(path: string): Promise<void> {
    await rm(`${path}.tmp`, { force: true });
    await rm(path, { force: true });
    this.watched.delete(path);
  }

  /**
   * A capture that ended here could not remove its note: the machine's next capture settles it
   * (see `ended`), and a look every minute removes it, with what that capture left, once the store lets it.
   */
  noteLeft(containerId: string, held: HeldNote, error: unknown) {
    this.ended.add(held.note.captureId);
    this.options.logger?.warn(
      `recovery: capture ${held.note.captureId} of ${held.note.machineRef} could not remove its note from the capture store (${(error as Error).message}): removed once the store is writable again, or by the machine's next capture`,
    );
    this.lookAgainWhenStale(containerId, held, RESUME_RETRY_MS);
  }

  /**
   * Removes what the captures that never finished (the backend stopped mid-capture) left, and
   * unpauses the machines they left paused; a note too recent to tell (another backend's capture
   * may still run) is looked at again once it would be stale. Run at start-up; returns the
   * machines unpaused now.
   */
  resumeInterruptedCaptures(): Promise<string[]> {
    const resuming = onEngine(this.engineId, async () => {
      const dir = join(this.options.storeDirectory, CAPTURE_NOTES);
      const prefix = `${dockerName(this.engineId)}.`;
      const names = await readdir(dir).catch(e => {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT')
          return [] as string[];
        throw e;
      });
      const resumed: string[] = [];
      const failed: string[] = [];
      // Once the engine left a call unanswered, the others' calls are not made: each would wait as long.
      let silent: string | undefined;
      for (const name of names.sort()) {
        // This engine's id and a whole container id: engine `dc1` must not take the notes of
        // engine `dc1.b` (its machine would stay paused once this engine dropped the note).
        const containerId = name.slice(prefix.length);
        if (!name.startsWith(prefix) || !CONTAINER_ID.test(containerId))
          continue;
        let held: HeldNote | undefined;
        try {
          held = await this.readNote(join(dir, name));
          if (!held) continue;
          if (Date.now() < this.staleFrom(held)) {
            this.lookAgainWhenStale(containerId, held);
          } else if (silent) {
            failed.push(
              `capture ${held.note.captureId} of ${held.note.machineRef}: not tried, ${silent}`,
            );
          } else if (await this.resumeInterrupted(containerId, held.note)) {
            resumed.push(held.note.machineRef);
          }
        } catch (e) {
          // One note that cannot be dealt with must not leave the machines of the others paused.
          const what = held
            ? `capture ${held.note.captureId} of ${held.note.machineRef}`
            : `note ${name}`;
          failed.push(
            `${what}: ${(explainEngineError(this.engineId, e) as Error).message}`,
          );
          if (isUnanswered(e))
            silent = `as engine ${this.engineId} left a call unanswered`;
        }
      }
      if (failed.length > 0) {
        throw new Error(
          `could not resume ${failed.length} interrupted capture(s), whose machines may still be paused (their notes stay, for the next start or capture of the machine): ${failed.join('; ')}`,
        );
      }
      return resumed;
    });
    this.resuming = resuming;
    return resuming;
  }

  /**
   * Looks at a note again once it would be stale, for as long as its capture keeps it fresh; and
   * every minute while resuming it fails (its machine may be paused), until the backend stops.
   */
  lookAgainWhenStale(
    containerId: string,
    held: HeldNote,
    delayMs = this.nextLookIn(held),
  ) {
    const { machineRef, captureId } = held.note;
    setTimeout(() => {
      if (this.stopping.aborted) return;
      this.resumeIfStill(containerId, captureId).catch(e => {
        this.options.logger?.warn(
          `recovery: could not resume ${machineRef} after capture ${captureId} (tries again in a minute): ${e}`,
        );
        this.lookAgainWhenStale(containerId, held, RESUME_RETRY_MS);
      });
    }, delayMs).unref();
  }

  /**
   * A capture here ended with its machine left paused (its unpause failed): tried again
   * UNPAUSE_RETRY_FIRST_MS on, then at doubling intervals up to UNPAUSE_RETRY_MAX_MS, until the
   * machine is unpaused (or its next capture settles the note, see `ended`) or the backend stops.
   */
  retryUnpause(
    containerId: string,
    held: HeldNote,
    delayMs = UNPAUSE_RETRY_FIRST_MS,
    afterUnpause?: AfterUnpause,
  ) {
    this.ended.add(held.note.captureId);
    if (afterUnpause) this.guards.set(held.note.captureId, afterUnpause);
    const { machineRef, captureId } = held.note;
    setTimeout(() => {
      if (this.stopping.aborted) return;
      this.resumeIfStill(containerId, captureId).catch(e => {
        const next = Math.min(delayMs * 2, UNPAUSE_RETRY_MAX_MS);
        this.options.logger?.warn(
          `recovery: could not unpause ${machineRef} after capture ${captureId}, production stays paused (tries again in ${next / 1000} s): ${e}`,
        );
        this.retryUnpause(containerId, held, next);
      });
    }, delayMs).unref();
  }

  private async resumeIfStill(containerId: string, captureId: string) {
    const now = await this.readNote(this.notePath(containerId));
    if (now?.note.captureId !== captureId) {
      // Settled meanwhile (the machine's next capture): nor is its guard's pause its capture's now.
      this.releaseGuard(captureId);
      return;
    }
    if (Date.now() < this.staleFrom(now) && !this.ended.has(captureId))
      this.lookAgainWhenStale(containerId, now);
    else
      await onEngine(this.engineId, () =>
        this.resumeInterrupted(containerId, now.note),
      );
  }

  /**
   * Removes an interrupted capture's files, tag and note, unpausing its machine first where the
   * note says it had it paused (true then); a capture interrupted while saving had unpaused it.
   * One interrupted while the backend recorded it may be recorded: only its note goes, and its
   * files and tag are left to removeUnrecorded, which asks the records. Each engine call waits at
   * most SWEEP_WAIT_MS (and no longer than `signal`, a capture's, where given): resumed from a
   * timer, one that waited for good would never be tried again.
   */
  private async resumeInterrupted(
    containerId: string,
    note: CaptureNote,
    signal?: AbortSignal,
  ): Promise<boolean> {
    if (note.phase === 'recording') {
      this.options.logger?.warn(
        `recovery: capture ${note.captureId} of ${note.machineRef} was interrupted while the backend recorded it: its files and tag stay unless the records lack it, when the backend's next look for unrecorded captures removes them`,
      );
      await this.dropNote(this.notePath(containerId));
      this.ended.delete(note.captureId);
      this.releaseGuard(note.captureId);
      return false;
    }
    const paused = note.phase !== 'saving';
    // What became of the machine, said as found: an engine that restarted meanwhile stops its
    // containers (unless live-restore), and "unpaused it" would hide that production is down.
    let found = 'unpaused it';
    let unpaused: 'now' | 'found' | undefined;
    if (paused) {
      const container = this.docker.getContainer(containerId);
      try {
        const { State } = await this.answerSweep(
          `the look at container ${containerId} (resuming capture ${note.captureId})`,
          abortSignal => container.inspect({ abortSignal }),
          signal,
        );
        if (State?.Paused) {
          await this.answerSweep(
            `the unpause of ${note.machineRef} (resuming capture ${note.captureId})`,
            abortSignal => container.unpause({ abortSignal }),
            signal,
          );
          unpaused = 'now';
        } else if (State && !State.Running) {
          found = `found it not paused but ${State.Status} (exit code ${State.ExitCode}, at ${State.FinishedAt}): stopped by its engine's restart or by someone, not by the capture`;
        } else {
          found = 'found it unpaused already';
        }
      } catch (e) {
        if (!isStatus(e, 404)) throw e;
        found = 'found its container removed';
      }
      unpaused ??= 'found';
    }
    // Its machine unpaused (or found so): its guard, if still armed, has nothing left to guard.
    this.releaseGuard(note.captureId, unpaused);
    await this.removeLeftovers(note.filePrefix, note.imageRef, signal);
    await this.dropNote(this.notePath(containerId));
    this.ended.delete(note.captureId);
    // Said once done, so that "removed" is true when read (a failed removal keeps the note: the
    // next sweep tries again, and says it then).
    this.options.logger?.warn(
      paused
        ? `recovery: capture ${note.captureId} of ${note.machineRef} was interrupted with the machine paused (since ${note.pausedAt}): ${found}, and removed what that capture left`
        : `recovery: capture ${note.captureId} of ${note.machineRef} was interrupted while saving into the capture store: removed what that capture left`,
    );
    return paused;
  }

  private releaseGuard(captureId: string, unpaused?: 'now' | 'found') {
    this.guards.get(captureId)?.(unpaused);
    this.guards.delete(captureId);
  }

  /**
   * Removes a capture's files (temporary ones too), then its tag: a backend stopped in between
   * leaves the tag, by which removeUnrecorded finds the capture again.
   */
  async removeLeftovers(
    filePrefix: string,
    imageRef: string,
    signal?: AbortSignal,
  ): Promise<void> {
    const dir = this.options.storeDirectory;
    const files = await readdir(dir).catch(e => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
      throw e;
    });
    await Promise.all(
      files
        .filter(
          f =>
            f.startsWith(`${filePrefix}.`) || f.startsWith(`.${filePrefix}.`),
        )
        .map(f => rm(join(dir, f), { force: true })),
    );
    await this.answerSweep(
      `the removal of the tag ${imageRef}`,
      abortSignal => removeImage(this.docker, imageRef, abortSignal),
      signal,
    );
  }

  /**
   * The capture ids of every note in the store. A note that cannot be read yet (being written) is
   * an error: whose capture it holds is unknown.
   */
  async notedCaptureIds(): Promise<string[]> {
    const dir = join(this.options.storeDirectory, CAPTURE_NOTES);
    const names = await readdir(dir).catch(e => {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [] as string[];
      throw e;
    });
    const ids: string[] = [];
    // A `.tmp` is a note being rewritten, whose capture the note itself still names.
    for (const name of names.filter(n => !n.endsWith('.tmp'))) {
      const held = await this.readNote(join(dir, name));
      if (held) ids.push(held.note.captureId);
    }
    return ids;
  }
}
