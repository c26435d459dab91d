import {
  BootPlan,
  BootPlanMachine,
  describeProbe,
  machinesAwaited,
  ProbeSpec,
} from '@backstage-recovery/plugin-recovery-common';
import { InputError } from '@backstage/errors';
import { listed, topologicalWaves } from '../analysis/graph';
import { FeedbackEdge, feedbackEdges, WaitEdge } from './feedbackEdges';
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
 * declares: `from` boots without waiting for `waitsFor`. Of each strongly connected part of the
 * graph, the edge taken is the one on the most of its cycles (see feedbackEdges); among as many,
 * one the boot history contradicts, then one learned rather than declared, then one that crosses
 * systems (`from` and `waitsFor` in different Systems), then the last in the order of its refs
 * (`from`, then `waitsFor`); and so on, until no cycle is left.
 *
 * @public
 */
export interface DroppedCycleEdge {
  level: 'service' | 'machine';
  from: string;
  waitsFor: string;
  /** A cycle it broke (the shortest through it), each node before the one it waits for. */
  cycle: string[];
  /** The Systems it crosses between (`from`'s, then `waitsFor`'s), where it was taken for that. */
  crossesSystems?: [string, string];
  /** What a run's timeline says of it: the cycle, the edge and the rule that took it. */
  message: string;
}

/**
 * What earlier boots showed, as the dependency analysis of the plan's system found it: a plan
 * breaking cycles drops first what they contradict.
 *
 * @public
 */
export interface BootHistory {
  /** Services (entity refs) in the order the analysis found them to initialize, dependencies first. */
  serviceOrder?: string[];
  /** Machines (entity refs) in the order the analysis boots them. */
  machineOrder?: string[];
  /** The service dependencies the plan takes from the analysis, not the catalog (the plan's `inferred`). */
  learned?: Array<{ service: string; dependsOn: string }>;
}

