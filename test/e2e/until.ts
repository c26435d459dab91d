/** Waiting in end-to-end tests: for what a real engine or process does in its own time. */

export const sleep = (ms: number) => new Promise(r => setTimeout(r, ms));

/** Milliseconds as seconds to a tenth, for the timings a test prints. */
export const seconds = (ms: number) => Math.round(ms / 100) / 10;

/** The first truthy answer of `check`, asked every `everyMs`; fails naming `what` past `timeoutMs`. */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs: number,
  everyMs: number,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(everyMs);
  }
}
