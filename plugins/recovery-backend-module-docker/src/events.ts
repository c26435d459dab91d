import { RUN_ID_LABEL, type InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { EventLineParser } from '@backstage-recovery/plugin-recovery-node';
import { PROBE_LABEL } from './DockerHypervisorHost';

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
 * time from `timeNano`. A comma list in the service label gives one event per service.
 *
 * Containers of a recovery lab (run-id label: restored machines, which copy production's
 * machine/service labels, and the probe container) give none: their boots, however ordered, and
 * their teardown kills are no production history (engine role `both` sees them).
 */
export function dockerEventToInitializationEvents(message: DockerEventMessage): InitializationEvent[] {
  // An object, not a raw line: the stream has parsed it already, and the lab check needs it
  // parsed, so the parser's own JSON.parse is the only one.
  if (isLabContainer(message)) return [];
  const parser = new EventLineParser({ format: 'docker', lenient: true, source: 'docker events' });
  return parser.push(JSON.stringify(message));
}

/** Whether an event is of a recovery lab's container (the event's attributes hold its labels). */
function isLabContainer(message: DockerEventMessage | undefined): boolean {
  const attributes = message?.Actor?.Attributes;
  return !!attributes && (attributes[RUN_ID_LABEL] !== undefined || attributes[PROBE_LABEL] !== undefined);
}
