import { createExtensionPoint } from '@backstage/backend-plugin-api';
import type {
  CaptureSource,
  HypervisorHost,
  InitializationEventSource,
} from './providers';
import type { RecoveryTasksApi } from './tasks';

/**
 * Lets modules plug capture sources, hypervisor hosts and event sources into the recovery backend.
 *
 * @public
 */
export interface RecoveryProvidersExtensionPoint {
  addCaptureSource(source: CaptureSource): void;
  addHypervisorHost(host: HypervisorHost): void;
  addEventSource(source: InitializationEventSource): void;
}

/**
 * The extension point through which modules add capture sources, hypervisor hosts and event
 * sources, in their init: the plugin refuses additions once its own init has begun.
 *
 * @alpha
 */
export const recoveryProvidersExtensionPoint =
  createExtensionPoint<RecoveryProvidersExtensionPoint>({
    id: 'recovery.providers',
  });

/**
 * Lets a module drive the recovery plugin's work in-process (the scheduler module's captures,
 * dependency analysis and nightly check): the plugin hands each module that connects the
 * {@link RecoveryTasksApi} once its services exist, at the end of its init.
 *
 * @public
 */
export interface RecoveryTasksExtensionPoint {
  /**
   * `connect` is called once, with the plugin's tasks API, before the backend starts: schedule
   * work there. Its failure is the module's startup failure, not the plugin's.
   */
  connect(connect: (tasks: RecoveryTasksApi) => Promise<void>): void;
}

/**
 * The extension point through which modules receive the recovery plugin's tasks API.
 *
 * @alpha
 */
export const recoveryTasksExtensionPoint =
  createExtensionPoint<RecoveryTasksExtensionPoint>({
    id: 'recovery.tasks',
  });
