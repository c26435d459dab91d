import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import type { LoggerService } from '@backstage/backend-plugin-api';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import {
  LineSplitter,
  type InitializationEventSource,
} from '@backstage-recovery/plugin-recovery-node';
import { EventBatches } from './eventBatches';
import { nanoOf, ResumePoint, resumeSecond } from './eventResume';
import { DockerEventMapper, type DockerEventMessage } from './events';
import { isStatus } from './lib/dockerStreams';
import { IdleWatch } from './lib/idleWatch';
import { sleep } from './lib/sleep';

/** Longest event line kept; a container event is a few KB even with many labels. */
export const MAX_EVENT_LINE_LENGTH = 1024 * 1024;

/** What event collection carries from one connection of the stream to the next. */
interface Collection {
  signal: AbortSignal;
  batches: EventBatches;
  position: ResumePoint;
  /** Across reconnects: a stop's kill and its die may come on either side of one. */
  mapper: DockerEventMapper;
  reconnect: ReconnectDelay;
  /** Boots before this (epoch ms) are stored already, or not asked for. */
  startedAfterMs: number;
  /** The mapper has been given the buffered events older than the resume point. */
  seeded: boolean;
}

/** What follows a connection: the source stopped, a new one at once, or one after the delay. */
type NextConnection = 'stopped' | 'reopen' | 'retry';

