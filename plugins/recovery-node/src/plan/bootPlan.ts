import {
  BootPlan,
  BootPlanMachine,
  describeProbe,
  machinesAwaited,
  ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import { InputError } from '@backstage/errors';
import { listed, topologicalWaves } from '../analysis/graph';
import type { RecoveryGraph } from './recoveryGraph';

/** What to change about a cycle, by what it runs between. */
const CYCLE_FIX = {
  service: 'remove one of these dependsOn',
  machine:
    'remove one of these dependencies, or move one of these services to another machine',
};

/** A boot plan cannot be made: a dependency cycle, named entity by entity, and what to change. */
export class BootPlanCycleError extends InputError {
  constructor(
    readonly level: 'service' | 'machine',
    readonly cycle: string[],
    /** Why each node of the cycle waits for the next, in the cycle's order (machine cycles). */
    readonly reasons: string[] = [],
  ) {
    super(
      `${describeCycle(level, cycle, reasons)}: no boot order satisfies it; ${CYCLE_FIX[level]}`,
    );
  }

  /** The cycle and why, without what to change. */
  get description(): string {
    return describeCycle(this.level, this.cycle, this.reasons);
  }
}

function describeCycle(
  level: 'service' | 'machine',
  cycle: string[],
  reasons: string[],
): string {
  const why = reasons.length > 0 ? ` (${reasons.join('; ')})` : '';
  return `Dependency cycle between ${level}s: ${[...cycle, cycle[0]].join(' -> ')}${why}`;
}

/**
 * Makes the boot plan of a recovery graph: the machines its roots need (their own and,
 * transitively, those of everything they depend on), in waves where every machine depends
 * only on machines of earlier waves. Deterministic: ties are broken by entity ref.
 */
export function buildBootPlan(graph: RecoveryGraph): BootPlan {
  const reached = reachable(graph);
  const serviceOrder = wavesOf(
    reached.services,
    ref => graph.services.get(ref)?.dependsOn ?? [],
    'service',
    serviceCycleReason(graph),
  ).flat();

  // What waiting for a service means, per machine group it needs up: its own machines, or, on
  // none (a purely logical service), what it waits for itself. Each group once: logical services
  // that share dependencies would otherwise multiply them.
  const awaited = new Map<string, string[][]>();
  const groupsOf = (dependencies: string[]): string[][] => {
    const groups = new Map<string, string[]>();
    for (const dep of dependencies) {
      const own = graph.services.get(dep)?.machines ?? [];
      for (const group of own.length > 0 ? [own] : (awaited.get(dep) ?? []))
        groups.set(group.join(' '), group);
    }
    return [...groups.values()];
  };
  for (const ref of serviceOrder)
    awaited.set(ref, groupsOf(graph.services.get(ref)!.dependsOn));

  const machineServices = new Map<string, string[]>(
    reached.machines.map(m => [m, []]),
  );
  /** Per machine, what it waits for, each with why. */
  const machineWaits = new Map<string, Map<string, string[]>>(
    reached.machines.map(m => [m, new Map()]),
  );
  const wait = (machine: string, groups: string[][], reason: string) => {
    const waits = machineWaits.get(machine)!;
    for (const group of groups) {
      for (const waitsFor of machinesAwaited(machine, group)) {
        const reasons = waits.get(waitsFor) ?? [];
        // A few say why; more would only lengthen a cycle's error (listed shows five).
        if (reasons.length <= 5 && !reasons.includes(reason))
          waits.set(waitsFor, [...reasons, reason]);
      }
    }
  };
  for (const ref of serviceOrder) {
    const service = graph.services.get(ref)!;
    for (const machine of service.machines) {
      machineServices.get(machine)!.push(ref);
      for (const dep of service.dependsOn) {
        // Through what it declares (an API, a System): that is the dependsOn to change.
        const via = service.through?.[dep];
        wait(
          machine,
          groupsOf([dep]),
          `${ref} on ${machine} needs ${dep}${via ? ` through ${via}` : ''}`,
        );
      }
    }
  }
  for (const machine of reached.machines) {
    const node = graph.machines.get(machine);
    for (const target of node?.dependsOn ?? []) {
      const groups = graph.machines.has(target)
        ? [[target]]
        : groupsOf([target]);
      const via = node?.through?.[target];
      wait(
        machine,
        groups,
        via
          ? `${machine} needs ${target} through ${via}`
          : `${machine} dependsOn ${target}`,
      );
    }
    for (const waitsFor of node?.waitsFor ?? []) {
      wait(
        machine,
        [[waitsFor]],
        `${machine} waited for ${waitsFor} in its reboots`,
      );
    }
  }

  const waves = wavesOf(
    [...reached.machines].sort(),
    ref => [...machineWaits.get(ref)!.keys()],
    'machine',
    (machine, waitsFor) => listed(machineWaits.get(machine)!.get(waitsFor)!),
  );
  const waveOf = new Map<string, number>();
  waves.forEach((wave, index) => wave.forEach(m => waveOf.set(m, index)));

  const machines: BootPlanMachine[] = waves.flat().map(machineRef => ({
    machineRef,
    wave: waveOf.get(machineRef)!,
    services: [...machineServices.get(machineRef)!].sort(),
    waitsFor: [...machineWaits.get(machineRef)!.keys()].sort(),
    probes: uniqueProbes([
      ...(graph.machines.get(machineRef)?.probes ?? []),
      ...machineServices
        .get(machineRef)!
        .flatMap(s => graph.services.get(s)?.probes ?? []),
    ]),
  }));
  return { entityRef: graph.rootRef, waves, machines };
}

/**
 * What the plan takes: from the roots, the services they transitively depend on, the machines
 * those run on, and what these machines depend on or learned to wait for.
 */
export function reachable(graph: RecoveryGraph): {
  services: string[];
  machines: string[];
} {
  const services = new Set<string>();
  const machines = new Set<string>();
  const stack = [...graph.roots];
  const visitMachine = (ref: string) => {
    if (machines.has(ref)) return;
    machines.add(ref);
    const machine = graph.machines.get(ref);
    stack.push(...(machine?.dependsOn ?? []), ...(machine?.waitsFor ?? []));
  };
  while (stack.length > 0) {
    const ref = stack.pop()!;
    // A machine recovered on its own is both: its own service, and the machine it runs on.
    const service = graph.services.get(ref);
    if (service && !services.has(ref)) {
      services.add(ref);
      stack.push(...service.dependsOn);
      service.machines.forEach(visitMachine);
    }
    if (graph.machines.has(ref)) visitMachine(ref);
  }
  return { services: [...services].sort(), machines: [...machines].sort() };
}

/**
 * The graph with only what its plan takes (see reachable), and the problems of those entities, of
 * the root, and of the Systems and APIs they go through. Loading reads more than that: what a learned
 * dependency dropped for closing a cycle leads to, the siblings of a part that dependsOn its own
 * whole. Their problems would refuse a run, or capture machines, that do not concern this plan.
 */
export function narrowedToPlan(graph: RecoveryGraph): RecoveryGraph {
  const taken = reachable(graph);
  const services = new Set(taken.services);
  const machines = new Set(taken.machines);
  const concerned = new Set([graph.rootRef, ...services, ...machines]);
  for (const ref of [...concerned])
    graph.wholes?.get(ref)?.forEach(whole => concerned.add(whole));
  const ofPlan = (problem: { entityRef: string }) =>
    concerned.has(problem.entityRef);
  return {
    ...graph,
    services: new Map([...graph.services].filter(([ref]) => services.has(ref))),
    machines: new Map([...graph.machines].filter(([ref]) => machines.has(ref))),
    problems: graph.problems.filter(ofPlan),
    missing: graph.missing.filter(ofPlan),
  };
}

/**
 * The waves of `nodes` (topologicalWaves), waiting only on each other (a node on itself: on
 * nothing); a cycle is a BootPlanCycleError naming it, with why each node waits for the next where
 * `reason` says.
 */
function wavesOf(
  nodes: string[],
  dependencies: (node: string) => string[],
  level: 'service' | 'machine',
  /** Why a node depends on another, for a cycle's error (given the cycle; undefined: nothing to add). */
  reason?: (
    node: string,
    dependency: string,
    cycle: string[],
  ) => string | undefined,
): string[][] {
  const inPlan = new Set(nodes);
  const edges = nodes.flatMap(service =>
    dependencies(service)
      .filter(dependsOn => inPlan.has(dependsOn))
      .map(dependsOn => ({ service, dependsOn })),
  );
  const { waves, cycle } = topologicalWaves(nodes, edges);
  if (cycle) {
    const said = reason
      ? cycle.map((node, i) =>
          reason(node, cycle[(i + 1) % cycle.length], cycle),
        )
      : [];
    const reasons = said.every(r => r !== undefined) ? (said as string[]) : [];
    throw new BootPlanCycleError(level, cycle, reasons);
  }
  return waves;
}

/**
 * Why a service waits for another, for a service cycle's error; only for cycles with a link the
 * catalog declares through another entity (an API, a System, a component's parts): one made of
 * direct dependsOn alone says which to remove by naming the services.
 */
function serviceCycleReason(graph: RecoveryGraph) {
  return (
    service: string,
    dependency: string,
    cycle: string[],
  ): string | undefined => {
    const through = (from: string, to: string) =>
      graph.services.get(from)?.through?.[to];
    if (!cycle.some((node, i) => through(node, cycle[(i + 1) % cycle.length])))
      return undefined;
    const via = through(service, dependency);
    if (!via) return `${service} dependsOn ${dependency}`;
    return via.startsWith('api:')
      ? `${service} dependsOn ${via}, which ${dependency} provides`
      : `${service} dependsOn ${via}, which has ${dependency} as a part`;
  };
}

function uniqueProbes(probes: ProbeSpec[]): ProbeSpec[] {
  const byKey = new Map<string, ProbeSpec>();
  for (const probe of probes) byKey.set(describeProbe(probe), probe);
  return [...byKey.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, probe]) => probe);
}
