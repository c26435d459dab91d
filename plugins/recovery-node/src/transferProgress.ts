import { formatBytes } from '@backstage-recovery/plugin-recovery-common';

/**
 * How far one transfer of a machine's data has come (a capture's archive read back, loaded into an
 * engine, put into a machine; a volume archived, an image saved), as a hypervisor host's restore
 * and a capture source's copy report it while they move large amounts: what the run's timeline
 * (and a capture request) shows instead of a silent wait.
 *
 * @public
 */
export interface TransferProgress {
  /** The line a watcher reads: `Restoring volume /data: 24.0 MiB of 40.0 MiB (60%) at 12.0 MiB/s`. */
  message: string;
  /** What moves, in words: `volume /data`, `the image archive`. */
  what: string;
  doneBytes: number;
  /** All it moves, where known beforehand (a restore knows its capture's sizes; a capture does not). */
  totalBytes?: number;
  /** Since the transfer began. */
  elapsedMs: number;
  /** The transfer's last report: it ended, and `doneBytes` is all it moved. */
  final: boolean;
}

/**
 * Hears a machine's transfers, throttled by {@link TransferProgressLines}: it must not throw, and
 * what it does with a line (a write to the database) must not hold the transfer up.
 *
 * @public
 */
export type TransferProgressListener = (progress: TransferProgress) => void;

/**
 * What a transfer does, as its lines say it while under way and once done.
 *
 * @public
 */
export type TransferKind =
  'verifying' | 'loading' | 'restoring' | 'archiving' | 'saving';

const WORDS: Record<TransferKind, [doing: string, done: string]> = {
  verifying: ['Verifying', 'Verified'],
  loading: ['Loading', 'Loaded'],
  restoring: ['Restoring', 'Restored'],
  archiving: ['Archiving', 'Archived'],
  saving: ['Saving', 'Saved'],
};

/**
 * One transfer under way: told of each chunk as it moves (`add`), and of its end once every byte
 * has moved and been accepted (`end`; a transfer that fails is not ended: its error says why).
 *
 * @public
 */
export interface Transfer {
  add(bytes: number): void;
  end(): void;
}

/** A machine's transfers are not reported below this many bytes: they take well under a second. */
export const SMALL_TRANSFER_BYTES = 8 * 1024 * 1024;
/** At most one line a machine this often, its transfers' final lines aside. */
export const PROGRESS_LINE_INTERVAL_MS = 2_000;
/** A line says at least this much more of its transfer than the one before it (of its total, or of what the last said). */
const PROGRESS_STEP = 0.05;

const NO_TRANSFER: Transfer = { add: () => {}, end: () => {} };

/**
 * The progress lines of one machine's transfers (a restore's, a capture's), one after another:
 * at most one line every PROGRESS_LINE_INTERVAL_MS for the machine, and only once its transfer has
 * moved 5% more than its last line said (of its total where known; else of what that line said,
 * so a long transfer of unknown size says less and less often); each transfer's end in a final line
 * with all it moved and the time it took. A transfer of less than SMALL_TRANSFER_BYTES says
 * nothing. Without a listener, nothing is counted.
 *
 * @public
 */
export class TransferProgressLines {
  /** When the machine's last line was said (or its current transfer began, if later). */
  private lastLineAt = -Infinity;
  private readonly now: () => number;
  private readonly intervalMs: number;

  constructor(
    private readonly listener: TransferProgressListener | undefined,
    options: {
      /** The clock, in ms (performance.now unless given: tests give a fake one). */
      now?: () => number;
      intervalMs?: number;
    } = {},
  ) {
    this.now = options.now ?? (() => performance.now());
    this.intervalMs = options.intervalMs ?? PROGRESS_LINE_INTERVAL_MS;
  }

  /**
   * Starts a transfer of `what` (`volume /data`): `totalBytes` where known. A total the transfer
   * goes past (a capture recorded before its size counted everything) is taken as unknown from then on.
   */
  start(kind: TransferKind, what: string, totalBytes?: number): Transfer {
    const listener = this.listener;
    if (!listener) return NO_TRANSFER;
    if (totalBytes !== undefined && totalBytes < SMALL_TRANSFER_BYTES)
      return NO_TRANSFER;
    const [doing, done] = WORDS[kind];
    const startedAt = this.now();
    let total = totalBytes;
    let moved = 0;
    let said = 0;
    let ended = false;
    const report = (final: boolean, at: number) => {
      const elapsedMs = at - startedAt;
      const rate = elapsedMs > 0 ? (moved / elapsedMs) * 1000 : undefined;
      const per =
        rate === undefined ? '' : `${formatBytes(Math.round(rate))}/s`;
      const message = final
        ? `${done} ${what}: ${formatBytes(moved)} in ${(elapsedMs / 1000).toFixed(1)} s${per && ` (${per})`}`
        : `${doing} ${what}: ${formatBytes(moved)} ${
            total === undefined
              ? 'so far'
              : `of ${formatBytes(total)} (${Math.floor((moved / total) * 100)}%)`
          }${per && ` at ${per}`}`;
      this.lastLineAt = at;
      said = moved;
      listener({
        message,
        what,
        doneBytes: moved,
        ...(total !== undefined && { totalBytes: total }),
        elapsedMs,
        final,
      });
    };
    return {
      add: bytes => {
        moved += bytes;
        if (total !== undefined && moved > total) total = undefined;
        // All moved: the final line says it, once the transfer ends.
        if (moved < SMALL_TRANSFER_BYTES || moved === total) return;
        const step = (total ?? said) * PROGRESS_STEP;
        if (moved - said < step) return;
        const at = this.now();
        if (at - Math.max(this.lastLineAt, startedAt) < this.intervalMs) return;
        report(false, at);
      },
      end: () => {
        if (ended || moved < SMALL_TRANSFER_BYTES) return;
        ended = true;
        report(true, this.now());
      },
    };
  }
}