/** The wait before reconnecting: doubled after each, back to the least once a connection opens. */
export class ReconnectDelay {
  ms: number;

  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
  ) {
    this.ms = minMs;
  }

  connected() {
    this.ms = this.minMs;
  }

  async wait(signal: AbortSignal) {
    await sleep(this.ms, signal);
    this.ms = Math.min(this.ms * 2, this.maxMs);
  }
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
    const maxBackoff = this.options.maxBackoffMs ?? 30_000;
    // Nothing stored yet: since 0 replays the engine's buffer (dockerd keeps its last 256
    // events, of every type, in memory), so boots before the first start are analysed too.
    const since =
      resume.since !== undefined
        ? resumeSecond(resume.since)
        : (this.options.since ?? 0);
    const collection: Collection = {
      signal,
      batches: new EventBatches(
        onEvents,
        signal,
        { minMs: minBackoff, maxMs: maxBackoff },
        this.logger,
      ),
      position: new ResumePoint(since),
      mapper: new DockerEventMapper(),
      reconnect: new ReconnectDelay(minBackoff, maxBackoff),
      startedAfterMs: resume.since ?? since * 1000,
      seeded: false,
    };
    while (!signal.aborted) {
      if ((await this.backfill(collection)) === 'stopped') break;
      const next = await this.stream(collection);
      if (next === 'stopped') break;
      if (next === 'retry') await collection.reconnect.wait(signal);
    }
    await collection.batches.settled();
  }

  /**
   * Adds, before each connection, the boots of running containers the engine's buffer no longer
   * holds: after an engine restart, its burst of starts may have left the buffer (256 events)
   * before the stream reconnects. Without it the stream still delivers all the engine holds, so
   * it gives up past catchUpTimeoutMs. A boot the stream has delivered is not read again.
   */
  private async backfill(collection: Collection): Promise<'stopped' | 'done'> {
    const { signal } = collection;
    const catchUpMs = this.options.catchUpTimeoutMs ?? 60_000;
    // Its own controller, not AbortSignal.any: one per connection, for as long as the source runs.
    const catchUp = new AbortController();
    const stopCatchUp = () => catchUp.abort();
    const catchUpTimer = setTimeout(stopCatchUp, catchUpMs);
    signal.addEventListener('abort', stopCatchUp, { once: true });
    try {
      const { boots, buffered } = await this.unbufferedBoots(
        Math.max(collection.startedAfterMs, collection.position.newestMs),
        catchUp.signal,
      );
      const events = boots.flatMap(boot => collection.mapper.map(boot));
      // Resuming after a backend restart: a stop's kill may lie before the events the stream
      // replays, its die after them.
      if (!collection.seeded)
        for (const m of buffered)
          if (nanoOf(m) < collection.position.since * 1e9)
            collection.mapper.note(m);
      if (events.length) collection.batches.add(events);
    } catch (e) {
      if (signal.aborted) return 'stopped';
      const why = catchUp.signal.aborted
        ? `the engine did not answer within ${catchUpMs} ms`
        : String(e);
      this.logger?.warn(
        `Could not read boots older than the engine's event buffer: ${why}`,
      );
    } finally {
      collection.seeded = true; // later connections resume from events the mapper has seen
      clearTimeout(catchUpTimer);
      signal.removeEventListener('abort', stopCatchUp);
    }
    return 'done';
  }

  /**
   * One connection of the stream, from the resume point, until it ends or fails (reconnected
   * after the delay), brings nothing for idleReconnectMs, or storing recovers from an outage
   * (reopened at once).
   */
  private async stream(collection: Collection): Promise<NextConnection> {
    const { signal } = collection;
    const idleMs = this.options.idleReconnectMs ?? 5 * 60_000;
    let stream: Readable | undefined;
    let resync = false; // storing failed while reading waited: the engine may have skipped events
    // Nothing came for idleMs: reopened, in case the connection is dead.
    let idle: IdleWatch | undefined;
    try {
      stream = (await this.docker.getEvents({
        since: collection.position.since,
        filters: { type: ['container'], event: ['start', 'die', 'kill'] },
      } as any)) as unknown as Readable;
      collection.reconnect.connected();
      const onAbort = () => stream?.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) onAbort(); // stopped while connecting
      const watch = new IdleWatch(stream, idleMs);
      idle = watch;
      try {
        resync = await this.read(collection, stream, () => watch.heard());
      } finally {
        watch.stop();
        signal.removeEventListener('abort', onAbort);
        if (resync) stream.destroy();
      }
      if (signal.aborted) return 'stopped';
      if (watch.idle) return 'reopen'; // at once, from the newest event seen
      if (resync) {
        this.logger?.info(
          'Storing events recovered; re-reading since the last event',
        );
        return 'reopen'; // at once: the engine evicts what it still holds as new events come
      }
      this.logger?.info('Event stream ended; reconnecting');
      return 'retry';
    } catch (e) {
      idle?.stop();
      if (signal.aborted) return 'stopped';
      if (idle?.idle) return 'reopen';
      this.logger?.warn(
        `Event stream failed: ${(e as Error).message}; retrying in ${collection.reconnect.ms} ms`,
      );
      return 'retry';
    }
  }

  /**
   * Reads a connection's events into batches to store, replays skipped, `watch` told of each.
   * True where reading stopped to resync: storing failed while reading waited for it, and dockerd
   * does not wait for a subscriber that does not read (after 100 ms it skips events for it), so
   * what the engine still holds is read again.
   */
  private async read(
    collection: Collection,
    stream: Readable,
    watch: () => void,
  ): Promise<boolean> {
    const dropped = (length: number) =>
      this.logger?.warn(
        `Dropped an event line of ${length} characters from Docker engine ${this.engineId} (limit ${MAX_EVENT_LINE_LENGTH})`,
      );
    for await (const msg of dockerMessages(stream, dropped)) {
      watch();
      if (!collection.position.isNew(msg)) continue;
      const events = collection.mapper.map(msg);
      if (!events.length) continue;
      collection.batches.add(events);
      // Wait while the store is behind or failing, instead of queueing without bound
      // or reading past a batch that may never be stored.
      if (collection.batches.behind && (await collection.batches.waitStored()))
        return true;
    }
    return false;
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
export async function* dockerMessages(
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

/** Epoch ms, with the fraction, of an RFC 3339 time with nanoseconds (Docker's `StartedAt`). */
function rfc3339Ms(text: string | undefined): number | undefined {
  const match = text && /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(text);
  if (!match) return undefined;
  const whole = Date.parse(`${match[1]}${match[3]}`);
  // Docker's zero time, year 1: never started.
  if (!Number.isFinite(whole) || whole <= 0) return undefined;
  return whole + Number(`0.${match[2] ?? '0'}`) * 1000;
}
