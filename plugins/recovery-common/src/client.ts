import { ResponseError } from '@backstage/errors';
import { parseEntityRef } from '@backstage/catalog-model';
import type { RecoveryApi } from './api';
import type {
  Capture,
  PlanResponse,
  Readiness,
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

  constructor(options: {
    discoveryApi: { getBaseUrl(pluginId: string): Promise<string> };
    fetchApi?: { fetch: typeof fetch };
  }) {
    this.discoveryApi = options.discoveryApi;
    this.fetchApi = options.fetchApi ?? {
      fetch: (input, init) => fetch(input, init),
    };
  }

  async getReadiness(entityRef: string): Promise<Readiness> {
    return this.request<Readiness>(`/readiness/${refPath(entityRef)}`);
  }

  async listReadiness(): Promise<ReadinessSummary[]> {
    const body = await this.request<{ items: ReadinessSummary[] }>(
      '/readiness',
    );
    return body.items;
  }

  /** The boot plan with its configuration problems and dependency disagreements. */
  async getBootPlan(entityRef: string): Promise<PlanResponse> {
    return this.request<PlanResponse>(`/plan/${refPath(entityRef)}`);
  }

  async captureNow(entityRef: string, machineRef?: string): Promise<Capture[]> {
    const body = await this.request<{ items: Capture[] }>('/captures', {
      method: 'POST',
      body:
        machineRef === undefined ? { entityRef } : { entityRef, machineRef },
    });
    return body.items;
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
    init?: { method: string; body: unknown },
  ): Promise<T> {
    const baseUrl = await this.discoveryApi.getBaseUrl('recovery');
    const response = await this.fetchApi.fetch(
      `${baseUrl}${path}`,
      init
        ? {
            method: init.method,
            headers: { 'Content-Type': 'application/json' },
            body: JSON.stringify(init.body),
          }
        : undefined,
    );
    if (!response.ok) {
      throw await ResponseError.fromResponse(response);
    }
    return (await response.json()) as T;
  }
}

/** `component:default/web` → `component/default/web`, each part URL-encoded. */
function refPath(entityRef: string): string {
  const { kind, namespace, name } = parseEntityRef(entityRef);
  return [kind.toLocaleLowerCase('en-US'), namespace, name]
    .map(encodeURIComponent)
    .join('/');
}
