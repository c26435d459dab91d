import {
  LoggerService,
  SchedulerServiceTaskScheduleDefinition,
} from '@backstage/backend-plugin-api';
import { coversPlan, type BootPlan, type Capture, type ReadinessSummary, type RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { durationToMilliseconds, HumanDuration } from '@backstage/types';
import { setTimeout as sleep } from 'node:timers/promises';
import { HOST_BUSY_ERROR_NAME, type ScheduledRecoveryApi } from './recoveryClient';

export interface TaskReport {
  succeeded: string[];
  failed: Array<{ entityRef: string; message: string }>;
}

/**
 * What the nightly check recovers so that every recoverable entity is covered, with as few runs
 * as that takes. A run counts for an entity when readiness counts it (`coversPlan`): it boots
 * every machine of the entity's plan gated by the probes of the services the plan puts there, so
 * an entity needs no run of its own only if a chosen plan covers its plan that way; sharing its
 * machines is not enough. Larger plans (systems, mostly; then more services) are chosen first;
 * entities without machines, and those `optedOut`, none.
 */
export function nightlyTargets(items: Array<Pick<ReadinessSummary, 'entityRef' | 'plan'>>, optedOut: Set<string>): string[] {
  const services = (plan: BootPlan) => plan.machines.reduce((n, m) => n + m.services.length, 0);
  const candidates = items
    .flatMap(r => (r.plan && r.plan.machines.length > 0 && !optedOut.has(r.entityRef) ? [{ entityRef: r.entityRef, plan: r.plan }] : []))
    .sort(
      (a, b) =>
        b.plan.machines.length - a.plan.machines.length ||
        services(b.plan) - services(a.plan) ||
        (a.entityRef < b.entityRef ? -1 : a.entityRef > b.entityRef ? 1 : 0),
    );
  const chosen: typeof candidates = [];
  for (const c of candidates) {
    // The chosen run, planned to succeed: whether it would count for `c` in readiness.
    if (!chosen.some(t => coversPlan({ status: 'succeeded', plan: t.plan }, c.plan))) chosen.push(c);
  }
  return chosen.map(t => t.entityRef);
}

/**
 * The nightly readiness check: the test recoveries that cover every recoverable entity
 * (`nightlyTargets`), one after the other. An entity without a boot plan (a dependency cycle, a
 * broken reference) gets no run, and is not recoverable: it fails the check, saying why, as
 * one whose run failed does. Those `optedOut` are left out.
 */
export async function nightlyCheck(
  api: ScheduledRecoveryApi,
  optedOut: Set<string>,
  logger: LoggerService,
  options: { pollIntervalMs: number; deadline?: number; signal?: AbortSignal },
): Promise<TaskReport> {
  const items = await api.listReadiness({ signal: options.signal });
  const unplanned = items
    .filter(r => !r.plan && !optedOut.has(r.entityRef))
    .map(r => ({ entityRef: r.entityRef, message: `no boot plan, so no test recovery: ${r.reasons.join('; ') || r.status}` }));
  for (const { entityRef, message } of unplanned) logger.error(`Nightly check: ${entityRef}: ${message}`);
  const report = await runNightlyCheck(api, nightlyTargets(items, optedOut), logger, options);
  return { succeeded: report.succeeded, failed: [...unplanned, ...report.failed] };
}

/**
 * The machines in the order the scheduled capture takes them: never captured first, then the
 * oldest capture first. A site that takes longer to capture than the task may run then gets every
 * machine captured in turn, rather than the same ones cut off by the timeout every time. A machine
 * whose captures cannot be read counts as never captured.
 */
export async function oldestCapturedFirst(
  api: { latestCapture(machineRef: string, options?: { signal?: AbortSignal }): Promise<Pick<Capture, 'createdAt'> | undefined> },
  machineRefs: string[],
  signal?: AbortSignal,
): Promise<string[]> {
  const takenAt = new Map<string, string>();
  for (const machineRef of machineRefs) {
    signal?.throwIfAborted();
    const latest = await api.latestCapture(machineRef, { signal }).catch(() => undefined);
    if (latest) takenAt.set(machineRef, latest.createdAt);
  }
  const at = (ref: string) => takenAt.get(ref) ?? '';
  // Stable: machines never captured, or captured at the same time, keep their given order.
  return [...machineRefs].sort((a, b) => (at(a) < at(b) ? -1 : at(a) > at(b) ? 1 : 0));
}

/**
 * Captures each machine; one machine's failure does not stop the others. Once `signal` aborts
 * (the task's timeout), the machines not reached are reported as not captured.
 */
export async function captureMachines(
  api: ScheduledRecoveryApi,
  machineRefs: string[],
  logger: LoggerService,
  signal?: AbortSignal,
): Promise<TaskReport> {
  const report: TaskReport = { succeeded: [], failed: [] };
  for (const [index, machineRef] of machineRefs.entries()) {
    if (signal?.aborted) {
      const rest = machineRefs.slice(index);
      report.failed.push(...rest.map(entityRef => ({ entityRef, message: "not captured: the task's timeout ran out first" })));
      logger.error(`Capture: the task's timeout ran out; ${rest.length} of ${machineRefs.length} machines not captured`);
      break;
    }
    try {
      const [capture] = await api.capture(machineRef, { signal });
      report.succeeded.push(machineRef);
      logger.info(
        `Capture ${index + 1}/${machineRefs.length}: ${machineRef} (${capture?.sizeBytes ?? 0} bytes in ${capture?.durationMs ?? 0} ms)`,
      );
    } catch (error) {
      // Only the wait was aborted: the backend goes on with the capture it started.
      const message = signal?.aborted
        ? "the task's timeout ran out while it was being captured (the backend may still finish the capture)"
        : String((error as Error).message);
      report.failed.push({ entityRef: machineRef, message });
      logger.error(`Capture ${index + 1}/${machineRefs.length}: ${machineRef} failed: ${message}`);
    }
  }
  return report;
}

/**
 * Ends a task with its summary: logged where everything succeeded, else thrown, naming what
 * failed and why, so the scheduler records the run as failed rather than as done.
 */
export function finishTask(summary: string, failed: TaskReport['failed'], logger: LoggerService): void {
  if (failed.length === 0) {
    logger.info(summary);
    return;
  }
  throw new Error(`${summary}${failed.map(f => `\n  ${f.entityRef}: ${f.message}`).join('')}`);
}

/**
 * The scheduled dependency analysis of every system. A system none of whose services has
 * initialization events yet (a new one) is skipped, and named once, in the task's summary
 * (the backend does not log it too): failing the task for it would alert on every run until its
 * first boots are collected. Other failures fail the task.
 */
export async function analyseSystems(api: Pick<ScheduledRecoveryApi, 'analyzeSystems'>, logger: LoggerService, signal?: AbortSignal): Promise<void> {
  const { analysed, skipped, failed } = await api.analyzeSystems({ signal });
  const which = skipped.length ? `: ${skipped.join(', ')}` : '';
  finishTask(
    `Dependency analysis: ${analysed.length} systems analysed, ${skipped.length} skipped (no initialization events of their services yet${which}), ${failed.length} failed`,
    failed,
    logger,
  );
}

type Timeout = SchedulerServiceTaskScheduleDefinition['timeout'];

/** A task timeout in milliseconds: a luxon Duration or a HumanDuration (months as 30 days). */
export function timeoutMs(timeout: Timeout): number {
  if ('toMillis' in timeout && typeof timeout.toMillis === 'function') return timeout.toMillis();
  return durationToMilliseconds(timeout as HumanDuration);
}

/** The HTTP status of a failed API call, if the backend answered at all. */
function statusOf(error: unknown): number | undefined {
  const status = (error as { status?: unknown })?.status;
  return typeof status === 'number' ? status : undefined;
}

/**
 * Whether reading a run's state may succeed if tried again: no answer (network), a server
 * error, or a request timeout / rate limit. A 404 or an auth error will not change.
 */
function isTransientPollError(error: unknown): boolean {
  const status = statusOf(error);
  return status === undefined || status >= 500 || status === 408 || status === 429;
}

/**
 * Whether a start was refused only because the hypervisor host runs another lab. Other 409s,
 * such as a machine never captured, stay so however long one waits.
 */
function isHostBusy(error: unknown): boolean {
  return statusOf(error) === 409 && (error as { errorName?: unknown })?.errorName === HOST_BUSY_ERROR_NAME;
}

function messageOf(error: unknown): string {
  return String((error as Error)?.message ?? error);
}

/**
 * The nightly readiness check: a test recovery of each entity, one after the other (a
 * hypervisor host runs one lab at a time), each stored like any run.
 *
 * A host busy with another run (a 409 named HypervisorHostBusyError) and transient errors
 * while polling are retried every `pollIntervalMs` until `deadline` (the task's time budget,
 * epoch ms): giving up early would leave the host busy and fail every following entity as busy
 * too. Any other refusal, such as a machine never captured, is that entity's failure at once.
 */
export async function runNightlyCheck(
  api: ScheduledRecoveryApi,
  entityRefs: string[],
  logger: LoggerService,
  options: { pollIntervalMs: number; deadline?: number; signal?: AbortSignal },
): Promise<TaskReport> {
  const report: TaskReport = { succeeded: [], failed: [] };
  const deadline = options.deadline ?? Infinity;
  /** Waits before a retry; false when the wait would end past the deadline. */
  const waitForRetry = async (): Promise<boolean> => {
    if (Date.now() + options.pollIntervalMs > deadline) return false;
    await sleep(options.pollIntervalMs, undefined, { signal: options.signal });
    return true;
  };
  for (const [index, entityRef] of entityRefs.entries()) {
    const label = `Nightly check ${index + 1}/${entityRefs.length}: ${entityRef}`;
    const fail = (message: string) => {
      report.failed.push({ entityRef, message });
      logger.error(`${label}: ${message}`);
    };
    if (Date.now() + options.pollIntervalMs > deadline) {
      // Starting a run that cannot be waited for would only keep the host busy.
      fail("not started: the task's time budget ran out");
      continue;
    }
    try {
      let run: RecoveryRun | undefined;
      for (let attempt = 1; !run; attempt++) {
        try {
          run = await api.startRun(entityRef, { signal: options.signal });
        } catch (error) {
          // Only "host busy" is worth waiting for; after a lost answer the run may exist already.
          if (!isHostBusy(error)) throw error;
          if (attempt === 1) logger.info(`${label}: hypervisor host busy, waiting for it`);
          if (!(await waitForRetry())) {
            fail(
              `not started: the hypervisor host was still busy after ${attempt} attempts when the task's time budget ran out (${messageOf(error)})`,
            );
            break;
          }
        }
      }
      if (!run) continue;
      logger.info(`${label}: run ${run.id} started`);
      let pollError: unknown;
      while (run.status === 'pending' || run.status === 'running') {
        if (!(await waitForRetry())) break;
        try {
          run = await api.getRun(run.id, { signal: options.signal });
          pollError = undefined;
        } catch (error) {
          if (!isTransientPollError(error)) throw error;
          pollError = error;
          logger.warn(`${label}: could not read run ${run.id}, retrying: ${messageOf(error)}`);
        }
      }
      if (run.status === 'pending' || run.status === 'running') {
        fail(
          `run ${run.id} was still ${run.status} when the task's time budget ran out` +
            (pollError ? ` (last poll failed: ${messageOf(pollError)})` : ''),
        );
      } else if (run.status === 'succeeded') {
        report.succeeded.push(entityRef);
        logger.info(`${label}: recovered in ${run.rtoSeconds} s`);
      } else {
        const message = run.error?.message ?? 'failed';
        report.failed.push({ entityRef, message });
        logger.warn(`${label}: ${message}`);
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      report.failed.push({ entityRef, message: messageOf(error) });
      logger.error(`${label}: could not run: ${messageOf(error)}`);
    }
  }
  return report;
}
