/**
 * What the recovery backend pushes through Backstage signals when a run or a capture request
 * changes: which one, nothing of its content. Anyone signed in may subscribe to any channel, so a
 * signal only says what to fetch again; the fetch goes through the API, whose permission checks
 * decide what the caller sees.
 *
 * @public
 */
export interface RecoverySignal {
  kind: 'run' | 'captureRequest';
  id: string;
}

/**
 * The signal channel of an entity: the changes of its runs (the entity's own, not those of a
 * System it belongs to) and of its capture requests. One channel an entity, so that a page
 * follows what it shows (its runs, its captures) on one subscription. Entity refs compare
 * without regard to case, so the channel is lower-cased.
 *
 * @public
 */
export function recoverySignalChannel(entityRef: string): string {
  return `recovery:entity:${entityRef.toLocaleLowerCase('en-US')}`;
}

/**
 * A message received on a recovery channel, if it is a recovery signal: whatever else comes is
 * ignored, not trusted.
 *
 * @public
 */
export function readRecoverySignal(
  message: unknown,
): RecoverySignal | undefined {
  if (typeof message !== 'object' || message === null) return undefined;
  const { kind, id } = message as Record<string, unknown>;
  if ((kind !== 'run' && kind !== 'captureRequest') || typeof id !== 'string')
    return undefined;
  return { kind, id };
}

/**
 * Changes of an entity's runs and capture requests as the caller hears of them (the portal: by
 * Backstage signals), so that a poll is sent as soon as what it polls changed, and otherwise every
 * `pollIntervalMs`, a fallback for a change not heard of.
 *
 * @public
 */
export interface RecoveryChanges {
  /** How often to poll all the same. */
  pollIntervalMs: number;
  /** Calls `listener` with each change heard of, until the function returned is called. */
  watch(listener: (change: RecoverySignal) => void): () => void;
}
