import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import type { LoggerService } from '@backstage/backend-plugin-api';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import {
  LineSplitter,
  type InitializationEventSource,
} from '@backstage-recovery/plugin-recovery-node';
import { DockerEventMapper, type DockerEventMessage } from './events';
import { isStatus } from './lib/dockerStreams';

/** Longest event line kept; a container event is a few KB even with many labels. */
export const MAX_EVENT_LINE_LENGTH = 1024 * 1024;
/** Event batches waiting to be stored before reading the stream waits. */
const MAX_PENDING_BATCHES = 8;

/**
 * The `since` (epoch seconds) of `GET /events` that replays every event at or after `ms`, the
 * time of the newest event stored. Docker's `since` is inclusive; the store rounds Docker's
 * nanoseconds to the nearest ms, so the event may lie up to half a ms before `ms`, in the
 * previous second when `ms` is a whole second. Events replayed are stored once.
 */
export function resumeSecond(ms: number): number {
  return Math.floor((ms - 0.5) / 1000);
}

/**
 * Streams `docker events` (containers' start/die, and kill to tell an operator's stop from a
 * failure: {@link DockerEventMapper}) from a primary engine, continuously: the
 * engine keeps only recent events. It starts from the newest event stored from it before (so
 * boots while the backend was down are read from the engine's buffer), or with none stored
 * from everything the engine still buffers (so boots just before the first start are not
 * lost). At every connection it adds the boots of running containers the buffer no longer
 * holds (an engine restart's burst of starts can outrun it). After a disconnect or an engine
 * restart it reconnects with backoff and resumes `since` the newest event it saw, skipping
 * events already delivered by key (dockerd may deliver concurrent events slightly out of time
 * order, so none is skipped for being older). A batch that cannot be stored is retried with
 * backoff, reading waiting meanwhile; dockerd skips events for a subscriber that does not
 * read, so once storing recovers it reconnects at once, and the engine replays what it still
 * holds.
 */
export class DockerEventSource implements InitializationEventSource {
  readonly id: string;
  /** Its lines name the source (`source: docker:<engine>`). */
  private readonly logger?: LoggerService;

  constructor(
    readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: {
      logger?: LoggerService;
      minBackoffMs?: number;
      maxBackoffMs?: number;
      /**
       * A stream that brings nothing for this long is opened again (default 5 min): a TCP
       * connection to an engine whose host vanished can stay open, silent, for good. Cheap:
       * it resumes from the newest event seen.
       */
      idleReconnectMs?: number;
      /**
       * Epoch seconds to start from when nothing was stored from this source (default 0: all
       * the engine still buffers).
       */
      since?: number;
      /**
       * Longest the look for boots older than the buffer may take before the stream opens
       * (default 1 min): an engine whose container list hangs (a container stuck in its kill)
       * must not keep every later event from being read.
       */
      catchUpTimeoutMs?: number;
    } = {},
  ) {
    this.id = `docker:${engineId}`;
    this.logger = options.logger?.child({ source: this.id });
  }

