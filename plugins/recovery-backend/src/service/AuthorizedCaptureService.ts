import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { NotFoundError } from '@backstage/errors';
import {
  type Capture,
  type CaptureRequest,
  recoveryCaptureCreatePermission,
} from '@backstage-recovery/plugin-recovery-common';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { namingAny, refsInText } from '../plan/mentions';
import { healthOutputsSeenBy } from '../run/consoleTails';
import { machinesToCapture } from './capture/entityCapture';
import type { CaptureRequestEnd, CaptureService } from './CaptureService';
import type { PlanService } from './PlanService';
import { missingOnEach, type RecoveryAuthorizer } from './RecoveryAuthorizer';

/**
 * The captures as a caller may take and read them: CaptureService with the caller's view of the
 * catalog (an entity they may not see is a 404, as if absent) and grants (recovery.capture.create
 * on the entity captured and on each machine it captures), as AuthorizedRunService is to runs.
 * The HTTP API and the scheduler's tasks both capture through it.
 */
export class AuthorizedCaptureService {
  constructor(
    private readonly captures: Pick<
      CaptureService,
      | 'captureEntity'
      | 'requestCapture'
      | 'captureRequest'
      | 'listCaptures'
      | 'countCaptures'
    >,
    private readonly authorizer: Pick<
      RecoveryAuthorizer,
      'authorizeOn' | 'permittedOn'
    >,
    private readonly graphs: Pick<
      CatalogGraphLoader,
      'requireVisible' | 'visibleTo' | 'seenAndWithheld'
    >,
    /** The plan whose machines a capture of an entity takes (as CaptureService finds them). */
    private readonly plans: Pick<PlanService, 'plan'>,
  ) {}

  /** CaptureService.captureEntity, waited for: the scheduled capture of a machine. */
  async capture(
    credentials: BackstageCredentials,
    entityRef: string,
    machineRef?: string,
  ): Promise<Capture[]> {
    const machines = await this.admit(credentials, entityRef, machineRef);
    return this.seenBy(
      await this.captures.captureEntity(entityRef, machineRef, machines),
      credentials,
    );
  }

  /** CaptureService.requestCapture: taken in the background, polled by `request`. */
  async requestCapture(
    credentials: BackstageCredentials,
    entityRef: string,
    machineRef: string | undefined,
    ended: (end: CaptureRequestEnd) => Promise<void>,
  ): Promise<CaptureRequest> {
    const machines = await this.admit(credentials, entityRef, machineRef);
    return this.captures.requestCapture(entityRef, machineRef, ended, machines);
  }

  /**
   * A capture request, if of an entity the caller may see (else a 404, as one there is not), as
   * they may see it (requestSeenBy): the catalog asked once, for the entity and all it names.
   */
  async request(
    requestId: string,
    credentials: BackstageCredentials,
  ): Promise<CaptureRequest> {
    const request = await this.captures.captureRequest(requestId);
    const view =
      request &&
      (await this.graphs.seenAndWithheld(
        [...new Set([request.entityRef, ...refsNamedIn(request)])],
        credentials,
      ));
    if (!request || !view?.seen.includes(request.entityRef))
      throw new NotFoundError(`No capture request ${requestId}`);
    const withheld = new Set(view.withheld);
    const shown = requestSeenBy(request, ref => !withheld.has(ref));
    const kept = capturesIn(shown.error);
    // One policy call for the captures it took and those its error keeps.
    const read = await this.seenBy([...shown.captures, ...kept], credentials);
    return {
      ...shown,
      captures: read.slice(0, shown.captures.length),
      ...(kept.length > 0 && {
        error: { ...shown.error!, captures: read.slice(shown.captures.length) },
      }),
    };
  }

  /** A machine's last `limit` captures, newest first, if the caller may see the machine. */
  async list(
    credentials: BackstageCredentials,
    machineRef: string,
    limit: number,
  ): Promise<Capture[]> {
    const ref = await this.graphs.requireVisible(machineRef, credentials);
    return this.seenBy(
      await this.captures.listCaptures(ref, limit),
      credentials,
    );
  }

  /**
   * A page of a machine's captures, newest first (`GET /captures`), if the caller may see the
   * machine: `limit` of them after `after`, how many are kept in all, and where the next page
   * starts (absent on the last).
   */
  async listPage(
    credentials: BackstageCredentials,
    machineRef: string,
    page: { limit: number; after?: Pick<Capture, 'createdAt' | 'id'> },
  ): Promise<{ items: Capture[]; totalItems: number; next?: Capture }> {
    const ref = await this.graphs.requireVisible(machineRef, credentials);
    // One more than asked tells whether a next page holds any.
    const [read, totalItems] = await Promise.all([
      this.captures.listCaptures(ref, page.limit + 1, page.after),
      this.captures.countCaptures(ref),
    ]);
    const items = await this.seenBy(read.slice(0, page.limit), credentials);
    return {
      items,
      totalItems,
      ...(read.length > page.limit && { next: items.at(-1) }),
    };
  }

  /** Captures as the caller may read them: each health check's output only with recovery.run.logs.read on its machine. */
  private seenBy(
    captures: Capture[],
    credentials: BackstageCredentials,
  ): Promise<Capture[]> {
    return healthOutputsSeenBy(captures, credentials, this.authorizer);
  }

