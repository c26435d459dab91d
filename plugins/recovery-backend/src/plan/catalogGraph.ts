import {
  AuthService,
  BackstageCredentials,
} from '@backstage/backend-plugin-api';
import {
  Entity,
  RELATION_API_PROVIDED_BY,
  RELATION_DEPENDENCY_OF,
  RELATION_HAS_PART,
  RELATION_OWNED_BY,
  RELATION_PART_OF,
  parseEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import { NotFoundError } from '@backstage/errors';
import type { CatalogService } from '@backstage/plugin-catalog-node';
import {
  EntityProblem,
  entityRole,
  MACHINE_RESOURCE_TYPE,
} from '@backstage-recovery/plugin-recovery-common';
import {
  dependsOnTargets,
  misplacedMachineAnnotations,
  partTargets,
  readMachine,
  readObjectives,
  readProbes,
  relationTargets,
} from './entityMapping';
import type {
  MachineNode,
  RecoveryGraph,
  ServiceNode,
} from '@backstage-recovery/plugin-recovery-node';

/** Reads the part of the catalog that recovering an entity touches. */
export class CatalogGraphLoader {
  constructor(
    private readonly catalog: CatalogService,
    private readonly auth: AuthService,
    private readonly defaults: { rpoSeconds: number; rtoSeconds: number },
    /** Entities read so far, by ref (see withMemo); none kept when absent. */
    private readonly memo?: Map<string, Promise<Entity | undefined>>,
  ) {}

  /**
   * A loader that asks the catalog once per ref for as long as it is kept: for one request that
   * plans many entities (the overview), whose plans walk the same platform chains again and
   * again. What it keeps is read with the plugin's own credentials, as every loader's reads
   * are; what a caller may see is still asked with theirs (visibleTo). Keep it no longer than
   * the request: the catalog changes.
   */
  withMemo(): CatalogGraphLoader {
    return new CatalogGraphLoader(
      this.catalog,
      this.auth,
      this.defaults,
      new Map(),
    );
  }

  async getEntity(entityRef: string): Promise<Entity> {
    const ref = normalizeRef(entityRef);
    const [entity] = await this.fetch([ref]);
    if (!entity) throw notFound(ref);
    return entity;
  }

  /**
   * Loads the entity (a ref, or the entity already fetched) and everything it transitively depends on. `inferred` adds learned
   * dependencies (entity ref → entity refs) to follow besides the declared dependsOn.
   */
  async load(
    entity: string | Entity,
    inferred: Map<string, string[]> = new Map(),
  ): Promise<RecoveryGraph> {
    const root =
      typeof entity === 'string' ? await this.getEntity(entity) : entity;
    const rootRef = stringifyEntityRef(root);
    const problems: EntityProblem[] = [];
    const objectives = readObjectives(root, this.defaults);
    problems.push(...objectives.problems);

    const services = new Map<string, ServiceNode>();
    const machines = new Map<string, MachineNode>();
    // Refs the catalog itself names (roots, dependsOn), with who names them: only these must
    // exist. A learned dependency on an entity since removed is a stale analysis, not a broken catalog.
    const declared = new Map<string, Reference[]>();
    const declare = (
      by: string,
      relation: Reference['relation'],
      targets: string[],
    ) => {
      for (const target of targets)
        declared.set(target, [
          ...(declared.get(target) ?? []),
          { by, relation },
        ]);
    };
    const missing: EntityProblem[] = [];
    const walked = entityRole(root) !== 'other';
    if (!walked) {
      problems.push({
        entityRef: rootRef,
        message: `${rootRef} is a ${root.kind}; recovery plans start from a Component, a Resource or a System`,
      });
    }

    // Breadth-first from the root over what recovery follows: the dependsOn of services and
    // machines, the parts of services (subcomponents) and systems, and the providers of an API.
    const dependsOn = new Map<string, string[]>();
    /** What an entity is made of: a service's or a system's parts, an API's providers. */
    const parts = new Map<string, string[]>();
    /** Entities of kinds a plan cannot boot (a Group, a Domain), by ref: their kind. */
    const unbootable = new Map<string, string>();
    const seen = new Set<string>();
    let frontier = walked ? [root] : [];
    while (frontier.length > 0) {
      const next = new Set<string>();
      for (const entity of frontier) {
        const ref = stringifyEntityRef(entity);
        if (seen.has(ref)) continue;
        seen.add(ref);
        const role = entityRole(entity);
        if (role === 'machine') {
          const { locator, problems: machineProblems } = readMachine(entity);
          // Its own probes gate it besides its services' (a database machine's `tcp:5432`).
          const { probes, problems: probeProblems } = readProbes(entity);
          machines.set(ref, {
            ref,
            locator,
            ...(probes.length > 0 && { probes }),
            ...systemOf(entity),
          });
          problems.push(...machineProblems, ...probeProblems);
          dependsOn.set(ref, dependsOnTargets(entity));
          if (ref === rootRef) {
            // A machine recovered on its own is its own service.
            services.set(ref, {
              ref,
              machines: [ref],
              dependsOn: [],
              probes: [],
            });
          }
        } else if (role === 'service') {
          const { probes, problems: probeProblems } = readProbes(entity);
          problems.push(...probeProblems);
          services.set(ref, {
            ref,
            machines: [],
            dependsOn: [],
            probes,
            ...systemOf(entity),
          });
          dependsOn.set(ref, dependsOnTargets(entity));
          parts.set(ref, partTargets(entity));
        } else if (role === 'group') {
          parts.set(ref, partTargets(entity));
        } else if (entity.kind.toLocaleLowerCase('en-US') === 'api') {
          parts.set(ref, relationTargets(entity, RELATION_API_PROVIDED_BY));
        } else {
          unbootable.set(ref, entity.kind);
        }
        if (role !== 'machine')
          problems.push(...misplacedMachineAnnotations(entity));
        declare(ref, 'dependsOn', dependsOn.get(ref) ?? []);
        if (role !== 'other') declare(ref, 'hasPart', parts.get(ref) ?? []);
        for (const t of [
          ...(dependsOn.get(ref) ?? []),
          ...(parts.get(ref) ?? []),
          ...(inferred.get(ref) ?? []),
        ]) {
          if (!seen.has(t)) next.add(t);
        }
      }
      frontier = await this.fetchKnown([...next], declared, missing);
    }

    /** The services and machines an entity stands for: itself, and what it is made of. */
    const contents = (ref: string, within: string[] = []): string[] => {
      // A catalog where something is a part of itself: the loop adds nothing.
      if (within.includes(ref)) return [];
      const own = services.has(ref) || machines.has(ref) ? [ref] : [];
      return [
        ...new Set([
          ...own,
          ...(parts.get(ref) ?? []).flatMap(part =>
            contents(part, [...within, ref]),
          ),
        ]),
      ];
    };
    /**
     * The Systems and APIs (and entities of other kinds with parts) an entity reaches its parts
     * through, itself included: their own problems (a part not in the catalog) are of the plans
     * that go through them.
     */
    const wholesWithin = (ref: string, within: string[] = []): string[] => {
      if (within.includes(ref)) return [];
      const own =
        parts.has(ref) && !services.has(ref) && !machines.has(ref) ? [ref] : [];
      return [
        ...new Set([
          ...own,
          ...(parts.get(ref) ?? []).flatMap(part =>
            wholesWithin(part, [...within, ref]),
          ),
        ]),
      ];
    };
    const wholes = new Map<string, string[]>();
    const goesThrough = (by: string, refs: string[]) => {
      if (refs.length)
        wholes.set(by, [...new Set([...(wholes.get(by) ?? []), ...refs])]);
    };
    for (const [by, targets] of dependsOn) {
      const resolved = new Set<string>();
      /** What each of them stands in for, where it is not the target itself. */
      const through: Record<string, string> = {};
      // Machines that are parts of what a service depends on (a System's): it waits for them,
      // as for a service of their own, rather than running on them.
      const partMachines = new Set<string>();
      for (const target of targets) {
        if (unbootable.has(target)) {
          problems.push({
            entityRef: by,
            message: `${by} dependsOn ${target}, a ${unbootable.get(target)}: a recovery plan boots only services and machines, so it leaves ${target} out; remove that dependsOn from ${by}, or replace it with the Components and Resources it stands for`,
          });
          continue;
        }
        const all = contents(target);
        if (all.includes(by)) {
          // A part that depends on its own whole waits for the whole itself, not for its
          // siblings (each of them would wait for the other); one that names itself, or an API
          // it provides, needs nothing more.
          if (services.has(target) && target !== by) resolved.add(target);
          continue;
        }
        goesThrough(by, wholesWithin(target));
        if (all.length === 0 && parts.has(target)) {
          const what = target.startsWith('api:')
            ? 'which no Component provides (spec.providesApis)'
            : 'which has no Component or Resource as a part';
          missing.push({
            entityRef: by,
            message: `${by} dependsOn ${target}, ${what}: a recovery plan cannot include what it stands for`,
          });
        }
        for (const ref of all) {
          (ref !== target && machines.has(ref) ? partMachines : resolved).add(
            ref,
          );
          // Declared directly as well, by this or another dependsOn: that one says why.
          if (ref !== target && !targets.includes(ref)) through[ref] ??= target;
        }
      }
      const machine = machines.get(by);
      if (machine) {
        machine.dependsOn = [...resolved, ...partMachines];
        if (Object.keys(through).length) machine.through = through;
      } else {
        const service = services.get(by)!;
        service.machines = [...resolved].filter(ref => machines.has(ref));
        const awaited = [...partMachines].filter(ref => !resolved.has(ref));
        for (const ref of awaited) {
          if (!services.has(ref))
            services.set(ref, {
              ref,
              machines: [ref],
              dependsOn: [],
              probes: [],
            });
        }
        service.dependsOn = [
          ...[...resolved].filter(
            ref => services.has(ref) && !machines.has(ref),
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
    problems.push(...missing);
    const roots = !walked
      ? []
      : entityRole(root) === 'machine'
        ? [rootRef]
        : contents(rootRef);
    if (walked) goesThrough(rootRef, wholesWithin(rootRef));

    return {
      rootRef,
      roots,
      services,
      machines,
      wholes,
      problems: dedupe(problems),
      missing: dedupe(missing),
      objectives: {
        rpoSeconds: objectives.rpoSeconds,
        rtoSeconds: objectives.rtoSeconds,
      },
    };
  }

  /**
   * Entities whose recovery means something: services that run on machines (directly
   * dependsOn a machine Resource), the systems they are part of, and those systems' other
   * services: one on no machine is listed all the same, for the overview to show it covered by
   * nothing rather than leave it out.
   */
  async recoverableEntities(): Promise<string[]> {
    const credentials = await this.auth.getOwnServiceCredentials();
    const { items: machines } = await this.catalog.getEntities(
      {
        filter: { kind: 'Resource', 'spec.type': MACHINE_RESOURCE_TYPE },
        fields: ['kind', 'metadata.namespace', 'metadata.name', 'relations'],
      },
      { credentials },
    );
    const dependents = new Set(
      machines.flatMap(m => relationTargets(m, RELATION_DEPENDENCY_OF)),
    );
    const { items } = await this.catalog.getEntitiesByRefs(
      {
        entityRefs: [...dependents],
        fields: ['kind', 'metadata', 'spec.type', 'relations'],
      },
      { credentials },
    );
    const refs = new Set<string>();
    for (const entity of items) {
      // Not a machine that depends on another: that one is recovered with what runs on it.
      if (!entity || entityRole(entity) !== 'service') continue;
      refs.add(stringifyEntityRef(entity));
      relationTargets(entity, RELATION_PART_OF).forEach(r => refs.add(r));
    }
    const systems = [...refs].filter(r => r.startsWith('system:'));
    const machineRefs = new Set(machines.map(m => stringifyEntityRef(m)));
    const { items: wholes } =
      systems.length > 0
        ? await this.catalog.getEntitiesByRefs(
            {
              entityRefs: systems,
              fields: [
                'kind',
                'metadata.namespace',
                'metadata.name',
                'relations',
              ],
            },
            { credentials },
          )
        : { items: [] };
    for (const system of wholes) {
      for (const part of system
        ? relationTargets(system, RELATION_HAS_PART)
        : [])
        if (
          (part.startsWith('component:') || part.startsWith('resource:')) &&
          !machineRefs.has(part)
        )
          refs.add(part);
    }
    return [...refs].sort();
  }

  /**
   * Every machine in the catalog, as the names its logs may give it (its entity name, and the
   * container its annotations name, as a system's analysis matches them): name to machine refs.
   */
  async machineLogNames(): Promise<Map<string, string[]>> {
    const { items } = await this.catalog.getEntities(
      {
        filter: { kind: 'Resource', 'spec.type': MACHINE_RESOURCE_TYPE },
        fields: [
          'kind',
          'metadata.namespace',
          'metadata.name',
          'metadata.annotations',
        ],
      },
      { credentials: await this.auth.getOwnServiceCredentials() },
    );
    const names = new Map<string, string[]>();
    for (const entity of items) {
      const ref = stringifyEntityRef(entity);
      const container = readMachine(entity).locator?.container;
      for (const name of new Set([
        entity.metadata.name,
        ...(container ? [container] : []),
      ])) {
        names.set(name, [...(names.get(name) ?? []), ref]);
      }
    }
    return names;
  }

  /**
   * The names by which any system's analysis may take a log's service: every Component's and
   * Resource's name and full ref (a machine recovered on its own is its own service).
   */
  async serviceLogNames(): Promise<Set<string>> {
    const { items } = await this.catalog.getEntities(
      {
        filter: [{ kind: 'Component' }, { kind: 'Resource' }],
        fields: ['kind', 'metadata.namespace', 'metadata.name'],
      },
      { credentials: await this.auth.getOwnServiceCredentials() },
    );
    return new Set(
      items.flatMap(entity => [
        entity.metadata.name,
        stringifyEntityRef(entity),
      ]),
    );
  }

  /** The owners (ownedBy) of each of `refs`; none for a ref the catalog does not hold. */
  async ownersOf(refs: string[]): Promise<Map<string, string[]>> {
    if (refs.length === 0) return new Map();
    const { items } = await this.catalog.getEntitiesByRefs(
      {
        entityRefs: refs,
        fields: ['kind', 'metadata.namespace', 'metadata.name', 'relations'],
      },
      { credentials: await this.auth.getOwnServiceCredentials() },
    );
    return new Map(
      refs.map((ref, index) => [
        ref,
        items[index] ? relationTargets(items[index], RELATION_OWNED_BY) : [],
      ]),
    );
  }

  /**
   * The refs among `refs` the caller may see in the catalog, in their order: the plugin reads
   * the catalog with its own credentials, so what a user asks about is checked with theirs.
   */
  async visibleTo(
    refs: string[],
    credentials: BackstageCredentials,
  ): Promise<string[]> {
    if (refs.length === 0) return [];
    const { items } = await this.catalog.getEntitiesByRefs(
      {
        entityRefs: refs,
        fields: ['kind', 'metadata.namespace', 'metadata.name'],
      },
      { credentials },
    );
    return refs.filter((_, index) => items[index]);
  }

  /** The refs among `refs` the catalog holds (whoever may see them), in their order. */
  async heldRefs(refs: string[]): Promise<string[]> {
    return this.visibleTo(refs, await this.auth.getOwnServiceCredentials());
  }

  /**
   * `ref`, if the caller may see it in the catalog; else the same 404 as for an entity that is
   * not there, so a hidden one's existence does not leak.
   */
  async requireVisible(
    ref: string,
    credentials: BackstageCredentials,
  ): Promise<string> {
    const [seen] = await this.visibleTo([ref], credentials);
    if (!seen) throw notFound(ref);
    return ref;
  }

  private async fetch(refs: string[]): Promise<Array<Entity | undefined>> {
    const memo = this.memo;
    if (!memo) return this.fetchFromCatalog(refs);
    // Those not asked yet, in one call; those already asked (or being asked) wait on that answer.
    const asked = [...new Set(refs.filter(ref => !memo.has(ref)))];
    if (asked.length > 0) {
      const answer = this.fetchFromCatalog(asked);
      asked.forEach((ref, index) =>
        memo.set(
          ref,
          answer.then(items => items[index]),
        ),
      );
    }
    return Promise.all(refs.map(ref => memo.get(ref)!));
  }

  private async fetchFromCatalog(
    refs: string[],
  ): Promise<Array<Entity | undefined>> {
    if (refs.length === 0) return [];
    const { items } = await this.catalog.getEntitiesByRefs(
      { entityRefs: refs },
      { credentials: await this.auth.getOwnServiceCredentials() },
    );
    return items.map(item => item ?? undefined);
  }

  /**
   * Fetches entities, reporting each missing one the catalog names (`declared`) as a problem of
   * each entity that names it; the others (learned dependencies) are skipped.
   */
  private async fetchKnown(
    refs: string[],
    declared: Map<string, Reference[]>,
    missing: EntityProblem[],
  ): Promise<Entity[]> {
    const entities = await this.fetch(refs);
    const found: Entity[] = [];
    entities.forEach((entity, index) => {
      if (entity) found.push(entity);
      for (const { by, relation } of entity
        ? []
        : (declared.get(refs[index]) ?? [])) {
        missing.push({
          entityRef: by,
          message: `${by} ${relation} ${refs[index]}, which is not in the catalog: a recovery plan cannot include it`,
        });
      }
    });
    return found;
  }
}

/** Who names a ref in the catalog, and how. */
interface Reference {
  by: string;
  relation: 'dependsOn' | 'hasPart';
}

const notFound = (ref: string) =>
  new NotFoundError(`Entity ${ref} not found in the catalog`);

export function normalizeRef(
  entityRef: string,
  defaultKind = 'component',
): string {
  return stringifyEntityRef(
    parseEntityRef(entityRef, { defaultKind, defaultNamespace: 'default' }),
  );
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

function dedupe(problems: EntityProblem[]): EntityProblem[] {
  const seen = new Set<string>();
  return problems.filter(p => {
    const key = `${p.entityRef}|${p.annotation ?? ''}|${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
