import type {
  BootPlan,
  DependencyDisagreements,
  InferredDependency,
  InferredMachineWait,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  type BootHistory,
  BootPlanCycleError,
  buildBootPlan,
  byName,
  counted,
  type DroppedCycleEdge,
  narrowedToPlan,
  reachable,
  type RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';
import {
  formatScore,
  machinesAwaited,
} from '@backstage-recovery/plugin-recovery-common';
import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { applyInference, Inference } from '../plan/inference';
import { namingAny, refsInText } from '../plan/mentions';

export interface PlannedRecovery {
  graph: RecoveryGraph;
  /** Undefined when the plan cannot be made; `planError` says why. */
  plan?: BootPlan;
  planError?: string;
  disagreements?: DependencyDisagreements;
  /** The analysis's log names, to entity refs where known: what the plan's analysis warnings name. */
  names?: Inference['names'];
  /**
   * Where a cycle the catalog declares makes no plan: the cycle, and the edges a plan accepting
   * cycles would drop (planError says so, and how to ask for it).
   */
  cycle?: {
    error: BootPlanCycleError;
    wouldDrop: DroppedCycleEdge[];
    /** The plan a run accepting cycles would boot (readiness offers it to start from). */
    plan: BootPlan;
  };
  /** Of a plan made accepting cycles: the edges it dropped to break the catalog's cycles. */
  droppedForCycles?: DroppedCycleEdge[];
}

/** What a run planned with `acceptCycles` would not wait for, and how to ask for it. */
export function cycleOverride(wouldDrop: DroppedCycleEdge[]): string {
  const drops = wouldDrop
    .map(e => `booting ${e.from} without waiting for ${e.waitsFor}`)
    .join(', ');
  return `A run can go ahead all the same, ${drops}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`;
}

/** Where learned dependencies come from (the analysis service). */
export interface InferenceSource {
  /** The latest analysis of the entity's system. */
  inferenceFor(entity: Entity): Promise<Inference | undefined>;
  /** An analysis by id (the one a run's plan came from), while it is kept. */
  inferenceOf(analysisId: string): Promise<Inference | undefined>;
  /** The same, each system's latest analysis looked up once: for one request only. */
  withMemo?(): InferenceSource;
}

/** Boot plans: the catalog's declared dependencies plus those learned from boot history. */
export class PlanService {
  constructor(
    private readonly graphs: CatalogGraphLoader,
    private readonly inference?: InferenceSource,
  ) {}

  /**
   * Plans over a loader that asks the catalog once per ref (CatalogGraphLoader.withMemo), and
   * the store once per system for its latest analysis: for one request only.
   */
  withMemo(): PlanService {
    return new PlanService(
      this.graphs.withMemo(),
      this.inference?.withMemo?.() ?? this.inference,
    );
  }

  /**
   * The boot plan of an entity. With the credentials of a caller, its analysis warnings leave out
   * what the catalog hides from that caller; without them, none (the plugin's own view, which a
   * run keeps: see runSeenBy).
   */
  async plan(
    entityRef: string,
    viewer?: BackstageCredentials,
    /**
     * acceptCycles: break the cycles the catalog declares (learned edges are dropped first, as
     * without it), one edge per cycle (buildBootPlan's breakCycles), instead of no plan.
     */
    options: { acceptCycles?: boolean } = {},
  ): Promise<PlannedRecovery> {
    const root = await this.graphs.getEntity(entityRef);
    const inference = await this.inference?.inferenceFor(root);
    // In one order whatever order the analysis lists them in: the same inputs, the same plan.
    const learned = (inference?.dependencies ?? [])
      .filter(d => d.score >= inference!.threshold)
      .sort(
        (a, b) =>
          a.service.localeCompare(b.service) ||
          byName(a.dependsOn, b.dependsOn),
      );
    const learnedWaits = [...(inference?.machineWaits ?? [])].sort(
      (a, b) =>
        a.machine.localeCompare(b.machine) ||
        a.waitsFor.localeCompare(b.waitsFor),
    );
    // What to load besides what the catalog declares: the machine a machine learned to wait for
    // may host nothing else the plan needs.
    const follow = new Map<string, string[]>();
    for (const [from, to] of [
      ...learned.map(d => [d.service, d.dependsOn]),
      ...learnedWaits.map(w => [w.machine, w.waitsFor]),
    ]) {
      follow.set(from, [...(follow.get(from) ?? []), to]);
    }
    const graph = await this.graphs.load(root, follow);
    const applied = inference && applyInference(graph, inference);
    // Not followed learned dependencies and machine waits, by the service or machine they are of:
    // said in the plan's analysis warnings (non-blocking) when that is in the plan.
    const notFollowed: Array<{ of: string; warning: string }> = [];
    for (const { service, dependsOn: target } of learned) {
      if (!graph.services.has(service)) continue;
      // A stale analysis may name an entity since removed: the catalog skipped it.
      if (!graph.services.has(target) && !graph.machines.has(target)) {
        notFollowed.push({
          of: service,
          warning: `Learned dependency ${service} -> ${target} not followed: ${target} is not a service in the catalog`,
        });
      }
    }
    for (const { machine, waitsFor } of learnedWaits) {
      if (graph.machines.has(machine) && !graph.machines.has(waitsFor)) {
        notFollowed.push({
          of: machine,
          warning: `Learned machine wait ${machine} -> ${waitsFor} not followed: ${waitsFor} is not a machine in the catalog`,
        });
      }
    }
    // Those dropped as they closed a cycle with declared ones (see applyInference): the plan says so.
    for (const d of applied?.dropped ?? []) {
      const back = servicePath(graph, d.dependsOn, d.service);
      const why = back
        ? `the ${lowerFirst(new BootPlanCycleError('service', [d.service, ...back.slice(0, -1)]).description)}`
        : 'a dependency cycle';
      notFollowed.push({
        of: d.service,
        warning: `Learned dependency ${d.service} -> ${d.dependsOn} (score ${formatScore(d.score)}) not followed: it closes ${why}`,
      });
    }
    /** The graph as far as its plan takes it (narrowedToPlan), and whether that holds a ref. */
    const narrowed = () => {
      const taken = narrowedToPlan(graph);
      return {
        taken,
        held: (ref: string) =>
          taken.services.has(ref) || taken.machines.has(ref),
      };
    };
    // Set once only declared edges are left on a cycle, and the caller accepts breaking it.
    let breakCycles = false;
    // What the boots showed, for breaking the cycles left: the learned edges still followed.
    const history = (): BootHistory => ({
      serviceOrder: inference?.order?.services,
      machineOrder: inference?.order?.machines,
      learned: applied?.inferred,
    });
    for (;;) {
      try {
        const { droppedForCycles, ...plan } = buildBootPlan(graph, {
          breakCycles,
          history: history(),
        });
        const { taken, held } = narrowed();
        if (applied && inference) {
          plan.inferred = applied.inferred.filter(d => held(d.service));
          plan.inferredMachineWaits = applied.machineWaits.filter(w =>
            held(w.machine),
          );
          plan.analysis = {
            id: inference.id,
            createdAt: inference.createdAt,
            warnings: [
              ...(await warningsAbout(
                held,
                inference,
                viewer && (refs => this.graphs.visibleTo(refs, viewer)),
              )),
              ...notFollowed.filter(n => held(n.of)).map(n => n.warning),
            ],
          };
        }
        return {
          graph: taken,
          plan,
          disagreements:
            applied && disagreementsOf(applied.disagreements, held),
          names: inference?.names,
          ...(droppedForCycles && { droppedForCycles }),
        };
      } catch (error) {
        if (!(error instanceof BootPlanCycleError)) throw error;
        // A cycle the learned edges close: drop the weakest learned edge that makes it and
        // plan again, machine waits learned from reboots first (they name no service). A
        // cycle of declared edges alone is the catalog's to fix.
        const wait =
          applied &&
          weakestMachineWaitOnCycle(
            graph,
            applied.inferred,
            applied.machineWaits,
            error,
          );
        if (wait) {
          applied!.machineWaits = applied!.machineWaits.filter(w => w !== wait);
          const machine = graph.machines.get(wait.machine)!;
          machine.waitsFor = machine.waitsFor!.filter(m => m !== wait.waitsFor);
          notFollowed.push({
            of: wait.machine,
            warning: `Learned machine wait ${wait.machine} -> ${wait.waitsFor} not followed: it closes the ${lowerFirst(error.description)}`,
          });
          continue;
        }
        const weakest =
          applied && weakestInferredOnCycle(graph, applied.inferred, error);
        if (!weakest) {
          if (options.acceptCycles) {
            breakCycles = true;
            continue;
          }
          const { taken, held } = narrowed();
          const { droppedForCycles: wouldDrop = [], ...broken } = buildBootPlan(
            graph,
            { breakCycles: true, history: history() },
          );
          return {
            graph: taken,
            planError: `${error.message}. ${cycleOverride(wouldDrop)}`,
            cycle: { error, wouldDrop, plan: broken },
            disagreements:
              applied && disagreementsOf(applied.disagreements, held),
          };
        }
        applied!.inferred = applied!.inferred.filter(e => e !== weakest);
        const service = graph.services.get(weakest.service)!;
        service.dependsOn = service.dependsOn.filter(
          d => d !== weakest.dependsOn,
        );
        notFollowed.push({
          of: weakest.service,
          warning: `Learned dependency ${weakest.service} -> ${weakest.dependsOn} (score ${formatScore(weakest.score)}) not followed: it closes the ${lowerFirst(error.description)}`,
        });
      }
    }
  }

  /**
   * A run as the caller may read it: its plan's analysis warnings, kept as the plugin saw them
   * (runs kept before this filter: all of that analysis's warnings), filtered as `plan` filters
   * them for that caller, by the log names they mention. A run keeps those names itself
   * (RunService), never shown; one kept before that is read by the names of the analysis it came
   * from, and once that analysis is no longer kept, its warnings cannot be told apart: counted.
   */
  async runSeenBy(
    run: RecoveryRun,
    credentials: BackstageCredentials,
  ): Promise<RecoveryRun> {
    const { plan } = run;
    if (!plan.analysis) return run;
    const { names: kept, ...analysis } = plan.analysis;
    if (!analysis.warnings?.length)
      return { ...run, plan: { ...plan, analysis } };
    const seen = (warnings: string[]) => ({
      ...run,
      plan: { ...plan, analysis: { ...analysis, warnings } },
    });
    const names: Inference['names'] | undefined = kept
      ? new Map(kept)
      : (await this.inference?.inferenceOf(analysis.id))?.names;
    if (!names) {
      return seen([
        `${counted(analysis.warnings.length, 'warning')} of the analysis left out: it is no longer kept, so the parts of the system they name cannot be checked against what the catalog shows you`,
      ]);
    }
    // What the plan holds, as the run keeps it: its root, its machines and the services on them.
    const parts = new Set([
      plan.entityRef,
      ...plan.machines.flatMap(m => [m.machineRef, ...m.services]),
      ...(plan.inferred ?? []).flatMap(d => [d.service, d.dependsOn]),
    ]);
    return seen(
      await warningsAbout(
        ref => parts.has(ref),
        { warnings: analysis.warnings, names },
        refs => this.graphs.visibleTo(refs, credentials),
      ),
    );
  }
}

/**
 * The analysis's warnings that concern a plan (`holds` the refs in it): those that name something
 * it holds, or nothing by name; the others are about other parts of the system, on its analysis.
 * With the caller's view, also not those naming a part outside the plan that the catalog hides
 * from them (a plan shows its whole graph to whoever sees its root, and no more). A line says how many
 * went, and why. Its own lines name nothing: applied again to what it returned, it keeps them.
 */
async function warningsAbout(
  holds: (ref: string) => boolean,
  analysis: Pick<Inference, 'warnings' | 'names'>,
  /** The caller's view of the catalog: which of these refs it shows them. */
  visibleTo?: (refs: string[]) => Promise<string[]>,
): Promise<string[]> {
  const inPlan = (ref: string | undefined) => ref !== undefined && holds(ref);
  const names = [...analysis.names];
  const outsideNames = names.filter(([, ref]) => !inPlan(ref));
  const namesPlan = namingAny(
    names.filter(([, ref]) => inPlan(ref)).map(([name]) => name),
  );
  const namesOutside = namingAny(outsideNames.map(([name]) => name));
  const about = analysis.warnings.filter(w => {
    const refs = refsInText(w);
    return (
      refs.some(inPlan) ||
      namesPlan(w) ||
      (refs.length === 0 && !namesOutside(w))
    );
  });
  let shown = about;
  // Only the warnings about the plan that also name parts outside it need the catalog's answer.
  const mixed = about.filter(
    w => namesOutside(w) || refsInText(w).some(ref => !inPlan(ref)),
  );
  if (visibleTo && mixed.length) {
    const named = outsideNames.filter(
      ([name, ref]) => ref && mixed.some(namingAny([name])),
    );
    const refs = [
      ...new Set([
        ...named.map(([, ref]) => ref!),
        ...mixed.flatMap(refsInText).filter(ref => !inPlan(ref)),
      ]),
    ];
    const visible = new Set(await visibleTo(refs));
    const hidden = new Set(refs.filter(ref => !visible.has(ref)));
    const namesHidden = namingAny([
      ...hidden,
      ...named.filter(([, ref]) => hidden.has(ref!)).map(([name]) => name),
    ]);
    shown = about.filter(w => !namesHidden(w));
  }
  const elsewhere = analysis.warnings.length - about.length;
  return [
    ...shown,
    ...(elsewhere
      ? [
          `${counted(elsewhere, 'warning')} of the analysis about parts of the system outside this plan: see its analysis`,
        ]
      : []),
    ...(about.length > shown.length
      ? [
          `left out as the catalog does not show them to you: ${counted(about.length - shown.length, 'warning')} about parts outside this plan`,
        ]
      : []),
  ];
}

/** The disagreements about services of the plan (`held`): the others are other plans' to show. */
function disagreementsOf(
  disagreements: DependencyDisagreements,
  held: (ref: string) => boolean,
): DependencyDisagreements {
  return {
    inferredNotDeclared: disagreements.inferredNotDeclared.filter(d =>
      held(d.service),
    ),
    declaredNotObserved: disagreements.declaredNotObserved.filter(d =>
      held(d.service),
    ),
  };
}

/** A shortest chain of service dependencies from `from` to `to` (both included), if any. */
function servicePath(
  graph: RecoveryGraph,
  from: string,
  to: string,
): string[] | undefined {
  const previous = new Map<string, string | undefined>([[from, undefined]]);
  const queue = [from];
  for (let i = 0; i < queue.length; i++) {
    const ref = queue[i];
    if (ref === to) {
      const path: string[] = [];
      for (
        let at: string | undefined = to;
        at !== undefined;
        at = previous.get(at)
      )
        path.unshift(at);
      return path;
    }
    for (const dep of [...(graph.services.get(ref)?.dependsOn ?? [])].sort()) {
      if (!previous.has(dep)) {
        previous.set(dep, ref);
        queue.push(dep);
      }
    }
  }
  return undefined;
}

const edgeKey = (from: string, to: string) => `${from}\u0000${to}`;
/** "Dependency cycle …" as the tail of a sentence. */
const lowerFirst = (text: string) =>
  text.charAt(0).toLowerCase() + text.slice(1);

/** The cycle's edges: it lists each node before the one it depends on (waits for). */
function cycleEdges(cycle: BootPlanCycleError): string[] {
  return cycle.cycle.map((node, i) =>
    edgeKey(node, cycle.cycle[(i + 1) % cycle.cycle.length]),
  );
}

/**
 * The weakest learned dependency whose removal can break an edge of the cycle (deterministic:
 * by score, then refs). Undefined when every edge of the cycle also comes from declared
 * dependencies alone.
 */
function weakestInferredOnCycle(
  graph: RecoveryGraph,
  inferred: InferredDependency[],
  cycle: BootPlanCycleError,
): InferredDependency | undefined {
  const learned = new Map(
    inferred.map(e => [edgeKey(e.service, e.dependsOn), e]),
  );
  const candidates = new Set<string>();
  if (cycle.level === 'service') {
    for (const edge of cycleEdges(cycle))
      if (learned.has(edge)) candidates.add(edge);
  } else {
    const makers = machineEdgeMakers(graph, learned);
    for (const edge of cycleEdges(cycle)) {
      const maker = makers.get(edge);
      // An edge some declared-only path makes stays whatever learned edge is dropped.
      if (!maker || maker.declaredOnly) continue;
      maker.learned.forEach(e => candidates.add(e));
    }
  }
  return [...candidates]
    .map(key => learned.get(key)!)
    .sort(
      (a, b) =>
        a.score - b.score ||
        a.service.localeCompare(b.service) ||
        a.dependsOn.localeCompare(b.dependsOn),
    )[0];
}

interface EdgeMaker {
  /** Some path of declared dependencies alone makes the edge. */
  declaredOnly: boolean;
  /** Learned dependencies on the paths that make it. */
  learned: Set<string>;
}

/**
 * For each machine edge of the boot plan (machine → machine it waits for), the service
 * dependencies that make it: a service on the machine depends, directly or through services
 * running on no machine of their own, on a service of the other machine (as buildBootPlan
 * looks through them).
 */
function machineEdgeMakers(
  graph: RecoveryGraph,
  learned: { has(key: string): boolean },
): Map<string, EdgeMaker> {
  // Per service: the services with machines it reaches through machine-less ones, with how.
  const reached = new Map<string, Map<string, EdgeMaker>>();
  const reach = (ref: string): Map<string, EdgeMaker> => {
    const known = reached.get(ref);
    if (known) return known;
    const result = new Map<string, EdgeMaker>();
    // Service cycles fail the plan before machines are looked at; this only guards recursion.
    reached.set(ref, result);
    for (const dep of graph.services.get(ref)?.dependsOn ?? []) {
      const key = edgeKey(ref, dep);
      const isLearned = learned.has(key);
      const depNode = graph.services.get(dep);
      const via: Array<[string, EdgeMaker]> =
        depNode && depNode.machines.length > 0
          ? [[dep, { declaredOnly: true, learned: new Set() }]]
          : [...reach(dep)];
      for (const [target, how] of via) {
        const into = result.get(target) ?? {
          declaredOnly: false,
          learned: new Set<string>(),
        };
        into.declaredOnly ||= how.declaredOnly && !isLearned;
        how.learned.forEach(e => into.learned.add(e));
        if (isLearned) into.learned.add(key);
        result.set(target, into);
      }
    }
    return result;
  };

  const makers = new Map<string, EdgeMaker>();
  const make = (machine: string, waitsForAll: string[], how: EdgeMaker) => {
    for (const waitsFor of machinesAwaited(machine, waitsForAll)) {
      const key = edgeKey(machine, waitsFor);
      const into = makers.get(key) ?? {
        declaredOnly: false,
        learned: new Set<string>(),
      };
      into.declaredOnly ||= how.declaredOnly;
      how.learned.forEach(e => into.learned.add(e));
      makers.set(key, into);
    }
  };
  const { services, machines } = reachable(graph);
  for (const service of services) {
    const node = graph.services.get(service)!;
    if (node.machines.length === 0) continue;
    const targets = reach(service);
    for (const machine of node.machines) {
      for (const [target, how] of targets)
        make(machine, graph.services.get(target)!.machines, how);
    }
  }
  // A machine's own dependsOn makes edges too (as buildBootPlan reads it): dropping a learned
  // edge that one of them also makes would not break the cycle, only lose what else it orders.
  const declared: EdgeMaker = { declaredOnly: true, learned: new Set() };
  for (const machine of machines) {
    for (const target of graph.machines.get(machine)?.dependsOn ?? []) {
      const own = graph.services.get(target)?.machines ?? [];
      if (graph.machines.has(target)) make(machine, [target], declared);
      else if (own.length > 0) make(machine, own, declared);
      else
        for (const [via, how] of reach(target))
          make(machine, graph.services.get(via)!.machines, how);
    }
  }
  return makers;
}

/**
 * The learned machine wait on a machine cycle followed in the smallest share of its chances; not
 * one whose edge declared dependencies alone also make: dropping it would not break the cycle.
 */
function weakestMachineWaitOnCycle(
  graph: RecoveryGraph,
  inferred: InferredDependency[],
  waits: InferredMachineWait[],
  cycle: BootPlanCycleError,
): InferredMachineWait | undefined {
  if (cycle.level !== 'machine') return undefined;
  const edges = new Set(cycleEdges(cycle));
  const makers = machineEdgeMakers(
    graph,
    new Set(inferred.map(e => edgeKey(e.service, e.dependsOn))),
  );
  return waits
    .filter(
      w =>
        edges.has(edgeKey(w.machine, w.waitsFor)) &&
        !makers.get(edgeKey(w.machine, w.waitsFor))?.declaredOnly,
    )
    .sort(
      (a, b) =>
        a.followed / a.chances - b.followed / b.chances ||
        a.followed - b.followed ||
        a.machine.localeCompare(b.machine) ||
        a.waitsFor.localeCompare(b.waitsFor),
    )[0];
}
