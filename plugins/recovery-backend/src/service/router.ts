import { BackstageCredentials, HttpAuthService, PermissionsService } from '@backstage/backend-plugin-api';
import { makeValidator, parseEntityRef } from '@backstage/catalog-model';
import { CustomErrorBase, InputError, NotAllowedError, NotFoundError } from '@backstage/errors';
import { AuthorizeResult, BasicPermission, ResourcePermission } from '@backstage/plugin-permission-common';
import {
  type BootPlan,
  failoverEntityRefs,
  readRecoveryPoint,
  RECOVERY_POINT_FORMAT,
  type RecoveryRun,
  RUN_ID_LABEL,
  recoveryCaptureCreatePermission,
  recoveryEventsCreatePermission,
  recoveryRunCreatePermission,
  recoveryRunFailoverPermission,
} from '@backstage-recovery/plugin-recovery-common';
import {
  describeValue,
  EVENT_FORMATS,
  EventFormat,
  EventParseError,
  MAX_NAME_LENGTH,
  parseEvents,
} from '@backstage-recovery/plugin-recovery-node';
import express from 'express';
import Router from 'express-promise-router';
import { EventStore } from '../database/EventStore';
import type { NightlyCheckStore } from '../database/NightlyCheckStore';
import { RecoveryStore } from '../database/RecoveryStore';
import { CatalogGraphLoader, normalizeRef } from '../plan/catalogGraph';
import { RunService } from '../run/RunService';
import { ACTIVE_RUN_STATUSES } from '../run/runState';
import { isRunVisible, listVisibleRuns } from '../run/visibleRuns';
import { AnalysisService, requireSystem } from './AnalysisService';
import { CaptureService, toApi } from './CaptureService';
import { nightlyCheckFrom } from './nightlyCheck';
import { PlanService } from './PlanService';
import { ReadinessService } from './ReadinessService';

export interface RouterOptions {
  httpAuth: HttpAuthService;
  permissions: PermissionsService;
  store: RecoveryStore;
  events: EventStore;
  analyses: AnalysisService;
  /** Largest accepted POST /events body, e.g. `10mb`. */
  maxEventsRequestSize: string;
  graphs: CatalogGraphLoader;
  plans: PlanService;
  captures: CaptureService;
  runs: RunService;
  readiness: ReadinessService;
  nightlyChecks: NightlyCheckStore;
}

