import { createBackendModule } from '@backstage/backend-plugin-api';
import {
  type RecoveryTasksApi,
  recoveryTasksExtensionPoint,
} from '@backstage-recovery/plugin-recovery-node';

/**
 * A backend module that connects to the recovery plugin's tasks API as the scheduler module does,
 * and hands it to the test (`tasks()`, once the backend has started).
 */
export function tasksModule() {
  let api: RecoveryTasksApi | undefined;
  const module = createBackendModule({
    pluginId: 'recovery',
    moduleId: 'test-tasks',
    register(env) {
      env.registerInit({
        deps: { tasks: recoveryTasksExtensionPoint },
        async init({ tasks }) {
          tasks.connect(async connected => {
            api = connected;
          });
        },
      });
    },
  });
  const tasks = () => {
    if (!api)
      throw new Error('the recovery plugin has not connected the test module');
    return api;
  };
  return { module, tasks };
}
