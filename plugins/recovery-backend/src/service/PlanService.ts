import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import { BootPlanCycleError, buildBootPlan } from '../plan/bootPlan';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import type { RecoveryGraph } from '../plan/recoveryGraph';

export interface PlannedRecovery {
  graph: RecoveryGraph;
  /** Undefined when the plan cannot be made; `planError` says why. */
  plan?: BootPlan;
  planError?: string;
}

/** Boot plans from the catalog's declared dependencies. */
export class PlanService {
  constructor(private readonly graphs: CatalogGraphLoader) {}

  async plan(entityRef: string): Promise<PlannedRecovery> {
    const graph = await this.graphs.load(entityRef);
    try {
      return { graph, plan: buildBootPlan(graph) };
    } catch (error) {
      if (error instanceof BootPlanCycleError) {
        return { graph, planError: error.message };
      }
      throw error;
    }
  }
}
