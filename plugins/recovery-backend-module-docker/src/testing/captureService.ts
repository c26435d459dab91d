import type {
  AuditorService,
  LoggerService,
} from '@backstage/backend-plugin-api';
import { mockServices } from '@backstage/backend-test-utils';
import type { CaptureSource } from '@backstage-recovery/plugin-recovery-node';
import type { CaptureStore } from '../../../recovery-backend/src/database/CaptureStore';
import type { CatalogGraphLoader } from '../../../recovery-backend/src/plan/catalogGraph';
import { CaptureService } from '../../../recovery-backend/src/service/CaptureService';
import { PlanService } from '../../../recovery-backend/src/service/PlanService';
import { ProviderRegistry } from '../../../recovery-backend/src/service/ProviderRegistry';

/**
 * A backend's capture service over `store`, for the real-engine tests: its capture sources either
 * `sources` (in a registry of their own) or the `providers` a test shares with its RunService.
 * Unless given: plans from no catalog (captureMachine plans nothing), a mock logger, the last 5
 * captures kept, a mock auditor, the default capture timeout.
 */
export function buildCaptureService(
  options: {
    store: CaptureStore;
    plans?: PlanService;
    logger?: LoggerService;
    keepLast?: number;
    /** Hears what retention removes: a recordingAuditor where a test reads it. */
    auditor?: AuditorService;
    /** recovery.captures.timeout. */
    timeoutMs?: number;
  } & ({ sources: CaptureSource[] } | { providers: ProviderRegistry }),
): CaptureService {
  let providers: ProviderRegistry;
  if ('providers' in options) providers = options.providers;
  else {
    providers = new ProviderRegistry();
    for (const source of options.sources) providers.addCaptureSource(source);
  }
  return new CaptureService(
    options.store,
    providers,
    options.plans ?? new PlanService({} as CatalogGraphLoader),
    options.logger ?? mockServices.logger.mock(),
    options.keepLast ?? 5,
    options.auditor ?? mockServices.auditor.mock(),
    options.timeoutMs,
  );
}