/** The HTTP API: thin, every decision is in the services. */
export async function createRouter(options: RouterOptions): Promise<express.Router> {
  const { httpAuth, permissions, store, events, analyses, graphs, plans, captures, runs, readiness, nightlyChecks } =
    options;
  const router = Router();

  const authorize = async (req: express.Request, permission: BasicPermission) => {
    const credentials = await httpAuth.credentials(req);
    const [decision] = await permissions.authorize([{ permission }], { credentials });
    if (decision.result !== AuthorizeResult.ALLOW) {
      throw new NotAllowedError(`Missing permission ${permission.name}`);
    }
    return credentials;
  };

  // Exported logs come as they are (JSON lines), whatever the content type says.
  const eventsBody = express.text({ type: () => true, limit: options.maxEventsRequestSize });
  router.post('/events', async (req, res, next) => {
    // Permission first: a caller without it is told so, not that the body is too large, and no
    // body is held in memory for nothing.
    await authorize(req, recoveryEventsCreatePermission);
    eventsBody(req, res, (error?: { type?: string; length?: number; limit?: number; message: string }) => {
      // body-parser's "request entity too large" says neither the limit nor what to do about it.
      if (error?.type === 'entity.too.large') {
        // A compressed body is held to the limit once inflated: its length says nothing of that.
        const inflated = isCompressed(req) ? ' once decompressed' : '';
        error.message =
          `Request body${error.length === undefined ? '' : ` of ${error.length} bytes`}${inflated} is larger than ` +
          `recovery.events.maxRequestSize (${error.limit} bytes): push the log in smaller parts, or raise that setting`;
      }
      next(error);
    });
  });
  // The JSON bodies of the other POST routes (a GET's body is not read). One the JSON parser
  // leaves unread for its content type is refused: taken for no body, `fetch` sending a string
  // as text/plain, or `curl -d` as a form, would have POST /analysis analyse every system.
  const jsonOnly = (jsonBody: express.RequestHandler): express.RequestHandler => (req, res, next) => {
    if (req.method !== 'POST') {
      next();
      return;
    }
    jsonBody(req, res, error => {
      if (!error && !(req as { _body?: boolean })._body && hasContent(req)) {
        next(new UnsupportedMediaTypeError(`Request body must be JSON (Content-Type: application/json), got ${req.headers['content-type'] ?? 'no Content-Type'}`));
        return;
      }
      next(error);
    });
  };
  router.use(['/captures', '/runs', '/analysis'], jsonOnly(express.json({ limit: '1mb' })));
  // Runs, captures and analyses are of one entity: the policy decides on that entity (the
  // catalog applies conditions such as ownership).
  type EntityPermission = ResourcePermission<'catalog-entity'>;
  const permittedOn = async (credentials: BackstageCredentials, permission: EntityPermission, entityRefs: string[]) => {
    if (entityRefs.length === 0) return [];
    const decisions = await permissions.authorize(
      entityRefs.map(resourceRef => ({ permission, resourceRef })),
      { credentials },
    );
    return entityRefs.filter((_, i) => decisions[i].result === AuthorizeResult.ALLOW);
  };
  const authorizeOn = async (credentials: BackstageCredentials, permission: EntityPermission, entityRef: string) => {
    if ((await permittedOn(credentials, permission, [entityRef])).length === 0) {
      throw new NotAllowedError(`Missing permission ${permission.name} on ${entityRef}`);
    }
  };
  /**
   * A failover boots live copies of its plan's machines on production's subnets and keeps them:
   * starting or releasing one takes recovery.run.failover on each entity it boots
   * (failoverEntityRefs), not on the entity asked for alone, or a service's owners could bring up
   * a second live copy of another team's database machine. One batched call, so a policy's
   * conditions (ownership, say) are applied by the catalog to each entity. Lacking a permission on
   * the entity itself, the caller is told that alone; else the refusal names each booted entity
   * it lacks recovery.run.failover on that the catalog shows them, and counts the others.
   */
  const authorizeFailover = async (
    credentials: BackstageCredentials,
    /** The entity failed over and what it needs there; none once it has left the catalog. */
    root: { entityRef: string; permissions: EntityPermission[] } | undefined,
    /** What it boots besides; none to check the entity alone. */
    booted?: { refs: string[]; of: string; why: string },
  ) => {
    const own = root ? root.permissions.map(permission => ({ permission, resourceRef: root.entityRef })) : [];
    const others = booted?.refs.filter(ref => ref !== root?.entityRef) ?? [];
    if (own.length + others.length === 0) return;
    const decisions = await permissions.authorize(
      [...own, ...others.map(resourceRef => ({ permission: recoveryRunFailoverPermission, resourceRef }))],
      { credentials },
    );
    const allowed = (index: number) => decisions[index].result === AuthorizeResult.ALLOW;
    const ownDenied = own.filter((_, index) => !allowed(index));
    if (ownDenied.length > 0) {
      throw new NotAllowedError(`Missing permission ${ownDenied.map(c => c.permission.name).join(' and ')} on ${root!.entityRef}`);
    }
    const denied = others.filter((_, index) => !allowed(own.length + index));
    if (denied.length === 0) return;
    const named = await graphs.visibleTo(denied, credentials);
    const hidden = denied.length - named.length;
    const entities = (n: number) => `${n} ${n === 1 ? 'entity' : 'entities'}`;
    throw new NotAllowedError(
      `Missing permission ${recoveryRunFailoverPermission.name} on ${entities(denied.length)} ${booted!.of}: ` +
        [...named, ...(hidden > 0 ? [`${entities(hidden)} the catalog does not show you`] : [])].join(', ') +
        `. ${booted!.why}`,
    );
  };
  // The entity a request names, if the caller may see it in the catalog (else 404, as if absent).
  const entityRefFromPath = (req: express.Request, credentials: BackstageCredentials) =>
    graphs.requireVisible(refFromInput('path', `${req.params.kind}:${req.params.namespace}/${req.params.name}`), credentials);
  const entityRefFromBody = (body: Record<string, unknown>, credentials: BackstageCredentials) => {
    const ref = body.entityRef;
    if (typeof ref !== 'string' || ref.length === 0) {
      throw new InputError('Request body must have an entityRef, e.g. "component:default/web"');
    }
    return graphs.requireVisible(refFromInput('entityRef', ref), credentials);
  };
  const limitFrom = (req: express.Request) => {
    const text = req.query.limit;
    if (text === undefined) return 20;
    // `limit[]=5` and `limit=5&limit=6` come as arrays, whose Number() may still be an integer.
    if (typeof text !== 'string') {
      throw new InputError('Query parameter limit must be given once, an integer from 1 to 500');
    }
    const limit = Number(text);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) {
      throw new InputError(`limit must be an integer from 1 to 500, got "${text}"`);
    }
    return limit;
  };

  router.get('/health', (_req, res) => {
    res.json({ status: 'ok' });
  });

  router.get('/readiness', query('include'), async (req, res) => {
    const includePlan = includePlanFrom(req.query.include);
    const credentials = await httpAuth.credentials(req);
    const refs = await graphs.visibleTo(await graphs.recoverableEntities(), credentials);
    res.json({ items: await readiness.readinessOf(refs, credentials, { includePlan }) });
  });

  router.get('/readiness/:kind/:namespace/:name', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    res.json(await readiness.readiness(await entityRefFromPath(req, credentials), credentials));
  });

  // The nightly check records what it did about each entity, for readiness to show (nightlyCheck):
  // as it goes (`partial`), those it knows so far (none: a heartbeat, that it is still under way),
  // then the night whole once it ends. That last body names every entity the check covers, so it
  // may be larger than one entity's request.
  const nightlyBody = jsonOnly(express.json({ limit: NIGHTLY_CHECK_BODY_LIMIT }));
  router.post(
    '/nightly-check',
    async (req, _res, next) => {
      const credentials = await httpAuth.credentials(req);
      // Only the scheduler module, calling as this plugin (from any replica), and checked before the
      // body is read: the outcomes are the check's own account of a night. No permission grants
      // that: recovery.run.create on an entity would let its owners record it covered or left
      // out, hiding the refusal its page is there to show.
      if (!isOwnScheduler(credentials.principal)) {
        throw new NotAllowedError(`Only the recovery plugin's nightly check records its outcomes, not ${principalName(credentials.principal) ?? 'this caller'}`);
      }
      next();
    },
    nightlyBody,
    query(),
    async (req, res) => {
      const night = nightlyCheckFrom(bodyFrom(req, ['checkedAt', 'outcomes', 'partial', 'entities']), (field, ref) => refFromInput(field, ref));
      await nightlyChecks.record(night);
      res.status(201).json({ checkedAt: night.checkedAt, recorded: night.outcomes.length });
    },
  );

  router.get('/plan/:kind/:namespace/:name', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const { plan, planError, graph, disagreements } = await plans.plan(await entityRefFromPath(req, credentials), credentials);
    if (!plan) throw new InputError(planError);
    res.json({ ...plan, problems: graph.problems, disagreements });
  });

  router.post('/captures', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const body = bodyFrom(req, ['entityRef', 'machineRef']);
    const entityRef = await entityRefFromBody(body, credentials);
    if (body.machineRef !== undefined && typeof body.machineRef !== 'string') {
      throw new InputError(`machineRef must be a string, got ${describeValue(body.machineRef)}`);
    }
    const machineRef = body.machineRef === undefined ? undefined : refFromInput('machineRef', body.machineRef, 'resource');
    await authorizeOn(credentials, recoveryCaptureCreatePermission, entityRef);
    res.status(201).json({ items: await captures.captureEntity(entityRef, machineRef) });
  });

  router.get('/captures', query('machineRef', 'limit'), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const machineRef = req.query.machineRef;
    if (typeof machineRef !== 'string') {
      throw new InputError('Query parameter machineRef is required, e.g. resource:default/web-01');
    }
    const ref = await graphs.requireVisible(refFromInput('machineRef', machineRef, 'resource'), credentials);
    const items = await store.listCaptures(ref, limitFrom(req));
    res.json({ items: items.map(toApi) });
  });

  router.post('/events', query('format', 'source', 'lenient'), async (req, res) => {
    const format = req.query.format;
    if (format !== undefined && !EVENT_FORMATS.includes(format as EventFormat)) {
      throw new InputError(`format must be one of ${EVENT_FORMATS.join(', ')}, got "${format}"`);
    }
    const source = sourceFrom(req.query.source);
    const text = typeof req.body === 'string' ? req.body : '';
    let parsed;
    try {
      parsed = parseEvents(text, {
        format: format as EventFormat | undefined,
        source,
        lenient: lenientFrom(req.query.lenient),
        received: { at: Date.now(), marginMs: FUTURE_EVENT_MARGIN_MS },
      });
    } catch (error) {
      if (error instanceof EventParseError) throw new InputError(error.message);
      throw error;
    }
    if (parsed.events.length === 0) {
      const lines = text.split('\n').filter(l => l.trim()).length;
      // Say where the lines went: all skipped (lenient) hides the error that would explain it.
      throw new InputError(
        `${source}: no initialization events in ${lines} lines (formats: ${EVENT_FORMATS.join(', ')}); ` +
          `${parsed.skipped} skipped as malformed, ${parsed.ignored} ignored as not initialization events` +
          (parsed.skipped > 0 ? '; retry without lenient=true to see the first malformed line' : ''),
      );
    }
    const stored = await events.insertEvents(parsed.events, `api:${source}`);
    res.status(201).json({
      format: parsed.format,
      received: parsed.events.length,
      stored,
      duplicates: parsed.events.length - stored,
      ignored: parsed.ignored,
      skipped: parsed.skipped,
      warnings: parsed.warnings,
    });
  });

  router.post('/analysis', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    // Anything but an object (`[]`, say) is a mistake, not a request for the sweep of every system.
    const ref = bodyFrom(req, ['entityRef']).entityRef;
    if (ref !== undefined) {
      if (typeof ref !== 'string') throw new InputError('entityRef must be a string');
      // Analyses are per system: `shop` is system:default/shop, not a component of that name.
      const systemRef = await graphs.requireVisible(refFromInput('entityRef', ref, 'system'), credentials);
      await authorizeOn(credentials, recoveryCaptureCreatePermission, systemRef);
      const analysis = await analyses.analyzeSystem(systemRef);
      res.status(201).json(await analyses.asSeenBy(analysis, credentials));
      return;
    }
    // The sweep: every system the caller may analyse.
    res.status(201).json(await analyses.sweep(credentials, refs => permittedOn(credentials, recoveryCaptureCreatePermission, refs)));
  });

  router.get('/analysis/:kind/:namespace/:name', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const ref = await entityRefFromPath(req, credentials);
    // As POST says: a 404 would suggest an analysis of it may come.
    requireSystem(ref);
    // Only the parts the caller may see in the catalog: the analysis names all of the system's.
    const analysis = await analyses.latestFor(ref, credentials);
    if (!analysis) throw new NotFoundError(`No dependency analysis of ${ref} yet`);
    res.json(analysis);
  });

  router.post('/runs', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const body = bodyFrom(req, ['entityRef', 'mode', 'acceptMissingDependencies', 'recoveryPoint', 'options']);
    // Only an absent mode is the default: null is no mode.
    const mode = body.mode === undefined ? 'test' : body.mode;
    if (mode !== 'test' && mode !== 'failover') {
      throw new InputError(`mode must be "test" or "failover", got ${describeValue(mode)}`);
    }
    const options = (body.options ?? {}) as { reverseBootOrder?: unknown };
    if (typeof options !== 'object' || Array.isArray(options)) {
      throw new InputError('options must be an object');
    }
    // A misspelt option would otherwise run without it.
    refuseUnknown(Object.keys(options), ['reverseBootOrder'], 'options', 'option');
    const { acceptMissingDependencies = false } = body;
    if (typeof acceptMissingDependencies !== 'boolean') {
      throw new InputError(`acceptMissingDependencies must be a boolean, got ${describeValue(acceptMissingDependencies)}`);
    }
    const recoveryPoint = recoveryPointFrom(body.recoveryPoint);
    const entityRef = await entityRefFromBody(body, credentials);
    // A failover is not isolated from production: it needs its own grant, on the entity and on
    // all it boots, checked on the plan the run makes (the entity first, so a caller without the
    // grant learns nothing of its plan).
    if (mode === 'failover') {
      const permissionsOnEntity = [recoveryRunCreatePermission, recoveryRunFailoverPermission];
      await authorizeFailover(credentials, { entityRef, permissions: permissionsOnEntity });
    } else {
      await authorizeOn(credentials, recoveryRunCreatePermission, entityRef);
    }
    const authorizePlan =
      mode === 'failover'
        ? (plan: BootPlan) =>
            authorizeFailover(credentials, undefined, {
              refs: failoverEntityRefs(plan).filter(ref => ref !== entityRef),
              of: `of the boot plan of ${entityRef}`,
              why:
                "A failover boots live copies of them on production's subnets and keeps them: it needs that permission on each " +
                `machine and service it boots, not only on ${entityRef}. A test recovery (an isolated lab) needs ${recoveryRunCreatePermission.name} on ${entityRef} alone`,
            })
        : undefined;
    const run = await runs.start({
      entityRef,
      mode,
      trigger: isOwnScheduler(credentials.principal) ? 'schedule' : 'user',
      createdBy: principalName(credentials.principal),
      options: reverseBootOrderFrom(options.reverseBootOrder),
      acceptMissingDependencies,
      recoveryPoint,
      credentials,
      authorizePlan,
    });
    res.status(202).json(await plans.runSeenBy(run, credentials));
  });

  router.get('/runs', query('entityRef', 'active', 'limit', 'before'), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const entityRef = req.query.entityRef;
    if (entityRef !== undefined && typeof entityRef !== 'string') {
      throw new InputError('Query parameter entityRef must be given once, e.g. component:default/web');
    }
    // Only `true`: `active=false` could be read as "finished runs only", which this does not filter.
    const active = req.query.active;
    if (active !== undefined && active !== 'true') {
      throw new InputError(`Query parameter active must be "true" when given, got ${describeValue(active)}`);
    }
    const limit = limitFrom(req);
    const before = req.query.before;
    if (before !== undefined && (typeof before !== 'string' || before.length === 0)) {
      throw new InputError('Query parameter before must be given once, the id of a run');
    }
    // The next page of a history: the runs after this one, newest first (the store's keyset).
    // A run the caller may not see is as unknown as one that does not exist.
    const beforeRun = before === undefined ? undefined : await store.getRun(before);
    if (before !== undefined && (!beforeRun || !(await isRunVisible(beforeRun, refs => graphs.visibleTo(refs, credentials))))) {
      throw new InputError(`Query parameter before: no run "${before}"`);
    }
    const after = beforeRun && { createdAt: beforeRun.createdAt, id: beforeRun.id };
    const query = {
      // One entity's runs: the same 404 as its other answers if the caller may not see it.
      entityRef: entityRef === undefined ? undefined : await graphs.requireVisible(refFromInput('entityRef', entityRef), credentials),
      // What holds the hypervisor host: the entity card checks it before offering a run.
      status: active ? ACTIVE_RUN_STATUSES : undefined,
    };
    // Each run's plan warnings as this caller may read them (runSeenBy).
    const seenBy = (items: RecoveryRun[]) => Promise.all(items.map(run => plans.runSeenBy(run, credentials)));
    if (query.entityRef) {
      res.json({ items: await seenBy(await store.listRuns({ ...query, limit, after })) });
      return;
    }
    // Runs of any entity: only those of entities the caller may see in the catalog (console
    // tails and plans tell about them), a page of `limit` of them, after `before`; see
    // listVisibleRuns. So the active runs are those the caller may see: a hidden one may hold the
    // host all the same.
    res.json({ items: await seenBy(await listVisibleRuns(store, { ...query, after }, limit, refs => graphs.visibleTo(refs, credentials))) });
  });

  router.get('/runs/:id', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    const run = await store.getRun(req.params.id);
    // A run of an entity the caller may not see answers as one that does not exist: its
    // existence, console tails and plan are not theirs to read.
    if (!run || !(await isRunVisible(run, refs => graphs.visibleTo(refs, credentials)))) {
      throw new NotFoundError(`Run ${req.params.id} not found`);
    }
    res.json(await plans.runSeenBy(run, credentials));
  });

  // Ends a finished failover's tenure on its host (failback done): see RunService.releaseFailover.
  router.post('/runs/:id/release', query(), async (req, res) => {
    const credentials = await httpAuth.credentials(req);
    bodyFrom(req, []);
    const run = await store.getRun(req.params.id);
    if (!run) throw new NotFoundError(`Run ${req.params.id} not found`);
    // What a failover booted serves production: removing it takes the grant starting one does, on
    // what its record names (its entity, its machines and their services) that the catalog still
    // holds. Its entity may have left the catalog since (production is gone): then its machines
    // and services decide, and the run is the caller's to release if the catalog shows them one.
    const booted = failoverEntityRefs(run.plan);
    const held = await graphs.heldRefs([run.entityRef, ...booted]);
    const entityHeld = held.includes(run.entityRef);
    // As GET /runs/:id: a run of an entity the caller may not see does not exist for them.
    const visible = entityHeld
      ? await isRunVisible(run, refs => graphs.visibleTo(refs, credentials))
      : held.length === 0 || (await graphs.visibleTo(held, credentials)).length > 0;
    if (!visible) throw new NotFoundError(`Run ${req.params.id} not found`);
    if (held.length === 0) {
      // No entity left to ask the policy about: no grant can cover it.
      throw new NotAllowedError(
        `Run ${run.id} cannot be released through the API: neither its entity nor any machine or service it booted is in the ` +
          `catalog any more, so no one's ${recoveryRunFailoverPermission.name} can be checked on them. Remove what it kept on ` +
          `hypervisor host '${run.hypervisorHost}' by hand: everything labelled ${RUN_ID_LABEL}=${run.id}`,
      );
    }
    await authorizeFailover(
      credentials,
      entityHeld ? { entityRef: run.entityRef, permissions: [recoveryRunFailoverPermission] } : undefined,
      {
        refs: booted.filter(ref => held.includes(ref)),
        of: `that failover ${run.id} booted`,
        why: `Releasing it removes their live copies from production: it needs that permission on each of them still in the catalog`,
      },
    );
    const released = await runs.releaseFailover(run.id, principalName(credentials.principal));
    res.json(await plans.runSeenBy(released, credentials));
  });

  // No error handler of its own: errors reach the one Backstage's httpRouter applies after the
  // plugin's routes, built from the root config and logger, so error bodies follow the backend's
  // settings (stack traces only where Backstage shows them). Only the refusals of the body
  // parsers and of the path's decoding are said first as the routes' own.
  router.use((error: unknown, req: express.Request, _res: express.Response, next: express.NextFunction) => {
    next(asRequestError(error, req));
  });
  return router;
}

