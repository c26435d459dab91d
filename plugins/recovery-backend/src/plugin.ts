import {
  coreServices,
  createBackendPlugin,
} from '@backstage/backend-plugin-api';
import { metricsServiceRef } from '@backstage/backend-plugin-api/alpha';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { ForwardedError, toError } from '@backstage/errors';
import { notificationService } from '@backstage/plugin-notifications-node';
import { signalsServiceRef } from '@backstage/plugin-signals-node';
import { recoveryPermissions } from '@backstage-recovery/plugin-recovery-common';
import {
  recoveryProvidersExtensionPoint,
  recoveryTasksExtensionPoint,
  type RecoveryTasksExtensionPoint,
  scheduleTaskFrom,
} from '@backstage-recovery/plugin-recovery-node';
import { NOTIFICATIONS_SCHEDULE_KEY, readRecoveryConfig } from './config';
import { EventStore } from './database/EventStore';
import { NightlyCheckStore } from './database/NightlyCheckStore';
import { ReadinessNoticeStore } from './database/ReadinessNoticeStore';
import { CaptureStore } from './database/CaptureStore';
import { assertSupportedDatabase, migrate } from './database/migrations';
import { ReadinessHistoryStore } from './database/ReadinessHistoryStore';
import { RunStore } from './database/RunStore';
import { AnalysisService } from './service/AnalysisService';
import { CatalogGraphLoader } from './plan/catalogGraph';
import { AuthorizedRunService } from './run/AuthorizedRunService';
import { AuthorizedAnalysisService } from './service/AuthorizedAnalysisService';
import { AuthorizedCaptureService } from './service/AuthorizedCaptureService';
import { RunRetention } from './run/RunRetention';
import { RunService } from './run/RunService';
import {
  FailoverSupervision,
  SUPERVISION_SWEEP_SECONDS,
} from './run/supervision';
import { CaptureService } from './service/CaptureService';
import { PlanService } from './service/PlanService';
import { ProviderRegistry } from './service/ProviderRegistry';
import { ReadinessNotifier } from './service/ReadinessNotifier';
import { ReadinessService } from './service/ReadinessService';
import { RecoveryMetrics } from './service/RecoveryMetrics';
import { RecoveryAuthorizer } from './service/RecoveryAuthorizer';
import { RecoverySignals } from './service/RecoverySignals';
import { RecoveryTasks } from './service/RecoveryTasks';
import { createRouter } from './service/router';

/**
 * The recovery backend plugin: captures, boot plans, recovery runs and readiness.
 *
 * @public
 */
