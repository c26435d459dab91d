import {
  coversPlan,
  downInFailover,
  failedAtHost,
  failedMachine,
  failedWithin,
  isFullRun,
  type HiddenRun,
  type Readiness,
  type ReadinessSummary,
  type RecoveryRun,
  type RunSummary,
  type Capture,
  withoutHealthOutput,
} from '@backstage-recovery/plugin-recovery-common';
import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import {
  reachable,
  type RecoveryGraph,
} from '@backstage-recovery/plugin-recovery-node';
import type { NightlyCheckStore } from '../database/NightlyCheckStore';
import type {
  CaptureFailure,
  CaptureStore,
  CapturesKeptElsewhere,
  StoredCapture,
} from '../database/CaptureStore';
import type {
  ReadinessHistoryStore,
  RunHead,
} from '../database/ReadinessHistoryStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { unknownEngineProblems } from '../plan/entityMapping';
import { isRunVisible, type VisibleTo } from '../run/visibleRuns';
import { toApi } from './CaptureService';
import { nightlyCheckSeenBy } from './nightlyCheck';
import type { PlanService, PlannedRecovery } from './PlanService';
import { assessReadiness, byRisk, hiddenRun } from './readiness';
import { compareRefs } from './readinessPaging';

/** Entities the overview plans at once: each waits on the catalog. */
const OVERVIEW_CONCURRENCY = 8;

/** What an entity's own catalog data causes (missing references, a bad annotation), by Backstage error name. */
const isEntityError = (error: unknown) =>
  error instanceof Error &&
  ['NotFoundError', 'InputError', 'ConflictError'].includes(error.name);

/** Whole seconds from an ISO time to `now` (epoch ms): negative for a time ahead of this backend's clock (assessReadiness judges it). */
const secondsSince = (iso: string, now: number) =>
  Math.round((now - Date.parse(iso)) / 1000);

/** Gathers the facts about an entity's recoverability and assesses them. */
export class ReadinessService {
  constructor(
    private readonly captureStore: CaptureStore,
    private readonly runHistory: ReadinessHistoryStore,
    private readonly plans: PlanService,
    /**
     * The caller's view of the catalog: what of a run readiness may show them; and the entities
     * readiness is of (recoverableEntities), for a caller's readiness of all they may see.
     */
    private readonly graphs: Pick<
      CatalogGraphLoader,
      'visibleTo' | 'recoverableEntities'
    >,
    /** The site's default objectives: all there is to show for an entity that cannot be assessed. */
    private readonly defaultObjectives: Readiness['objectives'],
    /** A last test recovery older than this leaves an entity at risk. */
    private readonly maxTestAgeSeconds: number,
    /**
     * The primary engines capture sources serve (ProviderRegistry): a machine annotated with
     * another is not captured, which readiness says. Unchecked without it, or with none.
     */
    private readonly primaryEngines?: () => string[],
    /** What the latest nightly check did about each entity (`nightlyCheck`); none without it. */
    private readonly nightlyChecks?: Pick<
      NightlyCheckStore,
      'outcomeOf' | 'outcomes'
    >,
  ) {}

