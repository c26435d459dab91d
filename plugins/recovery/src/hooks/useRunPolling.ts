import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '@backstage/frontend-plugin-api';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { recoveryApiRef } from '../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from '../utils/answerWithin';
import { isRunActive, retryDelayMs } from '../utils/format';
import { useRecoverySignals } from './useRecoverySignals';

/**
 * Follows one run: polls `getRun` while it is pending or running, and calls `onDone` once it has
 * finished. Where the app has Backstage signals, the run is fetched again as soon as the backend
 * says it changed, and polled every SIGNALLED_POLL_INTERVAL_MS all the same; without them, every
 * `intervalMs`. Failed polls, and polls left unanswered for {@link answerTimeoutMs}, are retried
 * with backoff from `intervalMs` until the run is over or the component unmounts; `error` is the
 * last failure, if unrecovered.
 */
export function useRunPolling(options: {
  intervalMs: number;
  onDone?: (run: RecoveryRun) => void;
}) {
  const api = useApi(recoveryApiRef);
  const [run, setRun] = useState<RecoveryRun | undefined>();
  const [error, setError] = useState<Error | undefined>();
  const onDone = useRef(options.onDone);
  onDone.current = options.onDone;

  const runId = run?.id;
  const active = isRunActive(run);
  // The run's entity's channel: a run of another entity holding the host is followed on its own.
  const { pollIntervalMs, watch } = useRecoverySignals(
    run?.entityRef,
    options.intervalMs,
  );

  useEffect(() => {
    if (!runId || !active) return undefined;
    let cancelled = false;
    let failures = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    // A change told while a poll is on its way may come after what that poll reads: one more.
    let polling = false;
    let changedMeanwhile = false;
    const timeoutMs = answerTimeoutMs(options.intervalMs);
    const tick = async () => {
      polling = true;
      changedMeanwhile = false;
      try {
        // A poll left hanging counts as failed, and the next one is sent; its late answer is dropped.
        const next = await answerWithin(api.getRun(runId), timeoutMs);
        if (cancelled) return;
        failures = 0;
        setError(undefined);
        setRun(next);
        if (!isRunActive(next)) {
          onDone.current?.(next);
          return;
        }
      } catch (e) {
        if (cancelled) return;
        failures += 1;
        setError(e as Error);
        // Keep trying while mounted (the card says "Retrying…"), backing off.
        timer = setTimeout(tick, retryDelayMs(options.intervalMs, failures));
        return;
      } finally {
        polling = false;
      }
      timer = setTimeout(tick, changedMeanwhile ? 0 : pollIntervalMs);
    };
    const stopWatching = watch(change => {
      if (cancelled || change.kind !== 'run' || change.id !== runId) return;
      if (polling) {
        changedMeanwhile = true;
        return;
      }
      // Now, rather than at the next poll (a retry's backoff included: the backend answers again).
      clearTimeout(timer);
      void tick();
    });
    timer = setTimeout(tick, pollIntervalMs);
    return () => {
      cancelled = true;
      clearTimeout(timer);
      stopWatching();
    };
  }, [api, runId, active, options.intervalMs, pollIntervalMs, watch]);

  const follow = useCallback((next: RecoveryRun) => {
    setError(undefined);
    setRun(next);
    if (!isRunActive(next)) onDone.current?.(next);
  }, []);

  return { run, error, follow };
}
