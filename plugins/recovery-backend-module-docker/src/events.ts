import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { EventLineParser } from '@backstage-recovery/plugin-recovery-node';

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
 */
export function dockerEventToInitializationEvents(
  message: DockerEventMessage | string,
): InitializationEvent[] {
  const line = typeof message === 'string' ? message : JSON.stringify(message);
  const parser = new EventLineParser({ format: 'docker', lenient: true, source: 'docker events' });
  return parser.push(line);
}
