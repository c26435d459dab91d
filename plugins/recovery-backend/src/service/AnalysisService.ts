import {
  BackstageCredentials,
  LoggerService,
} from '@backstage/backend-plugin-api';
import {
  Entity,
  parseEntityRef,
  stringifyEntityRef,
} from '@backstage/catalog-model';
import { InputError } from '@backstage/errors';
import {
  analyzeDependencies,
  AnalysisInputError,
  compileServiceMap,
  counted,
  delayText,
  KernelOptions,
  kernelPeakProblem,
  listed,
  NoStartEventsError,
  parseKernelShape,
  ServiceMap,
} from '@backstage-recovery/plugin-recovery-node';
import {
  entityRole,
  type InitializationEvent,
  machineLabelRef,
} from '@backstage-recovery/plugin-recovery-common';
import { randomUUID } from 'node:crypto';
import { EventStore, StoredAnalysis } from '../database/EventStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import type { Inference } from '../plan/inference';
import { namingAny, refsInText } from '../plan/mentions';
import { aheadText, eventsAhead, eventsAheadText } from './futureEvents';
import type { InferenceSource } from './PlanService';

export interface AnalysisServiceOptions {
  threshold: number;
  /** Technical names in the logs (exact or `/regex/`) to catalog entity names. */
  serviceMap?: ServiceMap;
  halfLifeMs?: number;
  /** Where the delay kernel peaks. */
  kernelPeakMs?: number;
  /** The kernel's shape, as `recovery.analysis.kernelShape` writes it: `piecewise`, `gamma[:k]`, `lognormal[:sigma]`. */
  kernelShape?: string;
  /** Events older than this before the newest event are deleted when an analysis runs. */
  eventRetentionMs: number;
  /** Analyses kept per system, at least 1. */
  keepAnalyses: number;
  /** Events read per query (tests use small pages). */
  pageSize?: number;
  /** Events deleted per statement (tests use small batches). */
  deleteBatchSize?: number;
}

/**
 * No initialization events of a system's services are stored yet (a new system): a 400 to a
 * caller who asks for its analysis, and a system the sweep skips rather than fails.
 */
export class NoInitializationEventsError extends InputError {}

/** A 400 for an entity that is not a System, whose analysis is asked for or of. */
export function requireSystem(entityRef: string): void {
  if (!entityRef.startsWith('system:')) {
    throw new InputError(
      `${entityRef} is not a System: dependency analysis runs per system`,
    );
  }
}

/** What one system's analysis keeps of the event stream. */
interface SystemEvents {
  rootRef: string;
  serviceRefByName: Map<string, string>;
  /** Which machine a log's machine name is (machineMatcher). */
  machineOf: (name: string) => MachineMatch;
  /** Log names that several of the system's entities answer to (left out, with a warning). */
  ambiguous: string[];
  /** Starts and failures of the system's services (names mapped), in time order. */
  mapped: InitializationEvent[];
  machinesSeen: Set<string>;
  /** Clock readings of the machines in machinesSeen, in time order. */
  clocks: InitializationEvent[];
  /** Events left out as they came from foreign machines, by machine log name. */
  leftOut: Map<string, number>;
}

/** A stored analysis: the engine's result plus which entity each analysed name is. */
export type SystemAnalysis = StoredAnalysis & {
  result: StoredAnalysis['result'] & {
    /** Service names in the result to entity refs. */
    entityRefs: Record<string, string>;
    /** Machine names in the result to entity refs (absent in results stored before them). */
    machineRefs?: Record<string, string>;
  };
};

/**
 * Runs the dependency analysis per system over the stored initialization events, and serves
 * its latest result to the boot plan.
 */
