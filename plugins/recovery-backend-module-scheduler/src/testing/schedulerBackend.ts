import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type {
  BackendFeature,
  SchedulerServiceTaskInvocationDefinition,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import type { JsonObject } from '@backstage/types';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryPlugin } from '../../../recovery-backend/src/plugin';
import { recoveryModuleScheduler } from '../module';

export type ScheduledTask = SchedulerServiceTaskScheduleDefinition &
  SchedulerServiceTaskInvocationDefinition;

/**
 * The real recovery backend plugin with this module, on a catalog of `entities`: the tasks the
 * module schedules are kept (run them with `task(id).fn`), not run by a clock, and what the
 * module logs goes to `logger`. `server` serves the plugin's HTTP API, for what a test does or
 * reads beside the tasks.
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
  const { server } = await startTestBackend({
    features: [
      recoveryPlugin,
      recoveryModuleScheduler,
      scheduler.factory,
      mockServices.rootLogger.mock({ child: () => logger }).factory,
      catalogServiceMock.factory({ entities: options.entities }),
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
