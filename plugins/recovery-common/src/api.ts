import type {
  Capture,
  PlanResponse,
  Readiness,
  ReadinessSummary,
  RecoveryRun,
  RunMode,
  RunPage,
} from './types';
import type { RecoveryChanges } from './signals';
import type { CaptureRequestProgress } from './captureRequest';

/**
 * The recovery backend's HTTP API (under `/api/recovery`), as the frontend and the CLI use it.
 * Entity refs in paths are split: `/readiness/component/default/web`.
 *
 * - `GET  /readiness/:kind/:namespace/:name` → `Readiness`
 * - `GET  /readiness?include=plan&limit=&cursor=` → `ReadinessPage`: `limit` entities (100 unless
 *   given, at most 500) in the order of their refs, most at risk first within the page, the next page
 *   by `pageInfo.nextCursor` (each plan as its machine count, each last run as a summary;
 *   `include=plan`: each plan in full too)
 * - `GET  /plan/:kind/:namespace/:name` → `PlanResponse` (the `BootPlan`, its problems and disagreements)
 * - `POST /captures` `{ entityRef, machineRef? }` → `CaptureRequest` (202, its `Location` the request's
 *   path; every machine of the entity's plan, or only `machineRef` of them, captured in turn while the
 *   caller polls; needs `recovery.capture.create`; a 400, 403, 404, or a 409 where every machine is being
 *   captured already, at once)
 * - `GET  /captures/requests/:id` → `CaptureRequest`: `capturing` (the captures so far; `progress`,
 *   the last line of a large copy under way), `succeeded`
 *   (`captures`), `failed` (`statusCode` and `error` as POST answered them before it was polled); one
 *   whose backend stopped mid-capture is failed as interrupted (503). `RecoveryClient.captureNow` polls it.
 * - `GET  /captures?machineRef=&limit=&cursor=` → `CapturePage`: the machine's captures newest first,
 *   `limit` of them (20 unless given, at most 500), the next page by `pageInfo.nextCursor`
 * - `POST /runs` `{ entityRef, mode?, acceptMissingDependencies?, acceptCycles?, recoveryPoint? }` → `RecoveryRun` (202; needs
 *   `recovery.run.create`; a 409 named `MISSING_DEPENDENCIES_ERROR_NAME` (errors.ts) where the catalog names
 *   dependencies the plan cannot include, unless accepted; a 409 named `DEPENDENCY_CYCLE_ERROR_NAME` where
 *   it declares a dependency cycle, unless accepted (one edge per cycle dropped); `recoveryPoint`: each machine restores its
 *   newest capture taken at or before that time, a 409 naming those with none kept that old)
 * - `GET  /runs?entityRef=&active=true&limit=&cursor=` → `RunPage`: newest first, `limit` runs (20
 *   unless given, at most 500), the next page by `pageInfo.nextCursor`; `active=true`: only pending
 *   and running runs, of any entity unless `entityRef` is given
 * - `GET  /runs/:id` → `RecoveryRun`
 * - `POST /runs/:id/release` → `RecoveryRun` (a finished failover: what it kept on its host is
 *   removed, its last step says who released it and what went; needs `recovery.run.release`;
 *   `RecoveryClient.releaseFailover`)
 * - `POST /runs/:id/cancel` → `RecoveryRun` (202; a pending or running test recovery stops booting,
 *   tears its lab down and ends `interrupted`, its error's `cancelledBy` and last steps saying who
 *   cancelled it and when; needs `recovery.run.create`; a 409 for a failover or a finished run;
 *   `RecoveryClient.cancelRun`)
 *
 * @public
 */
export interface RecoveryApi {
  getReadiness(entityRef: string): Promise<Readiness>;
  /** Every recoverable entity's readiness (every page read), most at risk first; one page: `RecoveryClient.listReadinessPage`. */
  listReadiness(): Promise<ReadinessSummary[]>;
  getBootPlan(entityRef: string): Promise<PlanResponse>;
  /** Posts a capture request and polls it until it ends: its captures, or the error it failed with. */
  captureNow(
    entityRef: string,
    machineRef?: string,
    /**
     * `changes`: polled as soon as the request changed, else every `changes.pollIntervalMs`;
     * `onProgress`: each new progress line of the capture under way, as polls find it.
     */
    options?: {
      signal?: AbortSignal;
      changes?: RecoveryChanges;
      onProgress?: (progress: CaptureRequestProgress) => void;
    },
  ): Promise<Capture[]>;
  /** The kept captures of one machine, newest first: 20 unless `limit` (1 to 500) says. */
  listCaptures(machineRef: string, limit?: number): Promise<Capture[]>;
  startRun(request: {
    entityRef: string;
    mode?: RunMode;
    acceptMissingDependencies?: boolean;
    acceptCycles?: boolean;
    recoveryPoint?: string;
  }): Promise<RecoveryRun>;
  getRun(runId: string): Promise<RecoveryRun>;
  /** The newest runs, `limit` of them (20 unless said): the first page's; every page: `listRunsPage`. */
  listRuns(query: {
    entityRef?: string;
    active?: boolean;
    limit?: number;
  }): Promise<RecoveryRun[]>;
  /** A page of runs, newest first; with `cursor` (a page's `pageInfo.nextCursor`), the page after it. */
  listRunsPage(query: {
    entityRef?: string;
    active?: boolean;
    limit?: number;
    cursor?: string;
  }): Promise<RunPage>;
  /** Removes what a finished failover keeps on its host (failback done); the run with that step. */
  releaseFailover(runId: string): Promise<RecoveryRun>;
  /** Cancels a pending or running test recovery; the run as recorded once the request is (still active). */
  cancelRun(runId: string): Promise<RecoveryRun>;
}