  /** Readiness of an entity as the caller may see it (its plan's warnings, its last run). */
  async readiness(
    entityRef: string,
    credentials: BackstageCredentials,
  ): Promise<Readiness> {
    const entity = factsOf(await this.plans.plan(entityRef, credentials));
    const { accept, ...query } = entity.lastRunQuery;
    const [latest, { run: found, atHost }, nightly, captureFailures, degraded] =
      await Promise.all([
        this.captureStore.latestCaptures(entity.machineRefs),
        this.runHistory.lastFinishedRun(query, accept).then(async run =>
          run && failedAtHost(run)
            ? {
                run: await this.runHistory.lastFinishedRun(
                  query,
                  covering(accept),
                ),
                atHost: run,
              }
            : { run, atHost: undefined },
        ),
        this.nightlyChecks?.outcomeOf(entityRef),
        this.captureStore.captureFailures(entity.machineRefs),
        this.runHistory.degradedFailovers(
          [entity.graph.rootRef],
          entity.machineRefs,
        ),
      ]);
    // A run covering the plan may be of an entity the caller may not see (a system the entity is
    // part of): it still counts, but shows only what the verdict rests on. One they see, they see
    // as GET /runs/{id} shows it.
    const last = found && {
      run: found,
      shown: (await isRunVisible(found, refs =>
        this.graphs.visibleTo(refs, credentials),
      ))
        ? await this.plans.runSeenBy(found, credentials)
        : hiddenRun(found),
    };
    // None recovered its plan: the last that recovered part of it, if its plan has changed since, says so.
    const [[own, booted], [failure]] = await Promise.all([
      !found && query.machineRefs
        ? Promise.all(
            partlyRecovered(entity).map(({ accept: partly, ...q }) =>
              this.runHistory.lastFinishedRun(q, partly),
            ),
          )
        : [],
      // A failure since on a machine of its plan, as the plan gates it there, outweighs that run.
      entity.failedRunQuery
        ? this.runHistory.lastFailedRuns([
            { ...entity.failedRunQuery, after: found },
          ])
        : [],
    ]);
    const shownAs = async (run: RecoveryRun) =>
      (await isRunVisible(run, refs =>
        this.graphs.visibleTo(refs, credentials),
      ))
        ? run
        : hiddenRun(run);
    const partial = newer(own, booted);
    const outgrown = partial && { run: partial, shown: await shownAs(partial) };
    const failed = failure && { run: failure, shown: await shownAs(failure) };
    const downElsewhere = await Promise.all(
      downInPlan(degraded, entity).map(async run => ({
        run,
        shown: await shownAs(run),
      })),
    );
    const [intact, keptElsewhere] = await Promise.all([
      this.intactInsteadOfDamaged(latest),
      this.capturesKeptElsewhere([entity], latest),
    ]);
    const readiness = this.assess(
      entity,
      latest,
      last,
      Date.now(),
      outgrown,
      failed,
      captureFailures,
      intact,
      keptElsewhere,
      degraded.filter(r => r.entityRef === entity.graph.rootRef),
      downElsewhere,
      atHost,
    );
    if (!nightly) return readiness;
    return {
      ...readiness,
      nightlyCheck: await nightlyCheckSeenBy(nightly, refs =>
        this.graphs.visibleTo(refs, credentials),
      ),
    };
  }

