import type {
  AuditorService,
  AuditorServiceCreateEventOptions,
  AuditorServiceEvent,
  AuditorServiceEventSeverityLevel,
} from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type {
  Capture,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type express from 'express';

/** What an audit event names: entities, runs, machines. */
export type AuditMeta = NonNullable<AuditorServiceCreateEventOptions['meta']>;

/** Where a request's audit event waits for its outcome. */
const EVENT = 'recoveryAuditEvent';

/**
 * Opens a route's audit event as its request comes in, before any permission check, so that a
 * refusal is on record as well as what was done. The route records its success
 * (auditSucceeded) before it answers; the router's error handler records any failure
 * (auditFailed). With `body`, the request's body is read first, so that `describe` may name what
 * it says; a body it refuses (malformed, too large, not JSON) is on record too, as the request's
 * failure (`describe` then sees no body: it reads `req.body` defensively).
 */
export function audit(
  auditor: AuditorService,
  eventId: string,
  describe: (req: express.Request) => {
    severityLevel: AuditorServiceEventSeverityLevel;
    meta?: AuditMeta;
  },
  body?: express.RequestHandler,
): express.RequestHandler {
  return async (req, res, next) => {
    const refused = body
      ? await new Promise<unknown>(resolve => body(req, res, resolve))
      : undefined;
    res.locals[EVENT] = await auditor.createEvent({
      eventId,
      request: req,
      ...describe(req),
    });
    next(refused);
  };
}

/** Records that the request's audited action was done, and what it did. */
export async function auditSucceeded(
  res: express.Response,
  meta: AuditMeta,
): Promise<void> {
  const event = takeEvent(res);
  await event?.success({ meta });
}

/** Records that the request's audited action failed or was refused, if it was audited. */
export async function auditFailed(
  res: express.Response,
  error: unknown,
): Promise<void> {
  const event = takeEvent(res);
  await event?.fail({ error: toError(error) });
}

/** Each event ends once: a failure after the success (the answer failing, say) is not its. */
function takeEvent(res: express.Response): AuditorServiceEvent | undefined {
  const event = res.locals[EVENT] as AuditorServiceEvent | undefined;
  delete res.locals[EVENT];
  return event;
}

/** A string a request names, for the record before it is checked; anything else is left out. */
export function named(value: unknown): string | undefined {
  return typeof value === 'string' ? value.slice(0, 1000) : undefined;
}

/** What a capture took, as capture-create records it (over HTTP and for the scheduler alike). */
export function capturedMeta(
  entityRef: string,
  machineRef: string | undefined,
  captures: Capture[],
  requestId?: string,
): AuditMeta {
  return {
    entityRef,
    machineRef,
    ...(requestId !== undefined && { requestId }),
    captures: captures.map(c => ({
      captureId: c.id,
      machineRef: c.machineRef,
    })),
  };
}

/** What a run started, as run-start records it. */
export function runStartedMeta(run: RecoveryRun): AuditMeta {
  return {
    runId: run.id,
    entityRef: run.entityRef,
    mode: run.mode,
    hypervisorHost: run.hypervisorHost,
    recoveryPoint: run.recoveryPoint,
    machineRefs: run.plan.machines.map(m => m.machineRef),
  };
}

/** What a failover released had booted, as run-release records it. */
export function runReleasedMeta(run: RecoveryRun): AuditMeta {
  return {
    runId: run.id,
    entityRef: run.entityRef,
    hypervisorHost: run.hypervisorHost,
    machineRefs: run.plan.machines.map(m => m.machineRef),
  };
}

/** The test recovery cancelled, as run-cancel records it. */
export function runCancelledMeta(run: RecoveryRun): AuditMeta {
  return {
    runId: run.id,
    entityRef: run.entityRef,
    hypervisorHost: run.hypervisorHost,
  };
}

/** What a sweep of every system analysed, as analysis-create records it. */
export function sweptMeta(swept: {
  analysed: string[];
  skipped: string[];
  failed: Array<{ entityRef: string }>;
}): AuditMeta {
  return {
    sweep: true,
    analysed: swept.analysed,
    skipped: swept.skipped,
    failed: swept.failed.map(f => f.entityRef),
  };
}