/** Largest `POST /nightly-check` body: a night's outcomes, a few hundred bytes an entity. */
const NIGHTLY_CHECK_BODY_LIMIT = '10mb';

/** 415: a request body in a content type, charset or encoding the route does not read. */
class UnsupportedMediaTypeError extends CustomErrorBase {
  name = 'UnsupportedMediaTypeError' as const;
  // Backstage's error handler maps only the names it knows: this one keeps its status.
  readonly statusCode = 415;
}

/** Whether the request says it has a body: of a length over 0, or chunked. */
function hasContent(req: express.Request): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length']) > 0;
}

function isCompressed(req: express.Request): boolean {
  const encoding = req.headers['content-encoding'];
  return encoding !== undefined && encoding.toLowerCase() !== 'identity';
}

/**
 * A body parser's refusal (body-parser's, or zlib's through it) or an undecodable path, as an
 * InputError or UnsupportedMediaTypeError saying what was wrong: theirs carry fields the error
 * handler would serialize (the malformed body echoed back, zlib's errno), and a name no client
 * knows. 413s keep body-parser's documented fields; any other error passes unchanged.
 */
function asRequestError(error: unknown, req: express.Request): unknown {
  const e = error as { status?: unknown; expose?: unknown; type?: unknown; message?: string; code?: unknown };
  const refused = typeof e?.status === 'number' && e.status >= 400 && e.status < 500 && e.status !== 413;
  if (!refused || !(e.expose === true || error instanceof URIError)) return error;
  if (error instanceof URIError) return new InputError(`path: ${e.message}: not percent-encoded UTF-8`);
  const encoding = req.headers['content-encoding'];
  switch (e.type) {
    case 'entity.parse.failed':
      return new InputError(`Request body must be a JSON object: ${e.message}`);
    case 'charset.unsupported':
      return new UnsupportedMediaTypeError(`Request body: ${e.message}; send it as UTF-8`);
    case 'encoding.unsupported':
      return new UnsupportedMediaTypeError(`Request body: ${e.message}; send it uncompressed, or with Content-Encoding gzip or deflate`);
    default:
      if (typeof e.code === 'string' && e.code.startsWith('Z_')) {
        return new InputError(`Request body could not be decompressed (Content-Encoding ${encoding}): ${e.message}`);
      }
      return new InputError(`Request body: ${e.message}`);
  }
}

