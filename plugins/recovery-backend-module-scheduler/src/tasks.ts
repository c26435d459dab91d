import { LoggerService } from '@backstage/backend-plugin-api';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ScheduledRecoveryApi } from './recoveryClient';

export interface TaskReport {
  succeeded: string[];
  failed: Array<{ entityRef: string; message: string }>;
}

/** Captures each machine; one machine's failure does not stop the others. */
export async function captureMachines(
  api: ScheduledRecoveryApi,
  machineRefs: string[],
  logger: LoggerService,
): Promise<TaskReport> {
  const report: TaskReport = { succeeded: [], failed: [] };
  for (const [index, machineRef] of machineRefs.entries()) {
    try {
      const [capture] = await api.capture(machineRef);
      report.succeeded.push(machineRef);
      logger.info(
        `Capture ${index + 1}/${machineRefs.length}: ${machineRef} (${capture?.sizeBytes ?? 0} bytes in ${capture?.durationMs ?? 0} ms)`,
      );
    } catch (error) {
      report.failed.push({ entityRef: machineRef, message: String((error as Error).message) });
      logger.error(`Capture ${index + 1}/${machineRefs.length}: ${machineRef} failed: ${(error as Error).message}`);
    }
  }
  return report;
}

/**
 * The nightly readiness check: a test recovery of each entity, one after the other (a
 * hypervisor host runs one lab at a time), each stored like any run.
 */
export async function runNightlyCheck(
  api: ScheduledRecoveryApi,
  entityRefs: string[],
  logger: LoggerService,
  options: { pollIntervalMs: number; signal?: AbortSignal },
): Promise<TaskReport> {
  const report: TaskReport = { succeeded: [], failed: [] };
  for (const [index, entityRef] of entityRefs.entries()) {
    const label = `Nightly check ${index + 1}/${entityRefs.length}: ${entityRef}`;
    try {
      let run: RecoveryRun = await api.startRun(entityRef);
      logger.info(`${label}: run ${run.id} started`);
      while (run.status === 'pending' || run.status === 'running') {
        await sleep(options.pollIntervalMs, undefined, { signal: options.signal });
        run = await api.getRun(run.id);
      }
      if (run.status === 'succeeded') {
        report.succeeded.push(entityRef);
        logger.info(`${label}: recovered in ${run.rtoSeconds} s`);
      } else {
        const message = run.error?.message ?? 'failed';
        report.failed.push({ entityRef, message });
        logger.warn(`${label}: ${message}`);
      }
    } catch (error) {
      if (options.signal?.aborted) throw error;
      report.failed.push({ entityRef, message: String((error as Error).message) });
      logger.error(`${label}: could not run: ${(error as Error).message}`);
    }
  }
  return report;
}