  /**
   * Readiness of many entities as the caller may see them, most at risk first: each plan as its
   * machine count (`includePlan`: in full, its warnings as the caller may read them), each latest
   * capture as its id and time, each last run as a summary. Planned a few at a time; then the
   * store is asked once for all of them (every machine's latest capture, every entity's last
   * run, every entity's failure since), so its statements do not grow with the entities.
   */
  async readinessOf(
    entityRefs: string[],
    credentials: BackstageCredentials,
    options: {
      includePlan?: boolean;
      /**
       * For an entity's owners, who are no caller: only its own runs in full. A run of another
       * entity (its system's) is withheld as from a caller the catalog hides it from, whoever
       * `credentials` are: the notices quote reasons to people the catalog may not show it to.
       */
      ownRunsOnly?: boolean;
    } = {},
  ): Promise<ReadinessSummary[]> {
    // A plan not listed shows none of its analysis warnings: they need no filtering for the caller.
    const planned = await this.planEach(
      entityRefs,
      options.includePlan ? credentials : undefined,
    );
    const entities = planned.filter(
      (e): e is EntityFacts => 'lastRunQuery' in e,
    );
    const [
      latest,
      { lastRuns, outgrown, failedSince, atHost },
      nightly,
      captureFailures,
      degraded,
    ] = await Promise.all([
      this.captureStore.latestCaptures(entities.flatMap(e => e.machineRefs)),
      this.runsOf(entities),
      // Every entity's in one statement; not for owners' notices, which quote only the reasons.
      options.ownRunsOnly ? undefined : this.nightlyChecks?.outcomes(),
      this.captureStore.captureFailures(entities.flatMap(e => e.machineRefs)),
      this.runHistory.degradedFailovers(
        entities.map(e => e.graph.rootRef),
        entities.flatMap(e => e.machineRefs),
      ),
    ]);
    const [intact, keptElsewhere] = await Promise.all([
      this.intactInsteadOfDamaged(latest),
      this.capturesKeptElsewhere(entities, latest),
    ]);
    // Many entities share a last run (their system's): the catalog is asked once per run entity.
    const seen = new Map<string, Promise<boolean>>();
    const visible: VisibleTo = async refs => {
      const answers = refs.map(ref => {
        if (!seen.has(ref))
          seen.set(
            ref,
            this.graphs.visibleTo([ref], credentials).then(v => v.length > 0),
          );
        return seen.get(ref)!;
      });
      const shown = await Promise.all(answers);
      return refs.filter((_, i) => shown[i]);
    };
    const now = Date.now();
    const nightlyCheckOf = async (entityRef: string) => {
      const outcome = nightly?.get(entityRef);
      return (
        outcome && { nightlyCheck: await nightlyCheckSeenBy(outcome, visible) }
      );
    };
    const items = await Promise.all(
      planned.map(async (entity): Promise<ReadinessSummary> => {
        if (!('lastRunQuery' in entity))
          return { ...entity, ...(await nightlyCheckOf(entity.entityRef)) };
        const seenAs = async (run: RecoveryRun) =>
          (
            options.ownRunsOnly
              ? run.entityRef === entity.graph.rootRef
              : await isRunVisible(run, visible)
          )
            ? run
            : options.ownRunsOnly
              ? withheldRun(run)
              : hiddenRun(run);
        const run = lastRuns.get(entity);
        const last = run && { run, shown: await seenAs(run) };
        const partial = outgrown.get(entity);
        const failure = failedSince.get(entity);
        const downElsewhere = await Promise.all(
          downInPlan(degraded, entity).map(async failover => ({
            run: failover,
            shown: await seenAs(failover),
          })),
        );
        // The plan over a cycle is the entity page's, to start a run from: not the overview's.
        const {
          plan,
          captures,
          cyclePlan: _,
          ...readiness
        } = this.assess(
          entity,
          latest,
          last,
          now,
          partial && { run: partial, shown: await seenAs(partial) },
          failure && { run: failure, shown: await seenAs(failure) },
          captureFailures,
          intact,
          keptElsewhere,
          degraded.filter(r => r.entityRef === entity.graph.rootRef),
          downElsewhere,
          atHost.get(entity),
        );
        return {
          ...readiness,
          machineCount: plan?.machines.length,
          captures: captures.map(({ latest: capture, ...status }) => ({
            ...status,
            latest: capture && { id: capture.id, createdAt: capture.createdAt },
          })),
          ...(options.includePlan && plan && { plan }),
          lastRun: last && summaryOf(last.shown),
          ...(await nightlyCheckOf(entity.graph.rootRef)),
        };
      }),
    );
    return items.sort(byRisk);
  }

  /**
   * The runs readiness rests on now, of every entity it is of: each one's last run, the last that
   * recovered part of its plan where none recovered all of it, the failure since, and the runs the
   * latest nightly check names. Run retention keeps them, however old. A catalog or store that
   * fails throws: nothing is known safe to delete then.
   */
  async runsRestedOn(): Promise<Set<string>> {
    const planned = await this.planEach(
      await this.graphs.recoverableEntities(),
    );
    const entities = planned.filter(
      (e): e is EntityFacts => 'lastRunQuery' in e,
    );
    const [{ lastRuns, outgrown, failedSince, atHost }, nightly] =
      await Promise.all([
        this.runsOf(entities),
        this.nightlyChecks?.outcomes(),
      ]);
    const ids = new Set<string>();
    for (const runs of [lastRuns, outgrown, failedSince, atHost])
      for (const run of runs.values()) if (run) ids.add(run.id);
    for (const outcome of nightly?.values() ?? [])
      if (outcome.runId) ids.add(outcome.runId);
    return ids;
  }

