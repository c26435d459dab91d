import { useCallback, useEffect, useRef, useState } from 'react';
import { useApi } from '@backstage/frontend-plugin-api';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { recoveryApiRef } from '../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from '../utils/answerWithin';
import { isRunActive, isRunInterrupted, sameRef } from '../utils/format';
import { useRecoverySignals } from './useRecoverySignals';
import { useRunPolling } from './useRunPolling';

/**
 * The run holding the hypervisor host among the active ones: the entity's own if it has one
 * (followed as its run), else the newest (GET /runs lists newest first).
 */
export function runHoldingHost(
  active: RecoveryRun[],
  entityRef: string,
): RecoveryRun | undefined {
  return active.find(r => sameRef(r.entityRef, entityRef)) ?? active[0];
}

/**
 * The run the entity's card follows live: the one holding the hypervisor host when the card
 * loads or a followed run ends (the entity's own, or another's holding the host), or one started
 * from the card (`follow`, `followFound`). `onDone` hears of a followed run that finished, after
 * which the active runs are asked for again; `onRunChange` as in EntityRecoveryCardProps.
 */
export function useFollowedRun({
  entityRef,
  pollIntervalMs,
  onDone,
  onRunChange,
}: {
  entityRef: string;
  pollIntervalMs: number;
  onDone: () => void;
  onRunChange?: (run: RecoveryRun) => void;
}) {
  const api = useApi(recoveryApiRef);

  // A run in progress holds the hypervisor host: this entity's (started elsewhere, or before a
  // reload) or another's (the nightly check of a system containing it). Readiness reports
  // finished runs only, so the active runs are asked for on load and after each followed run
  // ends (another may have been admitted meanwhile), and the one found is followed live. A check
  // left unanswered fails, as a refused one does: until it ends, Run test recovery stays off.
  const loadRunHoldingHost = useCallback(
    async () =>
      runHoldingHost(
        await answerWithin(api.listRuns({ active: true }), answerTimeoutMs()),
        entityRef,
      ),
    [api, entityRef],
  );
  const activeRunState = useAsyncRetry(loadRunHoldingHost, [
    loadRunHoldingHost,
  ]);
  const { retry: recheckActiveRun } = activeRunState;
  const activeRun = activeRunState.value;

  // A run the card followed that a failover preempted: the card goes on to follow that
  // failover, and without this the run being watched would vanish without a word.
  const [interrupted, setInterrupted] = useState<RecoveryRun | undefined>();
  const done = useCallback(
    (finished: RecoveryRun) => {
      if (isRunInterrupted(finished)) setInterrupted(finished);
      onDone();
      recheckActiveRun();
      onRunChange?.(finished);
    },
    [onDone, recheckActiveRun, onRunChange],
  );
  const {
    run,
    error: pollError,
    follow,
  } = useRunPolling({
    intervalMs: pollIntervalMs,
    onDone: done,
  });

  // The id of a run of another entity holding the host (found on a check, or named by a
  // refused start), followed in place of the entity's own.
  const [busyWithId, setBusyWithId] = useState<string | undefined>();

  // While a check is reloading, its value is the previous answer: a run already followed
  // (and perhaps finished since) is not followed again.
  const runId = run?.id;
  const following = isRunActive(run);
  // The caller's run history (the Recovery tab) loaded before a run of the entity started
  // elsewhere (a pipeline, another tab) would not list it until it ended: told as it is followed.
  const runListener = useRef(onRunChange);
  runListener.current = onRunChange;
  const followFound = useCallback(
    (found: RecoveryRun) => {
      follow(found);
      if (sameRef(found.entityRef, entityRef)) runListener.current?.(found);
    },
    [follow, entityRef],
  );
  useEffect(() => {
    if (
      !activeRun ||
      !isRunActive(activeRun) ||
      following ||
      activeRun.id === runId
    )
      return;
    if (!sameRef(activeRun.entityRef, entityRef)) setBusyWithId(activeRun.id);
    followFound(activeRun);
  }, [activeRun, following, runId, entityRef, followFound]);
  // With Backstage signals, a run of the entity started elsewhere (a pipeline, another tab) is
  // found as it is admitted, not at the next load of the page.
  const { watch } = useRecoverySignals(entityRef, pollIntervalMs);
  useEffect(
    () =>
      watch(change => {
        if (change.kind === 'run' && !following) recheckActiveRun();
      }),
    [watch, following, recheckActiveRun],
  );

  return {
    /** The run followed: live, or finished since. */
    run,
    /** Why the last look at the followed run failed, while it is retried. */
    pollError,
    /** Follows a run the card started. */
    follow,
    /** Follows a run found holding the host; the entity's own is told to `onRunChange`. */
    followFound,
    /** The check for a run holding the host: loading, failed, or the run found. */
    activeRunState,
    activeRun,
    recheckActiveRun,
    /** Asks which active run holds the host, within a minute. */
    loadRunHoldingHost,
    busyWithId,
    setBusyWithId,
    interrupted,
    setInterrupted,
  };
}

export type FollowedRun = ReturnType<typeof useFollowedRun>;
