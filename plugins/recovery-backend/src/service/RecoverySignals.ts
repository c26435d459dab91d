import type { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type { SignalsService } from '@backstage/plugin-signals-node';
import {
  recoverySignalChannel,
  type RecoverySignal,
} from '@backstage-recovery/plugin-recovery-common';

/** How long the changes of one run (or capture request) are gathered into one signal. */
export const SIGNAL_COALESCE_MS = 250;

/**
 * Tells the portal through Backstage signals that a run or a capture request changed, on its
 * entity's channel (recoverySignalChannel), so that a page following it fetches it again at once
 * instead of at its next poll. The stores report each change they commit (RunStore,
 * CaptureRequestStore); the changes of one record within SIGNAL_COALESCE_MS make one signal, sent
 * once they are committed: a run's burst of timeline lines pushes once.
 *
 * A signal is broadcast and says which record changed, nothing of it: the signals backend lets
 * anyone signed in subscribe to any channel, so what the record holds is fetched through the API,
 * whose permission checks decide what each caller sees.
 */
export class RecoverySignals {
  private readonly gathering = new Map<
    string,
    { change: RecoverySignal; timer: ReturnType<typeof setTimeout> }
  >();
  private readonly coalesceMs: number;

  constructor(
    private readonly options: {
      signals: SignalsService;
      /** The entity of the run or capture request; undefined where there is none (deleted). */
      entityRefOf(change: RecoverySignal): Promise<string | undefined>;
      logger: LoggerService;
      coalesceMs?: number;
    },
  ) {
    this.coalesceMs = options.coalesceMs ?? SIGNAL_COALESCE_MS;
  }

  /** A committed change of a run or capture request: signalled within coalesceMs. Never throws. */
  changed(change: RecoverySignal): void {
    const key = `${change.kind}:${change.id}`;
    if (this.gathering.has(key)) return;
    const timer = setTimeout(() => void this.send(key), this.coalesceMs);
    this.gathering.set(key, { change, timer });
  }

  /** Sends what is gathered now, and waits for it: at shutdown, so the runs it ended are told. */
  async flush(): Promise<void> {
    await Promise.all([...this.gathering.keys()].map(key => this.send(key)));
  }

  private async send(key: string): Promise<void> {
    const gathered = this.gathering.get(key);
    if (!gathered) return;
    clearTimeout(gathered.timer);
    // A change from here on is another signal: this one may read the record before it.
    this.gathering.delete(key);
    const { kind, id } = gathered.change;
    try {
      const entityRef = await this.options.entityRefOf(gathered.change);
      if (entityRef === undefined) return;
      await this.options.signals.publish({
        recipients: { type: 'broadcast' },
        channel: recoverySignalChannel(entityRef),
        message: { kind, id },
      });
    } catch (error) {
      // The portal still polls, more slowly: a signal lost delays what it shows, no more.
      this.options.logger.warn(
        `Could not signal the change of ${kind} ${id}`,
        toError(error),
      );
    }
  }
}
