import type Docker from 'dockerode';
import type { LoggerService } from '@backstage/backend-plugin-api';
import { mockServices } from '@backstage/backend-test-utils';
import type {
  HypervisorHost,
  RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../../../recovery-backend/src/database/CaptureStore';
import { migrate } from '../../../recovery-backend/src/database/migrations';
import { RunStore } from '../../../recovery-backend/src/database/RunStore';
import type { CatalogGraphLoader } from '../../../recovery-backend/src/plan/catalogGraph';
import {
  RunService,
  type RunServiceOptions,
} from '../../../recovery-backend/src/run/RunService';
import type { CaptureService } from '../../../recovery-backend/src/service/CaptureService';
import { PlanService } from '../../../recovery-backend/src/service/PlanService';
import { ProviderRegistry } from '../../../recovery-backend/src/service/ProviderRegistry';
import { DockerCaptureSource } from '../DockerCaptureSource';
import { buildCaptureService } from './captureService';

/** A recovery site of the real-engine tests, as buildRunSite makes it. */
export interface RunSite {
  captureStore: CaptureStore;
  runStore: RunStore;
  /** The primary engine's capture source ('primary') and the hypervisor host. */
  providers: ProviderRegistry;
  plans: PlanService;
  captures: CaptureService;
  runs: RunService;
}

/**
 * A recovery site around the capture service, for the real-engine tests: `database` migrated, with
 * its capture and run stores; the primary engine's capture source ('primary', into
 * `storeDirectory`) and `host` (named 'recovery', the runs' hypervisor host) in one registry; a
 * catalog whose every entity is a Component, its graph what `graph` gives for its ref; the
 * capture service (buildCaptureService) and run service over them. Unless given: a mock logger,
 * the captures' and the runs' own; runs that wait 20 s for a machine to get ready, probe every
 * 200 ms, beat every second, take 30 s a step, keep the last machine ready 500 ms and take no
 * test hooks (`run` changes any of these).
 */
export async function buildRunSite(options: {
  database: Parameters<typeof migrate>[0];
  primary: Docker;
  storeDirectory: string;
  host: HypervisorHost;
  graph: (entityRef: string) => RecoveryGraph;
  logger?: LoggerService;
  run?: Partial<RunServiceOptions>;
}): Promise<RunSite> {
  await migrate(options.database);
  const captureStore = new CaptureStore(options.database);
  const runStore = new RunStore(options.database);
  const providers = new ProviderRegistry();
  providers.addCaptureSource(
    new DockerCaptureSource('primary', options.primary, {
      storeDirectory: options.storeDirectory,
    }),
  );
  providers.addHypervisorHost(options.host);
  // The entity keeps its ref: the stub's load finds the graph by it.
  const graphs = {
    getEntity: async (entityRef: string) => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'Component',
      metadata: { name: entityRef.slice(entityRef.indexOf('/') + 1) },
      entityRef,
    }),
    load: async (root: { entityRef: string }) => options.graph(root.entityRef),
    visibleTo: async (refs: string[]) => refs,
  } as unknown as CatalogGraphLoader;
  const plans = new PlanService(graphs);
  const logger = options.logger ?? mockServices.logger.mock();
  const captures = buildCaptureService({
    store: captureStore,
    providers,
    plans,
    logger,
  });
  const runs = new RunService(
    runStore,
    captureStore,
    providers,
    plans,
    graphs,
    logger,
    {
      hypervisorHost: 'recovery',
      machineReadyTimeoutMs: 20_000,
      probeIntervalMs: 200,
      heartbeatIntervalMs: 1_000,
      staleAfterMs: 60_000,
      stepTimeoutMs: 30_000,
      minReadyMs: 500,
      allowTestHooks: false,
      ...options.run,
    },
  );
  return { captureStore, runStore, providers, plans, captures, runs };
}
