import {
  coreServices,
  createBackendModule,
  readSchedulerServiceTaskScheduleDefinitionFromConfig,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { CATALOG_FILTER_EXISTS } from '@backstage/catalog-client';
import { Config } from '@backstage/config';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import {
  ANNOTATION_NIGHTLY_CHECK,
  MACHINE_RESOURCE_TYPE,
} from '@backstage-recovery/plugin-recovery-common';
import { RecoveryBackendClient } from './recoveryClient';
import { analyseSystems, captureMachines, finishTask, nightlyCheck, nightlyOptOuts, nightlySummary, oldestCapturedFirst, timeoutMs } from './tasks';

function schedule(
  config: Config,
  key: string,
  fallback: SchedulerServiceTaskScheduleDefinition,
): SchedulerServiceTaskScheduleDefinition {
  return config.has(key)
    ? readSchedulerServiceTaskScheduleDefinitionFromConfig(config.getConfig(key))
    : fallback;
}

/**
 * Scheduled captures, dependency analysis and the nightly readiness check. Tasks are claimed through the
 * database, so with several backend replicas each runs once.
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
        discovery: coreServices.discovery,
        auth: coreServices.auth,
        catalog: catalogServiceRef,
      },
      async init({ config, logger, scheduler, discovery, auth, catalog }) {
        const api = new RecoveryBackendClient(discovery, auth);
        const entities = async (filter: Record<string, string>) => {
          const { items } = await catalog.getEntities(
            { filter, fields: ['kind', 'metadata.namespace', 'metadata.name'] },
            { credentials: await auth.getOwnServiceCredentials() },
          );
          return items.map(e => stringifyEntityRef(e)).sort();
        };

        await scheduler.scheduleTask({
          id: 'recovery-capture',
          ...schedule(config, 'recovery.schedules.capture', {
            frequency: { cron: '0 * * * *' },
            timeout: { minutes: 50 },
          }),
          fn: async signal => {
            const machines = await entities({
              kind: 'Resource',
              'spec.type': MACHINE_RESOURCE_TYPE,
            });
            const ordered = await oldestCapturedFirst(api, machines, signal as AbortSignal | undefined);
            const report = await captureMachines(api, ordered, logger, signal as AbortSignal | undefined);
            finishTask(`Scheduled capture: ${report.succeeded.length} captured, ${report.failed.length} failed`, report.failed, logger);
          },
        });

        await scheduler.scheduleTask({
          id: 'recovery-analysis',
          ...schedule(config, 'recovery.schedules.analysis', {
            frequency: { cron: '30 */6 * * *' },
            timeout: { minutes: 30 },
          }),
          fn: async signal => {
            await analyseSystems(api, logger, signal as AbortSignal | undefined);
          },
        });

        // Half an hour after the hourly capture, so the check restores the captures just taken
        // rather than racing them.
        const nightlySchedule = schedule(config, 'recovery.schedules.nightlyCheck', {
          frequency: { cron: '30 2 * * *' },
          timeout: { hours: 4 },
        });
        await scheduler.scheduleTask({
          id: 'recovery-nightly-check',
          ...nightlySchedule,
          fn: async signal => {
            // Stop waiting for a busy host a little before the scheduler aborts the task, so
            // the report of what was and was not checked still gets logged.
            const deadline = Date.now() + timeoutMs(nightlySchedule.timeout) - 30_000;
            // Every recoverable entity, but those that opted out: read here rather than matched by
            // the catalog's filter, so that a value it cannot read (`no`) is named, not ignored.
            const { items: annotated } = await catalog.getEntities(
              {
                filter: { [`metadata.annotations.${ANNOTATION_NIGHTLY_CHECK}`]: CATALOG_FILTER_EXISTS },
                fields: ['kind', 'metadata.namespace', 'metadata.name', 'metadata.annotations'],
              },
              { credentials: await auth.getOwnServiceCredentials() },
            );
            const report = await nightlyCheck(api, nightlyOptOuts(annotated), logger, {
              pollIntervalMs: 5_000,
              deadline,
              signal: signal as AbortSignal | undefined,
            });
            // An entity that did not recover fails the task too: what the check is there to catch.
            finishTask(nightlySummary(report), report.failed, logger);
          },
        });
      },
    });
  },
});
