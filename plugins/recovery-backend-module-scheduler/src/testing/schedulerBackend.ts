import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import {
  type BackendFeature,
  createServiceFactory,
  type SchedulerServiceTaskInvocationDefinition,
  type SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import type { JsonObject } from '@backstage/types';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { recoveryPlugin } from '../../../recovery-backend/src/plugin';
import {
  boundedCatalog,
  STREAM_PAGE_SIZE,
} from '../../../recovery-backend/src/testing/boundedCatalog';
import { recoveryModuleScheduler } from '../module';

export type ScheduledTask = SchedulerServiceTaskScheduleDefinition &
  SchedulerServiceTaskInvocationDefinition;

/**
 * The real recovery backend plugin with this module, on a catalog of `entities`: the tasks the
 * module schedules are kept (run them with `task(id).fn`), not run by a clock, and what the
 * module logs goes to `logger`. `server` serves the plugin's HTTP API, for what a test does or
 * reads beside the tasks. The catalog lists a page at a time only, as a large one must be read
 * (boundedCatalog, at streamEntities' page size).
 */
export async function startSchedulerBackend(options: {
  entities: Entity[];
  config?: JsonObject;
  /** Features besides: provider modules, service mocks. */
  features?: BackendFeature[];
}) {
  const tasks: ScheduledTask[] = [];
  const scheduler = mockServices.scheduler.mock({
    scheduleTask: async task => void tasks.push(task as ScheduledTask),
  });
  const logger = mockServices.logger.mock();
  const { catalog } = boundedCatalog(options.entities, STREAM_PAGE_SIZE);
  const { server } = await startTestBackend({
    features: [
      recoveryPlugin,
      recoveryModuleScheduler,
      scheduler.factory,
      mockServices.rootLogger.mock({ child: () => logger }).factory,
      createServiceFactory({
        service: catalogServiceRef,
        deps: {},
        factory: () => catalog,
      }),
      ...(options.config
        ? [mockServices.rootConfig.factory({ data: options.config })]
        : []),
      ...(options.features ?? []),
    ],
  });
  const task = (id: string) => {
    const found = tasks.find(t => t.id === id);
    if (!found)
      throw new Error(
        `the module scheduled no task ${id} (it scheduled ${tasks.map(t => t.id).join(', ')})`,
      );
    return found;
  };
  return { server, logger, task };
}
