import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import { mockServices } from '@backstage/backend-test-utils';
import type {
  HypervisorHost,
  RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';
import type { CaptureStore } from '../database/CaptureStore';
import type { RunStore } from '../database/RunStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { RunService, type RunServiceOptions } from '../run/RunService';
import { PlanService } from '../service/PlanService';
import { ProviderRegistry } from '../service/ProviderRegistry';
import type { RecoveryMetrics } from '../service/RecoveryMetrics';

/**
 * A RunService over one recovery graph (every entity plans to it) and one host, with short timings
 * for tests; `timings` replaces those a test needs otherwise. `metrics` hears how its runs end.
 */
export function runServiceOver(
  runStore: RunStore,
  captureStore: CaptureStore,
  host: HypervisorHost,
  graph: RecoveryGraph,
  timings: Partial<RunServiceOptions> = {},
  metrics?: RecoveryMetrics,
): RunService {
  const providers = new ProviderRegistry();
  providers.addHypervisorHost(host);
  const graphs = {
    getEntity: async () => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: 'web' },
    }),
    load: async () => graph,
    visibleTo: async (refs: string[], _credentials: BackstageCredentials) =>
      refs,
  };
  return new RunService(
    runStore,
    captureStore,
    providers,
    new PlanService(graphs as unknown as CatalogGraphLoader),
    graphs,
    mockServices.logger.mock(),
    {
      machineReadyTimeoutMs: 300,
      probeIntervalMs: 20,
      heartbeatIntervalMs: 50,
      staleAfterMs: 1_000,
      stepTimeoutMs: 60_000,
      minReadyMs: 0,
      allowTestHooks: false,
      ...timings,
    },
    metrics,
  );
}