/** @public */
export interface BootPlanOptions {
  /**
   * Break the dependency cycles of the plan instead of refusing it, an edge at a time (see
   * DroppedCycleEdge), which the plan lists in `droppedForCycles`.
   */
  breakCycles?: boolean;
  /** What earlier boots showed: which of the edges on as many cycles to break first. */
  history?: BootHistory;
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

/** A plan's edge, as a plan breaking cycles weighs it. */
interface PlanEdge extends WaitEdge {
  /** Why the boot history contradicts it, where it does. */
  contradicted?: string;
  /** It rests on learned dependencies alone, none declared. */
  learned: boolean;
  /** The Systems it crosses between, where it does. */
  crosses?: [string, string];
}

/**
 * Of edges on as many cycles, which to drop first: one the boot history contradicts, one learned,
 * one crossing systems, then the last by ref (a total order: same input, same choice).
 */
function dropFirst(a: PlanEdge, b: PlanEdge): number {
  return (
    Number(!a.contradicted) - Number(!b.contradicted) ||
    Number(!a.learned) - Number(!b.learned) ||
    Number(!a.crosses) - Number(!b.crosses) ||
    byCodeUnits(b.from, a.from) ||
    byCodeUnits(b.waitsFor, a.waitsFor)
  );
}

/** A dropped edge (feedbackEdges's choice), with what to say of it: the cycle and the rule that took it. */
function droppedEdge(
  level: 'service' | 'machine',
  taken: FeedbackEdge<PlanEdge>,
  reasons: string[],
): DroppedCycleEdge {
  const { edge, cycle, part, partEdges, tied } = taken;
  const arrow = `${edge.from} -> ${edge.waitsFor}`;
  const between = `between ${listed(part)}`;
  const said: string[] = [];
  let crossesSystems: [string, string] | undefined;
  if (tied.length === 1) {
    said.push(
      `it is on more of the cycles ${between} than any other dependency`,
    );
  } else {
    if (tied.length < partEdges)
      said.push(
        `${tied.length} of their ${partEdges} dependencies are on the most of the cycles ${between}`,
      );
    let pool = tied;
    const narrow = (has: (e: PlanEdge) => boolean, says: string) => {
      if (pool.length === 1 || !has(edge) || pool.every(has)) return;
      said.push(says);
      pool = pool.filter(has);
    };
    narrow(
      e => !!e.contradicted,
      `the boot history contradicts it (${edge.contradicted})`,
    );
    narrow(e => e.learned, 'it is learned from the boot history, not declared');
    if (pool.length > 1) {
      const those = said.length > 0 ? 'those' : 'its dependencies';
      crossesSystems = edge.crosses;
      said.push(
        crossesSystems
          ? `of ${those} that cross systems, ${arrow} (${crossesSystems.join(' to ')}) is the last by ref`
          : `none of ${those} crosses systems, and ${arrow} is the last by ref`,
      );
    }
  }
  const description = describeCycle(level, cycle, reasons);
  return {
    level,
    from: edge.from,
    waitsFor: edge.waitsFor,
    cycle,
    ...(crossesSystems && { crossesSystems }),
    message: `Booted ${edge.from} without waiting for ${edge.waitsFor}: ${description.charAt(0).toLowerCase()}${description.slice(1)}; ${said.join('; ')}`,
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
  const weigh = weighing(graph, options.history);
  const serviceOrder = wavesOf(
    reached.services,
    ref => graph.services.get(ref)?.dependsOn ?? [],
    'service',
    serviceCycleReason(graph),
    dropped && {
      edge: (from, waitsFor) => weigh('service', from, waitsFor),
      dropped,
    },
  ).flat();
  // A service dependency dropped for a cycle makes no machine wait either: that would close it again.
  const droppedServiceEdges = new Set(
    (dropped ?? [])
      .filter(e => e.level === 'service')
      .map(e => edgeKey(e.from, e.waitsFor)),
  );
  const dependsOnOf = (ref: string) =>
    graph.services
      .get(ref)!
      .dependsOn.filter(dep => !droppedServiceEdges.has(edgeKey(ref, dep)));

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
  /** The machine waits a declared dependency makes (the others rest on learned ones alone). */
  const declaredWaits = new Set<string>();
  const wait = (
    machine: string,
    groups: string[][],
    reason: string,
    learned: boolean,
  ) => {
    const waits = machineWaits.get(machine)!;
    for (const group of groups) {
      for (const waitsFor of machinesAwaited(machine, group)) {
        const reasons = waits.get(waitsFor) ?? [];
        // A few say why; more would only lengthen a cycle's error (listed shows five).
        if (reasons.length <= 5 && !reasons.includes(reason))
          waits.set(waitsFor, [...reasons, reason]);
        if (!learned) declaredWaits.add(edgeKey(machine, waitsFor));
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
          weigh('service', ref, dep).learned,
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
        false,
      );
    }
    for (const waitsFor of node?.waitsFor ?? []) {
      wait(
        machine,
        [[waitsFor]],
        `${machine} waited for ${waitsFor} in its reboots`,
        true,
      );
    }
  }

  const waves = wavesOf(
    [...reached.machines].sort(),
    ref => [...machineWaits.get(ref)!.keys()],
    'machine',
    (machine, waitsFor) => listed(machineWaits.get(machine)!.get(waitsFor)!),
    dropped && {
      edge: (from, waitsFor) => ({
        ...weigh('machine', from, waitsFor),
        learned: !declaredWaits.has(edgeKey(from, waitsFor)),
      }),
      dropped,
    },
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
    ...(graph.machines.get(machineRef)?.job && { job: true }),
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
 * `reason` says; or, `breaking`, broken by dropping as few edges as it takes (feedbackEdges, each
 * weighed by `breaking.edge`), added to `dropped`.
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
    edge: (from: string, waitsFor: string) => PlanEdge;
    dropped: DroppedCycleEdge[];
  },
): string[][] {
  const inPlan = new Set(nodes);
  let edges = nodes.flatMap(service =>
    dependencies(service)
      .filter(dependsOn => inPlan.has(dependsOn))
      .map(dependsOn => ({ service, dependsOn })),
  );
  const reasonsOf = (cycle: string[]) => {
    const said = reason
      ? cycle.map((node, i) =>
          reason(node, cycle[(i + 1) % cycle.length], cycle),
        )
      : [];
    return said.every(r => r !== undefined) ? (said as string[]) : [];
  };
  if (breaking) {
    const taken = feedbackEdges(
      nodes,
      edges.map(e => breaking.edge(e.service, e.dependsOn)),
      dropFirst,
    );
    for (const t of taken)
      breaking.dropped.push(droppedEdge(level, t, reasonsOf(t.cycle)));
    const gone = new Set(taken.map(t => edgeKey(t.edge.from, t.edge.waitsFor)));
    edges = edges.filter(e => !gone.has(edgeKey(e.service, e.dependsOn)));
  }
  const { waves, cycle } = topologicalWaves(nodes, edges);
  if (cycle) throw new BootPlanCycleError(level, cycle, reasonsOf(cycle));
  return waves;
}

const edgeKey = (from: string, to: string) => `${from}\u0000${to}`;

/**
 * How a plan breaking cycles weighs an edge (PlanEdge): what the boot history says of it, whether
 * it is learned (of services: a learned dependency; machines say for themselves), the Systems it
 * crosses.
 */
function weighing(graph: RecoveryGraph, history: BootHistory = {}) {
  const positions = (order: string[] = []) => {
    const at = new Map<string, number>();
    order.forEach((ref, i) => at.has(ref) || at.set(ref, i));
    return at;
  };
  const order = {
    service: positions(history.serviceOrder),
    machine: positions(history.machineOrder),
  };
  const learned = new Set(
    (history.learned ?? []).map(d => edgeKey(d.service, d.dependsOn)),
  );
  const systemOf = (ref: string) =>
    graph.services.get(ref)?.system ?? graph.machines.get(ref)?.system;
  return (
    level: 'service' | 'machine',
    from: string,
    waitsFor: string,
  ): PlanEdge => {
    const a = order[level].get(from);
    const b = order[level].get(waitsFor);
    const systems = [systemOf(from), systemOf(waitsFor)];
    return {
      from,
      waitsFor,
      ...(a !== undefined &&
        b !== undefined &&
        a < b && {
          contradicted: `the analysis of earlier boots orders ${from} before ${waitsFor}`,
        }),
      learned: learned.has(edgeKey(from, waitsFor)),
      ...(systems[0] !== undefined &&
        systems[1] !== undefined &&
        systems[0] !== systems[1] && {
          crosses: systems as [string, string],
        }),
    };
  };
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
