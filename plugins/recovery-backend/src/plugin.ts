import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { notificationService } from '@backstage/plugin-notifications-node';
import {
  durationSettingMs,
  recoveryPermissions,
} from '@backstage-recovery/plugin-recovery-common';
import {
  readTaskSchedule,
  recoveryProvidersExtensionPoint,
  scheduleTaskFrom,
  ServiceMap,
} from '@backstage-recovery/plugin-recovery-node';
import { Config } from '@backstage/config';
import { createRequire } from 'node:module';
import { EventStore } from './database/EventStore';
import { NightlyCheckStore } from './database/NightlyCheckStore';
import { ReadinessNoticeStore } from './database/ReadinessNoticeStore';
import { RecoveryStore } from './database/RecoveryStore';
import { AnalysisService } from './service/AnalysisService';
import { CatalogGraphLoader } from './plan/catalogGraph';
import { RunService } from './run/RunService';
import { CaptureService } from './service/CaptureService';
import { PlanService } from './service/PlanService';
import { ProviderRegistry } from './service/ProviderRegistry';
import { ReadinessNotifier } from './service/ReadinessNotifier';
import { ReadinessService } from './service/ReadinessService';
import { createRouter } from './service/router';

/** Reads a duration setting such as `2m` (see durationSettingMs). */
function durationMs(config: Config, key: string, fallback: string): number {
  return durationSettingMs(key, config.getOptionalString(key) ?? fallback);
}

// body-parser reads its `limit` with `bytes`; parsing with the same package keeps the
// checked value and the enforced one identical. It ships no types, hence the require.
const parseBytes = createRequire(__filename)('bytes').parse as (
  value: string | number,
) => number | null;

/**
 * The POST /events body limit, checked at start-up: body-parser would otherwise throw a
 * TypeError without the key on the first request, or silently read `10 megabytes` as 10 bytes
 * (`bytes` falls back to parseInt for units it does not know).
 */
function maxEventsRequestSize(config: Config): number {
  const key = 'recovery.events.maxRequestSize';
  const value = config.getOptional<string | number>(key) ?? '10mb';
  const text = String(value).trim();
  const match = /^(\d+(?:\.\d+)?) *(b|kb|mb|gb|tb|pb)?$/i.exec(text);
  // `bytes` has no `b` unit; a count of bytes must be whole.
  const plain = match && (!match[2] || match[2].toLowerCase() === 'b');
  let parsed: number | null = null;
  if (match && !plain) parsed = parseBytes(`${match[1]}${match[2]}`);
  else if (match && plain && Number.isInteger(Number(match[1])))
    parsed = Number(match[1]);
  if (parsed === null || !Number.isSafeInteger(parsed) || parsed <= 0) {
    throw new Error(
      `Invalid ${key} "${value}": use a positive size such as 512kb, 10mb or 1048576 (bytes)`,
    );
  }
  return parsed;
}

/**
 * How many captures (or analyses) to keep: at least the one just made, or pruning would delete
 * it. `what` names them in the error, e.g. `captures kept per machine`.
 */
function keepLast(
  config: Config,
  key: string,
  fallback: number,
  what: string,
): number {
  const value = config.getOptionalNumber(key) ?? fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(
      `Invalid ${key} ${value}: ${what} must be an integer of at least 1`,
    );
  }
  return value;
}

/**
 * `recovery.hypervisorHost`, checked against the hosts the modules registered (they are initialised
 * before the plugin): a name none of them gave, a typo say, would otherwise fail every run with a 503.
 */