  /**
   * The entity, if the caller may see it, and their grant to capture it, then to capture each
   * machine the capture takes (its plan's, or `machineRef` alone): a capture pauses each in
   * production, so a service's owners may not pause another team's machine their service depends
   * on. Lacking it on any, nothing is captured (a 403 naming those the catalog shows them), as a
   * failover is refused whole: a capture of the entity is one recovery point of its whole plan,
   * and one taken in part would read as complete. Their own machines they capture one at a time.
   * Answers the machines authorized: those the capture takes, the plan read once.
   */
  private async admit(
    credentials: BackstageCredentials,
    entityRef: string,
    machineRef: string | undefined,
  ): Promise<MachineLocator[]> {
    await this.graphs.requireVisible(entityRef, credentials);
    await this.authorizer.authorizeOn(
      credentials,
      recoveryCaptureCreatePermission,
      entityRef,
    );
    // The plan is read with the plugin's view: a 400 names only its machines the caller sees.
    const locators = await machinesToCapture(
      this.plans,
      entityRef,
      machineRef,
      refs => this.graphs.visibleTo(refs, credentials),
    );
    const machines = locators
      .map(locator => locator.machineRef)
      .filter(ref => ref !== entityRef);
    const permitted = new Set(
      await this.authorizer.permittedOn(
        credentials,
        recoveryCaptureCreatePermission,
        machines,
      ),
    );
    const denied = machines.filter(ref => !permitted.has(ref));
    if (denied.length === 0) return locators;
    throw missingOnEach(
      recoveryCaptureCreatePermission,
      denied,
      await this.graphs.visibleTo(denied, credentials),
      `of the boot plan of ${entityRef}${machineRef === undefined ? '' : ' asked for (machineRef)'}`,
      `A capture pauses each machine it takes in production: it needs that permission on each machine it captures, not only on ${entityRef}${
        machineRef === undefined
          ? '. Capture the machines you may one at a time (machineRef)'
          : ''
      }`,
    );
  }
}

/** What a capture request's answer says in place of what it says of machines hidden from the caller. */
const LEFT_OUT =
  'what it says of machines the catalog does not show you is left out';

/** The machines a failure (a CaptureFailedError's `failed`) lists, as the answer keeps them. */
type FailedMachine = {
  machineRef: string;
  error: { name: string; message: string };
};

const failedIn = (error: CaptureRequest['error']): FailedMachine[] =>
  Array.isArray(error?.failed) ? (error.failed as FailedMachine[]) : [];

const capturesIn = (error: CaptureRequest['error']): Capture[] =>
  Array.isArray(error?.captures) ? (error.captures as Capture[]) : [];

/** The entity refs a capture request's answer names: its machines, their captures, its error's words. */
function refsNamedIn(request: CaptureRequest): string[] {
  return [
    ...(request.machineRef ? [request.machineRef] : []),
    ...request.machineRefs,
    ...request.captures.map(c => c.machineRef),
    ...failedIn(request.error).map(f => f.machineRef),
    ...capturesIn(request.error).map(c => c.machineRef),
    ...(request.error ? refsInText(JSON.stringify(request.error)) : []),
  ];
}

/**
 * A capture request as a caller who sees its entity may see it. It was taken with the plugin's view
 * of the catalog, for whoever asked: an entity's request names every machine of its plan, some of
 * which the catalog may hide from this caller. Those machines, their captures and failures are left
 * out, and a message naming one is told again from what is left; what the request was (its status,
 * times, HTTP status) stays, as readiness keeps of a run it hides. A ref the catalog no longer holds
 * (a machine's name before a rename, on its container's label) is told, as readiness tells it.
 */
function requestSeenBy(
  request: CaptureRequest,
  visible: (ref: string) => boolean,
): CaptureRequest {
  const hidden = [...new Set(refsNamedIn(request))].filter(r => !visible(r));
  if (hidden.length === 0) return request;
  const namesHidden = namingAny(hidden);
  const shown = <T extends { machineRef: string }>(items: T[]) =>
    items.filter(i => visible(i.machineRef));
  const { machineRef, statusCode, error, ...rest } = request;
  const seen: CaptureRequest = {
    ...rest,
    ...(machineRef !== undefined && visible(machineRef) && { machineRef }),
    machineRefs: request.machineRefs.filter(visible),
    captures: shown(request.captures),
  };
  if (!error) return seen;
  const failed = shown(failedIn(error)).map(f =>
    namesHidden(f.error.message)
      ? {
          ...f,
          error: {
            name: f.error.name,
            message: `capture of ${f.machineRef} failed (${LEFT_OUT})`,
          },
        }
      : f,
  );
  const kept = shown(capturesIn(error));
  // Its other fields (a cause, a store's directory) as they were, unless they name one.
  const others = Object.fromEntries(
    Object.entries(error).filter(
      ([field, value]) =>
        !['name', 'message', 'failed', 'captures'].includes(field) &&
        !namesHidden(JSON.stringify(value) ?? ''),
    ),
  );
  const said = failed.map(
    f => `${f.machineRef}: ${f.error.name}: ${f.error.message}`,
  );
  if (kept.length > 0)
    said.push(`captured, and kept: ${kept.map(c => c.machineRef).join(', ')}`);
  return {
    ...seen,
    statusCode,
    error: {
      ...others,
      name: error.name,
      message: namesHidden(error.message)
        ? `capture of ${request.entityRef} failed${said.length > 0 ? `: ${said.join('; ')}` : ''} (${LEFT_OUT})`
        : error.message,
      ...(Array.isArray(error.failed) && { failed }),
      ...(Array.isArray(error.captures) && { captures: kept }),
    },
  };
}
