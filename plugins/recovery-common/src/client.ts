import { ResponseError } from '@backstage/errors';
import { parseEntityRef } from '@backstage/catalog-model';
import type { RecoveryApi } from './api';
import { byRisk, READINESS_PAGE_MAX } from './readinessWords';
import type { CaptureRequest, CaptureRequestProgress } from './captureRequest';
import type { RecoveryChanges } from './signals';
import type {
  Capture,
  CapturePage,
  PlanResponse,
  Readiness,
  ReadinessPage,
  ReadinessSummary,
  RecoveryRun,
  RunMode,
  RunPage,
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
  private readonly pollRetryMs: number;

  constructor(options: {
    discoveryApi: { getBaseUrl(pluginId: string): Promise<string> };
    fetchApi?: { fetch: typeof fetch };
    /** How often a capture request is polled (captureNow), once it lasts: 1 s unless said. */
    pollIntervalMs?: number;
    /**
     * How long polls of a capture request that fail on the way (the network, a 502, 503 or 504
     * of a replica restarting) are tried again before captureNow gives up: 90 s unless said.
     */
    pollRetryMs?: number;
  }) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi ?? {
      fetch: (input, init) => fetch(input, init),
    };
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
    this.pollRetryMs = options.pollRetryMs ?? POLL_RETRY_MS;
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
    return [...read.values()].sort(byRisk);
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
   * `error`: a CaptureFailedError's machines and captures, ...). A poll failing on the way (the
   * network, a 502, 503 or 504) is tried again, backing off, for `pollRetryMs`: then it throws,
   * saying the capture may still be under way and where to look; any other failed poll (a 404)
   * throws at once. `signal` stops the polling, not the capture, which goes on on the backend.
   * With `changes` (the portal's signals), the request is polled as soon as it changed, and
   * otherwise every `changes.pollIntervalMs`. `onProgress` hears each new progress line a poll
   * finds (a large copy under way).
   */
  async captureNow(
    entityRef: string,
    machineRef?: string,
    options: {
      signal?: AbortSignal;
      changes?: RecoveryChanges;
      onProgress?: (progress: CaptureRequestProgress) => void;
    } = {},
  ): Promise<Capture[]> {
    const { signal, changes, onProgress } = options;
    const intervalMs = changes?.pollIntervalMs ?? this.pollIntervalMs;
    // Heard from before the request is posted: its first change may come before the answer.
    const heard = new CaptureRequestChanges(changes);
    try {
      let request = await this.request<CaptureRequest>('/captures', {
        method: 'POST',
        body:
          machineRef === undefined ? { entityRef } : { entityRef, machineRef },
        signal,
      });
      const path = `/captures/requests/${encodeURIComponent(request.requestId)}`;
      const accepted = request;
      // Without changes to hear, the first looks come soon: a machine may take a second.
      for (
        let delay = changes ? intervalMs : Math.min(100, intervalMs);
        request.status === 'capturing';
      ) {
        await heard.pause(accepted.requestId, delay, signal);
        delay = Math.min(delay * 2, intervalMs);
        const said = request.progress;
        request = await this.poll(accepted, path, signal);
        const progress = request.progress;
        if (
          progress &&
          (progress.at !== said?.at || progress.message !== said?.message)
        )
          onProgress?.(progress);
      }
      if (request.status === 'succeeded') return request.captures;
      throw await failureOf(request);
    } finally {
      heard.stop();
    }
  }

  /**
   * A poll of a capture request, tried again while it fails on the way (the network, a 502, 503 or
   * 504: a replica restarting, a proxy with no backend behind it), backing off, for pollRetryMs: past
   * the time after which the backend calls a request whose backend went silent interrupted, so
   * that the request has ended either way by then.
   */
  private async poll(
    accepted: CaptureRequest,
    path: string,
    signal?: AbortSignal,
  ): Promise<CaptureRequest> {
    const since = Date.now();
    for (let delay = this.pollIntervalMs; ;) {
      try {
        return await this.request<CaptureRequest>(path, { signal });
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        const status =
          error instanceof ResponseError ? error.statusCode : undefined;
        if (status !== undefined && !RETRIED_STATUSES.has(status)) throw error;
        const waited = Date.now() - since;
        if (waited >= this.pollRetryMs)
          throw pollGaveUp(accepted, path, waited, error);
        await pause(delay, signal);
        delay = Math.min(delay * 2, MAX_POLL_BACKOFF_MS);
      }
    }
  }

  async listCaptures(machineRef: string, limit?: number): Promise<Capture[]> {
    return (await this.listCapturesPage(machineRef, { limit })).items;
  }

  /** One page of `GET /captures`: a machine's captures newest first, `limit` of them after `cursor`. */
  async listCapturesPage(
    machineRef: string,
    query: { limit?: number; cursor?: string } = {},
  ): Promise<CapturePage> {
    const params = new URLSearchParams({ machineRef });
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    return this.request<CapturePage>(`/captures?${params}`);
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
   * Needs `recovery.run.release` on the run's entity and on what the failover booted.
   */
  async releaseFailover(runId: string): Promise<RecoveryRun> {
    return this.request<RecoveryRun>(
      `/runs/${encodeURIComponent(runId)}/release`,
      { method: 'POST', body: {} },
    );
  }

  /**
   * Cancels a pending or running test recovery: it stops booting, tears its lab down and ends
   * `interrupted`, naming who cancelled it. Answers the run once the cancel is recorded, before
   * that. Needs `recovery.run.create` on the run's entity; a failover or a finished run is a 409.
   */
  async cancelRun(runId: string): Promise<RecoveryRun> {
    return this.request<RecoveryRun>(
      `/runs/${encodeURIComponent(runId)}/cancel`,
      { method: 'POST', body: {} },
    );
  }

  async listRuns(query: {
    entityRef?: string;
    active?: boolean;
    limit?: number;
  }): Promise<RecoveryRun[]> {
    return (await this.listRunsPage(query)).items;
  }

  async listRunsPage(query: {
    entityRef?: string;
    active?: boolean;
    limit?: number;
    cursor?: string;
  }): Promise<RunPage> {
    const params = new URLSearchParams();
    if (query.entityRef) params.set('entityRef', query.entityRef);
    if (query.active) params.set('active', 'true');
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    const qs = params.toString();
    return this.request<RunPage>(`/runs${qs ? `?${qs}` : ''}`);
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

/**
 * How long failed polls of a capture request are tried again: past the 60 s after which the
 * backend fails a request whose backend went silent (killed, restarted) as interrupted.
 */
const POLL_RETRY_MS = 90_000;
/** The longest wait between two polls tried again. */
const MAX_POLL_BACKOFF_MS = 10_000;
/** Statuses of a poll failing on the way, not of the request: a replica restarting, a proxy. */
const RETRIED_STATUSES = new Set([502, 503, 504]);

/** Polls of a capture request that kept failing on the way: the capture may go on regardless. */
function pollGaveUp(
  request: CaptureRequest,
  path: string,
  waitedMs: number,
  cause: unknown,
): Error {
  const machineRefs = request.machineRef
    ? [request.machineRef]
    : (request.machineRefs ?? []);
  const looks = machineRefs.map(ref => `GET /captures?machineRef=${ref}`);
  return new Error(
    `capture request ${request.requestId} of ${request.entityRef} could not be polled for ${Math.round(waitedMs / 1000)} s (${String((cause as Error)?.message ?? cause)}): the capture may still be under way on the backend: see its request (GET ${path}${looks.length > 0 ? `) or the captures it took (${looks.join(', ')}` : ''}) in the recovery API`,
    { cause },
  );
}

/** Waits `ms`, or throws the signal's reason once it aborts. */
/**
 * The changes of capture requests heard of while one is polled (RecoveryChanges): a pause before
 * its next poll ends as soon as it changed, or at once where it changed since the last pause.
 */
class CaptureRequestChanges {
  private readonly changed = new Set<string>();
  private wake?: () => void;
  readonly stop: () => void;

  constructor(changes?: RecoveryChanges) {
    this.stop =
      changes?.watch(change => {
        if (change.kind !== 'captureRequest') return;
        this.changed.add(change.id);
        this.wake?.();
      }) ?? (() => {});
  }

  pause(requestId: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      signal?.throwIfAborted();
      if (this.changed.delete(requestId)) {
        resolve();
        return;
      }
      const end = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', stop);
        this.wake = undefined;
      };
      const stop = () => {
        end();
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        end();
        resolve();
      }, ms);
      this.wake = () => {
        if (!this.changed.delete(requestId)) return;
        end();
        resolve();
      };
      signal?.addEventListener('abort', stop, { once: true });
    });
  }
}

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

/** `component:default/web` → `component/default/web`, each part URL-encoded. */
function refPath(entityRef: string): string {
  const { kind, namespace, name } = parseEntityRef(entityRef);
  return [kind.toLocaleLowerCase('en-US'), namespace, name]
    .map(encodeURIComponent)
    .join('/');
}
