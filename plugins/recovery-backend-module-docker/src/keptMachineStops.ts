import type Docker from 'dockerode';
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { dockerMessages, ReconnectDelay } from './DockerEventSource';
import { engineTimeOf } from './engineClock';
import { ResumePoint } from './eventResume';
import { IdleWatch } from './lib/idleWatch';
import { MACHINE_REF_LABEL, PROBE_LABEL } from './labNames';

/**
 * Follows the hypervisor engine's `die` events of the machines runs keep on it (run-id and
 * machine-ref labels; probe containers left out), telling each run id to `onStopped`: every stop
 * (a crash, an OOM kill, `docker kill` or `stop`, the engine's own shutdown) ends in a `die`, and
 * only then is the machine stopped, so its `kill` and `stop` would only look too early. Read with
 * the event source's reader; it reconnects with the same backoff after a failure or an engine
 * restart, and tells `onResumed` once connected again: stops while it was away went unheard.
 * A connection that brings nothing for idleReconnectMs is opened again at once, `since` it was
 * last known alive: the engine replays what its buffer still holds of that time, only its last 256
 * events of every kind (moby's eventsLimit), so on a busy host a stop the silent connection never
 * delivered may be gone; the supervision's 30 s sweep finds that machine stopped. Returns what
 * stops following.
 */
export function followKeptMachineStops(
  docker: Docker,
  onStopped: (runId: string) => void,
  onResumed: () => void,
  options: {
    logger?: LoggerService;
    minBackoffMs?: number;
    maxBackoffMs?: number;
    /**
     * A connection that brings nothing for this long is opened again (default
     * KEPT_STOPS_IDLE_RECONNECT_MS): one a NAT or firewall dropped without a reset stays open,
     * silent, for good, and no TCP keepalive reaches a unix socket or an SSH tunnel.
     */
    idleReconnectMs?: number;
  } = {},
): () => void {
  const following = new AbortController();
  const { signal } = following;
  const reconnect = new ReconnectDelay(
    options.minBackoffMs ?? 1000,
    options.maxBackoffMs ?? 30_000,
  );
  const idleMs = options.idleReconnectMs ?? KEPT_STOPS_IDLE_RECONNECT_MS;
  const follow = async () => {
    // Stops went unheard: a connection ended or failed (the sweep at start covers those before).
    let missed = false;
    // The stops told, against their replay by a connection opened `since` an earlier one.
    const told = new ResumePoint(0);
    // Where a connection opened again for being idle replays from (epoch s, the engine's clock).
    let since: number | undefined;
    while (!signal.aborted) {
      let stream: Readable | undefined;
      const onAbort = () => stream?.destroy();
      let idle: IdleWatch | undefined;
      let openedAt = 0;
      try {
        stream = (await docker.getEvents({
          ...(since !== undefined && { since }),
          filters: {
            type: ['container'],
            event: ['die'],
            label: [RUN_ID_LABEL, MACHINE_REF_LABEL],
          },
        } as any)) as unknown as Readable;
        openedAt = engineSecondOf(stream);
        reconnect.connected();
        signal.addEventListener('abort', onAbort, { once: true });
        if (signal.aborted) onAbort();
        if (missed) onResumed();
        missed = false;
        idle = new IdleWatch(stream, idleMs);
        for await (const message of dockerMessages(stream, () => {})) {
          idle.heard();
          if (!told.isNew(message)) continue;
          const labels = message.Actor?.Attributes;
          const runId = labels?.[RUN_ID_LABEL];
          if (runId && labels?.[PROBE_LABEL] === undefined) onStopped(runId);
        }
        if (!signal.aborted && !idle.idle)
          options.logger?.info(
            "Kept machines' stop events ended; reconnecting",
          );
      } catch (e) {
        if (signal.aborted) break;
        if (!idle?.idle)
          options.logger?.warn(
            `Kept machines' stop events failed: ${(e as Error).message}; retrying in ${reconnect.ms} ms`,
          );
      } finally {
        idle?.stop();
        signal.removeEventListener('abort', onAbort);
        stream?.destroy();
      }
      if (idle?.idle && !signal.aborted) {
        // At once, from when it was last known alive: its opening, or its newest stop.
        since = Math.max(openedAt, told.since);
        continue;
      }
      since = undefined;
      missed = true;
      await reconnect.wait(signal);
    }
  };
  void follow();
  return () => following.abort();
}

/**
 * How long a connection of the kept machines' stops may bring nothing before it is opened again:
 * under the supervision's 30 s sweep, so that a dead connection is not what hears last. Cheap: one
 * request, replaying from the engine's buffer (its last 256 events) the seconds since the last
 * connection was known alive.
 */
export const KEPT_STOPS_IDLE_RECONNECT_MS = 20_000;

/**
 * When the engine answered `stream` (epoch s, its own clock: the response's Date), for a later
 * connection's `since`; the backend's clock where no Date came (a proxy that drops it).
 */
function engineSecondOf(stream: Readable): number {
  const ms = engineTimeOf((stream as Partial<IncomingMessage>).headers);
  return Math.floor((ms ?? Date.now()) / 1000);
}
