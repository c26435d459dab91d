import { createBackendModule } from '@backstage/backend-plugin-api';
import {
  type CaptureSource,
  type HypervisorHost,
  type InitializationEventSource,
  recoveryProvidersExtensionPoint,
} from '@backstage-recovery/plugin-recovery-node';

/** A backend module that registers these providers with the recovery plugin, as a provider module does. */
export function providersModule(providers: {
  captureSources?: CaptureSource[];
  hypervisorHosts?: HypervisorHost[];
  eventSources?: InitializationEventSource[];
}) {
  return createBackendModule({
    pluginId: 'recovery',
    moduleId: 'test-providers',
    register(env) {
      env.registerInit({
        deps: { registry: recoveryProvidersExtensionPoint },
        async init({ registry }) {
          providers.captureSources?.forEach(s => registry.addCaptureSource(s));
          providers.hypervisorHosts?.forEach(h =>
            registry.addHypervisorHost(h),
          );
          providers.eventSources?.forEach(s => registry.addEventSource(s));
        },
      });
    },
  });
}
