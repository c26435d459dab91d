import Docker from 'dockerode';
import {
  coreServices,
  createBackendModule,
} from '@backstage/backend-plugin-api';
import { metricsServiceRef } from '@backstage/backend-plugin-api/alpha';
import { toError } from '@backstage/errors';
import { recoveryProvidersExtensionPoint } from '@backstage-recovery/plugin-recovery-node';
import { readDockerModuleConfig } from './config';
import { DockerCaptureSource } from './DockerCaptureSource';
import { DockerEventSource } from './DockerEventSource';
import { DockerHypervisorHost } from './DockerHypervisorHost';
import { capturePauseHistogram } from './pauseMetrics';

/**
 * Docker engines as capture sources (role primary/both), hypervisor hosts (role
 * hypervisor/both) and initialization event sources (primary engines' event streams).
 *
 * @public
 */
export const recoveryModuleDocker = createBackendModule({
  pluginId: 'recovery',
  moduleId: 'docker',
  register(reg) {
    reg.registerInit({
      deps: {
        providers: recoveryProvidersExtensionPoint,
        config: coreServices.rootConfig,
        logger: coreServices.logger,
        lifecycle: coreServices.lifecycle,
        metrics: metricsServiceRef,
      },
      async init({ providers, config, logger, lifecycle, metrics }) {
        const cfg = readDockerModuleConfig(config);
        // One instrument for every engine's captures.
        const pauseSeconds = capturePauseHistogram(
          metrics,
          cfg.maxCapturePauseMs,
        );
        for (const engine of cfg.engines) {
          const docker = new Docker(engine.options);
          if (engine.role === 'primary' || engine.role === 'both') {
            const captures = new DockerCaptureSource(engine.id, docker, {
              storeDirectory: cfg.storeDirectory,
              pause: cfg.pauseOnCapture,
              maxPauseMs: cfg.maxCapturePauseMs,
              quiesceTimeoutMs: cfg.quiesceTimeoutMs,
              logger,
              requireMachineLabel: engine.requireMachineLabel,
              // For the pause guard: production is unpaused even if the backend dies mid-pause.
              engineConnection: engine.options,
              pauseSeconds,
            });
            providers.addCaptureSource(captures);
            // A capture under way when the backend stops would leave its machine paused.
            lifecycle.addShutdownHook(() => captures.stopCaptures());
            // Not awaited: an engine down at start-up must not hold the backend; a machine left
            // paused is then unpaused at its next capture.
            captures
              .resumeInterruptedCaptures()
              .catch(e =>
                logger
                  .child({ engine: engine.id })
                  .warn(
                    'Could not check the engine for machines left paused by an unfinished capture',
                    toError(e),
                  ),
              );
            providers.addEventSource(
              new DockerEventSource(engine.id, docker, { logger }),
            );
          }
          if (engine.role === 'hypervisor' || engine.role === 'both') {
            providers.addHypervisorHost(
              new DockerHypervisorHost(engine.id, docker, {
                storeDirectory: cfg.storeDirectory,
                probeImage: cfg.probeImage,
                busyboxPath: cfg.busyboxPath,
                logger,
              }),
            );
          }
          logger.info('Docker engine registered', {
            engine: engine.id,
            role: engine.role,
          });
        }
      },
    });
  },
});
