import type { RecoveryApi } from './api';
import type { Capture } from './types';

/** A machine just captured by captureInTurn, and how far along the entity's plan that is. */
export interface CaptureProgress {
  capture: Capture;
  /** Machines captured so far, this one included, of `total`. */
  done: number;
  total: number;
}

/**
 * Why a capture of an entity whose boot plan has no machines is refused: one wording for the
 * API (POST /captures) and the CLI, which each refuse it rather than succeed having captured nothing.
 */
export function nothingToCapture(entityRef: string): string {
  return `${entityRef} runs on no machine, so there is nothing to capture: add dependsOn relations to machine Resources`;
}

/**
 * Captures the machines of an entity's boot plan one request each, in the plan's order: the
 * caller shows each as it is taken, and no request lasts as long as a whole site's images take
 * to save. `on.start` hears of each machine before its capture begins, `on.captured` of each taken. A failure is the
 * backend's own (naming the machine); those captured before it are kept, and were reported.
 */
export async function captureInTurn(
  api: Pick<RecoveryApi, 'getBootPlan' | 'captureNow'>,
  entityRef: string,
  on: { start?: (machineRef: string, index: number, total: number) => void; captured?: (progress: CaptureProgress) => void } = {},
): Promise<Capture[]> {
  const machines = (await api.getBootPlan(entityRef)).waves.flat();
  const captures: Capture[] = [];
  for (const [index, machineRef] of machines.entries()) {
    on.start?.(machineRef, index, machines.length);
    captures.push(...(await api.captureNow(entityRef, machineRef)));
    on.captured?.({ capture: captures[captures.length - 1], done: index + 1, total: machines.length });
  }
  return captures;
}