  /**
   * The plans of entities, a few at a time (each waits on the catalog), over one memo: their plans
   * walk the same platform chains, so the catalog is asked once per ref (as the plugin, as every
   * plan is read). An entity whose own catalog data is broken (a reference to a missing System,
   * say) is unassessable, with the error as the reason; a store or catalog that fails is no fact
   * about any entity: it throws. `viewer`: whose view the plans' analysis warnings are filtered for.
   */
  private async planEach(
    entityRefs: string[],
    viewer?: BackstageCredentials,
  ): Promise<Array<EntityFacts | ReadinessSummary>> {
    const plans = this.plans.withMemo();
    const planned = new Array<EntityFacts | ReadinessSummary>(
      entityRefs.length,
    );
    let next = 0;
    const planNext = async () => {
      while (next < entityRefs.length) {
        const k = next++;
        try {
          planned[k] = factsOf(await plans.plan(entityRefs[k], viewer));
        } catch (error) {
          if (!isEntityError(error)) throw error;
          planned[k] = unassessable(
            entityRefs[k],
            error,
            this.defaultObjectives,
          );
        }
      }
    };
    await Promise.all(
      Array.from(
        { length: Math.min(OVERVIEW_CONCURRENCY, entityRefs.length) },
        planNext,
      ),
    );
    return planned;
  }

  /**
   * The runs readiness judges entities by, the store asked once for all of them: each one's last
   * run; of those whose plan no run recovered, the last that recovered part of it (to tell a plan
   * that changed since); and a failure since the last run on a machine of the plan.
   */
  private async runsOf(entities: EntityFacts[]): Promise<{
    lastRuns: Map<EntityFacts, RecoveryRun | undefined>;
    outgrown: Map<EntityFacts, RecoveryRun | undefined>;
    failedSince: Map<EntityFacts, RecoveryRun | undefined>;
    atHost: Map<EntityFacts, RecoveryRun | undefined>;
  }> {
    const newest = await this.runHistory.lastFinishedRuns(
      entities.map(e => e.lastRunQuery),
    );
    // An entity whose newest is its own run that could not reach its host: asked again for the
    // run before it (only those: the others cost nothing more).
    const again = entities.filter(
      (_, i) => newest[i] && failedAtHost(newest[i]),
    );
    const before =
      again.length > 0
        ? await this.runHistory.lastFinishedRuns(
            again.map(e => ({
              ...e.lastRunQuery,
              accept: covering(e.lastRunQuery.accept),
            })),
          )
        : [];
    const atHost = new Map(
      again.map(e => [e, newest[entities.indexOf(e)]] as const),
    );
    const found = entities.map((e, i) =>
      atHost.has(e) ? before[again.indexOf(e)] : newest[i],
    );
    const lastRuns = new Map(entities.map((e, i) => [e, found[i]]));
    const unrecovered = entities.filter(
      (e, i) => !found[i] && e.lastRunQuery.machineRefs,
    );
    const failing = entities.filter(e => e.failedRunQuery);
    const [partRuns, failures] = await Promise.all([
      unrecovered.length > 0
        ? this.runHistory.lastFinishedRuns(unrecovered.flatMap(partlyRecovered))
        : [],
      failing.length > 0
        ? this.runHistory.lastFailedRuns(
            failing.map(e => ({
              ...e.failedRunQuery!,
              after: lastRuns.get(e),
            })),
          )
        : [],
    ]);
    // By index: the store's answer leaves a hole where it found none.
    return {
      lastRuns,
      outgrown: new Map(
        unrecovered.map(
          (e, i) => [e, newer(partRuns[2 * i], partRuns[2 * i + 1])] as const,
        ),
      ),
      failedSince: new Map(failing.map((e, i) => [e, failures[i]] as const)),
      atHost,
    };
  }

