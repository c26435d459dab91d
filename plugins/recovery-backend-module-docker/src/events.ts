import {
  MACHINE_LABEL,
  SERVICE_LABEL,
  type InitializationEvent,
} from '@backstage-recovery/plugin-recovery-common';

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
 * Maps a Docker container event to initialization events: `start` → `start`; `die` with a
 * non-zero `exitCode` → `failure`; anything else → none. Machine and service come from the
 * `recovery.backstage-recovery.io/machine` and `/service` labels (a comma list: one event per
 * service), else the container name. Time from `timeNano` (else `time`), epoch ms.
 */
export function dockerEventToInitializationEvents(
  message: DockerEventMessage,
): InitializationEvent[] {
  if ((message.Type ?? 'container') !== 'container') return [];
  const action = message.Action ?? message.status;
  const attributes = message.Actor?.Attributes ?? {};
  let type: InitializationEvent['type'];
  if (action === 'start') type = 'start';
  else if (action === 'die') {
    const code = Number(attributes.exitCode ?? '0');
    if (!code) return [];
    type = 'failure';
  } else return [];
  const time =
    typeof message.timeNano === 'number'
      ? Math.floor(message.timeNano / 1e6)
      : typeof message.time === 'number'
        ? message.time * 1000
        : NaN;
  if (!Number.isFinite(time)) return [];
  const name = attributes.name ?? message.Actor?.ID?.slice(0, 12) ?? message.id?.slice(0, 12);
  const machine = attributes[MACHINE_LABEL]?.trim() || name;
  if (!machine) return [];
  const services = (attributes[SERVICE_LABEL] ?? '')
    .split(',')
    .map(s => s.trim())
    .filter(Boolean);
  return (services.length ? services : [name ?? machine]).map(service => ({
    time,
    machine,
    service,
    type,
  }));
}
