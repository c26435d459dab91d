import { useCallback, useEffect, useMemo, useRef } from 'react';
import { useApiHolder } from '@backstage/frontend-plugin-api';
import { signalApiRef } from '@backstage/plugin-signals-react';
import {
  readRecoverySignal,
  type RecoveryChanges,
  type RecoverySignal,
  recoverySignalChannel,
} from '@backstage-recovery/plugin-recovery-common';

/**
 * How often what signals tell of is polled all the same, where the app has the signals plugin:
 * for a signal lost (the socket reconnecting, a backend restarting, or no signals backend).
 */
export const SIGNALLED_POLL_INTERVAL_MS = 15_000;

/** An entity's changes as the page hears of them, and how often to poll all the same. */
export interface EntityChanges extends RecoveryChanges {
  /** Whether the app has the signals plugin: changes are heard of as they happen. */
  live: boolean;
}

/**
 * The changes of an entity's runs and capture requests, pushed by the recovery backend through
 * Backstage signals (its channel, recoverySignalChannel): `watch` hears each, for the caller to
 * fetch again what changed. Where the app has the signals plugin, polling slows to
 * SIGNALLED_POLL_INTERVAL_MS, a fallback; without it, `pollIntervalMs` stays `intervalMs`.
 *
 * It subscribes as `useSignal` (plugin-signals-react) does, and is live where `useSignal` would
 * say the signals are available (the app has the signals API), but hands each message to the
 * listeners rather than keeping the last in state: no render for a change nobody here follows,
 * and no subscription without an entity.
 */
export function useRecoverySignals(
  entityRef: string | undefined,
  intervalMs: number,
): EntityChanges {
  const signalApi = useApiHolder().get(signalApiRef);
  const listeners = useRef(new Set<(change: RecoverySignal) => void>());

  useEffect(() => {
    if (!signalApi || !entityRef) return undefined;
    const { unsubscribe } = signalApi.subscribe(
      recoverySignalChannel(entityRef),
      message => {
        const change = readRecoverySignal(message);
        if (change) listeners.current.forEach(listener => listener(change));
      },
    );
    return unsubscribe;
  }, [signalApi, entityRef]);

  const watch = useCallback((listener: (change: RecoverySignal) => void) => {
    const all = listeners.current;
    all.add(listener);
    return () => {
      all.delete(listener);
    };
  }, []);
  const live = !!signalApi;
  return useMemo(
    () => ({
      live,
      pollIntervalMs: live
        ? Math.max(intervalMs, SIGNALLED_POLL_INTERVAL_MS)
        : intervalMs,
      watch,
    }),
    [live, intervalMs, watch],
  );
}
