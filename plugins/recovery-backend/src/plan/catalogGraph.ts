import {
  AuthService,
  BackstageCredentials,
} from '@backstage/backend-plugin-api';
import type {
  GetEntitiesByRefsRequest,
  StreamEntitiesRequest,
} from '@backstage/catalog-client';
import {
  Entity,
  RELATION_DEPENDENCY_OF,
  RELATION_HAS_PART,
  RELATION_OWNED_BY,
  RELATION_PART_OF,
  RELATION_PROVIDES_API,
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
  listAllEntities,
  type RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';
import { CatalogWalk, followedRelations, type Reference } from './catalogWalk';
import { readMachine, readObjectives, relationTargets } from './entityMapping';

/** Reads the part of the catalog that recovering an entity touches. */
export class CatalogGraphLoader {
  constructor(
    private readonly catalog: CatalogService,
    private readonly auth: AuthService,
    private readonly defaults: { rpoSeconds: number; rtoSeconds: number },
    /** Entities a page of a catalog list (streamEntities' own 500 unless given); tests ask for few. */
    private readonly pageSize?: number,
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
      this.pageSize,
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
    const objectives = readObjectives(root, this.defaults);
    const walk = new CatalogWalk(rootRef, inferred);
    walk.problems.push(...objectives.problems);
    const walked = entityRole(root) !== 'other';
    if (walked) {
      await this.walkFrom(root, walk);
    } else {
      walk.problems.push({
        entityRef: rootRef,
        message: `${rootRef} is a ${root.kind}; recovery plans start from a Component, a Resource or a System`,
      });
    }
    walk.resolve();
    const roots = !walked
      ? []
      : entityRole(root) === 'machine'
        ? [rootRef]
        : walk.contents(rootRef);
    if (walked) walk.goesThrough(rootRef, walk.wholesWithin(rootRef));

    return {
      rootRef,
      roots,
      services: walk.services,
      machines: walk.machines,
      wholes: walk.wholes,
      problems: dedupe([...walk.problems, ...walk.missing]),
      missing: dedupe(walk.missing),
      objectives: {
        rpoSeconds: objectives.rpoSeconds,
        rtoSeconds: objectives.rtoSeconds,
      },
    };
  }

  /**
   * Walks the catalog breadth-first from the root over what recovery follows (CatalogWalk.visit),
   * each ring of entities fetched at once.
   */
  private async walkFrom(root: Entity, walk: CatalogWalk): Promise<void> {
    let frontier = [root];
    while (frontier.length > 0) {
      const next = new Set<string>();
      for (const entity of frontier)
        for (const ref of walk.visit(entity)) next.add(ref);
      frontier = await this.fetchKnown([...next], walk.declared, walk.missing);
    }
  }

  /**
   * Entities whose recovery means something: every service and System whose plan holds a machine
   * (it reaches one by the edges a plan walks, followedRelations, however many services or
   * Systems away), and those Systems' other services: one on no machine is listed all the same,
   * for the overview to show it covered by nothing rather than leave it out. Found backwards from
   * the machines a ring at a time, each entity read once; a machine is recovered with what runs
   * on it, so none is listed.
   */
  async recoverableEntities(): Promise<string[]> {
    const credentials = await this.auth.getOwnServiceCredentials();
    const machines = await this.list(
      {
        filter: { kind: 'Resource', 'spec.type': MACHINE_RESOURCE_TYPE },
        fields: ['kind', 'metadata.namespace', 'metadata.name', 'relations'],
      },
      credentials,
    );
    const machineRefs = new Set(machines.map(m => stringifyEntityRef(m)));
    const reached = new Set(machineRefs);
    const read = new Map<string, Entity | undefined>();
    let frontier = machines;
    while (frontier.length > 0) {
      // Who may walk into the ring: the catalog's reverse of dependsOn, hasPart, apiProvidedBy.
      const candidates = new Set(
        frontier.flatMap(entity =>
          [
            RELATION_DEPENDENCY_OF,
            RELATION_PART_OF,
            RELATION_PROVIDES_API,
          ].flatMap(type => relationTargets(entity, type)),
        ),
      );
      const unread = [...candidates].filter(
        ref => !reached.has(ref) && !read.has(ref),
      );
      const items = await this.byRefs(
        {
          entityRefs: unread,
          fields: [
            'kind',
            'metadata.namespace',
            'metadata.name',
            'spec.type',
            'relations',
          ],
        },
        credentials,
      );
      unread.forEach((ref, index) => read.set(ref, items[index]));
      frontier = [];
      for (const ref of candidates) {
        const entity = read.get(ref);
        if (!entity || reached.has(ref)) continue;
        // Only if its plan walks that edge itself (a System's own dependsOn is not walked, say).
        const { dependsOn, parts = [] } = followedRelations(entity);
        if (![...dependsOn, ...parts].some(target => reached.has(target)))
          continue;
        reached.add(ref);
        frontier.push(entity);
      }
    }
    const refs = new Set<string>();
    for (const ref of reached) {
      const entity = read.get(ref);
      const role = entity ? entityRole(entity) : 'machine';
      if (role === 'service') refs.add(ref);
      if (role !== 'group') continue;
      refs.add(ref);
      for (const part of relationTargets(entity!, RELATION_HAS_PART))
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
    const items = await this.list(
      {
        filter: { kind: 'Resource', 'spec.type': MACHINE_RESOURCE_TYPE },
        fields: [
          'kind',
          'metadata.namespace',
          'metadata.name',
          'metadata.annotations',
        ],
      },
      await this.auth.getOwnServiceCredentials(),
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
    const items = await this.list(
      {
        filter: [{ kind: 'Component' }, { kind: 'Resource' }],
        fields: ['kind', 'metadata.namespace', 'metadata.name'],
      },
      await this.auth.getOwnServiceCredentials(),
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
    const items = await this.byRefs(
      {
        entityRefs: refs,
        fields: ['kind', 'metadata.namespace', 'metadata.name', 'relations'],
      },
      await this.auth.getOwnServiceCredentials(),
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
    const items = await this.byRefs(
      {
        entityRefs: refs,
        fields: ['kind', 'metadata.namespace', 'metadata.name'],
      },
      credentials,
    );
    return refs.filter((_, index) => items[index]);
  }

  /** The refs among `refs` the catalog holds (whoever may see them), in their order. */
  async heldRefs(refs: string[]): Promise<string[]> {
    return this.visibleTo(refs, await this.auth.getOwnServiceCredentials());
  }

  /**
   * Of `refs`, those the caller may see, and those withheld from them: only a ref the catalog holds
   * and does not show them. One it does not hold (a machine renamed or removed since) is no one's
   * secret: readiness names it to whoever sees the entity (a rename's captures kept under it).
   */
  async seenAndWithheld(
    refs: string[],
    credentials: BackstageCredentials,
  ): Promise<{ seen: string[]; withheld: string[] }> {
    const [seen, held] = await Promise.all([
      this.visibleTo(refs, credentials),
      this.heldRefs(refs),
    ]);
    const shown = new Set(seen);
    return { seen, withheld: held.filter(ref => !shown.has(ref)) };
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
    return this.byRefs(
      { entityRefs: refs },
      await this.auth.getOwnServiceCredentials(),
    );
  }

  /** Every entity that matches, a page of `pageSize` at a time (listAllEntities). */
  private list(
    request: Pick<StreamEntitiesRequest, 'filter' | 'fields'>,
    credentials: BackstageCredentials,
  ): Promise<Entity[]> {
    return listAllEntities(
      this.catalog,
      { ...request, pageSize: this.pageSize },
      credentials,
    );
  }

  /**
   * The entities of `request.entityRefs`, aligned with them, undefined for one the catalog does
   * not hold (or the caller may not see). One call: the catalog client splits a long list itself.
   */
  private async byRefs(
    request: GetEntitiesByRefsRequest,
    credentials: BackstageCredentials,
  ): Promise<Array<Entity | undefined>> {
    const { items } = await this.catalog.getEntitiesByRefs(request, {
      credentials,
    });
    return items;
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

function dedupe(problems: EntityProblem[]): EntityProblem[] {
  const seen = new Set<string>();
  return problems.filter(p => {
    const key = `${p.entityRef}|${p.annotation ?? ''}|${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
