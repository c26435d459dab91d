import type Docker from 'dockerode';
import type { IncomingHttpHeaders } from 'node:http';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { pingHeaders, unlessAborted } from './lib/engineCalls';
import { answerWithin, engineWords } from './lib/engineErrors';

/**
 * How long an engine's clock offset, once read, is used: a round of captures on one engine reads
 * it once, not once per machine. Clocks kept by NTP drift apart by far less than a second in that
 * time; one set by hand meanwhile is read again at the next round. A read that failed is not tried
 * again sooner either: every capture would otherwise wait for it, and warn.
 */
export const ENGINE_CLOCK_REUSE_MS = 5 * 60_000;

/** Longest the engine is waited for to say its time before captures go on with the last read. */
const CLOCK_ANSWER_MS = 5_000;

/**
 * The engine's time an answer of its carries, in epoch ms: its HTTP `Date`, whole seconds of the
 * engine's clock. Undefined where none came (a proxy that drops it) or it is not a date.
 */
export function engineTimeOf(
  headers: IncomingHttpHeaders | undefined,
): number | undefined {
  const ms = headers?.date ? Date.parse(headers.date) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * The engine's own clock, as the `Date` of its answer to a ping says it, against which the times
 * its containers carry (`StartedAt`, `FinishedAt`) are to be read: a backend whose clock is off
 * from the engine host's by minutes would otherwise misjudge how long ago a container started.
 * Whole seconds are enough: a start is judged recent against a window of a minute.
 */
export class EngineClock {
  /** The engine's clock minus the backend's, as last read; undefined until one is. */
  private offset?: number;
  /** When (the backend's time) the engine was last asked, whether or not it said its time. */
  private askedAt?: number;
  /** A read under way, shared by the captures that ask meanwhile. */
  private reading?: Promise<void>;

  constructor(
    private readonly engineId: string,
    private readonly docker: Docker,
    private readonly logger?: LoggerService,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * How far the engine's clock is ahead of the backend's (behind: negative), in ms: a time the
   * backend reads plus this is the engine's. Where the engine does not say its time (an answer
   * that failed, came too late or without a Date), the last offset read, else 0 (the backend's
   * clock), said in the log once until it is asked again. Stopped by `signal`, it stops waiting
   * for the read (and fails with its reason), which goes on for the other captures.
   */
  async offsetMs(signal?: AbortSignal): Promise<number> {
    const fresh =
      this.askedAt !== undefined &&
      this.now() - this.askedAt < ENGINE_CLOCK_REUSE_MS;
    if (!fresh) {
      this.reading ??= this.read().finally(() => {
        this.reading = undefined;
      });
      await (signal ? unlessAborted(this.reading, signal) : this.reading);
    }
    return this.offset ?? 0;
  }

  /** Reads the offset, on its own timeout only: no one capture's abort fails it for the others. */
  private async read(): Promise<void> {
    const before = this.now();
    try {
      const headers = await answerWithin(
        this.engineId,
        'its time (/_ping)',
        CLOCK_ANSWER_MS,
        abortSignal => pingHeaders(this.docker, abortSignal),
      );
      const after = this.now();
      const engineTime = engineTimeOf(headers);
      if (engineTime === undefined)
        throw new Error(`its /_ping answered Date "${headers.date}"`);
      // Said somewhere between the ask and the answer (the middle is closest on average), within
      // the second its Date names (the middle again).
      this.offset = engineTime + 500 - (before + after) / 2;
      this.askedAt = after;
    } catch (e) {
      this.askedAt = this.now();
      // Its captures go on: only a crash loop caught between two crashes is judged on this time.
      this.logger?.warn(
        `recovery: could not read the time of Docker engine '${this.engineId}' (${engineWords(this.engineId, e)}): how long ago its machines started is judged on ${this.offset === undefined ? "the backend's clock" : 'its time as last read'} until it is asked again in ${ENGINE_CLOCK_REUSE_MS / 60_000} minutes`,
      );
    }
  }
}
