import {
  Entity,
  parseEntityRef,
  RELATION_API_PROVIDED_BY,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import {
  ANNOTATION_CONTAINER,
  EntityProblem,
  entityRole,
} from '@backstage-recovery/plugin-recovery-common';
import type {
  MachineLocator,
  MachineNode,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';
import {
  dependsOnTargets,
  misplacedMachineAnnotations,
  partTargets,
  readJob,
  readMachine,
  readProbes,
  relationTargets,
} from './entityMapping';

/** Who names a ref in the catalog, and how. */
export interface Reference {
  by: string;
  relation: 'dependsOn' | 'hasPart';
}

/** What one entity's dependsOn stands for, once Systems, APIs and parts are looked through. */
interface ResolvedTargets {
  /** The services and machines it depends on itself. */
  resolved: Set<string>;
  /**
   * Machines that are parts of what it depends on (a System's): it waits for them, as for a
   * service of their own, rather than running on them.
   */
  partMachines: Set<string>;
  /** What each of them stands in for, where it is not the target itself. */
  through: Record<string, string>;
}

/**
 * The part of the catalog a plan walks from its root (visit, breadth-first, by the loader), and
 * what recovery makes of it (resolve): services on machines, each waiting for what it depends on,
 * Systems, APIs and other wholes looked through to the Components and Resources they stand for.
 */
export class CatalogWalk {
  readonly services = new Map<string, ServiceNode>();
  readonly machines = new Map<string, MachineNode>();
  /** The problems of the entities walked, in the order found. */
  readonly problems: EntityProblem[] = [];
  /** Dependencies on what a plan cannot include: not in the catalog, or standing for nothing. */
  readonly missing: EntityProblem[] = [];
  /**
   * Refs the catalog itself names (roots, dependsOn), with who names them: only these must
   * exist. A learned dependency on an entity since removed is a stale analysis, not a broken catalog.
   */
  readonly declared = new Map<string, Reference[]>();
  /** The Systems and APIs each entity reaches its dependencies' parts through (RecoveryGraph.wholes). */
  readonly wholes = new Map<string, string[]>();
  /** Each entity's dependsOn, as declared. */
  private readonly dependsOn = new Map<string, string[]>();
  /** What an entity is made of: a service's or a system's parts, an API's providers. */
  private readonly parts = new Map<string, string[]>();
  /** Entities of kinds a plan cannot boot (a Group, a Domain), by ref: their kind. */
  private readonly unbootable = new Map<string, string>();
  private readonly seen = new Set<string>();
  /** The machines walked, by the container (engine and name) their annotations map them to. */
  private readonly machinesByContainer = new Map<string, string[]>();

  constructor(
    private readonly rootRef: string,
    /** Learned dependencies (entity ref → entity refs) to follow besides the declared dependsOn. */
    private readonly inferred: Map<string, string[]>,
  ) {}

  /**
   * Takes in an entity the walk reached: what recovery follows from it (the dependsOn of services
   * and machines, the parts of services and systems, the providers of an API). Returns the refs
   * to walk to next, those not reached yet.
   */
  visit(entity: Entity): string[] {
    const ref = stringifyEntityRef(entity);
    if (this.seen.has(ref)) return [];
    this.seen.add(ref);
    const role = entityRole(entity);
    const followed = followedRelations(entity);
    // Every service and machine has its dependsOn resolved (resolve), if only to none.
    if (role === 'machine' || role === 'service')
      this.dependsOn.set(ref, followed.dependsOn);
    if (followed.parts) this.parts.set(ref, followed.parts);
    if (role === 'machine') {
      this.visitMachine(entity, ref);
    } else if (role === 'service') {
      this.visitService(entity, ref);
    } else if (!followed.parts) {
      this.unbootable.set(ref, entity.kind);
    }
    if (role !== 'machine')
      this.problems.push(...misplacedMachineAnnotations(entity));
    this.declare(ref, 'dependsOn', this.dependsOn.get(ref) ?? []);
    if (role !== 'other')
      this.declare(ref, 'hasPart', this.parts.get(ref) ?? []);
    return [
      ...(this.dependsOn.get(ref) ?? []),
      ...(this.parts.get(ref) ?? []),
      ...(this.inferred.get(ref) ?? []),
    ].filter(target => !this.seen.has(target));
  }

  private visitMachine(entity: Entity, ref: string): void {
    const { locator, problems: machineProblems } = readMachine(entity);
    // Its own probes gate it besides its services' (a database machine's `tcp:5432`).
    const { probes, problems: probeProblems } = readProbes(entity);
    const { job, problems: jobProblems } = readJob(entity);
    this.machines.set(ref, {
      ref,
      locator,
      ...(probes.length > 0 && { probes }),
      ...systemOf(entity),
      ...(job && { job }),
    });
    this.problems.push(...machineProblems, ...probeProblems, ...jobProblems);
    if (locator)
      this.problems.push(...this.sharedContainerProblems(ref, locator));
    if (ref === this.rootRef) {
      // A machine recovered on its own is its own service.
      this.services.set(ref, {
        ref,
        machines: [ref],
        dependsOn: [],
        probes: [],
      });
    }
  }

  /**
   * Machines mapped to one container on one engine (a copied entity, a rename kept beside its old
   * name): each captures that one container, and a recovery boots it as each of them, all on its
   * production addresses. Each such machine is a problem naming the others.
   */
  private sharedContainerProblems(
    ref: string,
    { engine, container }: MachineLocator,
  ): EntityProblem[] {
    const key = JSON.stringify([engine, container]);
    const others = this.machinesByContainer.get(key) ?? [];
    this.machinesByContainer.set(key, [...others, ref]);
    const problem = (machine: string, other: string): EntityProblem => ({
      entityRef: machine,
      annotation: ANNOTATION_CONTAINER,
      message: `Machine ${machine}: ${ANNOTATION_CONTAINER} "${container}" on engine ${engine} is the container of machine ${other} as well: each captures that one container, and a recovery boots it once as each, on the same production addresses (the second fails on them); point each machine at its own container, or remove the machine that has none`,
    });
    return others.flatMap(other => [problem(ref, other), problem(other, ref)]);
  }

  private visitService(entity: Entity, ref: string): void {
    const { probes, problems: probeProblems } = readProbes(entity);
    this.problems.push(...probeProblems);
    this.services.set(ref, {
      ref,
      machines: [],
      dependsOn: [],
      probes,
      ...systemOf(entity),
    });
  }

  private declare(
    by: string,
    relation: Reference['relation'],
    targets: string[],
  ): void {
    for (const target of targets)
      this.declared.set(target, [
        ...(this.declared.get(target) ?? []),
        { by, relation },
      ]);
  }

  /**
   * Turns every dependsOn walked into the edges of the machines and services: what a machine
   * waits for, the machines a service runs on and the services it waits for.
   */
  resolve(): void {
    for (const [by, targets] of this.dependsOn) {
      const targetsResolved = this.resolveTargets(by, targets);
      if (this.machines.has(by)) this.linkMachine(by, targetsResolved);
      else this.linkService(by, targetsResolved);
    }
  }

  /** The services and machines an entity stands for: itself, and what it is made of. */
  contents(ref: string, within: string[] = []): string[] {
    // A catalog where something is a part of itself: the loop adds nothing.
    if (within.includes(ref)) return [];
    const own = this.services.has(ref) || this.machines.has(ref) ? [ref] : [];
    return [
      ...new Set([
        ...own,
        ...(this.parts.get(ref) ?? []).flatMap(part =>
          this.contents(part, [...within, ref]),
        ),
      ]),
    ];
  }

  /**
   * The Systems and APIs (and entities of other kinds with parts) an entity reaches its parts
   * through, itself included: their own problems (a part not in the catalog) are of the plans
   * that go through them.
   */
  wholesWithin(ref: string, within: string[] = []): string[] {
    if (within.includes(ref)) return [];
    const own =
      this.parts.has(ref) && !this.services.has(ref) && !this.machines.has(ref)
        ? [ref]
        : [];
    return [
      ...new Set([
        ...own,
        ...(this.parts.get(ref) ?? []).flatMap(part =>
          this.wholesWithin(part, [...within, ref]),
        ),
      ]),
    ];
  }

  /** Records that `by` reaches what it depends on through the wholes `refs`. */
  goesThrough(by: string, refs: string[]): void {
    if (refs.length)
      this.wholes.set(by, [
        ...new Set([...(this.wholes.get(by) ?? []), ...refs]),
      ]);
  }

  /** What `by`'s dependsOn `targets` stand for; says where one stands for nothing a plan boots. */
  private resolveTargets(by: string, targets: string[]): ResolvedTargets {
    const resolved = new Set<string>();
    const through: Record<string, string> = {};
    const partMachines = new Set<string>();
    for (const target of targets) {
      if (this.unbootable.has(target)) {
        this.problems.push({
          entityRef: by,
          message: `${by} dependsOn ${target}, a ${this.unbootable.get(target)}: a recovery plan boots only services and machines, so it leaves ${target} out; remove that dependsOn from ${by}, or replace it with the Components and Resources it stands for`,
        });
        continue;
      }
      const all = this.contents(target);
      if (all.includes(by)) {
        // A part that depends on its own whole waits for the whole itself, not for its
        // siblings (each of them would wait for the other); one that names itself, or an API
        // it provides, needs nothing more.
        if (this.services.has(target) && target !== by) resolved.add(target);
        continue;
      }
      this.goesThrough(by, this.wholesWithin(target));
      if (all.length === 0 && this.parts.has(target)) {
        const what = target.startsWith('api:')
          ? 'which no Component provides (spec.providesApis)'
          : 'which has no Component or Resource as a part';
        this.missing.push({
          entityRef: by,
          message: `${by} dependsOn ${target}, ${what}: a recovery plan cannot include what it stands for`,
        });
      }
      for (const ref of all) {
        (ref !== target && this.machines.has(ref)
          ? partMachines
          : resolved
        ).add(ref);
        // Declared directly as well, by this or another dependsOn: that one says why.
        if (ref !== target && !targets.includes(ref)) through[ref] ??= target;
      }
    }
    return { resolved, partMachines, through };
  }

  /** A machine waits for everything it depends on, part machines included. */
  private linkMachine(
    by: string,
    { resolved, partMachines, through }: ResolvedTargets,
  ): void {
    const machine = this.machines.get(by)!;
    machine.dependsOn = [...resolved, ...partMachines];
    if (Object.keys(through).length) machine.through = through;
  }

  /**
   * A service runs on the machines it depends on directly, and waits for the services it depends
   * on and for the part machines (each then a service of its own) it does not run on.
   */
  private linkService(
    by: string,
    { resolved, partMachines, through }: ResolvedTargets,
  ): void {
    const service = this.services.get(by)!;
    service.machines = [...resolved].filter(ref => this.machines.has(ref));
    const awaited = [...partMachines].filter(ref => !resolved.has(ref));
    for (const ref of awaited) {
      if (!this.services.has(ref))
        this.services.set(ref, {
          ref,
          machines: [ref],
          dependsOn: [],
          probes: [],
        });
    }
    service.dependsOn = [
      ...[...resolved].filter(
        ref => this.services.has(ref) && !this.machines.has(ref),
      ),
      ...awaited,
    ];
    const indirect = service.dependsOn.filter(ref => through[ref]);
    if (indirect.length)
      service.through = Object.fromEntries(
        indirect.map(ref => [ref, through[ref]]),
      );
  }
}

/**
 * What a plan walks to from an entity (CatalogWalk.visit): the dependsOn of services and
 * machines; the parts of services and Systems, the providers of an API (`parts`, absent for an
 * entity of a kind with none). The recoverable entities are found by the same edges, reversed.
 */
export function followedRelations(entity: Entity): {
  dependsOn: string[];
  parts?: string[];
} {
  const role = entityRole(entity);
  if (role === 'machine') return { dependsOn: dependsOnTargets(entity) };
  if (role === 'service')
    return { dependsOn: dependsOnTargets(entity), parts: partTargets(entity) };
  if (role === 'group') return { dependsOn: [], parts: partTargets(entity) };
  if (entity.kind.toLocaleLowerCase('en-US') === 'api')
    return {
      dependsOn: [],
      parts: relationTargets(entity, RELATION_API_PROVIDED_BY),
    };
  return { dependsOn: [] };
}

/** The System an entity is part of (spec.system), as a ref: a plan breaking cycles drops an edge between Systems first. */
function systemOf(entity: Entity): { system?: string } {
  const system = entity.spec?.system;
  if (typeof system !== 'string' || system === '') return {};
  try {
    return {
      system: stringifyEntityRef(
        parseEntityRef(system, {
          defaultKind: 'system',
          defaultNamespace: entity.metadata.namespace ?? 'default',
        }),
      ),
    };
  } catch {
    return {}; // malformed: the catalog's own validation says so
  }
}
