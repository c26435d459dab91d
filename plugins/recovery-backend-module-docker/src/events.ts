import {
  RUN_ID_LABEL,
  type InitializationEvent,
} from '@backstage-recovery/plugin-recovery-common';
import { EventLineParser } from '@backstage-recovery/plugin-recovery-node';
import { PROBE_LABEL } from './labNames';

/** One message of `GET /events` (`docker events --format '{{json .}}'`). */
export interface DockerEventMessage {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
  time?: number;
  timeNano?: number;
}

/**
 * Maps a Docker container event to initialization events with the same mapping as the
 * CLI's `docker` format parser (recovery-node `EventLineParser`): `start` → `start`; `die`
 * with a non-zero `exitCode` → `failure`; anything else → none; machine and service from the
 * `recovery.backstage-recovery.io/machine` and `/service` labels, else the container name;
 * time from `timeNano`. A comma list in the service label gives one event per service. One event
 * alone cannot tell an operator's stop from a failure: a stream maps through
 * {@link DockerEventMapper}.
 *
 * Containers of a recovery lab (run-id label: restored machines, which copy production's
 * machine/service labels, and the probe container) give none: their boots, however ordered, and
 * their teardown kills are no production history (engine role `both` sees them).
 */
export function dockerEventToInitializationEvents(
  message: DockerEventMessage,
): InitializationEvent[] {
  // An object, not a raw line: the stream has parsed it already, and the lab check needs it
  // parsed, so the parser's own JSON.parse is the only one.
  if (isLabContainer(message)) return [];
  const parser = new EventLineParser({
    format: 'docker',
    lenient: true,
    source: 'docker events',
  });
  return parser.push(JSON.stringify(message));
}

/**
 * Signals an operator (or a tool) sends to have a process reload or report, not stop: a die after
 * one of them is the container's own.
 */
const NON_STOPPING_SIGNALS = new Set(['1', '10', '12']); // SIGHUP, SIGUSR1, SIGUSR2

/**
 * Maps one primary engine's container events in the order it sends them, telling a deliberate
 * stop from a failure. `docker stop`, `docker restart`, `docker kill`, `docker rm -f` and the
 * engine's own shutdown send the container a signal (a `kill` event) before it dies, and the exit
 * code is then the signal's (143, or 137 once the stop timeout ran out) unless the process traps
 * it: without this, every operator's stop of a process that does not trap SIGTERM would pass for
 * a failure, and the analysis would read the machine's next start as a knocked-out service's, not
 * as its own reboot (and a start stopped within the failure window as a failed attempt). A crash,
 * a restart policy's loop and an OOM kill come without a `kill` event: failures still. The stream
 * must hold `kill` events (besides `start` and `die`) for this.
 */
export class DockerEventMapper {
  /** Containers sent a stopping signal since they last started. */
  private readonly signalled = new Set<string>();

  map(message: DockerEventMessage): InitializationEvent[] {
    return this.note(message) ? dockerEventToInitializationEvents(message) : [];
  }

  /**
   * Takes in an event without mapping it (one stored before, met again while resuming); whether
   * it may give initialization events: not a kill, nor a deliberate stop's die.
   */
  note(message: DockerEventMessage): boolean {
    const action = message.Action ?? message.status;
    const id = message.id ?? message.Actor?.ID;
    if ((message.Type !== undefined && message.Type !== 'container') || !id)
      return true;
    if (action === 'kill') {
      const signal = message.Actor?.Attributes?.signal;
      if (signal === undefined || !NON_STOPPING_SIGNALS.has(signal))
        this.signalled.add(id);
      return false;
    }
    if (action === 'start') this.signalled.delete(id);
    return !(action === 'die' && this.signalled.delete(id));
  }
}

/** Whether an event is of a recovery lab's container (the event's attributes hold its labels). */
function isLabContainer(message: DockerEventMessage | undefined): boolean {
  const attributes = message?.Actor?.Attributes;
  return (
    !!attributes &&
    (attributes[RUN_ID_LABEL] !== undefined ||
      attributes[PROBE_LABEL] !== undefined)
  );
}
