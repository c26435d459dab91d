import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { NotFoundError } from '@backstage/errors';
import {
  type Capture,
  type CaptureRequest,
  recoveryCaptureCreatePermission,
} from '@backstage-recovery/plugin-recovery-common';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import type { CaptureRequestEnd, CaptureService } from './CaptureService';
import type { RecoveryAuthorizer } from './RecoveryAuthorizer';

/**
 * The captures as a caller may take and read them: CaptureService with the caller's view of the
 * catalog (an entity they may not see is a 404, as if absent) and grants (recovery.capture.create
 * on the entity captured), as AuthorizedRunService is to runs. The HTTP API and the scheduler's
 * tasks both capture through it.
 */
export class AuthorizedCaptureService {
  constructor(
    private readonly captures: Pick<
      CaptureService,
      'captureEntity' | 'requestCapture' | 'captureRequest' | 'listCaptures'
    >,
    private readonly authorizer: Pick<RecoveryAuthorizer, 'authorizeOn'>,
    private readonly graphs: Pick<
      CatalogGraphLoader,
      'requireVisible' | 'visibleTo'
    >,
  ) {}

  /** CaptureService.captureEntity, waited for: the scheduled capture of a machine. */
  async capture(
    credentials: BackstageCredentials,
    entityRef: string,
    machineRef?: string,
  ): Promise<Capture[]> {
    await this.admit(credentials, entityRef);
    return this.captures.captureEntity(entityRef, machineRef);
  }

  /** CaptureService.requestCapture: taken in the background, polled by `request`. */
  async requestCapture(
    credentials: BackstageCredentials,
    entityRef: string,
    machineRef: string | undefined,
    ended: (end: CaptureRequestEnd) => Promise<void>,
  ): Promise<CaptureRequest> {
    await this.admit(credentials, entityRef);
    return this.captures.requestCapture(entityRef, machineRef, ended);
  }

  /** A capture request, if of an entity the caller may see; else a 404, as one there is not. */
  async request(
    requestId: string,
    credentials: BackstageCredentials,
  ): Promise<CaptureRequest> {
    const request = await this.captures.captureRequest(requestId);
    const visible =
      request &&
      (await this.graphs.visibleTo([request.entityRef], credentials)).length >
        0;
    if (!request || !visible)
      throw new NotFoundError(`No capture request ${requestId}`);
    return request;
  }

  /** A machine's last `limit` captures, newest first, if the caller may see the machine. */
  async list(
    credentials: BackstageCredentials,
    machineRef: string,
    limit: number,
  ): Promise<Capture[]> {
    const ref = await this.graphs.requireVisible(machineRef, credentials);
    return this.captures.listCaptures(ref, limit);
  }

  /** The entity, if the caller may see it, and their grant to capture it. */
  private async admit(
    credentials: BackstageCredentials,
    entityRef: string,
  ): Promise<void> {
    await this.graphs.requireVisible(entityRef, credentials);
    await this.authorizer.authorizeOn(
      credentials,
      recoveryCaptureCreatePermission,
      entityRef,
    );
  }
}
