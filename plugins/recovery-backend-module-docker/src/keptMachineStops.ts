import type Docker from 'dockerode';
import type { Readable } from 'node:stream';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { RUN_ID_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { dockerMessages, ReconnectDelay } from './DockerEventSource';
import { MACHINE_REF_LABEL, PROBE_LABEL } from './labNames';

/**
 * Follows the hypervisor engine's `die` events of the machines runs keep on it (run-id and
 * machine-ref labels; probe containers left out), telling each run id to `onStopped`: every stop
 * (a crash, an OOM kill, `docker kill` or `stop`, the engine's own shutdown) ends in a `die`, and
 * only then is the machine stopped, so its `kill` and `stop` would only look too early. Read with
 * the event source's reader; it reconnects with the same backoff after a failure or an engine
 * restart, and tells `onResumed` once connected again: stops while it was away went unheard.
 * Returns what stops following.
 */
export function followKeptMachineStops(
  docker: Docker,
  onStopped: (runId: string) => void,
  onResumed: () => void,
  options: {
    logger?: LoggerService;
    minBackoffMs?: number;
    maxBackoffMs?: number;
  } = {},
): () => void {
  const following = new AbortController();
  const { signal } = following;
  const reconnect = new ReconnectDelay(
    options.minBackoffMs ?? 1000,
    options.maxBackoffMs ?? 30_000,
  );
  const follow = async () => {
    // Stops went unheard: a connection ended or failed (the sweep at start covers those before).
    let missed = false;
    while (!signal.aborted) {
      let stream: Readable | undefined;
      const onAbort = () => stream?.destroy();
      try {
        stream = (await docker.getEvents({
          filters: {
            type: ['container'],
            event: ['die'],
            label: [RUN_ID_LABEL, MACHINE_REF_LABEL],
          },
        } as any)) as unknown as Readable;
        reconnect.connected();
        signal.addEventListener('abort', onAbort, { once: true });
        if (signal.aborted) onAbort();
        if (missed) onResumed();
        missed = false;
        for await (const message of dockerMessages(stream, () => {})) {
          const labels = message.Actor?.Attributes;
          const runId = labels?.[RUN_ID_LABEL];
          if (runId && labels?.[PROBE_LABEL] === undefined) onStopped(runId);
        }
        if (!signal.aborted)
          options.logger?.info(
            "Kept machines' stop events ended; reconnecting",
          );
      } catch (e) {
        if (signal.aborted) break;
        options.logger?.warn(
          `Kept machines' stop events failed: ${(e as Error).message}; retrying in ${reconnect.ms} ms`,
        );
      } finally {
        signal.removeEventListener('abort', onAbort);
        stream?.destroy();
      }
      missed = true;
      await reconnect.wait(signal);
    }
  };
  void follow();
  return () => following.abort();
}
