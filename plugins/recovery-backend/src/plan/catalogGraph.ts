import { AuthService, BackstageCredentials } from '@backstage/backend-plugin-api';
import {
  Entity,
  RELATION_DEPENDENCY_OF,
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
  partTargets,
  readMachine,
  readObjectives,
  readProbes,
  relationTargets,
} from './entityMapping';
import type { MachineNode, RecoveryGraph, ServiceNode } from './recoveryGraph';

/** Reads the part of the catalog that recovering an entity touches. */
export class CatalogGraphLoader {
  constructor(
    private readonly catalog: CatalogService,
    private readonly auth: AuthService,
    private readonly defaults: { rpoSeconds: number; rtoSeconds: number },
  ) {}

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
    const root = typeof entity === 'string' ? await this.getEntity(entity) : entity;
    const rootRef = stringifyEntityRef(root);
    const problems: EntityProblem[] = [];
    const objectives = readObjectives(root, this.defaults);
    problems.push(...objectives.problems);

    const services = new Map<string, ServiceNode>();
    const machines = new Map<string, MachineNode>();
    // Refs the catalog itself names (roots, dependsOn), with who names them: only these must
    // exist. A learned dependency on an entity since removed is a stale analysis, not a broken catalog.
    const declared = new Map<string, Reference[]>();
    const declare = (by: string, relation: Reference['relation'], targets: string[]) => {
      for (const target of targets) declared.set(target, [...(declared.get(target) ?? []), { by, relation }]);
    };
    const missing: EntityProblem[] = [];
    let roots: string[];
    let frontier: Entity[];
    switch (entityRole(root)) {
      case 'group': {
        roots = partTargets(root);
        declare(rootRef, 'hasPart', roots);
        frontier = await this.fetchKnown(roots, declared, missing);
        break;
      }
      case 'service':
      case 'machine':
        roots = [rootRef];
        frontier = [root];
        break;
      default:
        problems.push({
          entityRef: rootRef,
          message: `${rootRef} is a ${root.kind}; recovery plans start from a Component, a Resource or a System`,
        });
        roots = [];
        frontier = [];
    }

    // Breadth-first over dependsOn; machines end the walk, services continue it.
    const targetsOf = new Map<string, string[]>();
    const seen = new Set<string>();
    while (frontier.length > 0) {
      const next = new Set<string>();
      for (const entity of frontier) {
        const ref = stringifyEntityRef(entity);
        if (seen.has(ref)) continue;
        seen.add(ref);
        const role = entityRole(entity);
        if (role === 'machine') {
          const { locator, problems: machineProblems } = readMachine(entity);
          machines.set(ref, { ref, locator });
          problems.push(...machineProblems);
          if (ref === rootRef) {
            // A machine recovered on its own is its own service.
            services.set(ref, { ref, machines: [ref], dependsOn: [], probes: [] });
          }
        } else if (role === 'service') {
          const { probes, problems: probeProblems } = readProbes(entity);
          problems.push(...probeProblems);
          services.set(ref, { ref, machines: [], dependsOn: [], probes });
          targetsOf.set(ref, dependsOnTargets(entity));
          declare(ref, 'dependsOn', targetsOf.get(ref)!);
          for (const t of [...targetsOf.get(ref)!, ...(inferred.get(ref) ?? [])]) {
            if (!seen.has(t)) next.add(t);
          }
        }
      }
      frontier = await this.fetchKnown([...next], declared, missing);
    }
    problems.push(...missing);

    for (const [ref, targets] of targetsOf) {
      const service = services.get(ref)!;
      for (const target of targets) {
        if (machines.has(target)) service.machines.push(target);
        else if (services.has(target)) service.dependsOn.push(target);
      }
    }

    return {
      rootRef,
      roots,
      services,
      machines,
      problems: dedupe(problems),
      missing: dedupe(missing),
      objectives: { rpoSeconds: objectives.rpoSeconds, rtoSeconds: objectives.rtoSeconds },
    };
  }

  /**
   * Entities whose recovery means something: services that run on machines (directly
   * dependsOn a machine Resource) and the systems they are part of.
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
    const services = new Set(
      machines.flatMap(m => relationTargets(m, RELATION_DEPENDENCY_OF)),
    );
    const { items } = await this.catalog.getEntitiesByRefs(
      { entityRefs: [...services], fields: ['kind', 'metadata', 'relations'] },
      { credentials },
    );
    const refs = new Set(services);
    for (const entity of items) {
      if (entity) relationTargets(entity, RELATION_PART_OF).forEach(r => refs.add(r));
    }
    return [...refs].sort();
  }

  /**
   * The refs among `refs` the caller may see in the catalog, in their order: the plugin reads
   * the catalog with its own credentials, so what a user asks about is checked with theirs.
   */
  async visibleTo(refs: string[], credentials: BackstageCredentials): Promise<string[]> {
    if (refs.length === 0) return [];
    const { items } = await this.catalog.getEntitiesByRefs(
      { entityRefs: refs, fields: ['kind', 'metadata.namespace', 'metadata.name'] },
      { credentials },
    );
    return refs.filter((_, index) => items[index]);
  }

  /**
   * `ref`, if the caller may see it in the catalog; else the same 404 as for an entity that is
   * not there, so a hidden one's existence does not leak.
   */
  async requireVisible(ref: string, credentials: BackstageCredentials): Promise<string> {
    const [seen] = await this.visibleTo([ref], credentials);
    if (!seen) throw notFound(ref);
    return ref;
  }

  private async fetch(refs: string[]): Promise<Array<Entity | undefined>> {
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
      for (const { by, relation } of entity ? [] : declared.get(refs[index]) ?? []) {
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

const notFound = (ref: string) => new NotFoundError(`Entity ${ref} not found in the catalog`);

export function normalizeRef(entityRef: string): string {
  return stringifyEntityRef(
    parseEntityRef(entityRef, { defaultKind: 'component', defaultNamespace: 'default' }),
  );
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
