import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '@backstage/frontend-plugin-api';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { recoveryApiRef } from '../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from '../utils/answerWithin';
import { isRunActive, retryDelayMs } from '../utils/format';

/**
 * Follows one run: polls `getRun` every `intervalMs` while it is pending or running,
 * and calls `onDone` once it has finished. Failed polls, and polls left unanswered for
 * {@link answerTimeoutMs}, are retried with backoff until the run is over or the component
 * unmounts; `error` is the last failure, if unrecovered.
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

  useEffect(() => {
    if (!runId || !active) return undefined;
    let cancelled = false;
    let failures = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeoutMs = answerTimeoutMs(options.intervalMs);
    const tick = async () => {
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
      }
      timer = setTimeout(tick, options.intervalMs);
    };
    timer = setTimeout(tick, options.intervalMs);
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  }, [api, runId, active, options.intervalMs]);

  const follow = useCallback((next: RecoveryRun) => {
    setError(undefined);
    setRun(next);
    if (!isRunActive(next)) onDone.current?.(next);
  }, []);

  return { run, error, follow };
}
