import type {
  AuditorService,
  AuditorServiceEventSeverityLevel,
  AuthService,
  BackstageCredentials,
} from '@backstage/backend-plugin-api';
import type {
  Capture,
  NightlyCheckRecord,
  ReadinessSummary,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  RecoveryTaskError,
  type RecoveryTaskOptions,
  type RecoveryTasksApi,
  type SystemsAnalysed,
} from '@backstage-recovery/plugin-recovery-node';
import type { NightlyCheckStore } from '../database/NightlyCheckStore';
import type { AuthorizedRunService } from '../run/AuthorizedRunService';
import {
  type AuditMeta,
  capturedMeta,
  runStartedMeta,
  sweptMeta,
} from './audit';
import type { AuthorizedAnalysisService } from './AuthorizedAnalysisService';
import type { AuthorizedCaptureService } from './AuthorizedCaptureService';
import type { ReadinessService } from './ReadinessService';
import { refFromInput } from './requests';

/**
 * The plugin's work as its modules drive it in-process (the scheduler module, through
 * recoveryTasksExtensionPoint), with the plugin's own service credentials: each call goes through
 * the services its HTTP route calls (the Authorized* ones check the catalog's view and the
 * permission policy) and records the same audit event, its actor the plugin itself. A service's
 * error is rethrown as the HTTP API would answer it (RecoveryTaskError), for recovery-common's
 * guards.
 */
export class RecoveryTasks implements RecoveryTasksApi {
  constructor(
    private readonly deps: {
      auth: Pick<AuthService, 'getOwnServiceCredentials'>;
      auditor: AuditorService;
      /** The same Authorized* services the HTTP API calls. */
      captures: Pick<AuthorizedCaptureService, 'capture' | 'list'>;
      runs: Pick<AuthorizedRunService, 'start' | 'get'>;
      analyses: Pick<AuthorizedAnalysisService, 'sweep'>;
      readiness: Pick<ReadinessService, 'visibleReadiness'>;
      nightlyChecks: Pick<NightlyCheckStore, 'record'>;
    },
  ) {}

  /** As `POST /captures` with `{ entityRef: machineRef, machineRef }`. */
  capture(machineRef: string, options?: RecoveryTaskOptions) {
    return this.audited(
      {
        eventId: 'capture-create',
        severityLevel: 'medium',
        meta: { entityRef: machineRef, machineRef },
      },
      options,
      async credentials => {
        const ref = refFromInput('machineRef', machineRef, 'resource');
        const items = await this.deps.captures.capture(credentials, ref, ref);
        return { result: items, meta: capturedMeta(ref, ref, items) };
      },
    );
  }

  /** As `GET /captures?machineRef=…&limit=1`. */
  latestCapture(
    machineRef: string,
    options?: RecoveryTaskOptions,
  ): Promise<Capture | undefined> {
    return this.call(options, async credentials => {
      const [latest] = await this.deps.captures.list(
        credentials,
        refFromInput('machineRef', machineRef, 'resource'),
        1,
      );
      return latest;
    });
  }

  /** As `POST /runs` with `{ entityRef, mode: 'test' }`: the run's trigger is the schedule. */
  startRun(
    entityRef: string,
    options?: RecoveryTaskOptions,
  ): Promise<RecoveryRun> {
    return this.audited(
      {
        eventId: 'run-start',
        severityLevel: 'medium',
        meta: { entityRef, mode: 'test' },
      },
      options,
      async credentials => {
        const run = await this.deps.runs.start(credentials, {
          entityRef: refFromInput('entityRef', entityRef),
          mode: 'test',
          options: {},
          acceptMissingDependencies: false,
          acceptCycles: false,
        });
        return { result: run, meta: runStartedMeta(run) };
      },
    );
  }

  /** As `GET /runs/:id`. */
  getRun(runId: string, options?: RecoveryTaskOptions): Promise<RecoveryRun> {
    return this.call(options, credentials =>
      this.deps.runs.get(runId, credentials),
    );
  }

  /** As `GET /readiness?include=plan`: the nightly check chooses its runs by the plans. */
  listReadiness(options?: RecoveryTaskOptions): Promise<ReadinessSummary[]> {
    return this.call(options, credentials =>
      this.deps.readiness.visibleReadiness(credentials, { includePlan: true }),
    );
  }

  /** As `POST /analysis` with no entity: the sweep of every system the plugin may analyse. */
  analyzeSystems(options?: RecoveryTaskOptions): Promise<SystemsAnalysed> {
    return this.audited(
      { eventId: 'analysis-create', severityLevel: 'medium', meta: {} },
      options,
      async credentials => {
        const { analysed, skipped, failed } =
          await this.deps.analyses.sweep(credentials);
        return {
          result: { analysed, skipped, failed },
          meta: sweptMeta({ analysed, skipped, failed }),
        };
      },
    );
  }

  /**
   * Records a night's check. Only the plugin's own nightly check does (it is the check's account of
   * a night, which no permission grants), and this API is only ever the plugin's.
   */
  recordNightlyCheck(
    night: NightlyCheckRecord,
    options?: RecoveryTaskOptions,
  ): Promise<void> {
    return this.audited(
      { eventId: 'nightly-check-record', severityLevel: 'medium' },
      options,
      async () => {
        await this.deps.nightlyChecks.record(night);
        return {
          result: undefined,
          meta: {
            checkedAt: night.checkedAt,
            partial: night.partial ?? false,
            outcomes: night.outcomes.length,
          },
        };
      },
    );
  }

  /** `work` as the plugin, its audit event opened first and ended with its outcome. */
  private async audited<T>(
    event: {
      eventId: string;
      severityLevel: AuditorServiceEventSeverityLevel;
      meta?: AuditMeta;
    },
    options: RecoveryTaskOptions | undefined,
    work: (
      credentials: BackstageCredentials,
    ) => Promise<{ result: T; meta: AuditMeta }>,
  ): Promise<T> {
    return this.call(options, async credentials => {
      const audit = await this.deps.auditor.createEvent(event);
      try {
        const { result, meta } = await work(credentials);
        await audit.success({ meta });
        return result;
      } catch (error) {
        await audit.fail({ error: error as Error });
        throw error;
      }
    });
  }

  /**
   * `work` as the plugin, waited for until the caller's signal aborts. The work itself goes on
   * (a capture to its own deadline), as a request's did once its caller stopped waiting.
   */
  private async call<T>(
    options: RecoveryTaskOptions | undefined,
    work: (credentials: BackstageCredentials) => Promise<T>,
  ): Promise<T> {
    const signal = options?.signal;
    signal?.throwIfAborted();
    const done = this.deps.auth
      .getOwnServiceCredentials()
      .then(work)
      .catch(error => {
        throw RecoveryTaskError.from(error);
      });
    if (!signal) return done;
    return new Promise<T>((resolve, reject) => {
      const abort = () => reject(signal.reason);
      signal.addEventListener('abort', abort, { once: true });
      done
        .then(resolve, reject)
        .finally(() => signal.removeEventListener('abort', abort));
    });
  }
}