  async start(
    onEvents: (events: InitializationEvent[]) => Promise<void>,
    signal: AbortSignal,
    resume: { since?: number } = {},
  ): Promise<void> {
    const minBackoff = this.options.minBackoffMs ?? 1000;
    const idleMs = this.options.idleReconnectMs ?? 5 * 60_000;
    const maxBackoff = this.options.maxBackoffMs ?? 30_000;
    const catchUpMs = this.options.catchUpTimeoutMs ?? 60_000;
    // Nothing stored yet: since 0 replays the engine's buffer (dockerd keeps its last 256
    // events, of every type, in memory), so boots before the first start are analysed too.
    let since =
      resume.since !== undefined
        ? resumeSecond(resume.since)
        : (this.options.since ?? 0);
    let lastNano = 0; // the newest event seen
    const seen = new Set<string>(); // keys of events seen in lastNano's second, against replays
    let backoff = minBackoff;
    let queue = Promise.resolve();
    let pending = 0; // batches queued and not yet stored, across reconnects
    let failing = false; // the last attempt to store a batch failed
    let failures = 0; // attempts to store a batch that failed
    let abandoned = false; // stopped while a batch could not be stored: store no later ones
    // Across reconnects: a stop's kill and its die may come on either side of one.
    const mapper = new DockerEventMapper();
    let seeded = false; // the mapper has been given the buffered events older than the resume point

    // Stores one batch, retrying until it is stored or the source is stopped.
    const store = async (events: InitializationEvent[]) => {
      for (
        let delay = minBackoff;
        !abandoned;
        delay = Math.min(delay * 2, maxBackoff)
      ) {
        try {
          await onEvents(events);
          failing = false;
          return;
        } catch (e) {
          failing = true;
          failures++;
          if (signal.aborted) {
            // Storing later batches would move the resume point past this one; the engine
            // may still hold it at the next start.
            abandoned = true;
            this.logger?.warn(
              `Event collection stopped with ${events.length} events not stored: ${e}`,
            );
            return;
          }
          this.logger?.warn(
            `Storing ${events.length} events failed: ${e}; retrying in ${delay} ms`,
          );
          await sleep(delay, signal);
        }
      }
    };

    const enqueue = (events: InitializationEvent[]) => {
      pending++;
      queue = queue.then(() =>
        store(events).finally(() => {
          pending--;
        }),
      );
    };

    const startedAfterMs = resume.since ?? since * 1000;

    while (!signal.aborted) {
      let stream: Readable | undefined;
      let resync = false; // storing failed while reading waited: the engine may have skipped events
      let idle = false; // nothing came for idleMs: reopened, in case the connection is dead
      let idleTimer: NodeJS.Timeout | undefined;
      // At every connection: after an engine restart, its burst of starts may have left the
      // buffer (256 events) before the stream reconnects. Without it the stream still delivers
      // all the engine holds. A boot the stream has delivered is not read again.
      // Its own controller, not AbortSignal.any: one per connection, for as long as the source runs.
      const catchUp = new AbortController();
      const stopCatchUp = () => catchUp.abort();
      const catchUpTimer = setTimeout(stopCatchUp, catchUpMs);
      signal.addEventListener('abort', stopCatchUp, { once: true });
      try {
        const { boots, buffered } = await this.unbufferedBoots(
          Math.max(startedAfterMs, Math.round(lastNano / 1e6)),
          catchUp.signal,
        );
        const events = boots.flatMap(boot => mapper.map(boot));
        // Resuming after a backend restart: a stop's kill may lie before the events the stream
        // replays, its die after them.
        if (!seeded)
          for (const m of buffered) if (nanoOf(m) < since * 1e9) mapper.note(m);
        if (events.length) enqueue(events);
      } catch (e) {
        if (signal.aborted) break;
        const why = catchUp.signal.aborted
          ? `the engine did not answer within ${catchUpMs} ms`
          : String(e);
        this.logger?.warn(
          `Could not read boots older than the engine's event buffer: ${why}`,
        );
      } finally {
        seeded = true; // later connections resume from events the mapper has seen
        clearTimeout(catchUpTimer);
        signal.removeEventListener('abort', stopCatchUp);
      }
      try {
        stream = (await this.docker.getEvents({
          since,
          filters: { type: ['container'], event: ['start', 'die', 'kill'] },
        } as any)) as unknown as Readable;
        backoff = minBackoff;
        const onAbort = () => stream?.destroy();
        signal.addEventListener('abort', onAbort, { once: true });
        if (signal.aborted) onAbort(); // stopped while connecting
        const watch = () => {
          clearTimeout(idleTimer);
          idleTimer = setTimeout(() => {
            idle = true;
            stream?.destroy();
          }, idleMs);
        };
        watch();
        const dropped = (length: number) =>
          this.logger?.warn(
            `Dropped an event line of ${length} characters from Docker engine ${this.engineId} (limit ${MAX_EVENT_LINE_LENGTH})`,
          );
        try {
          for await (const msg of dockerMessages(stream, dropped)) {
            watch();
            const nano = nanoOf(msg);
            const key = `${msg.id ?? msg.Actor?.ID}|${msg.Action ?? msg.status}|${nano}`;
            // Only replays are skipped: an event older than the newest may still be new, as
            // dockerd stamps an event before publishing it. A replay (since is inclusive)
            // lies in the newest event's second, whose keys `seen` holds.
            if (seen.has(key)) continue;
            if (Math.floor(nano / 1e9) > Math.floor(lastNano / 1e9))
              seen.clear();
            seen.add(key);
            lastNano = Math.max(lastNano, nano);
            since = Math.floor(lastNano / 1e9);
            const events = mapper.map(msg);
            if (events.length) {
              enqueue(events);
              // Wait while the store is behind or failing, instead of queueing without bound
              // or reading past a batch that may never be stored.
              if (pending > MAX_PENDING_BATCHES || failing) {
                const failedBefore = failing;
                const failuresBefore = failures;
                await queue;
                // dockerd does not wait for a subscriber that does not read: after 100 ms it
                // skips events for it. After an outage, re-read what the engine still holds.
                if (failedBefore || failures > failuresBefore) {
                  resync = true;
                  break;
                }
              }
            }
          }
        } finally {
          clearTimeout(idleTimer);
          signal.removeEventListener('abort', onAbort);
          if (resync) stream.destroy();
        }
        if (signal.aborted) break;
        if (idle) continue; // at once, from the newest event seen
        if (resync) {
          this.logger?.info(
            'Storing events recovered; re-reading since the last event',
          );
          continue; // at once: the engine evicts what it still holds as new events come
        }
        this.logger?.info('Event stream ended; reconnecting');
      } catch (e) {
        clearTimeout(idleTimer);
        if (signal.aborted) break;
        if (idle) continue;
        this.logger?.warn(
          `Event stream failed: ${(e as Error).message}; retrying in ${backoff} ms`,
        );
      }
      await sleep(backoff, signal);
      backoff = Math.min(backoff * 2, maxBackoff);
    }
    await queue;
  }

