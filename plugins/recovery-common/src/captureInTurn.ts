import { ConflictError } from '@backstage/errors';
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
 * backend's own (naming the machine); those captured before it are kept, and were reported. A
 * machine being captured already (a 409) does not stop the others: it is named at the end.
 * Without a plan (a dependency cycle stops it: GET /plan answers 400) the backend still captures,
 * as a cycle stops recoveries, not captures: then the machines readiness lists are taken, or
 * `on.machines` where the caller holds them already.
 */
export async function captureInTurn(
  api: Pick<RecoveryApi, 'getBootPlan' | 'captureNow' | 'getReadiness'>,
  entityRef: string,
  on: {
    machines?: string[];
    start?: (machineRef: string, index: number, total: number) => void;
    captured?: (progress: CaptureProgress) => void;
  } = {},
): Promise<Capture[]> {
  const machines = on.machines ?? (await machinesToCapture(api, entityRef));
  const captures: Capture[] = [];
  // Machines another capture is taking (the scheduled one, say): left to it, the others taken,
  // and a 409 at the end naming them, as the backend answers for an entity's capture.
  const busy: string[] = [];
  for (const [index, machineRef] of machines.entries()) {
    on.start?.(machineRef, index, machines.length);
    try {
      captures.push(...(await api.captureNow(entityRef, machineRef)));
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode !== 409) throw error;
      // The backend's words, not the client's "Request failed with 409 Conflict".
      busy.push((error as { body?: { error?: { message?: string } } }).body?.error?.message ?? (error as Error).message);
      continue;
    }
    on.captured?.({ capture: captures[captures.length - 1], done: index + 1, total: machines.length });
  }
  if (busy.length > 0) {
    const taken = captures.length > 0 ? ` (captured, and kept: ${captures.map(c => c.machineRef).join(', ')})` : '';
    throw new ConflictError(`${busy.join('; ')}${taken}`);
  }
  return captures;
}

/** The plan's machines in boot order, or where no plan can be made, those readiness lists. */
async function machinesToCapture(api: Pick<RecoveryApi, 'getBootPlan' | 'getReadiness'>, entityRef: string): Promise<string[]> {
  try {
    return (await api.getBootPlan(entityRef)).waves.flat();
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 400) throw error;
    const readiness = await api.getReadiness(entityRef);
    if (readiness.plan || readiness.captures.length === 0) throw error;
    return readiness.captures.map(c => c.machineRef);
  }
}