export class AnalysisService implements InferenceSource {
  private readonly mapName: (name: string) => string;
  /**
   * What plans take from each system's latest analysis, by system: a stored result holds the
   * correlation of every pair (megabytes for a large site), too much to parse for every plan.
   */
  private readonly inferences = new Map<string, Inference>();
  /**
   * Earlier analyses that runs' plans came from, by id (undefined: no longer kept), read once
   * however many runs ask at the same time: an analysis never changes, so what was read stays
   * true. The most recently added are kept.
   */
  private readonly inferencesById = new Map<
    string,
    Promise<Inference | undefined>
  >();
  /** The delay kernel the configuration asks for (its peak, its shape). */
  private readonly kernel: KernelOptions;

  constructor(
    private readonly events: EventStore,
    private readonly graphs: CatalogGraphLoader,
    private readonly logger: LoggerService,
    private readonly options: AnalysisServiceOptions,
  ) {
    // A bad setting fails the backend's start, not every scheduled analysis after it.
    const { threshold, kernelPeakMs, serviceMap } = options;
    if (!(threshold > 0 && threshold <= 1)) {
      throw new Error(
        `Invalid recovery.analysis.threshold ${threshold}: must be in (0, 1]`,
      );
    }
    const peakProblem =
      kernelPeakMs === undefined ? undefined : kernelPeakProblem(kernelPeakMs);
    if (peakProblem)
      throw new Error(
        `Invalid recovery.analysis.kernelPeak (${delayText(kernelPeakMs!)}): it ${peakProblem}`,
      );
    try {
      this.kernel = {
        ...(options.kernelShape === undefined
          ? {}
          : parseKernelShape(options.kernelShape)),
        ...(kernelPeakMs === undefined ? {} : { peakDelay: kernelPeakMs }),
      };
    } catch (error) {
      throw new Error(
        `Invalid recovery.analysis.kernelShape '${options.kernelShape}': ${(error as Error).message}`,
      );
    }
    try {
      this.mapName = compileServiceMap(serviceMap);
    } catch (error) {
      throw new Error(
        `Invalid recovery.analysis.serviceMap: ${(error as Error).message}`,
      );
    }
  }

  /** Analyses the boot history of one system's services; stores and returns the result. */
  async analyzeSystem(systemRef: string): Promise<SystemAnalysis> {
    const system = await this.prepare(
      systemRef,
      await this.graphs.machineLogNames(),
    );
    await this.pruneEvents();
    await this.collect([system]);
    return this.finish(system);
  }

  /**
   * Analyses every system whose parts run on machines (the scheduled sweep); the answer names
   * only the systems the caller may see in the catalog and counts the others.
   */
  async sweep(
    credentials: BackstageCredentials,
    /** The systems among these the caller may analyse (the permission policy's say). */
    permitted: (systemRefs: string[]) => Promise<string[]>,
  ): Promise<{
    analysed: string[];
    skipped: string[];
    failed: Array<{ entityRef: string; message: string }>;
    hidden: number;
  }> {
    const systems = await permitted(
      (await this.graphs.recoverableEntities()).filter(r =>
        r.startsWith('system:'),
      ),
    );
    const { analysed, skipped, failed } = await this.analyzeSystems(systems);
    await this.pruneRemovedSystems();
    const visible = new Set(
      await this.graphs.visibleTo(
        [...analysed, ...skipped, ...failed.map(f => f.entityRef)],
        credentials,
      ),
    );
    const shown = {
      analysed: analysed.filter(r => visible.has(r)),
      skipped: skipped.filter(r => visible.has(r)),
      failed: failed.filter(f => visible.has(f.entityRef)),
    };
    const all = analysed.length + skipped.length + failed.length;
    return {
      ...shown,
      hidden:
        all -
        shown.analysed.length -
        shown.skipped.length -
        shown.failed.length,
    };
  }

