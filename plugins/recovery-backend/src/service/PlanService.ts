import type {
  BootPlan,
  DependencyDisagreements,
  InferredDependency,
  InferredMachineWait,
} from '@backstage-recovery/plugin-recovery-common';
import type { Entity } from '@backstage/catalog-model';
import { BootPlanCycleError, buildBootPlan } from '../plan/bootPlan';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { applyInference, Inference } from '../plan/inference';
import type { RecoveryGraph } from '../plan/recoveryGraph';

export interface PlannedRecovery {
  graph: RecoveryGraph;
  /** Undefined when the plan cannot be made; `planError` says why. */
  plan?: BootPlan;
  planError?: string;
  disagreements?: DependencyDisagreements;
}

/** Where learned dependencies come from (the analysis service). */
export interface InferenceSource {
  inferenceFor(entity: Entity): Promise<Inference | undefined>;
}

/** Boot plans: the catalog's declared dependencies plus those learned from boot history. */
export class PlanService {
  constructor(
    private readonly graphs: CatalogGraphLoader,
    private readonly inference?: InferenceSource,
  ) {}

  async plan(entityRef: string): Promise<PlannedRecovery> {
    const root = await this.graphs.getEntity(entityRef);
    const inference = await this.inference?.inferenceFor(root);
    const follow = new Map<string, string[]>();
    for (const d of inference?.dependencies ?? []) {
      if (d.score < inference!.threshold) continue;
      follow.set(d.service, [...(follow.get(d.service) ?? []), d.dependsOn]);
    }
    const graph = await this.graphs.load(root, follow);
    const applied = inference && applyInference(graph, inference);
    for (;;) {
      try {
        const plan = buildBootPlan(graph);
        if (applied && inference) {
          plan.inferred = applied.inferred;
          plan.inferredMachineWaits = applied.machineWaits;
          plan.analysis = { id: inference.id, createdAt: inference.createdAt, warnings: inference.warnings };
        }
        return { graph, plan, disagreements: applied?.disagreements };
      } catch (error) {
        if (!(error instanceof BootPlanCycleError)) throw error;
        // A cycle the learned edges close between machines: drop the weakest learned edge
        // on it and plan again, machine waits learned from reboots first (they name no
        // service). A cycle of declared edges alone is the catalog's to fix.
        const wait = applied && weakestMachineWaitOnCycle(applied.machineWaits, error);
        if (wait) {
          applied!.machineWaits = applied!.machineWaits.filter(w => w !== wait);
          const machine = graph.machines.get(wait.machine)!;
          machine.waitsFor = machine.waitsFor!.filter(m => m !== wait.waitsFor);
          continue;
        }
        const weakest = applied && weakestInferredOnCycle(graph, applied.inferred, error);
        if (!weakest) {
          return { graph, planError: error.message, disagreements: applied?.disagreements };
        }
        applied!.inferred = applied!.inferred.filter(e => e !== weakest);
        const service = graph.services.get(weakest.service)!;
        service.dependsOn = service.dependsOn.filter(d => d !== weakest.dependsOn);
      }
    }
  }
}

function weakestInferredOnCycle(
  graph: RecoveryGraph,
  inferred: InferredDependency[],
  cycle: BootPlanCycleError,
): InferredDependency | undefined {
  const onCycle = new Set(cycle.cycle);
  const touches = (ref: string) =>
    cycle.level === 'service'
      ? onCycle.has(ref)
      : (graph.services.get(ref)?.machines ?? []).some(m => onCycle.has(m));
  return inferred
    .filter(e => touches(e.service) && touches(e.dependsOn))
    .sort((a, b) => a.score - b.score || a.service.localeCompare(b.service) || a.dependsOn.localeCompare(b.dependsOn))[0];
}

/** The learned machine wait on a machine cycle followed in the smallest share of its chances. */
function weakestMachineWaitOnCycle(
  waits: InferredMachineWait[],
  cycle: BootPlanCycleError,
): InferredMachineWait | undefined {
  if (cycle.level !== 'machine') return undefined;
  // The cycle lists each machine before the one it waits for.
  const edges = new Set(
    cycle.cycle.map((m, i) => `${m}\u0000${cycle.cycle[(i + 1) % cycle.cycle.length]}`),
  );
  return waits
    .filter(w => edges.has(`${w.machine}\u0000${w.waitsFor}`))
    .sort(
      (a, b) =>
        a.followed / a.chances - b.followed / b.chances ||
        a.followed - b.followed ||
        a.machine.localeCompare(b.machine) ||
        a.waitsFor.localeCompare(b.waitsFor),
    )[0];
}
