import {
  BootPlan,
  BootPlanMachine,
  machinesAwaited,
  ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import { InputError } from '@backstage/errors';
import type { RecoveryGraph } from './recoveryGraph';

/** A boot plan cannot be made: a dependency cycle, named entity by entity. */
export class BootPlanCycleError extends InputError {
  constructor(readonly level: 'service' | 'machine', readonly cycle: string[]) {
    super(
      `Dependency cycle between ${level}s: ${[...cycle, cycle[0]].join(' -> ')}`,
    );
  }
}

/**
 * Makes the boot plan of a recovery graph: the machines its roots need (their own and,
 * transitively, those of everything they depend on), in waves where every machine depends
 * only on machines of earlier waves. Deterministic: ties are broken by entity ref.
 */
export function buildBootPlan(graph: RecoveryGraph): BootPlan {
  const services = reachableServices(graph);
  const serviceOrder = topologicalOrder(
    services,
    ref => graph.services.get(ref)?.dependsOn ?? [],
    'service',
  );

  // Machines a service needs booted before it, per dependency: those it runs on, looking through
  // services that run on no machine of their own (purely logical ones).
  const neededMachines = new Map<string, string[][]>();
  for (const ref of serviceOrder) {
    const needed: string[][] = [];
    for (const dep of graph.services.get(ref)?.dependsOn ?? []) {
      const depMachines = graph.services.get(dep)?.machines ?? [];
      if (depMachines.length > 0) needed.push(depMachines);
      else needed.push(...(neededMachines.get(dep) ?? []));
    }
    neededMachines.set(ref, needed);
  }

  const machineServices = new Map<string, string[]>();
  const machineWaits = new Map<string, Set<string>>();
  for (const ref of serviceOrder) {
    for (const machine of graph.services.get(ref)!.machines) {
      if (!machineServices.has(machine)) {
        machineServices.set(machine, []);
        machineWaits.set(machine, new Set());
      }
      machineServices.get(machine)!.push(ref);
      for (const dependencyMachines of neededMachines.get(ref)!) {
        for (const needed of machinesAwaited(machine, dependencyMachines)) machineWaits.get(machine)!.add(needed);
      }
    }
  }
  // A machine needed by a service, or waited for by a machine of the plan, but hosting nothing
  // in the plan still has to boot.
  const needed = [
    ...machineServices.keys(),
    ...[...neededMachines.values()].flat(2),
  ];
  while (needed.length > 0) {
    const machine = needed.pop()!;
    if (!machineServices.has(machine)) {
      machineServices.set(machine, []);
      machineWaits.set(machine, new Set());
    }
    for (const waitsFor of graph.machines.get(machine)?.waitsFor ?? []) {
      if (waitsFor === machine || machineWaits.get(machine)!.has(waitsFor)) continue;
      machineWaits.get(machine)!.add(waitsFor);
      needed.push(waitsFor);
    }
  }

  const machineRefs = [...machineServices.keys()].sort();
  const waves = topologicalWaves(
    machineRefs,
    ref => [...machineWaits.get(ref)!],
    'machine',
  );
  const waveOf = new Map<string, number>();
  waves.forEach((wave, index) => wave.forEach(m => waveOf.set(m, index)));

  const machines: BootPlanMachine[] = waves.flat().map(machineRef => ({
    machineRef,
    wave: waveOf.get(machineRef)!,
    services: [...machineServices.get(machineRef)!].sort(),
    waitsFor: [...machineWaits.get(machineRef)!].sort(),
    probes: uniqueProbes(
      machineServices
        .get(machineRef)!
        .flatMap(s => graph.services.get(s)?.probes ?? []),
    ),
  }));
  return { entityRef: graph.rootRef, waves, machines };
}

/** Services the plan takes: the roots and what they transitively depend on. */
export function reachableServices(graph: RecoveryGraph): string[] {
  const seen = new Set<string>();
  const stack = [...graph.roots];
  while (stack.length > 0) {
    const ref = stack.pop()!;
    if (seen.has(ref) || !graph.services.has(ref)) continue;
    seen.add(ref);
    stack.push(...graph.services.get(ref)!.dependsOn);
  }
  return [...seen].sort();
}

/** Topological generations: wave k holds the nodes whose dependencies are all in waves < k. */
export function topologicalWaves(
  nodes: string[],
  dependencies: (node: string) => string[],
  level: 'service' | 'machine',
): string[][] {
  const inPlan = new Set(nodes);
  const remaining = new Map<string, number>();
  const dependents = new Map<string, string[]>();
  for (const node of nodes) {
    const deps = [...new Set(dependencies(node))].filter(d => inPlan.has(d));
    remaining.set(node, deps.length);
    for (const dep of deps) {
      if (!dependents.has(dep)) dependents.set(dep, []);
      dependents.get(dep)!.push(node);
    }
  }
  const waves: string[][] = [];
  let current = nodes.filter(n => remaining.get(n) === 0).sort();
  let placed = 0;
  while (current.length > 0) {
    waves.push(current);
    placed += current.length;
    const next: string[] = [];
    for (const node of current) {
      for (const dependent of dependents.get(node) ?? []) {
        const left = remaining.get(dependent)! - 1;
        remaining.set(dependent, left);
        if (left === 0) next.push(dependent);
      }
    }
    current = next.sort();
  }
  if (placed < nodes.length) {
    throw new BootPlanCycleError(
      level,
      findCycle(
        nodes.filter(n => remaining.get(n)! > 0),
        n => dependencies(n).filter(d => remaining.get(d)! > 0),
      ),
    );
  }
  return waves;
}

function topologicalOrder(
  nodes: string[],
  dependencies: (node: string) => string[],
  level: 'service' | 'machine',
): string[] {
  return topologicalWaves(nodes, dependencies, level).flat();
}

/** One cycle among nodes that all sit on or behind a cycle, starting from the smallest ref. */
function findCycle(
  nodes: string[],
  dependencies: (node: string) => string[],
): string[] {
  const path: string[] = [];
  const onPath = new Map<string, number>();
  let node = [...nodes].sort()[0];
  while (!onPath.has(node)) {
    onPath.set(node, path.length);
    path.push(node);
    node = [...dependencies(node)].sort()[0];
  }
  return path.slice(onPath.get(node)!);
}

function uniqueProbes(probes: ProbeSpec[]): ProbeSpec[] {
  const byKey = new Map<string, ProbeSpec>();
  for (const probe of probes) byKey.set(describeProbe(probe), probe);
  return [...byKey.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, probe]) => probe);
}

export function describeProbe(probe: ProbeSpec): string {
  return probe.kind === 'http'
    ? `http:${probe.port}${probe.path ?? '/'}`
    : `tcp:${probe.port}`;
}
