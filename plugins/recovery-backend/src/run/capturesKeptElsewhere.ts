import type { MachineNode } from '@backstage-recovery/plugin-recovery-node';
import type {
  CaptureStore,
  CapturesKeptElsewhere,
} from '../database/CaptureStore';
import { MachinesNotCapturedError } from './errors';

/**
 * A refusal for machines never captured, naming the captures of the same container on the same
 * engine kept under another machine ref (a machine renamed in the catalog): in a disaster,
 * production is gone and "capture first" cannot be done, but renaming it back can. Any other
 * error, or one with none such, as it was.
 */
export async function namingCapturesKeptElsewhere(
  error: unknown,
  machines: ReadonlyMap<string, Pick<MachineNode, 'locator'>>,
  captures: Pick<CaptureStore, 'capturesKeptElsewhere'>,
): Promise<unknown> {
  if (!(error instanceof MachinesNotCapturedError) || error.keptElsewhere)
    return error;
  const located = error.neverCaptured.flatMap(machineRef => {
    const locator = machines.get(machineRef)?.locator;
    return locator
      ? [{ machineRef, engine: locator.engine, container: locator.container }]
      : [];
  });
  const kept =
    located.length > 0
      ? await captures.capturesKeptElsewhere(located)
      : new Map<string, CapturesKeptElsewhere[]>();
  const named = error.neverCaptured.flatMap(machineRef =>
    (kept.get(machineRef) ?? []).map(({ machineRef: keptUnder, ...rest }) => ({
      machineRef,
      keptUnder,
      ...rest,
    })),
  );
  return named.length > 0
    ? new MachinesNotCapturedError(error.neverCaptured, named)
    : error;
}
