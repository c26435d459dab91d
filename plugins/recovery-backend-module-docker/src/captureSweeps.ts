import type Docker from 'dockerode';
import { rm } from 'node:fs/promises';
import { formatBytes } from '@backstage-recovery/plugin-recovery-common';
import type {
  CapturedVolume,
  MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { dockerTag } from './adapt';
import {
  CAPTURE_COMMENT,
  CAPTURE_REPOSITORY,
  artifactPath,
  captureRepository,
} from './captureNames';
import type { CaptureNotes, SweepOptions } from './captureNotes';
import { isStatus } from './lib/dockerStreams';
import { inspectImage } from './lib/engineCalls';
import { removeImage } from './lib/engineImages';
import { explainEngineError, onEngine } from './lib/engineErrors';
import { removeUnusedLayers } from './lib/layerStore';

// What captures leave on the engine and in the store once no note holds them: the look for
// unrecorded captures (and, over every machine, the layers no capture refers to), a retention's
// discard, and the tag of a commit a capture stopped waiting for.

/**
 * Longest a capture that stopped waiting for its commit (its deadline, a failed unpause) keeps
 * listening for the engine's answer, which dockerd gives once it has tagged the image, whoever
 * left: the tag then goes at once. Past that (an engine gone silent), as at the backend's
 * shutdown, the look for unrecorded captures, every 10 minutes, removes it.
 */
const COMMIT_FOLLOW_MS = 10 * 60_000;

/** The sweeps of one engine's captures; the notes say which captures are still under way. */
export class CaptureSweeps {
  constructor(
    private readonly engineId: string,
    private readonly docker: Docker,
    private readonly options: SweepOptions,
    private readonly notes: CaptureNotes,
    /** Aborted when the backend shuts down: a commit is no longer followed. */
    private readonly stopping: AbortSignal,
  ) {}

  removeUnrecorded(
    recorded: (machineRefs: string[]) => Promise<string[]>,
    machine?: MachineLocator,
  ): Promise<string[]> {
    return onEngine(this.engineId, async () => {
      const removed = await this.removeUnrecordedOn(recorded, machine);
      // The sweep of every machine also takes the layers no capture refers to any longer: a
      // discard removes only its archive, as other captures may share its layers.
      if (!machine) {
        const freed = await removeUnusedLayers(this.options.storeDirectory);
        if (freed > 0)
          this.options.logger?.info(
            `recovery: removed ${formatBytes(freed)} of layers no capture refers to any longer`,
          );
      }
      return removed;
    });
  }

  /**
   * A capture takes its note before it tags its image, tags it before it writes a file, and lets
   * go of the note only once it is recorded or has removed what it made. So: the capture tags
   * first, then the notes, then the records. A capture under way at the first look is noted at the
   * second, or recorded (or gone) by the third; a tag that neither accounts for is left over, as
   * are its files (removed before the tag, everywhere: no file outlives its tag). No age is needed:
   * a backend stopped mid-capture keeps its note until it is stale, and then one left while
   * recording only loses its note (resumeInterrupted), the start-up look at the notes done first.
   */
  private async removeUnrecordedOn(
    recorded: (machineRefs: string[]) => Promise<string[]>,
    machine?: MachineLocator,
  ): Promise<string[]> {
    await this.notes.resuming?.catch(() => {});
    // A repository per container: the machine's, or every one.
    const repository = machine
      ? captureRepository(machine)
      : `${CAPTURE_REPOSITORY}/*`;
    const within = machine ? `${repository}:` : `${CAPTURE_REPOSITORY}/`;
    const images = await this.notes.answerSweep(
      'the list of capture images (looking for unrecorded captures)',
      abortSignal =>
        this.docker.listImages({
          filters: { reference: [repository] },
          abortSignal,
        }),
    );
    const tags = images.flatMap(image =>
      (image.RepoTags ?? [])
        .filter(ref => ref.startsWith(within))
        .map(ref => ({ ref, imageId: image.Id })),
    );
    if (tags.length === 0) return [];
    const noted = new Set((await this.notes.notedCaptureIds()).map(dockerTag));
    const unnoted: { ref: string; captureId: string; machineRef: string }[] =
      [];
    for (const { ref, imageId } of tags) {
      const tag = ref.slice(ref.lastIndexOf(':') + 1);
      if (noted.has(tag)) continue;
      // The image's comment says whose capture it is: the repository is named after the
      // container, which another catalog machine (or a name differing in case) may share.
      const capture = await this.captureOf(imageId);
      if (!capture || dockerTag(capture.captureId) !== tag) continue;
      if (machine && capture.machineRef !== machine.machineRef) continue;
      unnoted.push({ ref, ...capture });
    }
    if (unnoted.length === 0) return [];
    const accounted = new Set(
      await recorded([...new Set(unnoted.map(c => c.machineRef))]),
    );
    const removed: string[] = [];
    for (const { ref, captureId, machineRef } of unnoted) {
      if (accounted.has(captureId)) continue;
      this.options.logger?.warn(
        `recovery: capture ${captureId} of ${machineRef} was never recorded (a backend stopped before recording it, or its discard failed): removed its files and tag`,
      );
      await this.notes.removeLeftovers(dockerTag(captureId), ref);
      removed.push(captureId);
    }
    return removed;
  }

  /** The capture an image was committed for, and of which machine, as its comment says. */
  private async captureOf(
    imageId: string,
  ): Promise<{ captureId: string; machineRef: string } | undefined> {
    try {
      const { Comment } = await this.notes.answerSweep(
        `the look at image ${imageId} (looking for unrecorded captures)`,
        abortSignal => inspectImage(this.docker, imageId, abortSignal),
      );
      const [, captureId, machineRef] =
        CAPTURE_COMMENT.exec(Comment ?? '') ?? [];
      return captureId ? { captureId, machineRef } : undefined;
    } catch (e) {
      if (isStatus(e, 404)) return undefined;
      throw e;
    }
  }

  discard(capture: {
    captureId: string;
    artifact: string;
    volumes?: CapturedVolume[];
  }): Promise<void> {
    return onEngine(this.engineId, () => this.discardOn(capture));
  }

  private async discardOn(capture: {
    captureId: string;
    artifact: string;
    volumes?: CapturedVolume[];
  }): Promise<void> {
    for (const volume of capture.volumes ?? []) {
      await rm(artifactPath(this.options.storeDirectory, volume.artifact), {
        force: true,
      });
    }
    await rm(artifactPath(this.options.storeDirectory, capture.artifact), {
      force: true,
    });
    // The tag was `<repo>/<container>:<captureId>`: find it by tag suffix.
    const suffix = `:${dockerTag(capture.captureId)}`;
    const images = await this.notes.answerSweep(
      `the list of capture ${capture.captureId}'s images (discarding it)`,
      abortSignal =>
        this.docker.listImages({
          filters: { reference: [`${CAPTURE_REPOSITORY}/*${suffix}`] },
          abortSignal,
        }),
    );
    for (const image of images) {
      for (const t of image.RepoTags ?? []) {
        if (t.startsWith(`${CAPTURE_REPOSITORY}/`) && t.endsWith(suffix)) {
          await this.notes.answerSweep(
            `the removal of the tag ${t} (discarding capture ${capture.captureId})`,
            abortSignal => removeImage(this.docker, t, abortSignal),
          );
        }
      }
    }
  }

  /**
   * Removes the tag of a commit its capture stopped waiting for, as soon as the engine answers
   * it; listened for COMMIT_FOLLOW_MS at most, and not past the backend's shutdown (the request
   * is then given up, and the tag left to the look for unrecorded captures).
   */
  followCommit(
    commit: Promise<unknown>,
    answer: AbortController,
    ref: string,
    captureId: string,
    machineRef: string,
  ) {
    const giveUp = () => answer.abort();
    const timer = setTimeout(giveUp, COMMIT_FOLLOW_MS);
    timer.unref();
    if (this.stopping.aborted) giveUp();
    else this.stopping.addEventListener('abort', giveUp, { once: true });
    const done = () => {
      clearTimeout(timer);
      this.stopping.removeEventListener('abort', giveUp);
    };
    commit.then(
      async () => {
        done();
        try {
          await this.notes.answerSweep(
            `the removal of the tag ${ref}`,
            abortSignal => removeImage(this.docker, ref, abortSignal),
          );
          this.options.logger?.info(
            `recovery: removed ${ref}, which engine ${this.engineId} tagged for capture ${captureId} of ${machineRef} after that capture had stopped`,
          );
        } catch (e) {
          this.options.logger?.warn(
            `recovery: could not remove ${ref}, which engine ${this.engineId} tagged for capture ${captureId} of ${machineRef} after that capture had stopped (${(explainEngineError(this.engineId, e) as Error).message}): left to the look for unrecorded captures`,
          );
        }
      },
      // Refused, or given up: nothing tagged, or a tag the look for unrecorded captures finds.
      done,
    );
  }
}
