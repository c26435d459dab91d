import type { LoggerService } from '@backstage/backend-plugin-api';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { sleep } from './lib/sleep';

/** Event batches waiting to be stored before reading the stream waits. */
const MAX_PENDING_BATCHES = 8;

/**
 * The batches of events an event source read, stored one after the other: a batch that cannot be
 * stored is retried with backoff until it is, or the source stops. Reading waits while the store
 * is behind or failing (`behind`), rather than queue without bound or read past a batch that may
 * never be stored.
 */
export class EventBatches {
  private queue = Promise.resolve();
  /** Batches added and not yet stored, across reconnects. */
  private pending = 0;
  /** The last attempt to store a batch failed. */
  private failing = false;
  /** Attempts to store a batch that failed. */
  private failures = 0;
  /** Stopped while a batch could not be stored: no later one is stored. */
  private abandoned = false;

  constructor(
    private readonly onEvents: (events: InitializationEvent[]) => Promise<void>,
    private readonly signal: AbortSignal,
    private readonly backoff: { minMs: number; maxMs: number },
    private readonly logger?: LoggerService,
  ) {}

  add(events: InitializationEvent[]) {
    this.pending++;
    this.queue = this.queue.then(() =>
      this.store(events).finally(() => {
        this.pending--;
      }),
    );
  }

  /** Whether reading should wait for the store: too many batches pending, or storing failing. */
  get behind(): boolean {
    return this.pending > MAX_PENDING_BATCHES || this.failing;
  }

  /**
   * Waits until every batch added is stored (or given up). True where storing failed, before or
   * meanwhile: dockerd does not wait for a subscriber that does not read (after 100 ms it skips
   * events for it), so what the engine still holds is to be read again.
   */
  async waitStored(): Promise<boolean> {
    const failedBefore = this.failing;
    const failuresBefore = this.failures;
    await this.queue;
    return failedBefore || this.failures > failuresBefore;
  }

  /** Settles once every batch added is stored, or given up as the source stopped. */
  settled(): Promise<void> {
    return this.queue;
  }

  /** Stores one batch, retrying until it is stored or the source is stopped. */
  private async store(events: InitializationEvent[]) {
    for (
      let delay = this.backoff.minMs;
      !this.abandoned;
      delay = Math.min(delay * 2, this.backoff.maxMs)
    ) {
      try {
        await this.onEvents(events);
        this.failing = false;
        return;
      } catch (e) {
        this.failing = true;
        this.failures++;
        if (this.signal.aborted) {
          // Storing later batches would move the resume point past this one; the engine
          // may still hold it at the next start.
          this.abandoned = true;
          this.logger?.warn(
            `Event collection stopped with ${events.length} events not stored: ${e}`,
          );
          return;
        }
        this.logger?.warn(
          `Storing ${events.length} events failed: ${e}; retrying in ${delay} ms`,
        );
        await sleep(delay, this.signal);
      }
    }
  }
}
