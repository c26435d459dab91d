import type Docker from 'dockerode';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { answerWithin, engineWords } from './lib/engineErrors';

/**
 * How long an engine's clock offset, once read, is used: a round of captures on one engine reads
 * it once, not once per machine. Clocks kept by NTP drift apart by far less than a second in that
 * time; one set by hand meanwhile is read again at the next round.
 */
export const ENGINE_CLOCK_REUSE_MS = 5 * 60_000;

/** `docker info`, as far as the clock goes. */
type EngineInfo = {
  info(options: { abortSignal: AbortSignal }): Promise<{ SystemTime?: string }>;
};

/** Longest a capture waits for the engine to say its time before it goes on with the backend's. */
const CLOCK_ANSWER_MS = 5_000;

/**
 * The engine's own clock, as its `/info` says it (`SystemTime`), against which the times its
 * containers carry (`StartedAt`, `FinishedAt`) are to be read: a backend whose clock is off from
 * the engine host's by minutes would otherwise misjudge how long ago a container started.
 */
export class EngineClock {
  /** The engine's clock minus the backend's, and when (the backend's time) that was read. */
  private offset?: { ms: number; readAt: number };
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
   * backend reads plus this is the engine's. Where the engine does not say its time (an engine too
   * old for `SystemTime`, an answer that failed or came too late), the last offset read, else 0
   * (the backend's clock), said in the log.
   */
  async offsetMs(signal?: AbortSignal): Promise<number> {
    const fresh =
      this.offset && this.now() - this.offset.readAt < ENGINE_CLOCK_REUSE_MS;
    if (!fresh) {
      this.reading ??= this.read(signal).finally(() => {
        this.reading = undefined;
      });
      await this.reading;
    }
    return this.offset?.ms ?? 0;
  }

  private async read(signal?: AbortSignal): Promise<void> {
    try {
      const before = this.now();
      const { SystemTime } = await answerWithin(
        this.engineId,
        'its time (/info)',
        CLOCK_ANSWER_MS,
        // dockerode passes the signal on, though its types take no options.
        abortSignal => (this.docker as EngineInfo).info({ abortSignal }),
        signal,
      );
      const after = this.now();
      const engineTime = Date.parse(SystemTime ?? '');
      if (Number.isNaN(engineTime))
        throw new Error(`its /info said SystemTime "${SystemTime}"`);
      // Said somewhere between the ask and the answer: the middle is closest on average.
      const ms = engineTime - (before + after) / 2;
      this.offset = { ms, readAt: after };
    } catch (e) {
      // Stopped with its capture, which says why.
      if (signal?.aborted) return;
      // Its captures go on: only a crash loop caught between two crashes is judged on this time.
      this.logger?.warn(
        `recovery: could not read the time of Docker engine '${this.engineId}' (${engineWords(this.engineId, e)}): how long ago its machines started is judged on ${this.offset ? 'its time as last read' : "the backend's clock"} until it can`,
      );
    }
  }
}
