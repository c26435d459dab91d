import type {
  AuditorService,
  AuditorServiceCreateEventOptions,
  AuditorServiceEvent,
  AuditorServiceEventSeverityLevel,
  LoggerService,
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

/** What the plugin does on its own, with no request (its actor the plugin itself), that deletes or changes things. */
export type HousekeepingEventId =
  'run-retention' | 'capture-retention' | 'failover-supervision-restart';

const HOUSEKEEPING_SEVERITY: Record<
  HousekeepingEventId,
  AuditorServiceEventSeverityLevel
> = {
  'run-retention': 'medium',
  'capture-retention': 'medium',
  // They act on the machines that replace production.
  'failover-supervision-restart': 'high',
};

/** Ids an event lists at most: a pass after a long outage may delete thousands. */
const AUDITED_IDS_MAX = 100;

/** `ids` under `key`, the first AUDITED_IDS_MAX of them, and how many were left out under `${key}Omitted`. */
function listedIds(key: string, ids: string[]): AuditMeta {
  return {
    [key]: ids.slice(0, AUDITED_IDS_MAX),
    ...(ids.length > AUDITED_IDS_MAX && {
      [`${key}Omitted`]: ids.length - AUDITED_IDS_MAX,
    }),
  };
}

/** Housekeeping's deps for its audit events: where an auditor's failure is logged. */
export interface HousekeepingAudit {
  auditor: AuditorService;
  logger: LoggerService;
}

/**
 * Records a pass of the plugin's own housekeeping, opened before `work` acts (what it is about to
 * do in `meta`) and ended by its outcome: `fail` with the error it threw (rethrown) or returned
 * (its meta then says what was done before the failure), else `success`. An auditor's failure is
 * logged, never thrown: the housekeeping it records goes on. `brokenOffMeta`: what `work` had done
 * when it threw, for the failed event.
 */
export async function auditHousekeeping<T>(
  deps: HousekeepingAudit,
  eventId: HousekeepingEventId,
  meta: AuditMeta,
  work: () => Promise<{ result: T; meta?: AuditMeta; error?: Error }>,
  brokenOffMeta?: () => AuditMeta,
): Promise<T> {
  /** An auditor that fails must not stop the housekeeping it records. */
  const recorded = async <R>(call: () => Promise<R>) => {
    try {
      return await call();
    } catch (error) {
      deps.logger.warn(
        `Could not record the audit event ${eventId}`,
        toError(error),
      );
      return undefined;
    }
  };
  const opened = await recorded(() =>
    deps.auditor.createEvent({
      eventId,
      severityLevel: HOUSEKEEPING_SEVERITY[eventId],
      meta,
    }),
  );
  let done: Awaited<ReturnType<typeof work>>;
  try {
    done = await work();
  } catch (error) {
    await recorded(async () =>
      opened?.fail({ error: toError(error), meta: brokenOffMeta?.() }),
    );
    throw error;
  }
  const { result, meta: outcome, error } = done;
  await recorded(async () =>
    error
      ? opened?.fail({ error, meta: outcome })
      : opened?.success({ meta: outcome }),
  );
  return result;
}

/**
 * Records a pass of the plugin's own housekeeping once done, where only then it is known to have
 * done something (an empty pass records nothing): `fail` where `error` is given.
 */
export function recordHousekeeping(
  deps: HousekeepingAudit,
  eventId: HousekeepingEventId,
  meta: AuditMeta,
  error?: Error,
): Promise<void> {
  return auditHousekeeping(deps, eventId, meta, async () => ({
    result: undefined,
    error,
  }));
}

/** What run retention deleted, as run-retention records it. */
export function runsPrunedMeta(
  runIds: string[],
  retentionMs: number,
): AuditMeta {
  return {
    runsDeleted: runIds.length,
    ...listedIds('runIds', runIds),
    retentionSeconds: retentionMs / 1000,
  };
}

/**
 * What keeping a machine's last N captures removed after its capture, as capture-retention records
 * it: the captures deleted (recovery points gone; `artifactsLeft` those whose files could not be
 * removed, left to the sweep of unrecorded captures), and what unrecorded captures had left.
 */
export function capturesPrunedMeta(pruned: {
  machineRef: string;
  engine: string;
  keepLast: number;
  captures: Capture[];
  artifactsLeft: string[];
  unrecordedCaptureIds: string[];
}): AuditMeta {
  return {
    pass: 'after-capture',
    machineRef: pruned.machineRef,
    engine: pruned.engine,
    keepLast: pruned.keepLast,
    captures: pruned.captures.map(c => ({
      captureId: c.id,
      createdAt: c.createdAt,
      sizeBytes: c.sizeBytes,
    })),
    ...(pruned.artifactsLeft.length > 0 && {
      artifactsLeft: pruned.artifactsLeft,
    }),
    ...listedIds('unrecordedCaptureIds', pruned.unrecordedCaptureIds),
  };
}

/** What the sweep of unrecorded captures removed, per engine, as capture-retention records it. */
export function unrecordedRemovedMeta(
  removed: Array<{ engine: string; captureIds: string[] }>,
  failedEngines: string[],
): AuditMeta {
  return {
    pass: 'unrecorded-sweep',
    engines: removed.map(({ engine, captureIds }) => ({
      engine,
      ...listedIds('unrecordedCaptureIds', captureIds),
    })),
    ...(failedEngines.length > 0 && { failedEngines }),
  };
}
