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

/**
 * A boot plan cannot be made: a dependency cycle, named entity by entity, and what to change.
 *
 * @public
 */
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

/**
 * A dependency a boot plan made with `breakCycles` does not wait on, to break a cycle the catalog
 * declares: `from` boots without waiting for `waitsFor`. Per cycle, the edge taken is the last, in
 * the order of its refs (`from`, then `waitsFor`), of the cycle's edges that cross systems (`from`
 * and `waitsFor` in different Systems), or of all its edges where none does.
 *
 * @public
 */
export interface DroppedCycleEdge {
  level: 'service' | 'machine';
  from: string;
  waitsFor: string;
  /** The cycle it broke, each node before the one it waits for. */
  cycle: string[];
  /** The Systems it crosses between (`from`'s, then `waitsFor`'s), where it was taken for that. */
  crossesSystems?: [string, string];
  /** What a run's timeline says of it: the cycle, the edge and the rule that took it. */
  message: string;
}

/** @public */
export interface BootPlanOptions {
  /**
   * Break the dependency cycles of the plan instead of refusing it: one edge per cycle (see
   * DroppedCycleEdge), which the plan lists in `droppedForCycles`.
   */
  breakCycles?: boolean;
}

/**
 * A boot plan, with the edges it dropped to break cycles where asked to (BootPlanOptions).
 *
 * @public
 */
export type BuiltBootPlan = BootPlan & {
  droppedForCycles?: DroppedCycleEdge[];
};

/** Code-unit order: the same on every machine, whatever its locale. */
const byCodeUnits = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The edge of `cycle` a plan breaking cycles drops (see DroppedCycleEdge), with what to say of it.
 */
function edgeToDrop(
  level: 'service' | 'machine',
  cycle: string[],
  reasons: string[],
  systemOf: (ref: string) => string | undefined,
): DroppedCycleEdge {
  const edges = cycle.map((from, i) => ({
    from,
    waitsFor: cycle[(i + 1) % cycle.length],
  }));
  const crossing = edges.filter(e => {
    const a = systemOf(e.from);
    const b = systemOf(e.waitsFor);
    return a !== undefined && b !== undefined && a !== b;
  });
  const [edge] = (crossing.length > 0 ? crossing : edges).sort(
    (a, b) =>
      byCodeUnits(b.from, a.from) || byCodeUnits(b.waitsFor, a.waitsFor),
  );
  const crossesSystems: [string, string] | undefined =
    crossing.length > 0
      ? [systemOf(edge.from)!, systemOf(edge.waitsFor)!]
      : undefined;
  const rule = crossesSystems
    ? `of its dependencies that cross systems, ${edge.from} -> ${edge.waitsFor} (${crossesSystems.join(' to ')}) is the last by ref`
    : `none of its dependencies crosses systems, and ${edge.from} -> ${edge.waitsFor} is the last by ref`;
  const description = describeCycle(level, cycle, reasons);
  return {
    level,
    ...edge,
    cycle,
    ...(crossesSystems && { crossesSystems }),
    message: `Booted ${edge.from} without waiting for ${edge.waitsFor}: ${description.charAt(0).toLowerCase()}${description.slice(1)}; ${rule}`,
  };
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
 *
 * @public
 */
export function buildBootPlan(
  graph: RecoveryGraph,
  options: BootPlanOptions = {},
): BuiltBootPlan {
  const reached = reachable(graph);
  const dropped: DroppedCycleEdge[] | undefined = options.breakCycles
    ? []
    : undefined;
  const systemOf = (ref: string) =>
    graph.services.get(ref)?.system ?? graph.machines.get(ref)?.system;
  const serviceOrder = wavesOf(
    reached.services,
    ref => graph.services.get(ref)?.dependsOn ?? [],
    'service',
    serviceCycleReason(graph),
    dropped && { systemOf, dropped },
  ).flat();
  // A service dependency dropped for a cycle makes no machine wait either: that would close it again.
  const droppedServiceEdges = new Set(
    (dropped ?? [])
      .filter(e => e.level === 'service')
      .map(e => `${e.from}\u0000${e.waitsFor}`),
  );
  const dependsOnOf = (ref: string) =>
    graph.services
      .get(ref)!
      .dependsOn.filter(dep => !droppedServiceEdges.has(`${ref}\u0000${dep}`));

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
  for (const ref of serviceOrder) awaited.set(ref, groupsOf(dependsOnOf(ref)));

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
      for (const dep of dependsOnOf(ref)) {
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
    dropped && { systemOf, dropped },
  );
  // What a machine no longer waits for, as it closed a cycle.
  for (const edge of dropped ?? [])
    if (edge.level === 'machine')
      machineWaits.get(edge.from)!.delete(edge.waitsFor);
  const waveOf = new Map<string, number>();
  waves.forEach((wave, index) => wave.forEach(m => waveOf.set(m, index)));

  const machines: BootPlanMachine[] = waves.flat().map(machineRef => ({
    machineRef,
    wave: waveOf.get(machineRef)!,
    services: [...machineServices.get(machineRef)!].sort(),
    waitsFor: [...machineWaits.get(machineRef)!.keys()].sort(),
    probes: uniqueProbes([
      ...(graph.machines.get(machineRef)?.probes ?? []).map(probe => ({
        ...probe,
        of: machineRef,
      })),
      ...[...machineServices.get(machineRef)!].sort().flatMap(s =>
        (graph.services.get(s)?.probes ?? []).map(probe => ({
          ...probe,
          of: s,
        })),
      ),
    ]),
  }));
  return {
    entityRef: graph.rootRef,
    waves,
    machines,
    ...(dropped && dropped.length > 0 && { droppedForCycles: dropped }),
  };
}

/**
 * What the plan takes: from the roots, the services they transitively depend on, the machines
 * those run on, and what these machines depend on or learned to wait for.
 *
 * @public
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
 *
 * @public
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
 * `reason` says; or, `breaking`, broken by dropping one of its edges (edgeToDrop), added to
 * `dropped`, until none is left.
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
  breaking?: {
    systemOf: (ref: string) => string | undefined;
    dropped: DroppedCycleEdge[];
  },
): string[][] {
  const inPlan = new Set(nodes);
  let edges = nodes.flatMap(service =>
    dependencies(service)
      .filter(dependsOn => inPlan.has(dependsOn))
      .map(dependsOn => ({ service, dependsOn })),
  );
  for (;;) {
    const { waves, cycle } = topologicalWaves(nodes, edges);
    if (!cycle) return waves;
    const said = reason
      ? cycle.map((node, i) =>
          reason(node, cycle[(i + 1) % cycle.length], cycle),
        )
      : [];
    const reasons = said.every(r => r !== undefined) ? (said as string[]) : [];
    if (!breaking) throw new BootPlanCycleError(level, cycle, reasons);
    const edge = edgeToDrop(level, cycle, reasons, breaking.systemOf);
    breaking.dropped.push(edge);
    edges = edges.filter(
      e => e.service !== edge.from || e.dependsOn !== edge.waitsFor,
    );
  }
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

/**
 * One probe per port and path, in their order. Declared by several, it is the machine's where the
 * machine declares it (it gates the machine whatever runs there), else the first service's by ref.
 */
function uniqueProbes(probes: ProbeSpec[]): ProbeSpec[] {
  const byKey = new Map<string, ProbeSpec>();
  for (const probe of probes) {
    const key = describeProbe(probe);
    if (!byKey.has(key)) byKey.set(key, probe);
  }
  return [...byKey.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, probe]) => probe);
}
