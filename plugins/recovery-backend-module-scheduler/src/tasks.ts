import { LoggerService } from '@backstage/backend-plugin-api';
import { toError } from '@backstage/errors';
import type { Capture } from '@backstage-recovery/plugin-recovery-common';
import type { RecoveryTasksApi } from '@backstage-recovery/plugin-recovery-node';

export interface TaskReport {
  succeeded: string[];
  failed: Array<{ entityRef: string; message: string }>;
  /** Machines another capture was taking (a portal click, another replica): left to it, not failed. */
  beingCaptured?: string[];
}

/**
 * The machines in the order the scheduled capture takes them: never captured first, then the
 * oldest capture first. A site that takes longer to capture than the task may run then gets every
 * machine captured in turn, rather than the same ones cut off by the timeout every time. A machine
 * whose captures cannot be read counts as never captured.
 */
export async function oldestCapturedFirst(
  api: {
    latestCapture(
      machineRef: string,
      options?: { signal?: AbortSignal },
    ): Promise<Pick<Capture, 'createdAt'> | undefined>;
  },
  machineRefs: string[],
  signal?: AbortSignal,
): Promise<string[]> {
  const takenAt = new Map<string, string>();
  for (const machineRef of machineRefs) {
    signal?.throwIfAborted();
    const latest = await api
      .latestCapture(machineRef, { signal })
      .catch(() => undefined);
    if (latest) takenAt.set(machineRef, latest.createdAt);
  }
  const at = (ref: string) => takenAt.get(ref) ?? '';
  // Stable: machines never captured, or captured at the same time, keep their given order.
  return [...machineRefs].sort((a, b) =>
    at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : 0,
  );
}

/**
 * Captures each machine; one machine's failure does not stop the others. Once `signal` aborts
 * (the task's timeout), the machines not reached are reported as not captured.
 */
export async function captureMachines(
  api: Pick<RecoveryTasksApi, 'capture'>,
  machineRefs: string[],
  logger: LoggerService,
  signal?: AbortSignal,
): Promise<TaskReport> {
  const report: TaskReport = { succeeded: [], failed: [] };
  for (const [index, machineRef] of machineRefs.entries()) {
    const label = `Capture ${index + 1}/${machineRefs.length}`;
    if (signal?.aborted) {
      const rest = machineRefs.slice(index);
      report.failed.push(
        ...rest.map(entityRef => ({
          entityRef,
          message: "not captured: the task's timeout ran out first",
        })),
      );
      logger.error(
        `Capture: the task's timeout ran out; ${rest.length} of ${machineRefs.length} machines not captured`,
        { machineRefs: rest },
      );
      break;
    }
    try {
      const [capture] = await api.capture(machineRef, { signal });
      report.succeeded.push(machineRef);
      logger.info(
        `${label}: captured (${capture?.sizeBytes ?? 0} bytes in ${capture?.durationMs ?? 0} ms)`,
        { machineRef, ...(capture && { captureId: capture.id }) },
      );
    } catch (error) {
      // A 409: someone else's capture of it is under way, which is what this one was for; failing
      // the task for it would alert on a click in the portal.
      if (answerStatus(error) === 409 && !signal?.aborted) {
        (report.beingCaptured ??= []).push(machineRef);
        logger
          .child({ machineRef })
          .info(
            `${label}: left to the capture of it under way`,
            toError(error),
          );
        continue;
      }
      // Only the wait was aborted: the backend goes on with the capture it started, up to its deadline.
      const message = signal?.aborted
        ? "the task's timeout ran out while it was being captured (the backend goes on with it until its own deadline, recovery.captures.timeout)"
        : toError(error).message;
      report.failed.push({ entityRef: machineRef, message });
      if (signal?.aborted) logger.error(`${label}: ${message}`, { machineRef });
      else
        logger.child({ machineRef }).error(`${label}: failed`, toError(error));
    }
  }
  return report;
}

/**
 * Ends a task with its summary: logged where everything succeeded, else thrown, naming what
 * failed and why, so the scheduler records the run as failed rather than as done.
 */
export function finishTask(
  summary: string,
  failed: TaskReport['failed'],
  logger: LoggerService,
): void {
  if (failed.length === 0) {
    logger.info(summary);
    return;
  }
  throw new Error(withFailures(summary, failed));
}

/** A task's summary followed by a line per entity (or machine) that failed, saying why. */
export function withFailures(
  summary: string,
  failed: TaskReport['failed'],
): string {
  return `${summary}${failed.map(f => `\n  ${f.entityRef}: ${f.message}`).join('')}`;
}

/**
 * The scheduled dependency analysis of every system. A system none of whose services has
 * initialization events yet (a new one) is skipped, and named once, in the task's summary
 * (the backend does not log it too): failing the task for it would alert on every run until its
 * first boots are collected. Other failures fail the task.
 */
export async function analyseSystems(
  api: Pick<RecoveryTasksApi, 'analyzeSystems'>,
  logger: LoggerService,
  signal?: AbortSignal,
): Promise<void> {
  const { analysed, skipped, failed } = await api.analyzeSystems({ signal });
  const which = skipped.length ? `: ${skipped.join(', ')}` : '';
  finishTask(
    `Dependency analysis: ${analysed.length} systems analysed, ${skipped.length} skipped (no initialization events of their services yet${which}), ${failed.length} failed`,
    failed,
    logger,
  );
}

/**
 * The status the recovery API answers a failed call with (a RecoveryTaskError's, as its HTTP
 * route would); none where it did not answer (the task's signal aborted the wait).
 */
export function answerStatus(error: unknown): number | undefined {
  const status = (error as { statusCode?: unknown })?.statusCode;
  return typeof status === 'number' ? status : undefined;
}
