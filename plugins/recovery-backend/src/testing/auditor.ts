import type {
  AuditorService,
  AuditorServiceCreateEventOptions,
} from '@backstage/backend-plugin-api';

type Meta = AuditorServiceCreateEventOptions['meta'];

/** An audit event as it was opened, and each end it was given (one, where all is well). */
export interface RecordedAuditEvent {
  eventId: string;
  severityLevel: AuditorServiceCreateEventOptions['severityLevel'];
  /**
   * The request it was opened for, as its method and URL (`POST /api/recovery/runs`); undefined
   * where the plugin acted on its own (a schedule, a supervisor), its actor the plugin itself.
   */
  request: string | undefined;
  meta: Meta;
  ends: Array<
    | { status: 'succeeded'; meta: Meta }
    | { status: 'failed'; meta: Meta; error: string }
  >;
}

/** An AuditorService that keeps each event opened, and how it ended. */
export function recordingAuditor(): AuditorService & {
  events: RecordedAuditEvent[];
} {
  const events: RecordedAuditEvent[] = [];
  return {
    events,
    async createEvent(options) {
      const event: RecordedAuditEvent = {
        eventId: options.eventId,
        severityLevel: options.severityLevel,
        request:
          options.request &&
          `${options.request.method} ${options.request.originalUrl}`,
        meta: options.meta,
        ends: [],
      };
      events.push(event);
      return {
        async success(params) {
          event.ends.push({ status: 'succeeded', meta: params?.meta });
        },
        async fail(params) {
          event.ends.push({
            status: 'failed',
            meta: params.meta,
            error: params.error.message,
          });
        },
      };
    },
  };
}