function designatedHost(
  config: Config,
  providers: ProviderRegistry,
): string | undefined {
  const key = 'recovery.hypervisorHost';
  const host = config.getOptionalString(key);
  const registered = providers.hypervisorHostIds();
  if (host !== undefined && !registered.includes(host)) {
    throw new Error(
      `Invalid ${key} "${host}": no module registered a hypervisor host of that id (registered: ${registered.join(', ') || 'none'})`,
    );
  }
  return host;
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
        notifications: notificationService,
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
        notifications,
      }) {
        const client = await database.getClient();
        if (!database.migrations?.skip) await RecoveryStore.migrate(client);
        const store = new RecoveryStore(client);
        const events = new EventStore(client);
        // Objectives of entities without rpo/rto annotations.
        const objectives = {
          rpoSeconds:
            durationMs(config, 'recovery.objectives.rpo', '24h') / 1000,
          rtoSeconds:
            durationMs(config, 'recovery.objectives.rto', '1h') / 1000,
        };
        const graphs = new CatalogGraphLoader(catalog, auth, objectives);
        const serviceNames = config.getOptional<ServiceMap['services']>(
          'recovery.analysis.serviceMap',
        );
        const analyses = new AnalysisService(events, graphs, logger, {
          threshold:
            config.getOptionalNumber('recovery.analysis.threshold') ?? 0.7,
          serviceMap: serviceNames && { services: serviceNames },
          halfLifeMs: config.has('recovery.analysis.halfLife')
            ? durationMs(config, 'recovery.analysis.halfLife', '90d')
            : undefined,
          kernelShape: config.getOptionalString(
            'recovery.analysis.kernelShape',
          ),
          kernelPeakMs: config.has('recovery.analysis.kernelPeak')
            ? durationMs(config, 'recovery.analysis.kernelPeak', '10m')
            : undefined,
          // Boots 180 days older than the newest teach a stale order (and weigh ≤ 1/4 at the default half-life).
          eventRetentionMs: durationMs(
            config,
            'recovery.analysis.eventRetention',
            '180d',
          ),
          keepAnalyses: keepLast(
            config,
            'recovery.analysis.keepLast',
            20,
            'analyses kept per system',
          ),
        });
        const plans = new PlanService(graphs, analyses);
        const captures = new CaptureService(
          store,
          providers,
          plans,
          logger,
          keepLast(
            config,
            'recovery.captureStore.keepLast',
            5,
            'captures kept per machine',
          ),
          // Its default is the capture service's.
          config.has('recovery.captures.timeout')
            ? durationSettingMs(
                'recovery.captures.timeout',
                config.getString('recovery.captures.timeout'),
              )
            : undefined,
        );
        const stepTimeoutMs = durationMs(
          config,
          'recovery.runs.stepTimeout',
          '10m',
        );
        const runs = new RunService(store, providers, plans, graphs, logger, {
          hypervisorHost: designatedHost(config, providers),
          machineReadyTimeoutMs: durationMs(
            config,
            'recovery.runs.machineReadyTimeout',
            '2m',
          ),
          probeIntervalMs: durationMs(
            config,
            'recovery.runs.probeInterval',
            '1s',
          ),
          stepTimeoutMs,
          minReadyMs: durationMs(config, 'recovery.runs.minReadyTime', '5s'),
          heartbeatIntervalMs: 5_000,
          staleAfterMs: 60_000,
          allowTestHooks:
            config.getOptionalBoolean('recovery.runs.allowTestHooks') ?? false,
        });
        const nightlyChecks = new NightlyCheckStore(client);
        const readiness = new ReadinessService(
          store,
          plans,
          graphs,
          objectives,
          durationMs(config, 'recovery.objectives.maxTestAge', '7d') / 1000,
          () => providers.allCaptureSources().map(s => s.engineId),
          nightlyChecks,
        );

        permissionsRegistry.addPermissions(recoveryPermissions);

        if (
          config.getOptionalBoolean('recovery.notifications.enabled') ??
          true
        ) {
          const notifier = new ReadinessNotifier(
            new ReadinessNoticeStore(client),
            readiness,
            graphs,
            catalog,
            notifications,
            auth,
            logger,
          );
          const key = 'recovery.notifications.schedule';
          await scheduleTaskFrom(scheduler, key, {
            id: 'recovery-readiness-notices',
            ...readTaskSchedule(config, key, {
              frequency: { minutes: 15 },
              timeout: { minutes: 10 },
              initialDelay: { minutes: 1 },
            }),
            fn: async signal => {
              await notifier.sweep(signal);
            },
          });
        }

        // Runs orphaned by a stopped backend (this one or another replica) are cleaned
        // up once, by whichever instance claims the task. Between its runs, the instance that
        // ran it looks again when the oldest active run's heartbeat turns stale (runs.shutdown
        // cancels that look): a run orphaned just after a sweep waits no extra 30 s.
        await scheduler.scheduleTask({
          id: 'recovery-interrupted-runs',
          frequency: { seconds: 30 },
          // Past the timeout another instance may claim the task: give a teardown or two (each
          // up to the step timeout) time to finish, or two would clean up the same run at once.
          timeout: { milliseconds: Math.max(5 * 60_000, 3 * stepTimeoutMs) },
          initialDelay: { seconds: 5 },
          fn: async () => {
            await runs.sweepInterruptedRuns();
          },
        });
        // What captures a stopped backend never recorded left, of every machine (the next capture
        // of a machine removes its own, but one may never be captured again): at start, and now
        // and then. A task of its own, so that an engine slow to answer holds up no run's cleanup.
        lifecycle.addStartupHook(() => {
          // Not awaited: an engine down must not hold the backend (the sweep logs what failed).
          void captures.removeUnrecorded();
        });
        await scheduler.scheduleTask({
          id: 'recovery-unrecorded-captures',
          frequency: { minutes: 10 },
          timeout: { minutes: 10 },
          initialDelay: { minutes: 10 },
          fn: () => captures.removeUnrecorded(),
        });
        // Engines keep only recent events: collect them continuously, from every source.
        const collecting = new AbortController();
        // Kept so shutdown waits for each source to stop and flush before the database closes.
        const collectors: Promise<void>[] = [];
        lifecycle.addStartupHook(() => {
          for (const source of providers.eventSources) {
            collectors.push(
              // From the newest event it stored: what the engine still holds of the time the
              // backend was down is not lost.
              events
                .newestEventTimeFrom(source.id)
                .catch(error => {
                  logger.warn(
                    `Event source ${source.id} starts without its resume point: ${error}`,
                  );
                  return undefined;
                })
                .then(since =>
                  source.start(
                    async batch => {
                      await events.insertEvents(batch, source.id);
                    },
                    collecting.signal,
                    { since },
                  ),
                )
                .catch(error =>
                  logger.error(`Event source ${source.id} stopped: ${error}`),
                ),
            );
          }
        });
        lifecycle.addShutdownHook(async () => {
          collecting.abort();
          await Promise.all([...collectors, runs.shutdown()]);
        });

        httpRouter.use(
          await createRouter({
            httpAuth,
            permissions,
            events,
            analyses,
            maxEventsRequestSize: String(maxEventsRequestSize(config)),
            graphs,
            plans,
            captures,
            runs,
            readiness,
            nightlyChecks,
          }),
        );
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });
      },
    });
  },
});
