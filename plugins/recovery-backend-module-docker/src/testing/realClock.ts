import { setTimeout as delay } from 'node:timers/promises';

/** Longer than any file or loopback call takes, however loaded the machine: only a hang waits it out. */
const HANG_MS = 10_000;

/**
 * Waits until `check` holds, on the real clock whatever a test fakes: for what real file and
 * network I/O brings, which no fake clock moves (vi.waitFor would move fake timers on at each
 * try). `what` names what did not come where only a hang keeps it away.
 */
export async function untilReal(
  check: () => boolean,
  what: string,
): Promise<void> {
  const started = process.hrtime.bigint();
  while (!check()) {
    if (process.hrtime.bigint() - started > BigInt(HANG_MS) * 1_000_000n)
      throw new Error(`${what}: not within ${HANG_MS / 1000} s`);
    await delay(2);
  }
}