/**
 * How far past this backend's clock a pushed event may be dated (on the reference clock where the
 * push holds a reading of its machine's clock, else as its machine's clock dated it). Later, it is
 * refused: stored, it would stay its machine's newest for good (retention keeps the newest), and
 * each analysis would weigh boots against it. A day, so that machines' skews of minutes or hours,
 * which the analysis corrects with clock lines, and local times written as UTC (up to 14 h ahead:
 * UTC+14) are still taken.
 */
export const FUTURE_EVENT_MARGIN_MS = 86_400_000;

/** The stored source is `api:<source>`, in a varchar(255) column like the names the parser checks. */
const MAX_SOURCE_LENGTH = MAX_NAME_LENGTH - 'api:'.length;

/** Names the pushed events in messages and in the store; 400 for what the store cannot hold. */
function sourceFrom(value: unknown): string {
  if (value === undefined) return 'request body';
  if (typeof value !== 'string') throw new InputError('Query parameter source must be given once');
  // PostgreSQL counts characters (code points) and refuses NUL in text.
  const length = [...value].length;
  if (length === 0 || length > MAX_SOURCE_LENGTH) {
    throw new InputError(`Query parameter source must be 1 to ${MAX_SOURCE_LENGTH} characters long, got ${length}`);
  }
  if (value.includes('\0')) throw new InputError('Query parameter source must not contain NUL characters');
  return value;
}

