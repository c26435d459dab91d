import { AuthService, DiscoveryService } from '@backstage/backend-plugin-api';
import type { Capture, RecoveryRun } from '@backstage-recovery/plugin-recovery-common';

/** The part of the recovery API the scheduled tasks drive. */
export interface ScheduledRecoveryApi {
  capture(entityRef: string): Promise<Capture[]>;
  startRun(entityRef: string): Promise<RecoveryRun>;
  getRun(runId: string): Promise<RecoveryRun>;
  /** Analyses the boot history of every system. */
  analyzeSystems(): Promise<{ analysed: string[]; failed: Array<{ entityRef: string; message: string }> }>;
}

/**
 * The name of the backend's error when the hypervisor host is busy with another run. It shares
 * 409 with refusals that waiting does not cure, such as a machine never captured.
 */
export const HOST_BUSY_ERROR_NAME = 'HypervisorHostBusyError';

/** A non-2xx answer of the recovery backend, keeping what callers need to tell busy from broken. */
export class RecoveryApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    /** The name of the backend's error (`error.name` of the body), when it gave one. */
    readonly errorName?: string,
  ) {
    super(message);
    this.name = 'RecoveryApiError';
  }
}

/**
 * Calls the recovery backend over HTTP with this module's service credentials, so tasks go
 * through the same admission, permission and persistence as a user's request.
 */
export class RecoveryBackendClient implements ScheduledRecoveryApi {
  constructor(
    private readonly discovery: DiscoveryService,
    private readonly auth: AuthService,
  ) {}

  async capture(entityRef: string): Promise<Capture[]> {
    const body = await this.call('POST', '/captures', { entityRef });
    return body.items;
  }

  startRun(entityRef: string): Promise<RecoveryRun> {
    return this.call('POST', '/runs', { entityRef, mode: 'test' });
  }

  getRun(runId: string): Promise<RecoveryRun> {
    return this.call('GET', `/runs/${encodeURIComponent(runId)}`);
  }

  analyzeSystems(): ReturnType<ScheduledRecoveryApi['analyzeSystems']> {
    return this.call('POST', '/analysis', {});
  }

  private async call(method: string, path: string, body?: unknown): Promise<any> {
    const baseUrl = await this.discovery.getBaseUrl('recovery');
    const { token } = await this.auth.getPluginRequestToken({
      onBehalfOf: await this.auth.getOwnServiceCredentials(),
      targetPluginId: 'recovery',
    });
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body !== undefined && { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) {
      let message = text;
      let errorName: string | undefined;
      try {
        const { error } = JSON.parse(text);
        message = error?.message ?? text;
        errorName = typeof error?.name === 'string' ? error.name : undefined;
      } catch {
        // not JSON: keep the text
      }
      throw new RecoveryApiError(
        `${method} ${path} failed with ${response.status}: ${message}`,
        response.status,
        errorName,
      );
    }
    return JSON.parse(text);
  }
}