  /**
   * Analyses each system, continuing past the ones that fail, which it lists with why. Those with
   * no initialization events yet (new systems) are skipped, and listed: nothing is wrong with them.
   */
  async analyzeSystems(systemRefs: string[]): Promise<{
    analysed: string[];
    skipped: string[];
    failed: Array<{ entityRef: string; message: string }>;
  }> {
    const analysed: string[] = [];
    const skipped: string[] = [];
    const failed: Array<{ entityRef: string; message: string }> = [];
    if (systemRefs.length) await this.pruneEvents();
    const prepared: Array<{
      ref: string;
      system?: SystemEvents;
      error?: Error;
    }> = [];
    const catalogMachines = systemRefs.length
      ? await this.graphs.machineLogNames()
      : new Map<string, string[]>();
    for (const ref of systemRefs) {
      try {
        prepared.push({
          ref,
          system: await this.prepare(ref, catalogMachines),
        });
      } catch (error) {
        prepared.push({ ref, error: error as Error });
      }
    }
    const systems = prepared.flatMap(p => (p.system ? [p.system] : []));
    // One pass over the event store for all systems.
    if (systems.length) await this.collect(systems);
    for (const p of prepared) {
      try {
        if (!p.system) throw p.error;
        await this.finish(p.system);
        analysed.push(p.ref);
      } catch (error) {
        if (error instanceof NoInitializationEventsError) skipped.push(p.ref);
        else
          failed.push({
            entityRef: p.ref,
            message: String((error as Error).message),
          });
      }
    }
    // Skipped systems are not logged here: the caller lists them (the scheduled task's summary,
    // the POST /analysis answer), and a second line of the same names told nothing new.
    return { analysed, skipped, failed };
  }

  /**
   * Deletes the analyses of systems the catalog no longer holds (removed, or renamed: a new ref):
   * no plan reads them, and as no analysis of them runs again, keepLast would never prune them.
   * Only once not analysed for the event retention: a system the catalog missed for a moment (a
   * location being refreshed) would otherwise lose its learned plan until the next analysis.
   */
  private async pruneRemovedSystems(): Promise<void> {
    const scopes = await this.events.scopesAnalysedLastBefore(
      new Date(Date.now() - this.options.eventRetentionMs),
    );
    if (!scopes.length) return;
    const held = new Set(await this.graphs.heldRefs(scopes));
    for (const scope of scopes.filter(s => !held.has(s))) {
      const deleted = await this.events.deleteAnalysesOf(scope);
      this.inferences.delete(scope);
      this.logger.info(
        `Deleted ${counted(deleted, 'stored result')} of the dependency analysis of a system no longer in the catalog`,
        { entityRef: scope },
      );
    }
  }

  /** Loads a system from the catalog, ready to collect the events of its services. */
  private async prepare(
    systemRef: string,
    catalogMachines: Map<string, string[]>,
  ): Promise<SystemEvents> {
    const graph = await this.graphs.load(systemRef);
    requireSystem(graph.rootRef);
    // Log names are matched to the system's entities: services by name after the configured
    // mapping (or by full ref, which the mapping may name), machines by name or by the container
    // their annotation names (Docker events name the container, journald the host), or by the
    // machine a machine label names (machineMatcher).
    const services = logNames(
      [...graph.services.keys()].map(ref => ({
        ref,
        names: [parseEntityRef(ref).name, ref],
      })),
    );
    const machineNames = [...graph.machines.values()].map(
      ({ ref, locator }) => ({
        ref,
        names: [
          parseEntityRef(ref).name,
          ...(locator ? [locator.container] : []),
        ],
      }),
    );
    const machines = logNames(machineNames);
    return {
      rootRef: graph.rootRef,
      serviceRefByName: services.refByName,
      machineOf: machineMatcher(
        machineNames,
        machines.refByName,
        catalogMachines,
      ),
      ambiguous: [...services.ambiguous, ...machines.ambiguous],
      mapped: [],
      machinesSeen: new Set(),
      clocks: [],
      leftOut: new Map(),
    };
  }