  /**
   * A page of readinessOf: `limit` of the entities after the ref `after`, in the order of their refs,
   * assessed alone (a page costs what its entities do), most at risk first within the page. Split by
   * ref, not by risk: a reader of every page misses no entity and sees none twice while their
   * readiness changes between pages, and sorts the whole by risk again (byRisk). `next`: the ref the
   * next page starts after, where there is one.
   */
  private async readinessPage(
    entityRefs: string[],
    credentials: BackstageCredentials,
    options: { limit: number; after?: string; includePlan?: boolean },
  ): Promise<{ items: ReadinessSummary[]; totalItems: number; next?: string }> {
    const { limit, after, includePlan } = options;
    const refs = [...new Set(entityRefs)].sort(compareRefs);
    const first =
      after === undefined ? 0 : refs.findIndex(r => compareRefs(r, after) > 0);
    const start = first < 0 ? refs.length : first;
    const page = refs.slice(start, start + limit);
    return {
      items: await this.readinessOf(page, credentials, { includePlan }),
      totalItems: refs.length,
      ...(start + limit < refs.length && { next: page.at(-1) }),
    };
  }

  /** readinessOf every entity readiness is of that the caller may see: the nightly check's choice of runs. */
  async visibleReadiness(
    credentials: BackstageCredentials,
    options: { includePlan?: boolean } = {},
  ): Promise<ReadinessSummary[]> {
    return this.readinessOf(
      await this.visibleEntities(credentials),
      credentials,
      options,
    );
  }

  /** readinessPage of every entity readiness is of that the caller may see: the overview's. */
  async visibleReadinessPage(
    credentials: BackstageCredentials,
    options: { limit: number; after?: string; includePlan?: boolean },
  ): Promise<{ items: ReadinessSummary[]; totalItems: number; next?: string }> {
    return this.readinessPage(
      await this.visibleEntities(credentials),
      credentials,
      options,
    );
  }

  /** The entities readiness is of (services, and the systems they are part of) that the caller may see. */
  private async visibleEntities(
    credentials: BackstageCredentials,
  ): Promise<string[]> {
    return this.graphs.visibleTo(
      await this.graphs.recoverableEntities(),
      credentials,
    );
  }

  /**
   * Of the machines whose latest capture was found damaged, each one's newest intact capture (a
   * recovery restores it instead): one statement, and only where a latest capture is damaged.
   */
  private async intactInsteadOfDamaged(
    latest: Map<string, StoredCapture>,
  ): Promise<Map<string, StoredCapture>> {
    const damaged = [...latest.values()]
      .filter(c => c.damaged)
      .map(c => c.machineRef);
    return damaged.length > 0
      ? this.captureStore.latestCaptures(damaged, undefined, { intact: true })
      : new Map();
  }

  /**
   * Of the machines never captured, the captures of the same container on the same engine kept
   * under another machine ref (a machine renamed in the catalog): one statement, and only where a
   * machine the catalog locates has no capture.
   */
  private async capturesKeptElsewhere(
    entities: EntityFacts[],
    latest: Map<string, StoredCapture>,
  ): Promise<Map<string, CapturesKeptElsewhere[]>> {
    const uncaptured = new Map<
      string,
      { machineRef: string; engine: string; container: string }
    >();
    for (const { graph, machineRefs } of entities)
      for (const machineRef of machineRefs) {
        const locator = graph.machines.get(machineRef)?.locator;
        if (locator && !latest.has(machineRef))
          uncaptured.set(machineRef, {
            machineRef,
            engine: locator.engine,
            container: locator.container,
          });
      }
    return uncaptured.size > 0
      ? this.captureStore.capturesKeptElsewhere([...uncaptured.values()])
      : new Map();
  }

