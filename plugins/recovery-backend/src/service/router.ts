import {
  AuditorService,
  BackstageCredentials,
  HttpAuthService,
} from '@backstage/backend-plugin-api';
import { InputError, NotFoundError } from '@backstage/errors';
import { recoveryEventsCreatePermission } from '@backstage-recovery/plugin-recovery-common';
import {
  describeValue,
  EVENT_FORMATS,
  EventFormat,
  EventParseError,
  parseEventsYielding,
} from '@backstage-recovery/plugin-recovery-node';
import express from 'express';
import Router from 'express-promise-router';
import { EventStore } from '../database/EventStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import type { AuthorizedRunService } from '../run/AuthorizedRunService';
import { consolesSeenBy } from '../run/consoleTails';
import { noPlanError } from '../run/errors';
import { requireSystem } from './AnalysisService';
import {
  audit,
  auditFailed,
  auditSucceeded,
  capturedMeta,
  named,
  runCancelledMeta,
  runReleasedMeta,
  runStartedMeta,
  sweptMeta,
} from './audit';
import { futureEventWarnings } from './futureEvents';
import type { AuthorizedAnalysisService } from './AuthorizedAnalysisService';
import type { AuthorizedCaptureService } from './AuthorizedCaptureService';
import { PlanService } from './PlanService';
import { newestFirstCursor, newestFirstPositionFrom } from './paging';
import { readinessCursor, readinessPageFrom } from './readinessPaging';
import { ReadinessService } from './ReadinessService';
import { principalName, type RecoveryAuthorizer } from './RecoveryAuthorizer';
import {
  asRequestError,
  bodyFrom,
  eventsBody,
  FUTURE_EVENT_MARGIN_MS,
  includePlanFrom,
  jsonOnly,
  lenientFrom,
  limitFrom,
  query,
  recoveryPointFrom,
  refFromInput,
  refuseUnknown,
  reverseBootOrderFrom,
  sourceFrom,
} from './requests';

export interface RouterOptions {
  httpAuth: HttpAuthService;
  /** The permission policy, for what no service below checks: POST /events, a readiness's last run's console tails. */
  authorizer: RecoveryAuthorizer;
  /** Records who captured, ran, released and analysed what, and who pushed events. */
  auditor: AuditorService;
  events: EventStore;
  analyses: AuthorizedAnalysisService;
  /** Largest accepted POST /events body, e.g. `10mb`. */
  maxEventsRequestSize: string;
  graphs: CatalogGraphLoader;
  plans: PlanService;
  captures: AuthorizedCaptureService;
  runs: AuthorizedRunService;
  readiness: ReadinessService;
}

/**
 * The HTTP API: each route reads its request (./requests), calls a service and answers; the
 * services decide, with the caller's view of the catalog and grants (the Authorized* services,
 * which the scheduler's RecoveryTasks call too).
 */
