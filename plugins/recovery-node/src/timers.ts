/**
 * The longest delay a Node timer keeps (about 24.8 days): a longer one fires after 1 ms.
 *
 * @public
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;
