import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import type { LoggerService } from '@backstage/backend-plugin-api';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import type { InitializationEventSource } from '@backstage-recovery/plugin-recovery-node';
import { dockerEventToInitializationEvents, type DockerEventMessage } from './events';

/**
 * Streams `docker events` (containers' start/die) from a primary engine, continuously: the
 * engine keeps only recent events. After a disconnect or an engine restart it reconnects
 * with backoff and resumes `since` the last event it saw (skipping ones already delivered).
 */
export class DockerEventSource implements InitializationEventSource {
  readonly id: string;

  constructor(
    readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: {
      logger?: LoggerService;
      minBackoffMs?: number;
      maxBackoffMs?: number;
      /** Epoch seconds to start from (default: now). */
      since?: number;
    } = {},
  ) {
    this.id = `docker:${engineId}`;
  }

  async start(
    onEvents: (events: InitializationEvent[]) => Promise<void>,
    signal: AbortSignal,
  ): Promise<void> {
    const minBackoff = this.options.minBackoffMs ?? 1000;
    const maxBackoff = this.options.maxBackoffMs ?? 30_000;
    let since = this.options.since ?? Math.floor(Date.now() / 1000);
    let lastNano = 0;
    const seen = new Set<string>(); // keys of events at the last second, against replays
    let backoff = minBackoff;
    let queue = Promise.resolve();

    while (!signal.aborted) {
      let stream: Readable | undefined;
      try {
        stream = (await this.docker.getEvents({
          since,
          filters: { type: ['container'], event: ['start', 'die'] },
        } as any)) as unknown as Readable;
        backoff = minBackoff;
        const onAbort = () => stream?.destroy();
        signal.addEventListener('abort', onAbort, { once: true });
        let buffered = '';
        try {
          for await (const chunk of stream) {
            buffered += chunk.toString('utf8');
            let nl: number;
            while ((nl = buffered.indexOf('\n')) >= 0) {
              const line = buffered.slice(0, nl).trim();
              buffered = buffered.slice(nl + 1);
              if (!line) continue;
              let msg: DockerEventMessage;
              try {
                msg = JSON.parse(line);
              } catch {
                continue;
              }
              const nano = msg.timeNano ?? (msg.time ?? 0) * 1e9;
              const key = `${msg.id ?? msg.Actor?.ID}|${msg.Action ?? msg.status}|${nano}`;
              if (nano < lastNano || seen.has(key)) continue;
              if (Math.floor(nano / 1e9) !== Math.floor(lastNano / 1e9)) seen.clear();
              seen.add(key);
              lastNano = nano;
              since = Math.floor(nano / 1e9);
              const events = dockerEventToInitializationEvents(msg);
              if (events.length) {
                queue = queue.then(() =>
                  onEvents(events).catch(e =>
                    this.options.logger?.warn(`recovery events from ${this.id}: handler failed: ${e}`),
                  ),
                );
              }
            }
          }
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
        if (signal.aborted) break;
        this.options.logger?.info(`recovery events from ${this.id}: stream ended; reconnecting`);
      } catch (e) {
        if (signal.aborted) break;
        this.options.logger?.warn(
          `recovery events from ${this.id}: ${(e as Error).message}; retrying in ${backoff} ms`,
        );
      }
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
    await queue;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise(resolve => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
