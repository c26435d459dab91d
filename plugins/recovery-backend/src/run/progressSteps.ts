import type { TransferProgressListener } from '@backstage-recovery/plugin-recovery-node';
import type { RunRecorder } from './RunRecorder';

/** A machine's progress lines on their way into the run's timeline. */
export interface ProgressSteps {
  /** Hears the host's lines (already paced by it: TransferProgressLines). */
  listener: TransferProgressListener;
  /** Takes no more lines (a late one from a restore past its deadline), and waits until those said are written. */
  done(): Promise<void>;
}

/**
 * A machine's transfer progress (its restore, the verification of its capture) as steps of the
 * run's timeline, written one after another in the order said, so `recovery watch` and the portal
 * see a long restore move. Lines only a watcher reads: one whose write fails goes to `failed`, and
 * fails nothing.
 */
export function progressSteps(
  recorder: Pick<RunRecorder, 'step'>,
  machineRef: string,
  failed: (error: unknown) => void,
): ProgressSteps {
  let writing = Promise.resolve();
  let open = true;
  return {
    listener: ({ message }) => {
      if (!open) return;
      writing = writing.then(() =>
        recorder.step(message, machineRef).catch(failed),
      );
    },
    done: () => {
      open = false;
      return writing;
    },
  };
}
