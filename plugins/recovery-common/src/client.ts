import { ResponseError } from '@backstage/errors';
import { parseEntityRef } from '@backstage/catalog-model';
import type { RecoveryApi } from './api';
import { READINESS_RISK_RANK } from './readinessWords';
import type { CaptureRequest } from './captureRequest';
import type {
  Capture,
  PlanResponse,
  Readiness,
  ReadinessPage,
  ReadinessSummary,
  RecoveryRun,
  RunMode,
} from './types';

/**
 * Talks to the recovery backend's HTTP API under `/api/recovery`, wherever it runs: the frontend
 * gives it Backstage's discovery and fetch APIs (which sign requests in), the CLI a base URL and a
 * fetch that sends its token.
 *
 * @public
 */
export class RecoveryClient implements RecoveryApi {
  private readonly discoveryApi: {
    getBaseUrl(pluginId: string): Promise<string>;
  };
  private readonly fetchApi: { fetch: typeof fetch };
  private readonly pollIntervalMs: number;

  constructor(options: {
    discoveryApi: { getBaseUrl(pluginId: string): Promise<string> };
    fetchApi?: { fetch: typeof fetch };
    /** How often a capture request is polled (captureNow), once it lasts: 1 s unless said. */
    pollIntervalMs?: number;
  }) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi ?? {
      fetch: (input, init) => fetch(input, init),
    };
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
  }

  async getReadiness(entityRef: string): Promise<Readiness> {
    return this.request<Readiness>(`/readiness/${refPath(entityRef)}`);
  }

  /**
   * Every recoverable entity's readiness, most at risk first (as the backend orders a page): the
   * first page as the backend pages it, the rest as large as it allows. An entity listed twice (pages read a moment apart) is
   * taken as last read.
   */
  async listReadiness(): Promise<ReadinessSummary[]> {
    const read = new Map<string, ReadinessSummary>();
    let page = await this.listReadinessPage();
    for (;;) {
      for (const item of page.items) read.set(item.entityRef, item);
      // A backend that does not page answers all at once, without pageInfo.
      const cursor = page.pageInfo?.nextCursor;
      if (!cursor || page.items.length === 0) break;
      page = await this.listReadinessPage({
        cursor,
        limit: READINESS_PAGE_MAX,
      });
    }
    return [...read.values()].sort(
      (a, b) =>
        (READINESS_RISK_RANK[a.status] ?? 9) -
          (READINESS_RISK_RANK[b.status] ?? 9) ||
        a.entityRef.localeCompare(b.entityRef),
    );
  }

  /** One page of `GET /readiness`: `limit` entities (the backend's default unless given) after `cursor`. */
  async listReadinessPage(
    query: { limit?: number; cursor?: string; includePlan?: boolean } = {},
  ): Promise<ReadinessPage> {
    const params = new URLSearchParams();
    if (query.includePlan) params.set('include', 'plan');
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    const qs = params.toString();
    return this.request<ReadinessPage>(`/readiness${qs ? `?${qs}` : ''}`);
  }

  /** The boot plan with its configuration problems and dependency disagreements. */
  async getBootPlan(entityRef: string): Promise<PlanResponse> {
    return this.request<PlanResponse>(`/plan/${refPath(entityRef)}`);
  }

  /**
   * Captures the entity's machines, or only `machineRef` of them: the backend accepts the capture
   * request (202) and this polls it until it ends, the first looks soon (a machine may take a
   * second), then every `pollIntervalMs`. Resolves with the captures; a failed request throws the
   * ResponseError `POST /captures` answered before it was polled (its status, and its body's
   * `error`: a CaptureFailedError's machines and captures, ...). `signal` stops the polling, not
   * the capture, which goes on on the backend.
   */
  async captureNow(
    entityRef: string,
    machineRef?: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<Capture[]> {
    const { signal } = options;
    let request = await this.request<
      CaptureRequest | { items: Capture[]; status?: undefined }
    >('/captures', {
      method: 'POST',
      body:
        machineRef === undefined ? { entityRef } : { entityRef, machineRef },
      signal,
    });
    // A backend from before capture requests answers the captures themselves (201).
    if ('items' in request) return request.items;
    const path = `/captures/requests/${encodeURIComponent(request.requestId)}`;
    for (
      let delay = Math.min(100, this.pollIntervalMs);
      request.status === 'capturing';
    ) {
      await pause(delay, signal);
      delay = Math.min(delay * 2, this.pollIntervalMs);
      request = await this.request<CaptureRequest>(path, { signal });
    }
    if (request.status === 'succeeded') return request.captures;
    throw await failureOf(request);
  }

  async listCaptures(machineRef: string, limit?: number): Promise<Capture[]> {
    const params = new URLSearchParams({ machineRef });
    if (limit !== undefined) params.set('limit', String(limit));
    const body = await this.request<{ items: Capture[] }>(
      `/captures?${params}`,
    );
    return body.items;
  }

  async startRun(request: {
    entityRef: string;
    mode?: RunMode;
    acceptMissingDependencies?: boolean;
    /** Break the dependency cycles the catalog declares, one edge each, rather than be refused. */
    acceptCycles?: boolean;
    /** An ISO 8601 time with its zone: each machine restores its newest capture taken at or before it. */
    recoveryPoint?: string;
  }): Promise<RecoveryRun> {
    return this.request<RecoveryRun>('/runs', {
      method: 'POST',
      body: request,
    });
  }

  async getRun(runId: string): Promise<RecoveryRun> {
    return this.request<RecoveryRun>(`/runs/${encodeURIComponent(runId)}`);
  }

  /**
   * Releases a finished failover (failback done): the backend removes what it kept on its
   * hypervisor host and answers the run, its last step saying who released it and what went.
   * Needs `recovery.run.failover` on the run's entity.
   */
  async releaseFailover(runId: string): Promise<RecoveryRun> {
    return this.request<RecoveryRun>(
      `/runs/${encodeURIComponent(runId)}/release`,
      { method: 'POST', body: {} },
    );
  }

  async listRuns(query: {
    entityRef?: string;
    active?: boolean;
    limit?: number;
    before?: string;
  }): Promise<RecoveryRun[]> {
    const params = new URLSearchParams();
    if (query.entityRef) params.set('entityRef', query.entityRef);
    if (query.active) params.set('active', 'true');
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.before !== undefined) params.set('before', query.before);
    const qs = params.toString();
    const body = await this.request<{ items: RecoveryRun[] }>(
      `/runs${qs ? `?${qs}` : ''}`,
    );
    return body.items;
  }

  private async request<T>(
    path: string,
    init?: { method?: string; body?: unknown; signal?: AbortSignal },
  ): Promise<T> {
    const baseUrl = await this.discoveryApi.getBaseUrl('recovery');
    const response = await this.fetchApi.fetch(
      `${baseUrl}${path}`,
      init?.method
        ? {
            method: init.method,
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(init.body),
            ...(init.signal && { signal: init.signal }),
          }
        : init?.signal && { signal: init.signal },
    );
    if (!response.ok) {
      throw await ResponseError.fromResponse(response);
    }
    return (await response.json()) as T;
  }
}

/** Waits `ms`, or throws the signal's reason once it aborts. */
function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const stop = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    signal?.addEventListener('abort', stop, { once: true });
  });
}

/** Status texts of the statuses a capture fails with, for the message ResponseError makes. */
const STATUS_TEXTS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
};

/** A failed capture request as the ResponseError its POST answered before it was polled. */
function failureOf(request: CaptureRequest): Promise<ResponseError> {
  const statusCode = request.statusCode ?? 500;
  return ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: request.error ?? {
          name: 'Error',
          message: `capture request ${request.requestId} failed`,
        },
        response: { statusCode },
      }),
      {
        status: statusCode,
        statusText: STATUS_TEXTS[statusCode] ?? '',
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );
}

/** The most entities a page of `GET /readiness` holds: a reader of every page asks for pages this size. */
const READINESS_PAGE_MAX = 500;

/** `component:default/web` → `component/default/web`, each part URL-encoded. */
function refPath(entityRef: string): string {
  const { kind, namespace, name } = parseEntityRef(entityRef);
  return [kind.toLocaleLowerCase('en-US'), namespace, name]
    .map(encodeURIComponent)
    .join('/');
}
