import {
  type AuthService,
  coreServices,
  createBackendModule,
  type LoggerService,
  type RootConfigService,
  type SchedulerService,
} from '@backstage/backend-plugin-api';
import {
  type MetricsService,
  metricsServiceRef,
} from '@backstage/backend-plugin-api/alpha';
import {
  CATALOG_FILTER_EXISTS,
  type StreamEntitiesRequest,
} from '@backstage/catalog-client';
import { type Entity, stringifyEntityRef } from '@backstage/catalog-model';
import {
  type CatalogService,
  catalogServiceRef,
} from '@backstage/plugin-catalog-node';
import {
  ANNOTATION_NIGHTLY_CHECK,
  MACHINE_RESOURCE_TYPE,
} from '@backstage-recovery/plugin-recovery-common';
import {
  readTaskSchedule,
  listAllEntities,
  type RecoveryTasksApi,
  recoveryTasksExtensionPoint,
  scheduleDurationMs,
  scheduleTaskFrom,
} from '@backstage-recovery/plugin-recovery-node';
import {
  finishNightlyCheck,
  nightlyCheck,
  nightlyOptOuts,
} from './nightlyCheck';
import { NightlyCheckMetrics } from './nightlyMetrics';
import {
  analyseSystems,
  captureMachines,
  finishTask,
  oldestCapturedFirst,
} from './tasks';

/** What the nightly check keeps of its timeout to log its report before the scheduler stops it. */
const REPORT_MARGIN_MS = 30_000;

/**
 * Scheduled captures, dependency analysis and the nightly readiness check. Tasks are claimed through the
 * database, so with several backend replicas each runs once. They drive the recovery plugin's
 * services in-process (recoveryTasksExtensionPoint), scheduled once the plugin has made them.
 *
 * @public
 */
export const recoveryModuleScheduler = createBackendModule({
  pluginId: 'recovery',
  moduleId: 'scheduler',
  register(env) {
    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        scheduler: coreServices.scheduler,
        auth: coreServices.auth,
        catalog: catalogServiceRef,
        tasks: recoveryTasksExtensionPoint,
        metrics: metricsServiceRef,
      },
      async init({ config, logger, scheduler, auth, catalog, tasks, metrics }) {
        tasks.connect(api =>
          scheduleTasks({
            api,
            config,
            logger,
            scheduler,
            auth,
            catalog,
            metrics,
          }),
        );
      },
    });
  },
});

/** The module's three tasks, driving `api`: scheduled once the recovery plugin has made its services. */
async function scheduleTasks({
  api,
  config,
  logger,
  scheduler,
  auth,
  catalog,
  metrics,
}: {
  api: RecoveryTasksApi;
  config: RootConfigService;
  logger: LoggerService;
  scheduler: SchedulerService;
  auth: AuthService;
  catalog: CatalogService;
  metrics: MetricsService;
}) {
  // Every match, a page at a time (listAllEntities), as the module itself sees the catalog.
  const list = async (
    request: Pick<StreamEntitiesRequest, 'filter' | 'fields'>,
  ): Promise<Entity[]> =>
    listAllEntities(catalog, request, await auth.getOwnServiceCredentials());
  const entities = async (filter: Record<string, string>) => {
    const items = await list({
      filter,
      fields: ['kind', 'metadata.namespace', 'metadata.name'],
    });
    return items.map(e => stringifyEntityRef(e)).sort();
  };

  await scheduleTaskFrom(scheduler, 'recovery.schedules.capture', {
    id: 'recovery-capture',
    ...readTaskSchedule(config, 'recovery.schedules.capture', {
      frequency: { cron: '0 * * * *' },
      timeout: { minutes: 50 },
    }),
    fn: async signal => {
      const machines = await entities({
        kind: 'Resource',
        'spec.type': MACHINE_RESOURCE_TYPE,
      });
      const ordered = await oldestCapturedFirst(api, machines, signal);
      const report = await captureMachines(api, ordered, logger, signal);
      const others = report.beingCaptured?.length
        ? `, ${report.beingCaptured.length} left to a capture of them under way`
        : '';
      finishTask(
        `Scheduled capture: ${report.succeeded.length} captured${others}, ${report.failed.length} failed`,
        report.failed,
        logger,
      );
    },
  });

  await scheduleTaskFrom(scheduler, 'recovery.schedules.analysis', {
    id: 'recovery-analysis',
    ...readTaskSchedule(config, 'recovery.schedules.analysis', {
      frequency: { cron: '30 */6 * * *' },
      timeout: { minutes: 30 },
    }),
    fn: async signal => {
      await analyseSystems(api, logger, signal);
    },
  });

  // Half an hour after the hourly capture, so the check restores the captures just taken
  // rather than racing them.
  const nightlySchedule = readTaskSchedule(
    config,
    'recovery.schedules.nightlyCheck',
    { frequency: { cron: '30 2 * * *' }, timeout: { hours: 4 } },
    REPORT_MARGIN_MS,
  );
  const nightlyMetrics = new NightlyCheckMetrics(metrics);
  await scheduleTaskFrom(scheduler, 'recovery.schedules.nightlyCheck', {
    id: 'recovery-nightly-check',
    ...nightlySchedule,
    fn: async signal => {
      // Stop waiting for a busy host a little before the scheduler aborts the task, so
      // the report of what was and was not checked still gets logged.
      const deadline =
        Date.now() +
        scheduleDurationMs(nightlySchedule.timeout) -
        REPORT_MARGIN_MS;
      // Every recoverable entity, but those that opted out: read here rather than matched by
      // the catalog's filter, so that a value it cannot read (`no`) is named, not ignored.
      const annotated = await list({
        filter: {
          [`metadata.annotations.${ANNOTATION_NIGHTLY_CHECK}`]:
            CATALOG_FILTER_EXISTS,
        },
        fields: [
          'kind',
          'metadata.namespace',
          'metadata.name',
          'metadata.annotations',
        ],
      });
      const report = await nightlyCheck(
        api,
        nightlyOptOuts(annotated),
        logger,
        {
          pollIntervalMs: 5_000,
          deadline,
          signal,
        },
      );
      // An entity that did not recover is said at warn; the check itself failing throws.
      finishNightlyCheck(report, logger);
      nightlyMetrics.recordPass(report);
    },
  });
}
