import { Alert } from '@material-ui/lab';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import { couldNot, errorMessage } from '../../api/RecoveryClient';
import { CardNote, Section } from './cardLayout';
import {
  formatTime,
  interruptionReason,
  isRunActive,
  runModeName,
  sameRef,
  entityLabel,
} from '../../utils/format';
import { RetryButton } from '../common';
import { RunDetails } from '../RunDetails';
import { DegradedFailoverNote } from './ReadinessSections';

/**
 * The run the card follows, live or finished since: whose it is when another entity's, why the
 * host is busy with it when the card follows it for that, what a failover of the entity leaves
 * behind, and its details.
 */
export const FollowedRunSection = ({
  run,
  entityRef,
  busyWithId,
  pollError,
  rtoObjectiveSeconds,
}: {
  run: RecoveryRun;
  entityRef: string;
  /** The id of another entity's run the card follows because it holds the host. */
  busyWithId?: string;
  pollError?: Error;
  /** The entity's RTO objective, which only its own runs are measured against. */
  rtoObjectiveSeconds: number;
}) => {
  const running = isRunActive(run);
  // A run of another entity (a system containing this one) is not measured against this
  // entity's RTO, and its section says whose it is.
  const runOfOther = !sameRef(run.entityRef, entityRef);
  return (
    <Section
      title={`${runModeName(run.mode, true)}${
        runOfOther ? ` of ${entityLabel(run.entityRef)}` : ''
      }${running ? ' in progress' : ''}`}
    >
      {running && run.id === busyWithId && (
        <Alert severity="info">
          Hypervisor host {run.hypervisorHost} is busy with a{' '}
          {runModeName(run.mode)} of {entityLabel(run.entityRef)} (started{' '}
          {formatTime(run.startedAt ?? run.createdAt)}): following it here.{' '}
          {/* What a failover boots stays on the host, serving production, after it ends. */}
          {run.mode === 'failover'
            ? 'A failover keeps the machines it boots on the host: a test recovery that needs them, or their subnets, is refused until the failover is released.'
            : 'A test recovery can start once it has finished.'}
        </Alert>
      )}
      {/* The card's own failover: no test, and what it boots stays. */}
      {run.mode === 'failover' && !runOfOther && run.id !== busyWithId && (
        <Alert severity="warning">
          A failover of {entityLabel(entityRef)}: live copies of its plan's
          machines on production's subnets on {run.hypervisorHost}, kept there,
          also if it fails. Once production runs on its primary machines again,
          release it (Release failover machines, once it has finished).
        </Alert>
      )}
      <DegradedFailoverNote run={run} />
      {pollError && (
        <Alert severity="warning">
          Lost contact with the run: {errorMessage(pollError)}. Retrying…
        </Alert>
      )}
      <RunDetails
        run={run}
        rtoObjectiveSeconds={runOfOther ? undefined : rtoObjectiveSeconds}
        maxSteps={12}
        headingLevel={4}
      />
    </Section>
  );
};

/**
 * A run the card followed that a failover preempted (the card follows that failover now), until
 * dismissed: without it the run being watched would vanish without a word.
 */
export const InterruptedRunNote = ({
  interrupted,
  entityRef,
  onClose,
}: {
  interrupted: RecoveryRun;
  entityRef: string;
  onClose: () => void;
}) => (
  <CardNote>
    <Alert severity="warning" onClose={onClose}>
      The {runModeName(interrupted.mode)}
      {sameRef(interrupted.entityRef, entityRef)
        ? ''
        : ` of ${entityLabel(interrupted.entityRef)}`}{' '}
      started {formatTime(interrupted.startedAt ?? interrupted.createdAt)} was
      interrupted: {interruptionReason(interrupted)} It does not count for
      readiness; the run history on the Recovery tab keeps it.
    </Alert>
  </CardNote>
);

/** The check for a run holding the host failed: until it is asked again, starting stays off. */
export const ActiveRunCheckError = ({
  error,
  onRetry,
}: {
  error: Error;
  onRetry: () => void;
}) => (
  <CardNote>
    {/* Otherwise asked again only after a run the card follows ends: a failed check on load
        would stay until the page is reloaded. */}
    <Alert
      severity="warning"
      action={
        <RetryButton onRetry={onRetry} what="checking for a run in progress" />
      }
    >
      {couldNot('check for a recovery run in progress', error)}
    </Alert>
  </CardNote>
);