  /**
   * Streams the stored events page by page into each system, which keeps only what its analysis
   * uses, so memory follows the systems' own events rather than the whole table.
   */
  private async collect(systems: SystemEvents[]): Promise<void> {
    const pageSize = this.options.pageSize;
    for await (const page of this.events.eventPages({
      clock: false,
      pageSize,
    })) {
      for (const event of page) {
        const service = this.mapName(event.service);
        // One copy shared by the systems the service is part of.
        let mapped: InitializationEvent | undefined;
        for (const system of systems) {
          if (!system.serviceRefByName.has(service)) continue;
          if (system.machineOf(event.machine).foreign) {
            system.leftOut.set(
              event.machine,
              (system.leftOut.get(event.machine) ?? 0) + 1,
            );
            continue;
          }
          mapped ??= { ...event, service };
          system.mapped.push(mapped);
          system.machinesSeen.add(event.machine);
        }
      }
    }
    // Clock readings second: a system needs those of the machines its services were seen on,
    // known only once every start and failure has been read.
    for await (const page of this.events.eventPages({
      clock: true,
      pageSize,
    })) {
      for (const event of page) {
        for (const system of systems) {
          if (system.machinesSeen.has(event.machine)) system.clocks.push(event);
        }
      }
    }
  }

  /** Runs the analysis over a system's collected events; stores and returns the result. */
  private async finish(system: SystemEvents): Promise<SystemAnalysis> {
    const { rootRef, serviceRefByName, machineOf } = system;
    const events = [...system.mapped, ...system.clocks];
    const leftOut = [...system.leftOut].sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    const leftOutText = () =>
      `${counted(
        leftOut.reduce((n, [, count]) => n + count, 0),
        'initialization event',
      )} of service names of ${rootRef} left out, as they come from machines the catalog gives to others, not to ${rootRef} (if a service of it runs there, add a dependsOn on that machine): ${listed(leftOut.map(([name, count]) => `${name} (${machineOf(name).foreign!.join(', ')}): ${count}`))}`;
    let result;
    /** What the point in time of the analysis was taken from, where not its latest event. */
    let clamped: string | undefined;
    try {
      const options = {
        threshold: this.options.threshold,
        halfLife: this.options.halfLifeMs,
        kernel: this.kernel,
      };
      // Its point in time is its latest event: one from a clock ahead would weigh every boot as
      // long past, until that time comes. This backend's clock is the latest a boot can be.
      const now = Date.now();
      const ahead = eventsAhead(events, now);
      let at: number | undefined;
      if (ahead.length) {
        const latestAheadMs = Math.max(...ahead.map(a => a.aheadMs));
        clamped =
          `the analysis's point in time is this backend's clock (${new Date(now).toISOString()}), not its latest event, ` +
          `${aheadText(latestAheadMs)} ahead of it: ${ahead.map(eventsAheadText).join('; ')}`;
        at = now;
      }
      result = analyzeDependencies(events, {
        ...options,
        ...(at !== undefined && { at }),
      });
    } catch (error) {
      // Only a history without starts is "none yet": other refusals are about events that are
      // there (an event its clock reading moves past the dates a Date holds, say), which that
      // would send looking elsewhere.
      if (error instanceof NoStartEventsError) {
        throw new NoInitializationEventsError(
          `No initialization events of the services of ${rootRef} yet: ${error.message}${
            leftOut.length ? `; ${leftOutText()}` : ''
          }`,
        );
      }
      if (error instanceof AnalysisInputError) {
        throw new InputError(
          `Cannot analyse the boot history of ${rootRef}: ${error.message}`,
        );
      }
      throw error;
    }
    const entityRefs: Record<string, string> = {};
    const machineRefs: Record<string, string> = {};
    for (const s of result.services) {
      entityRefs[s.service] = serviceRefByName.get(s.service)!;
      for (const m of s.machines) {
        const ref = machineOf(m).ref;
        if (ref) machineRefs[m] = ref;
      }
    }
    const warnings = [
      ...(system.ambiguous.length
        ? [
            `log names left out as several entities of ${rootRef} answer to them (give each its own name, or map the log name to a full entity ref in recovery.analysis.serviceMap): ${system.ambiguous.join('; ')}`,
          ]
        : []),
      ...(leftOut.length ? [leftOutText()] : []),
      ...(clamped ? [clamped] : []),
      ...result.warnings,
    ];
    const analysis: SystemAnalysis = {
      id: randomUUID(),
      scope: rootRef,
      events: events.length,
      createdAt: new Date().toISOString(),
      result: { ...result, warnings, entityRefs, machineRefs },
    };
    await this.events.insertAnalysis(analysis);
    await this.events.pruneAnalyses(rootRef, this.options.keepAnalyses);
    this.logger.info(
      `Analysed ${events.length} events of the system: ${result.dependencies.length} dependencies, ${result.cycles.length} cycles broken`,
      { entityRef: rootRef, analysisId: analysis.id },
    );
    return analysis;
  }