export const recoveryPlugin = createBackendPlugin({
  pluginId: 'recovery',
  register(env) {
    const providers = new ProviderRegistry();
    env.registerExtensionPoint(
      recoveryProvidersExtensionPoint,
      providers.extensionPoint(),
    );
    // Each module's own, so that its failure to connect is reported as the module's (as the
    // catalog does for entity providers).
    const connections: Array<{
      connect: Parameters<RecoveryTasksExtensionPoint['connect']>[0];
      reportModuleStartupFailure(options: { error: Error }): void;
    }> = [];
    // Closed as the providers are: a connect after the plugin's init began would never be called.
    let connecting = true;
    env.registerExtensionPoint({
      extensionPoint: recoveryTasksExtensionPoint,
      factory: ({ reportModuleStartupFailure }) => ({
        connect(connect) {
          if (!connecting)
            throw new Error(
              "Recovery tasks connected after the recovery plugin started: connect in your module's init",
            );
          connections.push({ connect, reportModuleStartupFailure });
        },
      }),
    });

    env.registerInit({
      deps: {
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        database: coreServices.database,
        httpRouter: coreServices.httpRouter,
        httpAuth: coreServices.httpAuth,
        auth: coreServices.auth,
        permissions: coreServices.permissions,
        auditor: coreServices.auditor,
        permissionsRegistry: coreServices.permissionsRegistry,
        scheduler: coreServices.scheduler,
        lifecycle: coreServices.lifecycle,
        catalog: catalogServiceRef,
        notifications: notificationService,
        signals: signalsServiceRef,
        metrics: metricsServiceRef,
      },
      async init({
        config,
        logger,
        database,
        httpRouter,
        httpAuth,
        auth,
        permissions,
        auditor,
        permissionsRegistry,
        scheduler,
        lifecycle,
        catalog,
        notifications,
        signals,
        metrics,
      }) {
        // What modules registered is final: the config is checked against it.
        providers.close();
        connecting = false;
        const settings = readRecoveryConfig(
          config,
          providers.hypervisorHostIds(),
        );
        const client = await database.getClient();
        assertSupportedDatabase(client);
        if (!database.migrations?.skip) await migrate(client);
        // Each change of a run or a capture request is signalled on its entity's channel, for
        // the portal to fetch it again (without the signals backend, nobody hears: it polls).
        const changes = new RecoverySignals({
          signals,
          logger,
          entityRefOf: ({ kind, id }) =>
            kind === 'run'
              ? runStore.entityRefOf(id)
              : captureStore.requests.entityRefOf(id),
        });
        const captureStore = new CaptureStore(client, {
          onRequestChange: id =>
            changes.changed({ kind: 'captureRequest', id }),
        });
        const runStore = new RunStore(client, {
          onChange: id => changes.changed({ kind: 'run', id }),
        });
        const events = new EventStore(client);
        const recoveryMetrics = new RecoveryMetrics(
          metrics,
          settings.objectives.rtoSeconds,
        );
        const graphs = new CatalogGraphLoader(
          catalog,
          auth,
          settings.objectives,
        );
        const analyses = new AnalysisService(
          events,
          graphs,
          logger,
          settings.analysis,
        );
        const plans = new PlanService(graphs, analyses);
        const captures = new CaptureService(
          captureStore,
          providers,
          plans,
          logger,
          settings.captures.keepLast,
          auditor,
          // Its default is the capture service's.
          settings.captures.timeoutMs,
          // Verifies again, after a capture, the captures of the machine marked damaged.
          settings.runs.hypervisorHost,
          recoveryMetrics,
        );
        const runs = new RunService(
          runStore,
          captureStore,
          providers,
          plans,
          graphs,
          logger,
          {
            ...settings.runs,
            heartbeatIntervalMs: 5_000,
            staleAfterMs: 60_000,
          },
          recoveryMetrics,
        );
        const nightlyChecks = new NightlyCheckStore(client);
        const readiness = new ReadinessService(
          captureStore,
          new ReadinessHistoryStore(client),
          plans,
          graphs,
          settings.objectives,
          settings.maxTestAgeSeconds,
          () => providers.allCaptureSources().map(s => s.engineId),
          nightlyChecks,
        );

        permissionsRegistry.addPermissions(recoveryPermissions);

        if (settings.notifications) {
          const notices = new ReadinessNoticeStore(client);
          // What the notices' last sweep found: no readiness is assessed per scrape.
          recoveryMetrics.observeReadiness(() => notices.countByStatus());
          const notifier = new ReadinessNotifier(
            notices,
            readiness,
            graphs,
            catalog,
            notifications,
            auth,
            logger,
          );
          await scheduleTaskFrom(scheduler, NOTIFICATIONS_SCHEDULE_KEY, {
            id: 'recovery-readiness-notices',
            ...settings.notifications.schedule,
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
          timeout: {
            milliseconds: Math.max(5 * 60_000, 3 * settings.runs.stepTimeoutMs),
          },
          initialDelay: { seconds: 5 },
          fn: async () => {
            await runs.sweepInterruptedRuns();
          },
        });
        // A succeeded failover's machines serve production: those its host stopped (an engine
        // restarted, the host rebooted) are started again in boot order, wave by wave. Soon after
        // start too, where the backend and the host restarted together.
        const supervision = new FailoverSupervision(
          runStore,
          providers,
          logger.child({ task: 'recovery-failover-supervision' }),
          auditor,
          settings.runs,
        );
        await scheduler.scheduleTask({
          id: 'recovery-failover-supervision',
          frequency: { seconds: SUPERVISION_SWEEP_SECONDS },
          // A restart waits for each wave's readiness: up to a ready timeout per wave.
          timeout: {
            milliseconds: Math.max(
              10 * 60_000,
              10 * settings.runs.machineReadyTimeoutMs,
            ),
          },
          initialDelay: { seconds: 5 },
          fn: () => supervision.sweep(),
        });
        // Hosts that tell when a kept machine stops have it started again at once, not at the
        // next sweep: production is down meanwhile.
        let stopSupervisionWatch: (() => Promise<void>) | undefined;
        lifecycle.addStartupHook(() => {
          stopSupervisionWatch = supervision.watch();
        });
        lifecycle.addShutdownHook(async () => {
          await stopSupervisionWatch?.();
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
        // Runs past recovery.runs.retention, daily: the nightly check adds some every night.
        const runRetention = new RunRetention(
          runStore,
          readiness,
          logger.child({ task: 'recovery-run-retention' }),
          auditor,
          settings.runRetentionMs,
        );
        await scheduler.scheduleTask({
          id: 'recovery-run-retention',
          frequency: { hours: 24 },
          timeout: { hours: 1 },
          initialDelay: { minutes: 15 },
          fn: async () => {
            await runRetention.prune();
          },
        });
        // Engines keep only recent events: collect them continuously, from every source.
        const collecting = new AbortController();
        // Kept so shutdown waits for each source to stop and flush before the database closes.
        const collectors: Promise<void>[] = [];
        lifecycle.addStartupHook(() => {
          for (const source of providers.eventSources) {
            const sourceLogger = logger.child({ source: source.id });
            collectors.push(
              // From the newest event it stored: what the engine still holds of the time the
              // backend was down is not lost.
              events
                .newestEventTimeFrom(source.id)
                .catch(error => {
                  sourceLogger.warn(
                    'Event source starts without its resume point',
                    toError(error),
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
                  sourceLogger.error('Event source stopped', toError(error)),
                ),
            );
          }
        });
        lifecycle.addShutdownHook(async () => {
          collecting.abort();
          // A capture's re-check of damaged captures stops too (their marks stay).
          await Promise.all([
            ...collectors,
            runs.shutdown(),
            captures.shutdown(),
          ]);
          // What shutdown ended (runs interrupted, captures stopped) is told before the database closes.
          await changes.flush();
        });

        // The services as a caller may use them (their catalog view and grants): the HTTP API's
        // callers, and the plugin itself for its modules' tasks.
        const authorizer = new RecoveryAuthorizer(permissions);
        const authorized = {
          captures: new AuthorizedCaptureService(
            captures,
            authorizer,
            graphs,
            plans,
          ),
          runs: new AuthorizedRunService(runs, authorizer, graphs, plans),
          analyses: new AuthorizedAnalysisService(analyses, authorizer, graphs),
        };
        httpRouter.use(
          await createRouter({
            httpAuth,
            authorizer,
            auditor,
            events,
            maxEventsRequestSize: String(settings.eventsMaxRequestSize),
            graphs,
            plans,
            readiness,
            ...authorized,
          }),
        );
        httpRouter.addAuthPolicy({ path: '/health', allow: 'unauthenticated' });

        // Last: modules (the scheduler) drive the services in-process, as the plugin itself.
        const tasks = new RecoveryTasks({
          auth,
          auditor,
          readiness,
          nightlyChecks,
          ...authorized,
        });
        await Promise.all(
          connections.map(async ({ connect, reportModuleStartupFailure }) => {
            try {
              await connect(tasks);
            } catch (error) {
              reportModuleStartupFailure({
                error: new ForwardedError(
                  'Failed to connect to the recovery tasks API',
                  error,
                ),
              });
            }
          }),
        );
      },
    });
  },
});
