import { createExtensionPoint } from '@backstage/backend-plugin-api';
import type {
  CaptureSource,
  HypervisorHost,
  InitializationEventSource,
} from './providers';

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
 * The extension point through which modules add capture sources, hypervisor hosts and event sources.
 *
 * @public
 */
export const recoveryProvidersExtensionPoint =
  createExtensionPoint<RecoveryProvidersExtensionPoint>({
    id: 'recovery.providers',
  });
