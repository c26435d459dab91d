import type { Readiness } from '@backstage-recovery/plugin-recovery-common';
import { RecoveryStore } from '../database/RecoveryStore';
import { toApi } from './CaptureService';
import { PlanService } from './PlanService';
import { assessReadiness, byRisk } from './readiness';

/** Gathers the facts about an entity's recoverability and assesses them. */
export class ReadinessService {
  constructor(
    private readonly store: RecoveryStore,
    private readonly plans: PlanService,
    /** The site's default objectives: all there is to show for an entity that cannot be assessed. */
    private readonly defaultObjectives: Readiness['objectives'],
  ) {}

  async readiness(entityRef: string): Promise<Readiness> {
    const { graph, plan, planError, disagreements } = await this.plans.plan(entityRef);
    const machineRefs = plan ? plan.waves.flat() : [...graph.machines.keys()].sort();
    const [latest, lastRuns] = await Promise.all([
      this.store.latestCaptures(machineRefs),
      this.store.lastFinishedRuns([graph.rootRef]),
    ]);
    const now = Date.now();
    const roots = new Set(graph.roots);
    const ownMachines = [...graph.services.values()]
      .filter(s => roots.has(s.ref))
      .flatMap(s => s.machines);
    return assessReadiness({
      entityRef: graph.rootRef,
      ownMachines,
      problems: graph.problems,
      objectives: graph.objectives,
      plan,
      planError,
      captures: machineRefs.map(machineRef => {
        const capture = latest.get(machineRef);
        return {
          machineRef,
          latest: capture && toApi(capture),
          ageSeconds: capture
            ? Math.max(0, Math.round((now - Date.parse(capture.createdAt)) / 1000))
            : undefined,
        };
      }),
      lastRun: lastRuns.get(graph.rootRef),
      disagreements: disagreements && {
        inferredNotDeclared: disagreements.inferredNotDeclared.filter(d => roots.has(d.service)),
        declaredNotObserved: disagreements.declaredNotObserved.filter(d => roots.has(d.service)),
      },
    });
  }

  /** Readiness of many entities, most at risk first. */
  async readinessOf(entityRefs: string[]): Promise<Readiness[]> {
    const items: Readiness[] = [];
    for (const ref of entityRefs) {
      // One broken entity (e.g. a reference to a missing System) must not hide the rest
      // of the overview: show it as not recoverable, with the error as the reason.
      try {
        items.push(await this.readiness(ref));
      } catch (error) {
        items.push(unassessable(ref, error, this.defaultObjectives));
      }
    }
    return items.sort(byRisk);
  }
}

function unassessable(entityRef: string, error: unknown, objectives: Readiness['objectives']): Readiness {
  const message = error instanceof Error ? error.message : String(error);
  return {
    entityRef,
    status: 'not-recoverable',
    reasons: [message],
    problems: [],
    // Its own objectives come from its graph, which could not be loaded.
    objectives,
    captures: [],
  };
}