  /**
   * Deletes each machine's events older than the retention before its own newest event. Measured
   * per machine, so a system that has not rebooted for longer than the retention keeps the boots
   * its plan is learned from while others go on reporting; and from the newest event rather than
   * now, so a pause in collection erases nothing. Events stamped in the future (a clock far
   * ahead) are not a machine's newest, or they would delete its history.
   *
   * A machine silent for longer than the retention (its newest event that much before the newest
   * of all) whose events name no service of the catalog loses them all: no plan learns from them,
   * and measured from its own newest event they would never go. An engine's one-off containers
   * (`docker run` without a name, CI jobs) are each such a machine.
   */
  private async pruneEvents(): Promise<void> {
    const retention = this.options.eventRetentionMs;
    let deleted = 0;
    const newestTimes = await this.events.newestEventTimes(Date.now());
    for (const [machine, newest] of newestTimes) {
      deleted += await this.events.deleteEventsBefore(
        newest - retention,
        this.options.deleteBatchSize,
        machine,
      );
    }
    const newestOfAll = Math.max(...newestTimes.values());
    const silent = [...newestTimes].filter(
      ([, newest]) => newest < newestOfAll - retention,
    );
    let unused = 0;
    if (silent.length) {
      const catalogNames = await this.graphs.serviceLogNames();
      for (const [machine, newest] of silent) {
        const services = await this.events.serviceNamesOn(machine);
        if (services.some(name => catalogNames.has(this.mapName(name))))
          continue;
        // Its events are all at or before its newest (those after it lie in the future).
        const gone = await this.events.deleteEventsBefore(
          newest + 1,
          this.options.deleteBatchSize,
          machine,
        );
        deleted += gone;
        if (gone) unused++;
      }
    }
    if (deleted) {
      this.logger.info(
        `Deleted ${deleted} initialization events older than ${Math.round(retention / 86_400_000)} days before their machine's newest (recovery.analysis.eventRetention)${
          unused
            ? `, and all those of ${counted(unused, 'machine')} silent for longer that name no service of the catalog`
            : ''
        }`,
      );
    }
  }

  async latest(systemRef: string): Promise<SystemAnalysis | undefined> {
    return (await this.events.latestAnalysis(systemRef)) as
      SystemAnalysis | undefined;
  }

  /** A system's latest analysis as the caller may see it (see `asSeenBy`). */
  async latestFor(
    systemRef: string,
    credentials: BackstageCredentials,
  ): Promise<SystemAnalysis | undefined> {
    const analysis = await this.latest(systemRef);
    return analysis && this.asSeenBy(analysis, credentials);
  }

  /**
   * An analysis without the parts the catalog hides from the caller: it is made with the
   * plugin's own credentials, so it names entities the caller may not see.
   */
  async asSeenBy(
    analysis: SystemAnalysis,
    credentials: BackstageCredentials,
  ): Promise<SystemAnalysis> {
    const visible = new Set(
      await this.graphs.visibleTo(refsIn(analysis), credentials),
    );
    return withoutHidden(analysis, ref => visible.has(ref));
  }

