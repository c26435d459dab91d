import type Docker from 'dockerode';
import type { LoggerService } from '@backstage/backend-plugin-api';
import type { AfterUnpause } from './captureNotes';
import { isStatus } from './lib/dockerStreams';
import { answerWithin, isUnanswered } from './lib/engineErrors';
import {
  armPauseGuard,
  type PauseGuard,
  type PauseGuardOptions,
} from './pauseGuard';

/**
 * A capture's pause of its machine, so that the commit and the volumes' archives are one instant
 * of it. Held no longer than the pause limit: past it the machine is unpaused at once and the
 * copy stops (`limitReached`). Unpaused once, by whichever comes first: the copy's end, the limit,
 * the backend's shutdown. Watched by a pause guard, the dead man's switch that unpauses the
 * machine should the backend die meanwhile. What it leaves (paused, removed, an unpause that
 * failed) is what the capture's failure says of production.
 */
export class CapturePause {
  private readonly limit = new AbortController();
  private readonly unpauseFailure = new AbortController();
  private limitTimer: NodeJS.Timeout | undefined;
  private unpausing: Promise<void> | undefined;
  private guard: PauseGuard | undefined;
  /** When the machine was paused (performance.now()); 0 until it is. */
  pausedAt = 0;
  /** How long the machine was paused, once unpaused. */
  pausedMs = 0;
  /** Paused by this capture and not unpaused since: its note must then stay. */
  leftPaused = false;
  /** The container was removed (docker rm -f) under the capture: nothing of it is paused. */
  removed = false;
  /**
   * Unpaused or stopped by someone else while the capture held it paused: nothing of it is paused,
   * and what was copied after that is no longer one instant of it.
   */
  changedUnder: 'unpaused' | 'stopped' | undefined;
  /** Why the machine could not be unpaused: production stays paused. */
  unpauseError: Error | undefined;
  /** Set at the limit: the limit is then what went wrong, not the stream it cut. */
  pausedTooLong: string | undefined;

  constructor(
    private readonly engineId: string,
    private readonly container: Docker.Container,
    private readonly machineRef: string,
    /** recovery.docker.maxCapturePause, in ms. */
    readonly maxPauseMs: number,
    /**
     * Longest the unpause waits for the engine's answer: within the grace the note gets past the
     * limit, so that on an engine gone silent the capture ends saying production stays paused.
     */
    readonly answerWaitMs: number,
  ) {}

  /** Aborted past the limit: the copy stops. */
  get limitReached(): AbortSignal {
    return this.limit.signal;
  }

  /** Aborted where the unpause failed (the engine went silent): the wait for the commit stops. */
  get unpauseFailed(): AbortSignal {
    return this.unpauseFailure.signal;
  }

  /**
   * How long the machine has been paused so far, where this capture paused it: while its unpause
   * is still to come (failed, tried again later), a bound of the whole pause, not its length.
   */
  get pausedSoFarMs(): number | undefined {
    return this.pausedAt ? performance.now() - this.pausedAt : undefined;
  }

  /** Whether the machine was paused, or may have been (a pause whose answer was lost, undone). */
  get mayHavePaused(): boolean {
    return Boolean(this.pausedAt || this.unpausing);
  }

  /**
   * Starts the pause guard before the pause. One that cannot start is warned of, and the machine
   * paused all the same: its note still unpauses it at the backend's next start.
   */
  async armGuard(options: PauseGuardOptions, logger?: LoggerService) {
    this.guard = await armPauseGuard(options).catch(e => {
      logger?.warn(
        `recovery: capture ${options.captureId} of ${options.machineRef} pauses it without a guard: ${(e as Error).message}`,
      );
      return undefined;
    });
  }

  /**
   * Pauses the machine. Where the pause fails, one that may have taken all the same is undone
   * first; the pause's own error is the one thrown.
   */
  async pause(abortSignal?: { abortSignal: AbortSignal }) {
    try {
      await this.container.pause({ ...abortSignal });
    } catch (e) {
      await this.undoLostPause(e);
      throw e;
    }
    this.leftPaused = true;
    this.pausedAt = performance.now();
  }

  /**
   * An answer lost on the way (a connection reset) may hide a pause that took: undone, or where
   * even that cannot be told, the note kept, by which it is unpaused later. One the engine refused
   * (409: paused by someone else meanwhile) is left as it is.
   */
  private async undoLostPause(pauseError: unknown) {
    const answered =
      (pauseError as { statusCode?: number }).statusCode !== undefined;
    try {
      if (!answered && (await this.look()).State?.Paused) {
        this.leftPaused = true;
        await this.unpause();
      }
    } catch (u) {
      this.leftPaused = true;
      this.unpauseError = u as Error;
    }
  }