export async function createRouter(
  options: RouterOptions,
): Promise<express.Router> {
  const {
    httpAuth,
    authorizer,
    auditor,
    events,
    graphs,
    plans,
    captures,
    runs,
    analyses,
    readiness,
  } = options;
  const router = Router();

  const eventsBodyParser = eventsBody(options.maxEventsRequestSize);
  // Each audited route opens its audit event in a step of its own, its first: a refusal by any
  // later step is on record. Those that take JSON read it in that step (audit's `body`), so that a
  // body refused is on record as their failure too.
  const jsonBody = jsonOnly('1mb');
  // The entity a request names, if the caller may see it in the catalog (else 404, as if absent).
  const entityRefFromPath = (
    req: express.Request,
    credentials: BackstageCredentials,
  ) =>
    graphs.requireVisible(
      refFromInput(
        'path',
        `${req.params.kind}:${req.params.namespace}/${req.params.name}`,
      ),
      credentials,
    );
  // The services check that the caller may see it.
  const entityRefFromBody = (body: Record<string, unknown>) => {
    const ref = body.entityRef;
    if (ref === undefined || ref === '') {
      throw new InputError(
        'Request body must have an entityRef, e.g. "component:default/web"',
      );
    }
    if (typeof ref !== 'string') {
      throw new InputError(
        `entityRef must be a string, e.g. "component:default/web", got ${describeValue(ref)}`,
      );
    }
    return refFromInput('entityRef', ref);
  };

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get(
    '/readiness',
    query('include', 'limit', 'cursor'),
    async (req, res) => {
      const includePlan = includePlanFrom(req.query.include);
      const page = readinessPageFrom(req.query);
      const { items, totalItems, next } = await readiness.visibleReadinessPage(
        await httpAuth.credentials(req),
        { ...page, includePlan },
      );
      res.json({
        items,
        totalItems,
        pageInfo: next ? { nextCursor: readinessCursor(next) } : {},
      });
    },
  );

  router.get('/readiness/:kind/:namespace/:name', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const answer = await readiness.readiness(
      await entityRefFromPath(req, credentials),
      credentials,
    );
    // Its last run in full carries console tails, read as GET /runs/:id reads them.
    const lastRun = answer.lastRun;
    if (lastRun && 'machines' in lastRun) {
      [answer.lastRun] = await consolesSeenBy(
        [lastRun],
        credentials,
        authorizer,
      );
    }
    res.json(answer);
  });

  router.get('/plan/:kind/:namespace/:name', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const planned = await plans.plan(
      await entityRefFromPath(req, credentials),
      credentials,
    );
    const { plan, graph, disagreements } = planned;
    // No plan is the catalog's state (a dependency cycle it declares), refused as POST /runs
    // refuses it: a 409 DependencyCycleError with the cycle and what a run accepting it drops.
    if (!plan) throw noPlanError(planned);
    res.json({ ...plan, problems: graph.problems, disagreements });
  });

  // A capture pauses each production machine it copies for a moment.
  router.post(
    '/captures',
    audit(
      auditor,
      'capture-create',
      req => ({
        severityLevel: 'medium',
        meta: {
          entityRef: named(req.body?.entityRef),
          machineRef: named(req.body?.machineRef),
        },
      }),
      jsonBody,
    ),
    query(),
    async (req, res) => {
      const credentials = await httpAuth.credentials(req);
      const body = bodyFrom(req, ['entityRef', 'machineRef']);
      const entityRef = entityRefFromBody(body);
      if (
        body.machineRef !== undefined &&
        typeof body.machineRef !== 'string'
      ) {
        throw new InputError(
          `machineRef must be a string, got ${describeValue(body.machineRef)}`,
        );
      }
      const machineRef =
        body.machineRef === undefined
          ? undefined
          : refFromInput('machineRef', body.machineRef, 'resource');
      // Answered at once (202), polled at its Location; its audit event ends as the capture does.
      const request = await captures.requestCapture(
        credentials,
        entityRef,
        machineRef,
        async end =>
          end.error === undefined
            ? auditSucceeded(
                res,
                capturedMeta(
                  entityRef,
                  machineRef,
                  end.captures,
                  end.requestId,
                ),
              )
            : auditFailed(res, end.error),
      );
      res
        .status(202)
        .location(`${req.baseUrl}/captures/requests/${request.requestId}`)
        .set('Retry-After', '1')
        .json(request);
    },
  );

  router.get('/captures/requests/:id', query(), async (req, res) => {
    const request = await captures.request(
      req.params.id,
      await httpAuth.credentials(req),
    );
    if (request.status === 'capturing') res.set('Retry-After', '1');
    res.json(request);
  });

  router.get(
    '/captures',
    query('machineRef', 'limit', 'cursor'),
    async (req, res) => {
      const credentials = await httpAuth.credentials(req);
      const machineRef = req.query.machineRef;
      if (typeof machineRef !== 'string') {
        throw new InputError(
          machineRef === undefined
            ? 'Query parameter machineRef is required, e.g. resource:default/web-01'
            : `Query parameter machineRef must be given once, e.g. resource:default/web-01, got ${describeValue(machineRef)}`,
        );
      }
      const limit = limitFrom(req);
      const after = newestFirstPositionFrom(
        req.query.cursor,
        'GET /captures',
        'capture',
      );
      const { items, totalItems, next } = await captures.listPage(
        credentials,
        refFromInput('machineRef', machineRef, 'resource'),
        { limit, after },
      );
      res.json({
        items,
        totalItems,
        pageInfo: next
          ? { nextCursor: newestFirstCursor('capture', next) }
          : {},
      });
    },
  );

  router.post(
    '/events',
    audit(auditor, 'events-push', req => ({
      severityLevel: 'low',
      meta: {
        source: named(req.query.source),
        format: named(req.query.format),
      },
    })),
    async (req, res, next) => {
      // Permission first: a caller without it is told so, not that the body is too large, and no
      // body is held in memory for nothing.
      await authorizer.authorize(
        await httpAuth.credentials(req),
        recoveryEventsCreatePermission,
      );
      eventsBodyParser(req, res, next);
    },
    query('format', 'source', 'lenient'),
    async (req, res) => {
      const format = req.query.format;
      if (
        format !== undefined &&
        !EVENT_FORMATS.includes(format as EventFormat)
      ) {
        throw new InputError(
          `format must be one of ${EVENT_FORMATS.join(', ')}, got ${describeValue(format)}`,
        );
      }
      const source = sourceFrom(req.query.source);
      const text = typeof req.body === 'string' ? req.body : '';
      const receivedAt = Date.now();
      let parsed;
      try {
        // In slices, yielding between them, as the store inserts: a push of megabytes must not
        // stall the backend (health checks, a running recovery's timing) while it is read.
        parsed = await parseEventsYielding(text, {
          format: format as EventFormat | undefined,
          source,
          lenient: lenientFrom(req.query.lenient),
          received: { at: receivedAt, marginMs: FUTURE_EVENT_MARGIN_MS },
        });
      } catch (error) {
        if (error instanceof EventParseError)
          throw new InputError(error.message);
        throw error;
      }
      if (parsed.events.length === 0) {
        const lines = text.split('\n').filter(l => l.trim()).length;
        // Say where the lines went: all skipped (lenient) hides the error that would explain it.
        throw new InputError(
          `${source}: no initialization events in ${lines} lines (formats: ${EVENT_FORMATS.join(', ')}); ` +
            `${parsed.skipped} skipped as malformed, ${parsed.ignored} ignored as not initialization events${
              parsed.skipped > 0
                ? '; retry without lenient=true to see the first malformed line'
                : ''
            }`,
        );
      }
      // The source is the caller's word; who they are is the backend's, kept with each event.
      const stored = await events.insertEvents(
        parsed.events,
        `api:${source}`,
        principalName((await httpAuth.credentials(req)).principal),
      );
      await auditSucceeded(res, {
        source,
        format: parsed.format,
        received: parsed.events.length,
        stored,
      });
      res.status(201).json({
        format: parsed.format,
        received: parsed.events.length,
        stored,
        duplicates: parsed.events.length - stored,
        ignored: parsed.ignored,
        skipped: parsed.skipped,
        warnings: [
          ...parsed.warnings,
          ...futureEventWarnings(parsed.events, receivedAt),
        ],
      });
    },
  );

  router.post(
    '/analysis',
    audit(
      auditor,
      'analysis-create',
      req => ({
        severityLevel: 'medium',
        meta: { entityRef: named(req.body?.entityRef) },
      }),
      jsonBody,
    ),
    query(),
    async (req, res) => {
      const credentials = await httpAuth.credentials(req);
      // Anything but an object (`[]`, say) is a mistake, not a request for the sweep of every system.
      const ref = bodyFrom(req, ['entityRef']).entityRef;
      if (ref !== undefined) {
        if (typeof ref !== 'string')
          throw new InputError(
            `entityRef must be a string, e.g. "system:default/shop", got ${describeValue(ref)}`,
          );
        // Analyses are per system: `shop` is system:default/shop, not a component of that name.
        const systemRef = refFromInput('entityRef', ref, 'system');
        const analysis = await analyses.analyze(credentials, systemRef);
        await auditSucceeded(res, {
          entityRef: systemRef,
          analysisId: analysis.id,
        });
        res.status(201).json(await analyses.asSeenBy(credentials, analysis));
        return;
      }
      // The sweep: every system the caller may analyse.
      const swept = await analyses.sweep(credentials);
      await auditSucceeded(res, sweptMeta(swept));
      res.status(201).json(swept);
    },
  );

  router.get('/analysis/:kind/:namespace/:name', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const ref = await entityRefFromPath(req, credentials);
    // As POST says: a 404 would suggest an analysis of it may come.
    requireSystem(ref);
    // Only the parts the caller may see in the catalog: the analysis names all of the system's.
    const analysis = await analyses.latest(credentials, ref);
    if (!analysis)
      throw new NotFoundError(`No dependency analysis of ${ref} yet`);
    res.json(analysis);
  });

  // A failover boots live copies of production's machines on production's subnets; a test
  // recovery builds an isolated lab.
  router.post(
    '/runs',
    audit(
      auditor,
      'run-start',
      req => ({
        severityLevel: req.body?.mode === 'failover' ? 'high' : 'medium',
        meta: {
          entityRef: named(req.body?.entityRef),
          mode: named(req.body?.mode) ?? 'test',
        },
      }),
      jsonBody,
    ),
    query(),
    async (req, res) => {
      const credentials = await httpAuth.credentials(req);
      const body = bodyFrom(req, [
        'entityRef',
        'mode',
        'acceptMissingDependencies',
        'acceptCycles',
        'recoveryPoint',
        'options',
      ]);
      // Only an absent mode is the default: null is no mode.
      const mode = body.mode === undefined ? 'test' : body.mode;
      if (mode !== 'test' && mode !== 'failover') {
        throw new InputError(
          `mode must be "test" or "failover", got ${describeValue(mode)}`,
        );
      }
      // Only absent options are none, as an absent mode is the default: null is no object.
      const runOptions = (body.options === undefined ? {} : body.options) as {
        reverseBootOrder?: unknown;
      };
      if (
        typeof runOptions !== 'object' ||
        runOptions === null ||
        Array.isArray(runOptions)
      ) {
        throw new InputError(
          `options must be an object, got ${describeValue(runOptions)}`,
        );
      }
      // A misspelt option would otherwise run without it.
      refuseUnknown(
        Object.keys(runOptions),
        ['reverseBootOrder'],
        'options',
        'option',
      );
      const { acceptMissingDependencies = false, acceptCycles = false } = body;
      for (const [field, value] of Object.entries({
        acceptMissingDependencies,
        acceptCycles,
      })) {
        if (typeof value !== 'boolean') {
          throw new InputError(
            `${field} must be a boolean, got ${describeValue(value)}`,
          );
        }
      }
      const recoveryPoint = recoveryPointFrom(body.recoveryPoint);
      // Whether the caller may see it, and its grants (a failover's on all it boots), are checked
      // by AuthorizedRunService.start.
      const run = await runs.start(credentials, {
        entityRef: entityRefFromBody(body),
        mode,
        options: reverseBootOrderFrom(runOptions.reverseBootOrder),
        acceptMissingDependencies: acceptMissingDependencies as boolean,
        acceptCycles: acceptCycles as boolean,
        recoveryPoint,
      });
      await auditSucceeded(res, runStartedMeta(run));
      res.status(202).json(run);
    },
  );

  router.get(
    '/runs',
    query('entityRef', 'active', 'limit', 'cursor'),
    async (req, res) => {
      const credentials = await httpAuth.credentials(req);
      const entityRef = req.query.entityRef;
      if (entityRef !== undefined && typeof entityRef !== 'string') {
        throw new InputError(
          'Query parameter entityRef must be given once, e.g. component:default/web',
        );
      }
      // Only `true`: `active=false` could be read as "finished runs only", which this does not filter.
      const active = req.query.active;
      if (active !== undefined && active !== 'true') {
        throw new InputError(
          `Query parameter active must be "true" when given, got ${describeValue(active)}`,
        );
      }
      const limit = limitFrom(req);
      const after = newestFirstPositionFrom(
        req.query.cursor,
        'GET /runs',
        'run',
      );
      const ref =
        entityRef === undefined
          ? undefined
          : refFromInput('entityRef', entityRef);
      // Of any entity, only those the caller may see (AuthorizedRunService.list). No totalItems:
      // what the caller may see is the catalog's to say, run by run, not a count in the store.
      const { items, next } = await runs.list(
        { entityRef: ref, active: active === 'true', limit, after },
        credentials,
      );
      res.json({
        items,
        pageInfo: next ? { nextCursor: newestFirstCursor('run', next) } : {},
      });
    },
  );

  router.get('/runs/:id', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    res.json(await runs.get(req.params.id, credentials));
  });

  // Ends a finished failover's tenure on its host (failback done): see AuthorizedRunService.release.
  // It removes machines that stood in for production: recovery.run.release, a delete of its own.
  router.post(
    '/runs/:id/release',
    audit(
      auditor,
      'run-release',
      req => ({
        severityLevel: 'high',
        meta: { runId: req.params.id },
      }),
      jsonBody,
    ),
    query(),
    async (req, res) => {
      const credentials = await httpAuth.credentials(req);
      bodyFrom(req, []);
      const run = await runs.release(req.params.id, credentials);
      await auditSucceeded(res, runReleasedMeta(run));
      res.json(run);
    },
  );

  // Cancels a pending or running test recovery: see AuthorizedRunService.cancel. Answered once the
  // request is recorded (202): the run stops booting, tears its lab down and ends interrupted.
  router.post(
    '/runs/:id/cancel',
    audit(
      auditor,
      'run-cancel',
      req => ({
        severityLevel: 'medium',
        meta: { runId: req.params.id },
      }),
      jsonBody,
    ),
    query(),
    async (req, res) => {
      const credentials = await httpAuth.credentials(req);
      bodyFrom(req, []);
      const run = await runs.cancel(req.params.id, credentials);
      await auditSucceeded(res, runCancelledMeta(run));
      res.status(202).json(run);
    },
  );

  // No error handler of its own: errors reach the one Backstage's httpRouter applies after the
  // plugin's routes, built from the root config and logger, so error bodies follow the backend's
  // settings (stack traces only where Backstage shows them). Only the refusals of the body
  // parsers and of the path's decoding are said first as the routes' own.
  // An audited request that failed (refused, invalid or failing) has its failure recorded here.
  router.use(
    async (
      error: unknown,
      req: express.Request,
      res: express.Response,
      next: express.NextFunction,
    ) => {
      const requestError = asRequestError(error, req);
      await auditFailed(res, requestError);
      next(requestError);
    },
  );
  return router;
}
