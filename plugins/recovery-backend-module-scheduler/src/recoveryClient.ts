import { AuthService, DiscoveryService } from '@backstage/backend-plugin-api';
import type {
  Capture,
  NightlyCheckRecord,
  ReadinessSummary,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { ApiErrorAnswer } from '@backstage-recovery/plugin-recovery-common';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** The part of the recovery API the scheduled tasks drive. */
/** `signal`: the scheduled task's, so a backend that never answers cannot outlive the task. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface ScheduledRecoveryApi {
  /** Captures one machine. */
  capture(machineRef: string, options?: CallOptions): Promise<Capture[]>;
  startRun(entityRef: string, options?: CallOptions): Promise<RecoveryRun>;
  getRun(runId: string, options?: CallOptions): Promise<RecoveryRun>;
  /** Readiness of every recoverable entity, with its boot plan in full (`include=plan`). */
  listReadiness(options?: CallOptions): Promise<ReadinessSummary[]>;
  /** Analyses the boot history of every system; `skipped`: those with no initialization events yet. */
  analyzeSystems(options?: CallOptions): Promise<{
    analysed: string[];
    skipped: string[];
    failed: Array<{ entityRef: string; message: string }>;
  }>;
  /**
   * Records what a night's check did about each entity (`POST /nightly-check`): `partial`, those
   * it knows so far, replacing those entities' outcomes alone; else the night whole, replacing the last.
   */
  recordNightlyCheck(
    night: NightlyCheckRecord,
    options?: CallOptions,
  ): Promise<void>;
}

export type { NightlyCheckRecord } from '@backstage-recovery/plugin-recovery-common';
export {
  HOST_BUSY_ERROR_NAME,
  KEPT_FAILOVER_ERROR_NAME,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
} from '@backstage-recovery/plugin-recovery-common';

/**
 * A non-2xx answer of the recovery backend, keeping what callers need to tell busy from broken:
 * read with recovery-common's guards of the API's errors (isHostBusy, keptFailover, …), as the
 * {@link ApiErrorAnswer} it is.
 */
export class RecoveryApiError extends Error implements ApiErrorAnswer {
  constructor(
    message: string,
    readonly status: number,
    /** The name of the backend's error (`error.name` of the body), when it gave one. */
    readonly errorName?: string,
    /** The backend's error body (`error`), whose named errors carry their parts. */
    readonly detail?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'RecoveryApiError';
  }

  /** The answer's HTTP status, as the API's error guards read it. */
  get statusCode(): number {
    return this.status;
  }

  /** The answer's body as Backstage's error handler wrote it: its `error`, named `errorName`. */
  get body(): ApiErrorAnswer['body'] {
    return {
      error: {
        ...this.detail,
        ...(this.errorName !== undefined && { name: this.errorName }),
      },
    };
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

  /**
   * Captures one machine, on its own: the plan of a machine that needs others holds them too,
   * and they are captured in their own turn.
   */
  async capture(machineRef: string, options?: CallOptions): Promise<Capture[]> {
    const body = await this.call(
      'POST',
      '/captures',
      { entityRef: machineRef, machineRef },
      options,
    );
    return body.items;
  }

  /** A machine's newest capture, if it has one. */
  async latestCapture(
    machineRef: string,
    options?: CallOptions,
  ): Promise<Capture | undefined> {
    const body = await this.call(
      'GET',
      `/captures?machineRef=${encodeURIComponent(machineRef)}&limit=1`,
      undefined,
      options,
    );
    return body.items[0];
  }

  startRun(entityRef: string, options?: CallOptions): Promise<RecoveryRun> {
    return this.call('POST', '/runs', { entityRef, mode: 'test' }, options);
  }

  getRun(runId: string, options?: CallOptions): Promise<RecoveryRun> {
    return this.call(
      'GET',
      `/runs/${encodeURIComponent(runId)}`,
      undefined,
      options,
    );
  }

  async listReadiness(options?: CallOptions): Promise<ReadinessSummary[]> {
    // The plans, which the overview leaves out: the nightly check chooses its runs by them.
    const body = await this.call(
      'GET',
      '/readiness?include=plan',
      undefined,
      options,
    );
    return body.items;
  }

  analyzeSystems(
    options?: CallOptions,
  ): ReturnType<ScheduledRecoveryApi['analyzeSystems']> {
    return this.call('POST', '/analysis', {}, options);
  }

  async recordNightlyCheck(
    night: NightlyCheckRecord,
    options?: CallOptions,
  ): Promise<void> {
    await this.call('POST', '/nightly-check', night, options);
  }

  private async call(
    method: string,
    path: string,
    body?: unknown,
    options?: CallOptions,
  ): Promise<any> {
    const baseUrl = await this.discovery.getBaseUrl('recovery');
    const { token } = await this.auth.getPluginRequestToken({
      onBehalfOf: await this.auth.getOwnServiceCredentials(),
      targetPluginId: 'recovery',
    });
    const response = await send(
      new URL(`${baseUrl}${path}`),
      method,
      token,
      body,
      options?.signal,
    );
    const text = response.text;
    if (response.status < 200 || response.status > 299) {
      let message = text;
      let errorName: string | undefined;
      let detail: Record<string, unknown> | undefined;
      try {
        const { error } = JSON.parse(text);
        message = error?.message ?? text;
        errorName = typeof error?.name === 'string' ? error.name : undefined;
        detail = error && typeof error === 'object' ? error : undefined;
      } catch {
        // not JSON: keep the text
      }
      throw new RecoveryApiError(
        `${method} ${path} failed with ${response.status}: ${message}`,
        response.status,
        errorName,
        detail,
      );
    }
    return JSON.parse(text);
  }
}

/**
 * One request to the backend, waited for as long as the backend works on it, or until the
 * task's signal aborts. Not fetch: a capture answers only once the machine is copied, and fetch
 * (undici) gives up after 300 s without response headers while the backend goes on capturing.
 */
function send(
  url: URL,
  method: string,
  token: string,
  body?: unknown,
  signal?: AbortSignal,
): Promise<{ status: number; text: string }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string | number> = {
    Authorization: `Bearer ${token}`,
  };
  if (payload !== undefined) {
    headers['Content-Type'] = 'application/json';
    headers['Content-Length'] = Buffer.byteLength(payload);
  }
  const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const outgoing = request(url, { method, headers, signal }, response => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('error', reject);
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          text: Buffer.concat(chunks).toString('utf8'),
        }),
      );
      response.on('close', () => {
        if (!response.complete)
          reject(
            new Error(
              `${method} ${url.pathname}: the connection closed mid-answer`,
            ),
          );
      });
    });
    outgoing.on('error', reject);
    outgoing.end(payload);
  });
}