  /**
   * The same inferences, each system's latest analysis looked up once however many entities ask:
   * for one request only (the readiness overview plans every entity of every system).
   */
  withMemo(): InferenceSource {
    const latestIds = new Map<string, Promise<string | undefined>>();
    const latestId = (system: string) => {
      if (!latestIds.has(system))
        latestIds.set(system, this.events.latestAnalysisId(system));
      return latestIds.get(system)!;
    };
    return {
      inferenceFor: entity => this.inferenceFor(entity, latestId),
      inferenceOf: analysisId => this.inferenceOf(analysisId),
    };
  }

  async inferenceFor(
    entity: Entity,
    latestId: (system: string) => Promise<string | undefined> = system =>
      this.events.latestAnalysisId(system),
  ): Promise<Inference | undefined> {
    const system =
      entityRole(entity) === 'group'
        ? stringifyEntityRef(entity)
        : typeof entity.spec?.system === 'string'
          ? stringifyEntityRef(
              parseEntityRef(entity.spec.system, {
                defaultKind: 'system',
                defaultNamespace: entity.metadata.namespace ?? 'default',
              }),
            )
          : undefined;
    if (!system) return undefined;
    const id = await latestId(system);
    const cached = this.inferences.get(system);
    if (cached && cached.id === id) return cached;
    this.inferences.delete(system);
    const analysis = id === undefined ? undefined : await this.latest(system);
    if (!analysis) return undefined;
    const inference = this.toInference(analysis);
    this.inferences.set(system, inference);
    return inference;
  }

  /** What a plan took from the analysis `analysisId` (a run's, read later), while it is kept. */
  async inferenceOf(analysisId: string): Promise<Inference | undefined> {
    for (const latest of this.inferences.values())
      if (latest.id === analysisId) return latest;
    const known = this.inferencesById.get(analysisId);
    if (known) return known;
    const reading = this.events
      .analysis(analysisId)
      .then(
        analysis => analysis && this.toInference(analysis as SystemAnalysis),
      );
    if (this.inferencesById.size >= INFERENCES_BY_ID_KEPT) {
      this.inferencesById.delete(this.inferencesById.keys().next().value!);
    }
    this.inferencesById.set(analysisId, reading);
    // A read that failed (the database) says nothing about the analysis: asked again next time.
    reading.catch(
      () =>
        this.inferencesById.get(analysisId) === reading &&
        this.inferencesById.delete(analysisId),
    );
    return reading;
  }

  private toInference(analysis: SystemAnalysis): Inference {
    const refs = analysis.result.entityRefs;
    const machineRefs = analysis.result.machineRefs ?? {};
    return {
      id: analysis.id,
      createdAt: analysis.createdAt,
      threshold: this.options.threshold,
      warnings: analysis.result.warnings ?? [],
      names: new Map([
        ...analysis.result.services.map(
          s => [s.service, refs[s.service]] as const,
        ),
        ...analysis.result.machineOrder.map(m => [m, machineRefs[m]] as const),
      ]),
      observed: new Set(
        analysis.result.services
          .filter(s => s.initializations > 0 && refs[s.service])
          .map(s => refs[s.service]),
      ),
      dependencies: analysis.result.dependencies
        .filter(d => refs[d.service] && refs[d.dependsOn])
        .map(d => ({
          service: refs[d.service],
          dependsOn: refs[d.dependsOn],
          score: d.score,
          // The evidence, so a plan says what each learned wait rests on.
          samples: d.samples,
          confidence: d.confidence,
        })),
      machineWaits: (analysis.result.rebootsFollowed ?? [])
        .filter(w => machineRefs[w.machine] && machineRefs[w.waitsFor])
        .map(w => ({
          ...w,
          machine: machineRefs[w.machine],
          waitsFor: machineRefs[w.waitsFor],
        })),
      order: {
        services: analysis.result.serviceOrder.flatMap(s =>
          refs[s] ? [refs[s]] : [],
        ),
        machines: analysis.result.machineOrder.flatMap(m =>
          machineRefs[m] ? [machineRefs[m]] : [],
        ),
      },
    };
  }
}

/** A machine of the system (`ref`; none where its name is ambiguous), or the catalog's others' it may be. */
interface MachineMatch {
  ref?: string;
  foreign?: string[];
}