  /** Readiness from an entity's plan, its machines' latest captures and its last run, at `now` (epoch ms). */
  private assess(
    entity: EntityFacts,
    latest: Map<string, StoredCapture>,
    /** The last run, and what the caller may see of it. */
    last: { run: RecoveryRun; shown: RecoveryRun | HiddenRun } | undefined,
    now: number,
    /** Without a last run, the newest finished one that recovered part of its plan, and what the caller may see of it. */
    outgrown?: { run: RecoveryRun; shown: RecoveryRun | HiddenRun },
    /** The newest run since the last that failed on a machine of its plan, as the plan gates it there, and what the caller may see of it. */
    failed?: { run: RecoveryRun; shown: RecoveryRun | HiddenRun },
    /** Each machine's failed capture since its last that succeeded. */
    captureFailures?: Map<string, CaptureFailure>,
    /** Of each machine whose latest capture is damaged, its newest intact one (none: every kept one damaged). */
    intact?: Map<string, StoredCapture>,
    /** Of each machine never captured, its container's captures kept under other machine refs. */
    keptElsewhere?: Map<string, CapturesKeptElsewhere[]>,
    /** The entity's own kept failovers running degraded (its own: the caller sees them). */
    degradedFailovers?: RecoveryRun[],
    /** Other entities' kept failovers with a machine of its plan down, and what the caller may see of each. */
    downInFailovers?: Array<{
      run: RecoveryRun;
      shown: RecoveryRun | HiddenRun;
    }>,
    /** Its own run since the last that could not reach its host (its own: the caller sees it). */
    hostUnreachableRun?: RecoveryRun,
  ): Readiness {
    const { graph, plan, planError, disagreements, machineRefs, ownMachines } =
      entity;
    const roots = new Set(graph.roots);
    // A backend with no capture source at all captures nothing anywhere: not one entity's problem.
    const engines = this.primaryEngines?.() ?? [];
    const lastRun = last?.shown;
    return assessReadiness({
      entityRef: graph.rootRef,
      ownMachines,
      problems: graph.problems,
      captureProblems:
        engines.length > 0
          ? unknownEngineProblems(graph.machines.values(), engines)
          : [],
      objectives: graph.objectives,
      plan,
      planError,
      cyclePlan: entity.cycle?.plan,
      captures: machineRefs.map(machineRef => {
        const capture = latest.get(machineRef);
        return {
          machineRef,
          // Without its health check's output, which anyone seeing the entity would read here:
          // GET /captures answers it, with recovery.run.logs.read on the machine.
          latest: capture && withheldHealthOutput(toApi(capture)),
          ageSeconds: capture && secondsSince(capture.createdAt, now),
        };
      }),
      captureFailures:
        captureFailures &&
        new Map(
          machineRefs.flatMap(ref =>
            captureFailures.has(ref)
              ? [[ref, captureFailures.get(ref)!] as const]
              : [],
          ),
        ),
      intactCaptures:
        intact &&
        new Map(
          machineRefs.flatMap(ref => {
            const capture = intact.get(ref);
            return capture
              ? [
                  [
                    ref,
                    {
                      id: capture.id,
                      createdAt: capture.createdAt,
                      ageSeconds: secondsSince(capture.createdAt, now),
                    },
                  ] as const,
                ]
              : [];
          }),
        ),
      locators: new Map(
        [...graph.machines.values()].flatMap(({ ref, locator }) =>
          locator
            ? [
                [
                  ref,
                  { engine: locator.engine, container: locator.container },
                ] as const,
              ]
            : [],
        ),
      ),
      lastRun,
      lastRunAgeSeconds: lastRun?.finishedAt
        ? secondsSince(lastRun.finishedAt, now)
        : undefined,
      // Already read with the run (its machines come with its details): no statement more.
      lastRunRestored: last?.run.machines,
      outgrownRun: outgrown && {
        ...outgrown,
        ageSeconds: outgrown.run.finishedAt
          ? secondsSince(outgrown.run.finishedAt, now)
          : 0,
      },
      failedRun: failed,
      hostUnreachableRun,
      maxTestAgeSeconds: this.maxTestAgeSeconds,
      degradedFailovers,
      downInFailovers,
      uncoveredServices: uncoveredServices(graph),
      keptElsewhere:
        keptElsewhere &&
        new Map(
          machineRefs.flatMap(ref =>
            keptElsewhere.has(ref)
              ? [[ref, keptElsewhere.get(ref)!] as const]
              : [],
          ),
        ),
      disagreements: disagreements && {
        inferredNotDeclared: disagreements.inferredNotDeclared.filter(d =>
          roots.has(d.service),
        ),
        declaredNotObserved: disagreements.declaredNotObserved.filter(d =>
          roots.has(d.service),
        ),
      },
    });
  }
}