  /** The container as the engine has it now, within answerWaitMs. */
  private look() {
    return answerWithin(
      this.engineId,
      'the look at its container',
      this.answerWaitMs,
      abortSignal => this.container.inspect({ abortSignal }),
    );
  }

  /**
   * The container as the engine has it now (look()); 'removed' where the engine says it is gone
   * (404); undefined where it does not say (no answer within answerWaitMs, another error).
   */
  containerNow(): Promise<Docker.ContainerInspectInfo | 'removed' | undefined> {
    return this.look().catch(e => (isStatus(e, 404) ? 'removed' : undefined));
  }

  /** Starts the limit's timer; `step` says what the capture was doing when it struck. */
  startLimit(step: () => string) {
    const ms = this.maxPauseMs;
    const limit = ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
    this.limitTimer = setTimeout(() => {
      this.pausedTooLong = `capture of ${this.machineRef} kept production paused past the ${limit} limit (recovery.docker.maxCapturePause) while ${step()}`;
      this.limit.abort();
      // Its failure is awaited, and reported, where the copy ends.
      this.unpause().catch(() => {});
    }, ms);
  }

  stopLimit() {
    clearTimeout(this.limitTimer);
  }

  /**
   * Unpauses the machine, once: later calls get the first one's outcome. A container gone (404), or
   * no longer paused where the engine refused (`docker rm -f` while a copy held it: "is not paused",
   * "cannot resume a stopped container"), is no failure of the unpause: nothing of it is paused
   * (`removed`; `changedUnder` where someone else unpaused or stopped it, which fails the capture).
   */
  readonly unpause = (): Promise<void> =>
    (this.unpausing ??= answerWithin(
      this.engineId,
      'the unpause',
      this.answerWaitMs,
      abortSignal => this.container.unpause({ abortSignal }),
    ).then(
      () => {
        this.pausedMs = Math.round(performance.now() - this.pausedAt);
        this.leftPaused = false;
      },
      async e => {
        const why = isStatus(e, 404) ? 'removed' : await this.whyNotPaused(e);
        if (!why) {
          this.unpauseFailure.abort();
          throw e;
        }
        if (why === 'removed') this.removed = true;
        else this.changedUnder = why;
        this.leftPaused = false;
      },
    ));

  /**
   * Why an unpause the engine refused found nothing paused: the container removed meanwhile, or on
   * its way out (`docker rm -f` kills it, then waits for the capture's copy to let go of its
   * volumes), or stopped (dead too: a removal that failed) or unpaused by someone else; undefined
   * where it is still paused. Not where the engine did not answer (no status, or none within
   * answerWaitMs: answerWithin's 503): that is the engine's failure, and a look would only wait as
   * long again.
   */
  private async whyNotPaused(
    unpauseError: unknown,
  ): Promise<'removed' | 'unpaused' | 'stopped' | undefined> {
    if (
      (unpauseError as { statusCode?: number }).statusCode === undefined ||
      isUnanswered(unpauseError)
    )
      return undefined;
    const now = await this.containerNow();
    if (now === 'removed') return 'removed';
    const State = now?.State;
    if (State?.Status === 'removing') return 'removed';
    if (State?.Dead) return 'stopped';
    if (State?.Paused !== false) return undefined;
    return State.Running ? 'unpaused' : 'stopped';
  }

  /**
   * Lets the guard go once the machine is unpaused. Kept running where it could not be: it then
   * unpauses it past the limit, or when the backend dies.
   */
  releaseGuard() {
    if (!this.leftPaused) this.guard?.release();
  }

  /**
   * For the retry of a failed unpause, once it (or whatever settles the note) has the machine
   * unpaused: the guard goes (left armed, it would unpause a later capture's pause, or a person's,
   * at its limit), and the pause, the longest of all, is recorded: its length where the retry
   * unpaused it, else (found unpaused) the bound known as the unpause failed.
   */
  afterRetry(recordPause: (ms: number) => void): AfterUnpause {
    const guard = this.guard;
    const boundMs = this.pausedSoFarMs;
    return unpaused => {
      guard?.release();
      const ms = unpaused === 'now' ? this.pausedSoFarMs : boundMs;
      if (unpaused && ms !== undefined) recordPause(ms);
    };
  }
}

/**
 * The engine refused the pause as the container is restarting (a crash loop, begun after the
 * capture looked at it): nothing was paused, and no process is there to freeze.
 */
export function refusedAsRestarting(e: unknown): boolean {
  return (
    isStatus(e, 409) && /\bis restarting\b/.test(String((e as Error)?.message))
  );
}