/**
 * Which machine a log's machine name is, for one system: one of its `machines`, by name or
 * container (`refByName`, see logNames); else one the catalog gives to others (`catalogMachines`,
 * by those names): a service name is matched whatever machine logged it, so the same name there
 * would mix another system's boots into this one's history; else the machine a machine label in
 * any of its forms names (machineLabelRef, as the catalog compares refs: `web-01`,
 * `resource:web-01`, `resource:default/web-01`), the system's or another's. Names no catalog
 * machine has (a host's full domain name) are still taken. Each name is looked up once.
 */
function machineMatcher(
  machines: Array<{ ref: string; names: string[] }>,
  refByName: Map<string, string>,
  catalogMachines: Map<string, string[]>,
): (name: string) => MachineMatch {
  const ownNames = new Set(machines.flatMap(m => m.names));
  const byLabel = (refs: string[]) =>
    new Map(refs.map(ref => [machineLabelRef(ref), ref]));
  const ownRefs = byLabel(machines.map(m => m.ref));
  const catalogRefs = byLabel([...catalogMachines.values()].flat());
  const match = (name: string): MachineMatch => {
    if (ownNames.has(name)) return { ref: refByName.get(name) };
    const others = catalogMachines.get(name);
    if (others) return { foreign: others };
    const label = machineLabelRef(name);
    const ref = label && ownRefs.get(label);
    if (ref) return { ref };
    const other = label && catalogRefs.get(label);
    return other ? { foreign: [other] } : {};
  };
  const matched = new Map<string, MachineMatch>();
  return name => {
    if (!matched.has(name)) matched.set(name, match(name));
    return matched.get(name)!;
  };
}

/**
 * Which entity each log name is: an entity answers to each of its `names`, an earlier one of them
 * first (an entity's own name wins over another's container name). A name that still fits several
 * entities (the same name in two namespaces) fits none: the logs cannot tell which one started,
 * and merging them would make one service of two. It is listed as ambiguous.
 */
function logNames(entities: Array<{ ref: string; names: string[] }>): {
  refByName: Map<string, string>;
  ambiguous: string[];
} {
  const candidates = new Map<string, Array<{ ref: string; rank: number }>>();
  for (const { ref, names } of entities) {
    names.forEach((name, rank) => {
      const list = candidates.get(name) ?? [];
      if (!list.some(c => c.ref === ref)) list.push({ ref, rank });
      candidates.set(name, list);
    });
  }
  const refByName = new Map<string, string>();
  const ambiguous: string[] = [];
  for (const [name, list] of candidates) {
    const rank = Math.min(...list.map(c => c.rank));
    const best = list.filter(c => c.rank === rank);
    if (best.length === 1) refByName.set(name, best[0].ref);
    else
      ambiguous.push(
        `${name} (${best
          .map(c => c.ref)
          .sort()
          .join(', ')})`,
      );
  }
  return { refByName, ambiguous: ambiguous.sort() };
}

/** Earlier analyses whose inference is kept in memory for reading runs (see inferenceOf). */
const INFERENCES_BY_ID_KEPT = 50;

/** The entity refs an analysis names: its services', its machines' and any in its warnings. */
export function refsIn(analysis: SystemAnalysis): string[] {
  const { entityRefs, machineRefs = {}, warnings = [] } = analysis.result;
  const refs = new Set([
    ...Object.values(entityRefs),
    ...Object.values(machineRefs),
  ]);
  for (const warning of warnings)
    for (const ref of refsInText(warning)) refs.add(ref);
  return [...refs].sort();
}

/**
 * `analysis` without what `visible` refuses: services whose entity it refuses (or that have none),
 * machines whose entity it refuses or that run none of the services left, everything naming
 * those (dependencies, orders, waves, cycles, correlation rows and columns), and the warnings
 * that name them or any refused ref. One warning at the end says how much was left out. Unchanged
 * (the same object) when nothing is.
 */