/** The JSON body, an object (or none: `{}`) of these fields only; anything else is a 400. */
function bodyFrom(req: express.Request, fields: string[]): Record<string, unknown> {
  const body: unknown = req.body ?? {};
  if (typeof body !== 'object' || Array.isArray(body)) {
    throw new InputError(`Request body must be a JSON object, got ${describeValue(body)}`);
  }
  // A misspelt field would otherwise be ignored: `Mode: "failover"` would run a test.
  refuseUnknown(Object.keys(body as object), fields, 'Request body', 'field');
  return body as Record<string, unknown>;
}

/** A 400 naming the keys `where` does not take (of `known`, its `noun`s), where there are any. */
function refuseUnknown(keys: string[], known: string[], where: string, noun: string): void {
  const unknown = keys.filter(key => !known.includes(key));
  if (unknown.length === 0) return;
  const takes =
    known.length === 0 ? `it takes no ${noun}s` : known.length === 1 ? `the only ${noun} is ${known[0]}` : `the ${noun}s are ${known.join(', ')}`;
  throw new InputError(`${where}: unknown ${unknown.map(k => `"${k}"`).join(', ')}; ${takes}`);
}

/**
 * The query parameters a route reads; any other is a 400: a misspelt one would otherwise be
 * ignored, and `GET /runs?entity=…` list every run.
 */
