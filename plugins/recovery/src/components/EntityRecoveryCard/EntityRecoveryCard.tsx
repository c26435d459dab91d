import { useEffect, useRef } from 'react';
import { Box } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { InfoCard, Progress } from '@backstage/core-components';
import { useApi } from '@backstage/frontend-plugin-api';
import { type Entity, stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import { usePermission } from '@backstage/plugin-permission-react';
import {
  recoveryCaptureCreatePermission,
  Readiness,
  recoveryRunCreatePermission,
  recoveryRunFailoverPermission,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { couldNot, recoveryApiRef } from '../../api/RecoveryClient';
import { CaptureResultNote, useCaptureFlow } from './CaptureFlow';
import { CardReadiness } from './CardReadiness';
import { useCardStyles } from './cardLayout';
import {
  ActiveRunCheckError,
  FollowedRunSection,
  InterruptedRunNote,
} from './FollowedRunSection';
import { isRunActive, pollInterval } from '../../utils/format';
import { LoadErrorPanel, RetryButton } from '../common';
import { RecoveryCardActions } from './RecoveryCardActions';
import { RunStartNotes, useRunStart } from './RunStartFlow';
import { useFollowedRun } from '../../hooks';
import { useKeptAsyncRetry } from '../../hooks';

/**
 * The card's title as a heading, the first under the entity page's h1: InfoCard makes it a span,
 * which leaves the card's section headings under nothing.
 */
export const CARD_TITLE = { component: 'h2' };

/** How often the card polls a running recovery unless told otherwise, in milliseconds. */
export const DEFAULT_POLL_INTERVAL_MS = 1000;

/**
 * How often the card reloads readiness while it is open, in milliseconds: capture ages move on
 * past the RPO, and the verdicts and the readiness beside them (the backend's, as they loaded)
 * must too, on a page left open.
 */
export const READINESS_RELOAD_MS = 300_000;

/** Props of {@link EntityRecoveryCard}. */
export interface EntityRecoveryCardProps {
  /** How often a running recovery is polled, in milliseconds. Default 1000, at least 100. */
  pollIntervalMs?: number;
  /**
   * Called when a run started from the card begins, when the card begins to follow a run of its
   * entity started elsewhere (found on a check, or named by a refused start), and when a followed
   * run finishes.
   */
  onRunChange?: (run: RecoveryRun) => void;
  /** Called with each readiness loaded: the Recovery tab takes the objectives from it. */
  onReadinessChange?: (readiness: Readiness) => void;
  /** How often readiness is reloaded while the card is open, in milliseconds. Default 5 minutes. */
  readinessReloadMs?: number;
}

/**
 * "Recovery readiness" card for `Component` and `System` entity pages: readiness, captures
 * vs RPO, last test recovery vs RTO, place in the boot plan, and a live test recovery.
 */
export const EntityRecoveryCard = (props: EntityRecoveryCardProps) => {
  const { entity } = useEntity();
  const entityRef = stringifyEntityRef(entity);
  // Backstage keeps the card mounted when the page moves to another entity: a new key starts
  // its state afresh, so one entity's run, start error or capture result never shows on
  // another's page.
  return (
    <EntityRecoveryCardFor
      key={entityRef}
      entity={entity}
      entityRef={entityRef}
      {...props}
    />
  );
};

/**
 * The card for one entity: all its state belongs to `entityRef`. Its flows have files of their
 * own: following a run (useFollowedRun, FollowedRunSection), starting one (RunStartFlow),
 * capturing (CaptureFlow), and the actions that start them (RecoveryCardActions).
 */
const EntityRecoveryCardFor = (
  props: EntityRecoveryCardProps & { entity: Entity; entityRef: string },
) => {
  const { entity, entityRef, onRunChange, onReadinessChange } = props;
  const pollIntervalMs = pollInterval(
    props.pollIntervalMs,
    DEFAULT_POLL_INTERVAL_MS,
  );
  const classes = useCardStyles();
  const api = useApi(recoveryApiRef);

  // Readiness is reloaded after a run or a capture; if that reload fails, the card keeps
  // what it showed (the run's outcome included) and offers to retry.
  const readinessState = useKeptAsyncRetry(
    () => api.getReadiness(entityRef),
    [api, entityRef],
    entityRef,
  );
  const { retry } = readinessState;
  const readiness = readinessState.value;
  // Told once per readiness loaded: a page passing a new callback on each render (an inline
  // arrow) would otherwise hear of the same readiness again at each of its renders.
  const readinessListener = useRef(onReadinessChange);
  readinessListener.current = onReadinessChange;
  useEffect(() => {
    if (readiness) readinessListener.current?.(readiness);
  }, [readiness]);

  // Granted per entity: the policy may allow them on some entities only (those one owns, say).
  const runPermission = usePermission({
    permission: recoveryRunCreatePermission,
    resourceRef: entityRef,
  });
  const capturePermission = usePermission({
    permission: recoveryCaptureCreatePermission,
    resourceRef: entityRef,
  });
  // A failover takes recovery.run.failover besides (and on each machine and service of the plan:
  // the dialog asks about those once opened). Offered to no one else: it is no test.
  const failoverPermission = usePermission({
    permission: recoveryRunFailoverPermission,
    resourceRef: entityRef,
  });

  const followed = useFollowedRun({
    entityRef,
    pollIntervalMs,
    onDone: retry,
    onRunChange,
  });
  const { run, activeRunState, activeRun } = followed;
  const start = useRunStart({ entityRef, followed, onRunChange });
  const { starting } = start;
  const capture = useCaptureFlow({ entityRef, readiness, onCaptured: retry });
  // The next reload a while after the last load ended, however it ended (as the overview's);
  // none once unmounted, nor while a capture is under way (its end reloads readiness). A reload
  // that fails keeps what the card showed, saying so.
  const readinessReloadMs = props.readinessReloadMs ?? READINESS_RELOAD_MS;
  const readinessLoading = readinessState.loading;
  const readinessError = readinessState.error;
  const capturing = !!capture.capturing;
  useEffect(() => {
    if (readinessLoading || capturing) return undefined;
    const timer = setTimeout(retry, readinessReloadMs);
    return () => clearTimeout(timer);
  }, [
    readinessLoading,
    readiness,
    readinessError,
    capturing,
    retry,
    readinessReloadMs,
  ]);

  if (readinessState.loading && !readiness) {
    return (
      <InfoCard title="Recovery readiness" titleTypographyProps={CARD_TITLE}>
        <Progress />
      </InfoCard>
    );
  }
  if (readinessState.error && !readiness) {
    return (
      <InfoCard title="Recovery readiness" titleTypographyProps={CARD_TITLE}>
        <LoadErrorPanel
          error={readinessState.error}
          onRetry={retry}
          what="readiness"
        />
      </InfoCard>
    );
  }
  if (!readiness) return null;

  // Over a dependency cycle, runs start from the plan a run accepting it would boot: refused as
  // they stand, they offer to go ahead anyway (RunStartNotes).
  const plan = readiness.plan ?? readiness.cyclePlan;
  const hasMachines = !!plan && plan.machines.length > 0;
  // What a capture takes: the plan's machines, or without a plan those readiness lists.
  const canCapture = plan ? hasMachines : readiness.captures.length > 0;
  const running = isRunActive(run);
  // Found but not followed yet (the effect runs after this render): the host is still busy.
  const hostBusy =
    running ||
    (!!activeRun && isRunActive(activeRun) && activeRun.id !== run?.id);
  const runAllowed = runPermission.allowed;
  // A failover takes both grants on the entity (and on what its plan boots: asked in the dialog).
  const failoverAllowed = runAllowed && failoverPermission.allowed;
  // A failover preempts a test recovery, but not another failover: the host is busy with one that
  // is followed, or found and not followed yet.
  const failoverRunning =
    (running && run?.mode === 'failover') ||
    (!!activeRun &&
      isRunActive(activeRun) &&
      activeRun.mode === 'failover' &&
      activeRun.id !== run?.id);
  // The test recovery a failover started now would interrupt, for its confirmation to say.
  const testRunning = [run, activeRun].find(
    r => isRunActive(r) && r?.mode === 'test',
  );

  return (
    <InfoCard
      title="Recovery readiness"
      titleTypographyProps={CARD_TITLE}
      className={classes.content}
    >
      {readinessState.error && (
        <Box mb={2}>
          <Alert
            severity="warning"
            action={<RetryButton onRetry={retry} what="loading readiness" />}
          >
            {couldNot('reload readiness', readinessState.error)}. Showing what
            was last loaded.
          </Alert>
        </Box>
      )}
      <CardReadiness readiness={readiness} entity={entity} />

      {followed.interrupted && followed.interrupted.id !== run?.id && (
        <InterruptedRunNote
          interrupted={followed.interrupted}
          entityRef={entityRef}
          onClose={() => followed.setInterrupted(undefined)}
        />
      )}
      {run && (
        <FollowedRunSection
          run={run}
          entityRef={entityRef}
          busyWithId={followed.busyWithId}
          pollError={followed.pollError}
          rtoObjectiveSeconds={readiness.objectives.rtoSeconds}
        />
      )}
      {activeRunState.error && (
        <ActiveRunCheckError
          error={activeRunState.error}
          onRetry={followed.recheckActiveRun}
        />
      )}
      <RunStartNotes
        entityRef={entityRef}
        start={start}
        startDisabled={{
          test: !runAllowed || hostBusy || !!starting,
          failover: !failoverAllowed || failoverRunning || !!starting,
        }}
      />
      <CaptureResultNote result={capture.captureResult} />

      <RecoveryCardActions
        entityRef={entityRef}
        entityName={entity.metadata.name}
        plan={plan}
        canCapture={canCapture}
        permissions={{
          run: runPermission,
          failover: failoverPermission,
          capture: capturePermission,
        }}
        run={run}
        starting={starting}
        hostBusy={hostBusy}
        // Until the active runs are known, one may hold the host: starting would get a 409.
        checkingForRun={activeRunState.loading}
        failoverRunning={failoverRunning}
        testRunning={testRunning}
        startRun={start.startRun}
        capture={capture}
      />
    </InfoCard>
  );
};
