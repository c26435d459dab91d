import { LoggerService } from '@backstage/backend-plugin-api';
import { ForwardedError, InputError } from '@backstage/errors';
import { nothingToCapture, type Capture } from '@backstage-recovery/plugin-recovery-common';
import type { CapturedMachine, MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { randomUUID } from 'node:crypto';
import { RecoveryStore, StoredCapture } from '../database/RecoveryStore';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';

/** More than a machine ever has recorded: its last N, and those active runs restore. */
const ALL_CAPTURES = 1_000_000;

/** Takes captures of primary machines and keeps the last N of each. */
export class CaptureService {
  constructor(
    private readonly store: RecoveryStore,
    private readonly providers: ProviderRegistry,
    private readonly plans: PlanService,
    private readonly logger: LoggerService,
    private readonly keepLast: number,
  ) {}

  /**
   * Captures every machine in the entity's boot plan, or only `machineRef` of them: a portal or
   * pipeline capturing one machine a request shows its progress, and no request lasts as long
   * as a whole site's images take to save. An entity that runs on no machine is a 400.
   */
  async captureEntity(entityRef: string, machineRef?: string): Promise<Capture[]> {
    const { graph, plan } = await this.plans.plan(entityRef);
    // A plan that cannot be made (a dependency cycle) stops recoveries, not captures: what the
    // machines hold now is worth keeping while the catalog is mended.
    const planned = plan ? plan.waves.flat() : [...graph.machines.keys()].sort();
    if (planned.length === 0) {
      throw new InputError(nothingToCapture(entityRef));
    }
    if (machineRef !== undefined && !planned.includes(machineRef)) {
      throw new InputError(`machineRef: ${machineRef} is not a machine of ${entityRef}'s boot plan (${planned.join(', ')})`);
    }
    const locators: MachineLocator[] = [];
    const unmapped: string[] = [];
    for (const ref of machineRef === undefined ? planned : [machineRef]) {
      const locator = graph.machines.get(ref)?.locator;
      if (locator) locators.push(locator);
      else unmapped.push(ref);
    }
    if (unmapped.length > 0) {
      const details = graph.problems
        .filter(p => unmapped.includes(p.entityRef))
        .map(p => p.message);
      throw new InputError(
        `Cannot capture ${unmapped.join(', ')}: ${details.join('; ') || 'not mapped to a primary engine'}`,
      );
    }
    // One at a time: each capture pauses its machine briefly and streams a whole image.
    const captures: Capture[] = [];
    for (const locator of locators) {
      try {
        captures.push(await this.captureMachine(locator));
      } catch (error) {
        // Keeps the cause's name, so its HTTP status; the captures taken before it are kept.
        const taken = captures.length > 0 ? ` (captured before it, and kept: ${captures.map(c => c.machineRef).join(', ')})` : '';
        throw new ForwardedError(`capture of ${locator.machineRef} failed${taken}`, error);
      }
    }
    return captures;
  }

  async captureMachine(locator: MachineLocator): Promise<Capture> {
    const source = this.providers.captureSource(locator.engine);
    const captureId = randomUUID();
    const createdAt = new Date().toISOString();
    let recorded: StoredCapture | undefined;
    // Through the source, which holds its note of the capture until the record is in: a backend
    // stopped before that leaves the note, not files and a tag nothing accounts for.
    const record = async (captured: CapturedMachine) => {
      const capture: StoredCapture = {
        id: captureId,
        machineRef: locator.machineRef,
        engine: locator.engine,
        container: locator.container,
        imageId: captured.imageId,
        sizeBytes: captured.sizeBytes,
        checksum: captured.checksum,
        artifact: captured.artifact,
        runtime: captured.runtime,
        adaptations: captured.adaptations,
        durationMs: captured.durationMs,
        ...(captured.pausedMs !== undefined && { pausedMs: captured.pausedMs }),
        createdAt,
      };
      await this.store.insertCapture(capture);
      recorded = capture;
    };
    const captured = await source.capture(locator, { captureId, record });
    if (!recorded) {
      // A source that holds no note leaves the record to its caller.
      try {
        await record(captured);
      } catch (error) {
        // Unrecorded, the archive and image would never be pruned: remove them now.
        await source
          .discard({ captureId, artifact: captured.artifact, volumes: captured.runtime.volumes })
          .catch(discardError =>
            this.logger.warn(`Could not discard unrecorded capture ${captureId}: ${discardError}`),
          );
        throw error;
      }
    }
    this.logger.info(
      `Captured ${locator.machineRef} (${captured.sizeBytes} bytes${captured.storedBytes !== undefined ? `, ${captured.storedBytes} of them new in the capture store` : ''}, ${captured.durationMs} ms${captured.pausedMs ? `, paused ${captured.pausedMs} ms` : ''})`,
    );
    for (const old of await this.store.pruneCaptures(locator.machineRef, this.keepLast)) {
      await source
        .discard({ captureId: old.id, artifact: old.artifact, volumes: old.runtime.volumes })
        .catch(error =>
          this.logger.warn(`Could not discard capture ${old.id}: ${error}`),
        );
    }
    // What earlier captures of the machine left that no record accounts for (a backend stopped
    // before recording one, a discard that failed above or before) goes too.
    await source
      .removeUnrecorded?.(this.recordedCaptureIds, locator)
      .catch(error =>
        this.logger.warn(`Could not remove what unrecorded captures of ${locator.machineRef} left: ${error}`),
      );
    return toApi(recorded!);
  }

  /**
   * Has every capture source remove what unrecorded captures left, of every machine: the next
   * capture of a machine removes its own, but a machine may never be captured again. Run at start
   * and on a schedule; a source that fails is logged, and the others still looked at.
   */
  async removeUnrecorded(): Promise<void> {
    for (const source of this.providers.allCaptureSources()) {
      try {
        await source.removeUnrecorded?.(this.recordedCaptureIds);
      } catch (error) {
        this.logger.warn(`Could not remove what unrecorded captures on engine ${source.engineId} left: ${error}`);
      }
    }
  }

  private readonly recordedCaptureIds = async (machineRefs: string[]): Promise<string[]> => {
    const recorded = await Promise.all(machineRefs.map(ref => this.store.listCaptures(ref, ALL_CAPTURES)));
    return recorded.flat().map(c => c.id);
  };
}

export function toApi(capture: StoredCapture): Capture {
  const { artifact: _artifact, runtime: _runtime, ...rest } = capture;
  return rest;
}
