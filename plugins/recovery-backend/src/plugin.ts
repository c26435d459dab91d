import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import {
  parseDurationSeconds,
  recoveryPermissions,
} from '@backstage-recovery/plugin-recovery-common';
import { recoveryProvidersExtensionPoint } from '@backstage-recovery/plugin-recovery-node';
import { Config } from '@backstage/config';
import { RecoveryStore } from './database/RecoveryStore';
import { CatalogGraphLoader } from './plan/catalogGraph';
import { RunService } from './run/RunService';
import { CaptureService } from './service/CaptureService';
import { PlanService } from './service/PlanService';
import { ProviderRegistry } from './service/ProviderRegistry';
import { ReadinessService } from './service/ReadinessService';
import { createRouter } from './service/router';

/** Reads a duration setting such as `2m`, failing start-up with the key's name if malformed. */
function durationMs(config: Config, key: string, fallback: string): number {
  const text = config.getOptionalString(key) ?? fallback;
  const seconds = parseDurationSeconds(text);
  if (seconds === undefined) {
    throw new Error(`Invalid duration "${text}" at ${key}: use e.g. 90s, 15m, 24h`);
  }
  return seconds * 1000;
}

/**
 * The recovery backend plugin: captures, boot plans, recovery runs and readiness.
 *
 * @public
 */
export const recoveryPlugin = createBackendPlugin({
  pluginId: 'recovery',
  register(env) {
    const providers = new ProviderRegistry();
    env.registerExtensionPoint(recoveryProvidersExtensionPoint, providers);

    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        database: coreServices.database,
        httpRouter: coreServices.httpRouter,
        httpAuth: coreServices.httpAuth,
        auth: coreServices.auth,
        permissions: coreServices.permissions,
        permissionsRegistry: coreServices.permissionsRegistry,
        scheduler: coreServices.scheduler,
        lifecycle: coreServices.lifecycle,
        catalog: catalogServiceRef,
      },
      async init({
        config,
        logger,
        database,
        httpRouter,
        httpAuth,
        auth,
        permissions,
        permissionsRegistry,
        scheduler,
        lifecycle,
        catalog,
      }) {
        const store = await RecoveryStore.create(database);
        const graphs = new CatalogGraphLoader(catalog, auth, {
          rpoSeconds: durationMs(config, 'recovery.objectives.rpo', '24h') / 1000,
          rtoSeconds: durationMs(config, 'recovery.objectives.rto', '1h') / 1000,
        });
        const plans = new PlanService(graphs);
        const captures = new CaptureService(
          store,
          providers,
          plans,
          logger,
          config.getOptionalNumber('recovery.captureStore.keepLast') ?? 5,
        );
        const runs = new RunService(store, providers, plans, logger, {
          hypervisorHost: config.getOptionalString('recovery.hypervisorHost'),
          machineReadyTimeoutMs: durationMs(config, 'recovery.runs.machineReadyTimeout', '2m'),
          probeIntervalMs: durationMs(config, 'recovery.runs.probeInterval', '1s'),
          heartbeatIntervalMs: 5_000,
          staleAfterMs: 60_000,
          allowTestHooks: config.getOptionalBoolean('recovery.runs.allowTestHooks') ?? false,
        });
        const readiness = new ReadinessService(store, plans);

        permissionsRegistry.addPermissions(recoveryPermissions);

        // Runs orphaned by a stopped backend (this one or another replica) are cleaned
        // up once, by whichever instance claims the task.
        await scheduler.scheduleTask({
          id: 'recovery-interrupted-runs',
          frequency: { seconds: 30 },
          timeout: { minutes: 5 },
          initialDelay: { seconds: 5 },
          fn: async () => {
            await runs.cleanUpInterruptedRuns();
          },
        });
        lifecycle.addShutdownHook(() => runs.shutdown());

        httpRouter.use(
          await createRouter({
            logger,
            httpAuth,
            permissions,
            store,
            graphs,
            plans,
            captures,
            runs,
            readiness,
          }),
        );
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