/** An entity's plan, with what readiness asks the store about it. */
interface EntityFacts extends PlannedRecovery {
  /** The plan's machines in boot order; without a plan, the graph's. */
  machineRefs: string[];
  /** Machines the entity runs on itself (for its position in the plan). */
  ownMachines: string[];
  /** Which of the last finished runs tells about it (ReadinessHistoryStore.lastFinishedRun). */
  lastRunQuery: {
    machineRefs?: string[];
    entityRef?: string;
    accept?: (run: RunHead) => boolean;
  };
  /**
   * Which failed runs count against its plan, however it fared in the run's others
   * (ReadinessHistoryStore.lastFailedRuns): those that failed on a machine of its plan, gated there by
   * nothing the plan does not gate it by. None without a plan of machines.
   */
  failedRunQuery?: { machineRefs: string[]; accept: (run: RunHead) => boolean };
}

function factsOf(planned: PlannedRecovery): EntityFacts {
  const { graph, plan } = planned;
  const machineRefs = plan
    ? plan.waves.flat()
    : [...graph.machines.keys()].sort();
  const roots = new Set(graph.roots);
  const ownMachines = [
    ...[...graph.services.values()]
      .filter(s => roots.has(s.ref))
      .flatMap(s => s.machines),
    // A system's machine parts that none of its services runs on are its own all the same.
    ...graph.roots.filter(r => graph.machines.has(r) && !graph.services.has(r)),
  ];
  return {
    ...planned,
    machineRefs,
    ownMachines,
    // Any run that recovered the entity's whole plan tells about it (a system's run about its
    // parts); without a plan of machines only the entity's own runs can. Its own machines first:
    // fewer runs booted them than the shared ones its plan waits for (see the store).
    lastRunQuery:
      plan && plan.machines.length > 0
        ? {
            machineRefs: ownFirst(machineRefs, ownMachines),
            // Its own run that could not reach its host too: said, though it covers nothing
            // (lastRunsOf then asks for the run before it).
            accept: run =>
              coversPlan(run, plan, graph.rootRef) ||
              (run.entityRef === graph.rootRef && failedAtHost(run)),
          }
        : { entityRef: graph.rootRef },
    failedRunQuery:
      plan && plan.machines.length > 0
        ? { machineRefs, accept: run => failedWithin(run, plan) }
        : undefined,
  };
}

/** A last-run `accept` that passes over runs that could not reach their host (failedAtHost). */
const covering =
  (accept: ((run: RunHead) => boolean) | undefined) => (run: RunHead) =>
    !failedAtHost(run) && (accept?.(run) ?? true);

/**
 * The services the plan takes that resolve to no machine: none of their own, none through what
 * they depend on. A plan boots nothing for them, so no capture or run covers them; a system whose
 * part runs nowhere the catalog says would otherwise read ready on its other parts alone.
 */
function uncoveredServices(graph: RecoveryGraph): string[] {
  const services = reachable(graph).services;
  const covered = new Set<string>();
  // Until nothing changes: a service is covered by a machine of its own, or by one it waits for.
  for (let grew = true; grew;) {
    grew = false;
    for (const ref of services) {
      if (covered.has(ref)) continue;
      const service = graph.services.get(ref)!;
      if (
        service.machines.length > 0 ||
        service.dependsOn.some(d => graph.machines.has(d) || covered.has(d))
      ) {
        covered.add(ref);
        grew = true;
      }
    }
  }
  return services.filter(ref => !graph.machines.has(ref) && !covered.has(ref));
}

