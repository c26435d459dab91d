import { LoggerService } from '@backstage/backend-plugin-api';
import { Entity, parseEntityRef, stringifyEntityRef } from '@backstage/catalog-model';
import { InputError } from '@backstage/errors';
import {
  analyzeDependencies,
  AnalysisInputError,
  compileServiceMap,
  createKernel,
  ServiceMap,
} from '@backstage-recovery/plugin-recovery-node';
import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { randomUUID } from 'node:crypto';
import { EventStore, StoredAnalysis } from '../database/EventStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { entityRole } from '../plan/entityMapping';
import type { Inference } from '../plan/inference';
import type { InferenceSource } from './PlanService';

export interface AnalysisServiceOptions {
  threshold: number;
  /** Technical names in the logs (exact or `/regex/`) to catalog entity names. */
  serviceMap?: ServiceMap;
  halfLifeMs?: number;
  /** Where the delay kernel peaks. */
  kernelPeakMs?: number;
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

  constructor(
    private readonly events: EventStore,
    private readonly graphs: CatalogGraphLoader,
    private readonly logger: LoggerService,
    private readonly options: AnalysisServiceOptions,
  ) {
    // A bad setting fails the backend's start, not every scheduled analysis after it.
    const { threshold, kernelPeakMs, serviceMap } = options;
    if (!(threshold > 0 && threshold <= 1)) {
      throw new Error(`Invalid recovery.analysis.threshold ${threshold}: must be in (0, 1]`);
    }
    try {
      createKernel({ peakDelay: kernelPeakMs });
    } catch (error) {
      throw new Error(`Invalid recovery.analysis.kernelPeak: ${(error as Error).message}`);
    }
    try {
      this.mapName = compileServiceMap(serviceMap);
    } catch (error) {
      throw new Error(`Invalid recovery.analysis.serviceMap: ${(error as Error).message}`);
    }
  }

  /** Analyses the boot history of one system's services; stores and returns the result. */
  async analyzeSystem(systemRef: string, stored?: InitializationEvent[]): Promise<SystemAnalysis> {
    const graph = await this.graphs.load(systemRef);
    if (!graph.rootRef.startsWith('system:')) {
      throw new InputError(`${graph.rootRef} is not a System: dependency analysis runs per system`);
    }
    // Log names are matched to the system's entities by name: services after the configured
    // mapping, machines (hostnames) as they are.
    const byName = (refs: Iterable<string>) =>
      new Map([...refs].map(ref => [parseEntityRef(ref).name, ref]));
    const serviceRefByName = byName(graph.services.keys());
    const machineRefByName = byName(graph.machines.keys());
    const mapped: InitializationEvent[] = [];
    const machinesSeen = new Set<string>();
    const clocks: InitializationEvent[] = [];
    for (const event of stored ?? (await this.events.listEvents())) {
      if (event.type === 'clock') {
        clocks.push(event);
        continue;
      }
      const service = this.mapName(event.service);
      if (!serviceRefByName.has(service)) continue;
      mapped.push({ ...event, service });
      machinesSeen.add(event.machine);
    }
    const events = [...mapped, ...clocks.filter(c => machinesSeen.has(c.machine))];
    let result;
    try {
      result = analyzeDependencies(events, {
        threshold: this.options.threshold,
        halfLife: this.options.halfLifeMs,
        kernel: this.options.kernelPeakMs === undefined ? undefined : { peakDelay: this.options.kernelPeakMs },
      });
    } catch (error) {
      if (error instanceof AnalysisInputError) {
        throw new InputError(
          `No initialization events of the services of ${graph.rootRef} yet: ${error.message}`,
        );
      }
      throw error;
    }
    const entityRefs: Record<string, string> = {};
    const machineRefs: Record<string, string> = {};
    for (const s of result.services) {
      entityRefs[s.service] = serviceRefByName.get(s.service)!;
      for (const m of s.machines) {
        const ref = machineRefByName.get(m);
        if (ref) machineRefs[m] = ref;
      }
    }
    const analysis: SystemAnalysis = {
      id: randomUUID(),
      scope: graph.rootRef,
      events: events.length,
      createdAt: new Date().toISOString(),
      result: { ...result, entityRefs, machineRefs },
    };
    await this.events.insertAnalysis(analysis);
    this.logger.info(
      `Analysed ${events.length} events of ${graph.rootRef}: ${result.dependencies.length} dependencies, ${result.cycles.length} cycles broken`,
    );
    return analysis;
  }

  /** Analyses each system, continuing past the ones without events. */
  async analyzeSystems(systemRefs: string[]): Promise<{
    analysed: string[];
    failed: Array<{ entityRef: string; message: string }>;
  }> {
    const analysed: string[] = [];
    const failed: Array<{ entityRef: string; message: string }> = [];
    // One read of the event store for all systems.
    const stored = systemRefs.length ? await this.events.listEvents() : [];
    for (const ref of systemRefs) {
      try {
        await this.analyzeSystem(ref, stored);
        analysed.push(ref);
      } catch (error) {
        failed.push({ entityRef: ref, message: String((error as Error).message) });
      }
    }
    return { analysed, failed };
  }

  async latest(systemRef: string): Promise<SystemAnalysis | undefined> {
    return (await this.events.latestAnalysis(systemRef)) as SystemAnalysis | undefined;
  }

  async inferenceFor(entity: Entity): Promise<Inference | undefined> {
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
    const analysis = await this.latest(system);
    if (!analysis) return undefined;
    const refs = analysis.result.entityRefs;
    const machineRefs = analysis.result.machineRefs ?? {};
    return {
      id: analysis.id,
      createdAt: analysis.createdAt,
      threshold: this.options.threshold,
      warnings: analysis.result.warnings ?? [],
      observed: new Set(
        analysis.result.services
          .filter(s => s.initializations > 0 && refs[s.service])
          .map(s => refs[s.service]),
      ),
      dependencies: analysis.result.dependencies
        .filter(d => refs[d.service] && refs[d.dependsOn])
        .map(d => ({ service: refs[d.service], dependsOn: refs[d.dependsOn], score: d.score })),
      machineWaits: (analysis.result.rebootsFollowed ?? [])
        .filter(w => machineRefs[w.machine] && machineRefs[w.waitsFor])
        .map(w => ({ ...w, machine: machineRefs[w.machine], waitsFor: machineRefs[w.waitsFor] })),
    };
  }
}
