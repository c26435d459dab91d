import { ConflictError, InputError } from '@backstage/errors';
import {
  CaptureFailedError,
  captureFailureKind,
  captureStoreAdvice,
  nothingToCapture,
  type Capture,
  type CaptureFailure,
} from '@backstage-recovery/plugin-recovery-common';
import {
  httpStatusOf,
  type MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { MAPPING_ANNOTATIONS } from '../../plan/entityMapping';
import type { PlanService } from '../PlanService';
import { namedAndHidden } from '../RecoveryAuthorizer';
import { errorOf, forwarded } from './captureErrors';
import { claimedElsewhere } from './claims';
import { ONE_AT_A_TIME, refusal, type Hold } from './holds';

/**
 * The machines to capture of an entity's boot plan, or only `machineRef` of them: else a 400,
 * naming the plan's machines `seen` keeps (a caller's view of the catalog; all where absent) and
 * counting the others. A 400 too where some are not mapped to a primary engine, naming those
 * `seen` keeps with why they are not mapped and counting the others.
 */
export async function machinesToCapture(
  plans: Pick<PlanService, 'plan'>,
  entityRef: string,
  machineRef?: string,
  seen: (refs: string[]) => Promise<string[]> = async refs => refs,
): Promise<MachineLocator[]> {
  const { graph, plan } = await plans.plan(entityRef);
  // A plan that cannot be made (a dependency cycle) stops recoveries, not captures: what the
  // machines hold now is worth keeping while the catalog is mended.
  const planned = plan ? plan.waves.flat() : [...graph.machines.keys()].sort();
  if (planned.length === 0) {
    throw new InputError(nothingToCapture(entityRef));
  }
  if (machineRef !== undefined && !planned.includes(machineRef)) {
    throw new InputError(
      `machineRef: ${machineRef} is not a machine of ${entityRef}'s boot plan (${namedAndHidden(await seen(planned), planned.length)})`,
    );
  }
  const locators: MachineLocator[] = [];
  const unmapped: string[] = [];
  for (const ref of machineRef === undefined ? planned : [machineRef]) {
    const locator = graph.machines.get(ref)?.locator;
    if (locator) locators.push(locator);
    else unmapped.push(ref);
  }
  if (unmapped.length > 0) {
    // A hidden machine's ref or its problems would reveal it: named, and told why, only where
    // the caller sees it; the others counted. Only why a machine is not mapped: its other
    // problems (a dependsOn) may name entities the caller does not see.
    const named = await seen(unmapped);
    const details = graph.problems
      .filter(
        p =>
          named.includes(p.entityRef) &&
          p.annotation !== undefined &&
          MAPPING_ANNOTATIONS.has(p.annotation),
      )
      .map(p => p.message);
    throw new InputError(
      `Cannot capture ${namedAndHidden(named, unmapped.length)}: ${details.join('; ') || 'not mapped to a primary engine'}`,
    );
  }
  return locators;
}

/** The machines captured of an entity's capture that failed in part, as its error names them. */
export function keptOf(captures: Capture[]): string {
  return captures.length > 0
    ? `captured, and kept: ${captures.map(c => c.machineRef).join(', ')}`
    : '';
}

/**
 * An entity's capture in which some machines failed (or were being captured already) while the
 * others went on, as the API answers it: a {@link CaptureFailedError} (`failed`, `captures`),
 * its message naming the entity, each machine not captured and why, and those kept. Never a 404
 * (the entity exists): a 503 where every failure is an engine out of reach or past its deadline
 * (worth trying again), a 409 where every one is a capture under way, a 507 where every one
 * failed on the capture store (as one machine's capture answers it), else a 502 (what the engines
 * answered, or lacked: a container gone).
 */
export function entityCaptureFailed(
  entityRef: string,
  total: number,
  failure: CaptureFailure,
  kept: string,
): CaptureFailedError {
  const { failed } = failure;
  const store = captureStoreAdvice(failure);
  return new CaptureFailedError(
    `capture of ${entityRef}: ${failed.length} of ${total} machines not captured: ` +
      `${failed.map(f => `${f.machineRef}: ${f.error.name}: ${f.error.message}`).join('; ')}${kept ? `; ${kept}` : ''}${store ? `: ${store}` : ''}`,
    failure,
  );
}

/**
 * Captures the machines one after another (`capture`), leaving those `busy` names to the capture
 * under way, or with `waitFor`, counting that capture once the others are taken (as a capture
 * refused by another's claim on the machine in the database, then waited for); `captured`
 * hears of those taken so far after each. Once `signal` aborts, the machines not begun fail with
 * its reason. Ends as CaptureService.captureEntity says.
 */
export async function captureInTurn(
  entityRef: string,
  locators: MachineLocator[],
  turn: {
    busy: (locator: MachineLocator) => Hold | undefined;
    capture: (locator: MachineLocator) => Promise<Capture>;
    waitFor?: (locator: MachineLocator, hold: Hold) => Promise<Capture>;
    captured?: (captures: Capture[]) => Promise<void>;
    signal?: AbortSignal;
  },
): Promise<Capture[]> {
  // One at a time: each capture pauses its machine briefly and streams a whole image.
  const captures: Capture[] = [];
  // Machines another capture in this backend is taking: left to it, and refused at the end.
  const busy: Array<{ ref: string; hold: Hold }> = [];
  // Machines whose capture failed: the others are still taken (one machine's container gone
  // must not leave the rest of the site uncaptured), and the failures said at the end.
  const failed: Array<{ ref: string; error: unknown }> = [];
  // Machines held by another capture, waited for once this one's own are taken (never before:
  // two requests each waiting on the other's queued machine would wait for ever).
  const waiting: Array<{ locator: MachineLocator; hold: Hold }> = [];
  const taken = async (
    locator: MachineLocator,
    capture: () => Promise<Capture>,
  ) => {
    if (turn.signal?.aborted) {
      failed.push({ ref: locator.machineRef, error: turn.signal.reason });
      return;
    }
    try {
      captures.push(await capture());
    } catch (error) {
      // Held by a capture claimed in the database (another replica's): waited for in its turn.
      const elsewhere = turn.waitFor && claimedElsewhere(error);
      if (elsewhere) waiting.push({ locator, hold: elsewhere });
      else failed.push({ ref: locator.machineRef, error });
      return;
    }
    await turn.captured?.([...captures]);
  };
  for (const locator of locators) {
    const hold = turn.busy(locator);
    if (hold && turn.waitFor) waiting.push({ locator, hold });
    else if (hold) busy.push({ ref: locator.machineRef, hold });
    else await taken(locator, () => turn.capture(locator));
  }
  // Those found claimed meanwhile are appended, and waited for in their turn too.
  for (const { locator, hold } of waiting)
    await taken(locator, () => turn.waitFor!(locator, hold));
  const kept = keptOf(captures);
  if (failed.length === 1 && busy.length === 0 && captures.length === 0) {
    // The one machine asked for: its own failure, keeping the cause's name and status (an
    // engine's 502, 503), but never a 404: the entity and machine exist, the engine lacks them.
    throw forwarded(
      `capture of ${failed[0].ref} failed`,
      failed[0].error,
      true,
    );
  }
  if (failed.length > 0) {
    const failure: CaptureFailure = {
      failed: [
        ...failed.map(f => ({
          machineRef: f.ref,
          kind: captureFailureKind(httpStatusOf(f.error)),
          error: errorOf(f.error),
        })),
        ...busy.map(b => ({
          machineRef: b.ref,
          kind: 'busy' as const,
          error: {
            name: 'ConflictError',
            message: `${refusal(b.ref, b.hold)}; ${ONE_AT_A_TIME}`,
          },
        })),
      ],
      captures,
    };
    throw entityCaptureFailed(entityRef, locators.length, failure, kept);
  }
  if (busy.length > 0) {
    throw new ConflictError(
      `${busy.map(b => refusal(b.ref, b.hold)).join('; ')}; ${ONE_AT_A_TIME}${kept ? ` (${kept})` : ''}`,
    );
  }
  return captures;
}