function query(...names: string[]): express.RequestHandler {
  return (req, _res, next) => {
    const unknown = Object.keys(req.query).filter(key => !names.includes(key));
    if (unknown.length === 0) {
      next();
      return;
    }
    const known = names.length === 0 ? 'it takes none' : `it takes ${names.join(', ')}`;
    next(new InputError(`Unknown query parameter ${unknown.map(k => `"${k}"`).join(', ')} for ${req.method} ${req.baseUrl}${req.path}; ${known}`));
  };
}

/** `include=plan`: the overview's items with their plans in full (the nightly check's), not just their machine counts. */
function includePlanFrom(value: unknown): boolean {
  if (value === undefined) return false;
  if (value === 'plan') return true;
  throw new InputError(`Query parameter include must be "plan" when given, got ${describeValue(value)}`);
}

/** `lenient`: true or false, as `true`/`1` or `false`/`0`; anything else is a 400 rather than strict. */
function lenientFrom(value: unknown): boolean {
  if (value === undefined || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1') return true;
  throw new InputError(`Query parameter lenient must be true, false, 1 or 0 when given, got ${describeValue(value)}`);
}

/** Only `true` is a test hook; `false` is the default, so it asks for nothing and is always allowed. */
function reverseBootOrderFrom(value: unknown): { reverseBootOrder?: true } {
  if (value === undefined || value === false) return {};
  if (value === true) return { reverseBootOrder: true };
  throw new InputError(`options.reverseBootOrder must be a boolean, got ${describeValue(value)}`);
}

/**
 * The recovery point of POST /runs, as the instant in UTC; absent: none (the latest captures). A
 * time without its zone (or one that does not exist: what is wrong named), or ahead of this
 * backend's clock (no capture is of it), is a 400.
 */
function recoveryPointFrom(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const read = typeof value === 'string' ? readRecoveryPoint(value) : undefined;
  if (!read || 'problem' in read) {
    throw new InputError(`recoveryPoint must be ${RECOVERY_POINT_FORMAT}, got ${describeValue(value)}${read ? `: ${read.problem}` : ''}`);
  }
  const { point } = read;
  const now = new Date();
  if (Date.parse(point) > now.getTime()) {
    throw new InputError(`recoveryPoint ${value} is in the future (the backend's clock reads ${now.toISOString()}): no capture is of it yet`);
  }
  return point;
}

const validators = makeValidator();

/**
 * An entity ref from the request, normalized; a malformed one is the caller's error (400), named
 * by its field. The parser takes any text after the separators (`bad::ref` parses, as the name
 * `:ref`): its parts are held to what the catalog accepts, or it would just match nothing.
 */
function refFromInput(field: string, ref: string, defaultKind?: string): string {
  let normalized: string;
  try {
    normalized = normalizeRef(ref, defaultKind);
  } catch (error) {
    throw new InputError(`${field}: ${(error as Error).message}`);
  }
  const { kind, namespace, name } = parseEntityRef(normalized);
  const invalid = [
    validators.isValidKind(kind) ? undefined : `kind "${kind}"`,
    validators.isValidNamespace(namespace) ? undefined : `namespace "${namespace}"`,
    validators.isValidEntityName(name) ? undefined : `name "${name}"`,
  ].filter(Boolean);
  if (invalid.length > 0) {
    throw new InputError(`${field}: Entity reference "${ref}" has an invalid ${invalid.join(' and ')}`);
  }
  return normalized;
}

/** Who asked: a user's entity ref, a service's subject, or an external caller's subject. */
function principalName(principal: unknown): string | undefined {
  const p = principal as { userEntityRef?: string; subject?: string };
  return p?.userEntityRef ?? p?.subject;
}

/** The scheduler module calls as the recovery plugin itself. */
function isOwnScheduler(principal: unknown): boolean {
  const p = principal as { type?: string; subject?: string };
  return p?.type === 'service' && p.subject === 'plugin:recovery';
}