  /**
   * Start events, timed by the container's `StartedAt`, for running containers booted after
   * `afterMs` whose own start event the engine no longer buffers: dockerd keeps only its last
   * 256 events of every kind, and the demo's health checks alone fill that in about a minute.
   * A boot whose start event is still buffered is left to the stream: `StartedAt` is a few ms
   * earlier than that event, so the store would keep both. With them, the events it buffers.
   */
  private async unbufferedBoots(
    afterMs: number,
    abortSignal: AbortSignal,
  ): Promise<{ boots: DockerEventMessage[]; buffered: DockerEventMessage[] }> {
    const until = Math.floor(Date.now() / 1000);
    const buffered = await this.bufferedEvents(until, abortSignal);
    // Every event from the oldest buffered one on is still held; with none, every one until now.
    const heldFromNano = buffered.length
      ? Math.min(...buffered.map(nanoOf))
      : until * 1e9;
    const startsHeld = new Set(
      buffered
        .filter(m => m.Type === 'container' && m.Action === 'start')
        .map(m => m.id ?? m.Actor?.ID),
    );
    const boots: DockerEventMessage[] = [];
    // Running containers only (the list's default); one created after the oldest event held
    // also started after it, so only older ones are inspected.
    for (const summary of await this.docker.listContainers({ abortSignal })) {
      abortSignal.throwIfAborted();
      if (startsHeld.has(summary.Id) || summary.Created * 1e9 >= heldFromNano)
        continue;
      let info: Docker.ContainerInspectInfo;
      try {
        info = await this.docker
          .getContainer(summary.Id)
          .inspect({ abortSignal });
      } catch (e) {
        // Removed since the list (a `--rm` container's exit): no boot to add, and no reason to
        // lose the boots of the others.
        if (isStatus(e, 404)) continue;
        throw e;
      }
      const startedMs = rfc3339Ms(info.State.StartedAt);
      if (!info.State.Running || startedMs === undefined) continue;
      // Rounded as the store rounds: a boot stored before is not after the newest stored event.
      if (startedMs * 1e6 >= heldFromNano || Math.round(startedMs) <= afterMs)
        continue;
      boots.push({
        Type: 'container',
        Action: 'start',
        id: info.Id,
        Actor: {
          ID: info.Id,
          Attributes: {
            ...info.Config.Labels,
            name: info.Name.replace(/^\//, ''),
          },
        },
        time: Math.floor(startedMs / 1000),
        timeNano: startedMs * 1e6,
      });
    }
    return { boots, buffered };
  }

  /** The events, of every kind, the engine still buffers up to `until` (epoch seconds). */
  private async bufferedEvents(
    until: number,
    abortSignal: AbortSignal,
  ): Promise<DockerEventMessage[]> {
    const stream = (await this.docker.getEvents({
      since: 0,
      until,
      abortSignal,
    } as any)) as unknown as Readable;
    const stop = () => stream.destroy();
    abortSignal.addEventListener('abort', stop, { once: true });
    try {
      abortSignal.throwIfAborted();
      const messages: DockerEventMessage[] = [];
      for await (const m of dockerMessages(stream, () => {})) messages.push(m);
      return messages;
    } finally {
      abortSignal.removeEventListener('abort', stop);
      stream.destroy();
    }
  }
}

/**
 * The engine's event messages on `stream`, line by line; a line that is no JSON is no event. A
 * line longer than {@link MAX_EVENT_LINE_LENGTH} is dropped, told to `onDropped`, so an endless
 * line cannot exhaust memory. An unfinished last line is an event the disconnect cut off.
 */
async function* dockerMessages(
  stream: Readable,
  onDropped: (length: number) => void,
): AsyncGenerator<DockerEventMessage> {
  const lines: string[] = [];
  const splitter = new LineSplitter(line => lines.push(line), {
    maxLength: MAX_EVENT_LINE_LENGTH,
    tooLong: { drop: onDropped },
  });
  for await (const chunk of stream) {
    splitter.push(chunk);
    for (const raw of lines.splice(0)) {
      const line = raw.trim();
      if (!line) continue;
      let msg: DockerEventMessage;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      yield msg;
    }
  }
}

/** When the engine says an event happened (ns); older engines give seconds only. */
const nanoOf = (m: DockerEventMessage) => m.timeNano ?? (m.time ?? 0) * 1e9;

/** Epoch ms, with the fraction, of an RFC 3339 time with nanoseconds (Docker's `StartedAt`). */
function rfc3339Ms(text: string | undefined): number | undefined {
  const match = text && /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(text);
  if (!match) return undefined;
  const whole = Date.parse(`${match[1]}${match[3]}`);
  // Docker's zero time, year 1: never started.
  if (!Number.isFinite(whole) || whole <= 0) return undefined;
  return whole + Number(`0.${match[2] ?? '0'}`) * 1000;
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