/** Of the degraded failovers, those of other entities with a machine of the entity's plan down. */
function downInPlan(
  degraded: RecoveryRun[],
  entity: EntityFacts,
): RecoveryRun[] {
  const planned = new Set(entity.machineRefs);
  return degraded.filter(
    run =>
      run.entityRef !== entity.graph.rootRef &&
      downInFailover(run).some(m => planned.has(m)),
  );
}

/** A run as the overview lists it; a hidden one keeps no more than it showed. */
function summaryOf(run: RecoveryRun | HiddenRun): RunSummary {
  const { mode, status, createdAt, startedAt, finishedAt, rtoSeconds } = run;
  const own = isFullRun(run) ? { id: run.id, entityRef: run.entityRef } : {};
  const failedAt = isFullRun(run) ? failedMachine(run) : run.error?.machineRef;
  return {
    ...own,
    mode,
    status,
    createdAt,
    startedAt,
    finishedAt,
    rtoSeconds,
    failedAt,
  };
}

/**
 * A run of another entity, as an entity's owners are told of it (ownRunsOnly): what hiddenRun
 * keeps, worded for readers the catalog may show that entity to or not.
 */
function withheldRun(run: RecoveryRun): HiddenRun {
  const hidden = hiddenRun(run);
  const machine = run.error?.machineRef ?? 'the run';
  return {
    ...hidden,
    ...(hidden.error && {
      error: {
        ...hidden.error,
        message: `${machine} failed, in a run of another entity (its details on this entity's Recovery tab, to those the catalog shows that entity)`,
      },
    }),
  };
}

/**
 * Where to look for the last run that recovered part of an entity's plan (none recovered all of
 * it): its own runs, and the runs that booted its own machines of the plan (its system's, mostly:
 * the nightly check covers parts by their system's run).
 */
function partlyRecovered(entity: EntityFacts): Array<{
  entityRef?: string;
  machineRefs?: string[];
  accept: (run: RunHead) => boolean;
}> {
  const planned = new Set(entity.machineRefs);
  // Not a run that could not reach its host: it recovered nothing (judgeHostUnreachable says it).
  const accept = covering(undefined);
  return [
    { entityRef: entity.graph.rootRef, accept },
    {
      machineRefs: [...new Set(entity.ownMachines.filter(m => planned.has(m)))],
      accept,
    },
  ];
}

/** The newer of two runs, as the store orders them (created, then id); the first on a tie. */
function newer(
  a: RecoveryRun | undefined,
  b: RecoveryRun | undefined,
): RecoveryRun | undefined {
  if (!a || !b) return a ?? b;
  const [at, bt] = [Date.parse(a.createdAt), Date.parse(b.createdAt)];
  return bt > at || (bt === at && b.id > a.id) ? b : a;
}

/** `machineRefs`, the entity's own machines among them first, each once. */
function ownFirst(machineRefs: string[], own: string[]): string[] {
  const planned = new Set(machineRefs);
  return [...new Set([...own.filter(m => planned.has(m)), ...machineRefs])];
}

function unassessable(
  entityRef: string,
  error: unknown,
  objectives: Readiness['objectives'],
): ReadinessSummary {
  const message = error instanceof Error ? error.message : String(error);
  return {
    entityRef,
    status: 'not-recoverable',
    reasons: [message],
    problems: [],
    // Its own objectives come from its graph, which could not be loaded.
    objectives,
    captures: [],
  };
}

/** A capture without its health check's output (withoutHealthOutput), as readiness shows it. */
function withheldHealthOutput(capture: Capture): Capture {
  return capture.machineState?.healthOutput === undefined
    ? capture
    : { ...capture, machineState: withoutHealthOutput(capture.machineState) };
}