export function withoutHidden(
  analysis: SystemAnalysis,
  visible: (ref: string) => boolean,
): SystemAnalysis {
  const r = analysis.result;
  const machineRefs = r.machineRefs ?? {};
  const serviceShown = (name: string) =>
    r.entityRefs[name] !== undefined && visible(r.entityRefs[name]);
  const services = r.services.filter(s => serviceShown(s.service));
  const runVisible = new Set(services.flatMap(s => s.machines));
  const machineShown = (name: string) =>
    runVisible.has(name) &&
    (machineRefs[name] === undefined || visible(machineRefs[name]));
  const allMachines = new Set([
    ...r.services.flatMap(s => s.machines),
    ...r.machineOrder,
    ...r.waves.flat(),
    ...(r.machineDependencies ?? []).map(d => d.machine),
  ]);
  const hiddenServices = r.services
    .filter(s => !serviceShown(s.service))
    .map(s => s.service);
  const hiddenMachines = [...allMachines].filter(m => !machineShown(m));
  const hiddenRefs = refsIn(analysis).filter(ref => !visible(ref));
  const namesHidden = namingAny([
    ...hiddenServices,
    ...hiddenMachines,
    ...hiddenRefs,
  ]);
  const warnings = (r.warnings ?? []).filter(w => !namesHidden(w));
  const leftOutWarnings = (r.warnings ?? []).length - warnings.length;
  if (!hiddenServices.length && !hiddenMachines.length && !leftOutWarnings)
    return analysis;

  const keep = (r.correlation?.services ?? []).flatMap((s, i) =>
    serviceShown(s) ? [i] : [],
  );
  const pick = <T>(
    record: Record<string, T>,
    shown: (name: string) => boolean,
  ) =>
    Object.fromEntries(Object.entries(record).filter(([name]) => shown(name)));
  const result: SystemAnalysis['result'] = {
    ...r,
    services: services.map(s => ({
      ...s,
      machines: s.machines.filter(machineShown),
    })),
    dependencies: r.dependencies.filter(
      d => serviceShown(d.service) && serviceShown(d.dependsOn),
    ),
    serviceOrder: r.serviceOrder.filter(serviceShown),
    machineOrder: r.machineOrder.filter(machineShown),
    // A wave of hidden machines only would show that there are some.
    waves: r.waves.map(w => w.filter(machineShown)).filter(w => w.length > 0),
    machineDependencies: (r.machineDependencies ?? [])
      .filter(d => machineShown(d.machine))
      .map(d => ({
        ...d,
        waitsFor: d.waitsFor.filter(machineShown),
        // A wait between machines shown keeps its reason, but not the name of a hidden service behind it.
        ...(d.because && {
          because: d.because
            .filter(w => machineShown(w.waitsFor))
            .map(w =>
              w.service === undefined ||
              (serviceShown(w.service) && serviceShown(w.dependsOn!))
                ? w
                : { waitsFor: w.waitsFor, reason: w.reason },
            ),
        }),
      })),
    rebootsFollowed: (r.rebootsFollowed ?? []).filter(
      w => machineShown(w.machine) && machineShown(w.waitsFor),
    ),
    cycles: (r.cycles ?? []).filter(c => c.services.every(serviceShown)),
    machineCycles: (r.machineCycles ?? []).filter(c =>
      c.machines.every(machineShown),
    ),
    correlation: r.correlation && {
      services: keep.map(i => r.correlation.services[i]),
      matrix: keep.map(row => keep.map(col => r.correlation.matrix[row][col])),
    },
    warnings: [
      ...warnings,
      `left out as the catalog does not show them to you: ${counted(hiddenServices.length, 'service')}, ${counted(hiddenMachines.length, 'machine')} and ${counted(leftOutWarnings, 'warning')} about them`,
    ],
    entityRefs: pick(r.entityRefs, serviceShown),
    ...(r.machineRefs && { machineRefs: pick(r.machineRefs, machineShown) }),
  };
  return { ...analysis, result };
}
