import type {
  BootPlan,
  DependencyDisagreements,
  InferredDependency,
  InferredMachineWait,
} from '@backstage-recovery/plugin-recovery-common';
import { machinesAwaited } from '@backstage-recovery/plugin-recovery-common';
import {
  byName,
  mergeDependencies,
  type RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';

/** What the latest dependency analysis says about the services of a graph, as entity refs. */
export interface Inference {
  id: string;
  createdAt: string;
  /** Scored dependencies between entity refs. */
  dependencies: InferredDependency[];
  /** Machines (entity refs) that waited for another machine's reboots. */
  machineWaits: InferredMachineWait[];
  /** What the analysis warned of. */
  warnings: string[];
  /** Every service and machine the analysis names (log names), to its entity ref where it has one. */
  names: Map<string, string | undefined>;
  /** Services that initialized at least once in the analysed history. */
  observed: Set<string>;
  threshold: number;
  /**
   * The analysis's order of services and of machines (entity refs), what it found to boot first
   * first: a plan breaking cycles drops first a dependency it contradicts.
   */
  order?: { services: string[]; machines: string[] };
}

/**
 * Adds inferred dependencies to a graph's declared ones, and machine waits learned from reboots
 * to its machines (in place). A cycle that an inferred edge would create is resolved by dropping
 * inferred edges first; a cycle of declared edges alone is left for the boot plan to report,
 * with the inferred edges kept.
 * Returns the inferred edges and machine waits the plan now follows, the inferred edges dropped
 * for closing a cycle, and where declared and observed disagree.
 */
export function applyInference(
  graph: RecoveryGraph,
  inference: Inference,
): {
  inferred: InferredDependency[];
  dropped: InferredDependency[];
  machineWaits: InferredMachineWait[];
  disagreements: DependencyDisagreements;
} {
  // In one order whatever order the analysis kept them in: a plan is the same for the same inputs.
  const machineWaits = inference.machineWaits
    .filter(
      w => graph.machines.has(w.machine) && graph.machines.has(w.waitsFor),
    )
    .sort(
      (a, b) =>
        a.machine.localeCompare(b.machine) ||
        a.waitsFor.localeCompare(b.waitsFor),
    );
  for (const w of machineWaits) {
    const machine = graph.machines.get(w.machine)!;
    machine.waitsFor = [...(machine.waitsFor ?? []), w.waitsFor];
  }
  const declared = [...graph.services.values()].flatMap(s =>
    s.dependsOn.map(dependsOn => ({ service: s.ref, dependsOn })),
  );
  const merged = mergeDependencies({
    declared,
    inferred: inference.dependencies.filter(
      d => graph.services.has(d.service) && graph.services.has(d.dependsOn),
    ),
    threshold: inference.threshold,
  });
  const declaredOn = groupedBy(declared);
  const evidence = evidenceOf(inference.dependencies);
  const disagreements: DependencyDisagreements = {
    // Observed where the catalog declares it through others (web -> api -> db): they agree, as
    // a declared edge observed only through a learned path counts as observed.
    inferredNotDeclared: merged.disagreements.inferredNotDeclared
      .filter(d => !reaches(declaredOn, d.service, d.dependsOn))
      .map(evidence),
    // Silence about a service that never booted in the history is no evidence.
    declaredNotObserved: merged.disagreements.declaredNotObserved.filter(
      d =>
        inference.observed.has(d.service) &&
        inference.observed.has(d.dependsOn),
    ),
  };
  // A declared edge dropped to break a cycle of declared edges alone stays: that cycle is the
  // catalog's to fix, and the plan reports it (also where only a learned edge leads to it).
  const edges = [
    ...merged.edges,
    ...merged.dropped.filter(e => e.source !== 'inferred'),
  ];
  const dependsOn = groupedBy(edges);
  // Cycles are broken at their weakest edge first, and a stronger learned edge of the same cycle
  // may go later for closing another: a learned edge that closes no cycle once those are gone is
  // followed again (strongest first), rather than dropped for a cycle that is no longer there.
  const dropped = new Set<(typeof edges)[number]>();
  const strongestFirst = merged.dropped
    .filter(e => e.source === 'inferred')
    .sort(
      (a, b) =>
        b.score! - a.score! ||
        byName(a.service, b.service) ||
        byName(a.dependsOn, b.dependsOn),
    );
  for (const e of strongestFirst) {
    if (reaches(dependsOn, e.dependsOn, e.service)) {
      dropped.add(e);
    } else {
      edges.push(e);
      dependsOn.set(e.service, [
        ...(dependsOn.get(e.service) ?? []),
        e.dependsOn,
      ]);
    }
  }
  edges.sort(
    (a, b) => byName(a.service, b.service) || byName(a.dependsOn, b.dependsOn),
  );
  const ordered = groupedBy(edges);
  for (const service of graph.services.values())
    service.dependsOn = ordered.get(service.ref) ?? [];
  const learned = (list: typeof edges) =>
    list
      .filter(e => e.source === 'inferred')
      .map(e => evidence({ ...e, score: e.score! }));
  return {
    machineWaits,
    inferred: learned(edges),
    // In the order the cycles were broken in, as the analysis lists them.
    dropped: learned(merged.dropped.filter(e => dropped.has(e))),
    disagreements,
  };
}

/** What one wave of a boot plan waits for on the analysis's word rather than the catalog's. */
export interface LearnedWaits {
  /** The wave (0-based, as the plan's `waves`). */
  wave: number;
  /** Learned dependencies that make a machine of the wave wait for another machine. */
  dependencies: InferredDependency[];
  /** Machine waits learned from reboots that a machine of the wave follows. */
  machineWaits: InferredMachineWait[];
}

/**
 * The learned waits of a plan, wave by wave (only waves that have some): a learned dependency
 * counts where it makes a machine wait for another (one between services of the same machine
 * orders no wave).
 */
export function learnedWaitsOf(plan: BootPlan): LearnedWaits[] {
  const machinesOf = new Map<string, string[]>();
  for (const m of plan.machines)
    for (const s of m.services)
      machinesOf.set(s, [...(machinesOf.get(s) ?? []), m.machineRef]);
  const byWave = new Map<number, LearnedWaits>();
  const of = (wave: number) => {
    const found = byWave.get(wave);
    if (found) return found;
    const made = { wave, dependencies: [], machineWaits: [] };
    byWave.set(wave, made);
    return made;
  };
  for (const d of plan.inferred ?? []) {
    const waves = new Set<number>();
    for (const m of plan.machines) {
      if (!m.services.includes(d.service)) continue;
      const awaited = machinesAwaited(
        m.machineRef,
        machinesOf.get(d.dependsOn) ?? [],
      );
      if (awaited.some(a => m.waitsFor.includes(a))) waves.add(m.wave);
    }
    for (const wave of waves) of(wave).dependencies.push(d);
  }
  for (const w of plan.inferredMachineWaits ?? []) {
    const m = plan.machines.find(x => x.machineRef === w.machine);
    if (m?.waitsFor.includes(w.waitsFor)) of(m.wave).machineWaits.push(w);
  }
  return [...byWave.values()].sort((a, b) => a.wave - b.wave);
}

/**
 * A learned edge with what the analysis found behind it (score, samples, confidence): the
 * analysis's dependency between the same entities with that score (two log names may map to one
 * entity; the merge keeps the stronger score), else the strongest of them.
 */
function evidenceOf(
  dependencies: InferredDependency[],
): (edge: InferredDependency) => InferredDependency {
  const byEdge = new Map<string, InferredDependency[]>();
  for (const d of dependencies) {
    const key = `${d.service}\u0000${d.dependsOn}`;
    byEdge.set(key, [...(byEdge.get(key) ?? []), d]);
  }
  return ({ service, dependsOn, score }) => {
    const found = byEdge.get(`${service}\u0000${dependsOn}`) ?? [];
    const behind =
      found.find(d => d.score === score) ??
      found.reduce<InferredDependency | undefined>(
        (best, d) => (best && best.score >= d.score ? best : d),
        undefined,
      );
    return {
      service,
      dependsOn,
      score,
      ...(behind?.samples !== undefined && { samples: behind.samples }),
      ...(behind?.confidence && { confidence: behind.confidence }),
    };
  };
}

/** Each service's dependsOn, in the order of `edges`: one pass, not one per service of a large graph. */
function groupedBy(
  edges: Array<{ service: string; dependsOn: string }>,
): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    const list = out.get(e.service);
    if (list) list.push(e.dependsOn);
    else out.set(e.service, [e.dependsOn]);
  }
  return out;
}

/** Whether `to` is reached from `from` along `edges` (one edge or more). */
function reaches(
  edges: Map<string, string[]>,
  from: string,
  to: string,
): boolean {
  const seen = new Set([from]);
  const stack = [from];
  while (stack.length) {
    for (const next of edges.get(stack.pop()!) ?? []) {
      if (next === to) return true;
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  return false;
}
