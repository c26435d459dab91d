import { useState } from 'react';
import {
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  Typography,
} from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { useApi } from '@backstage/frontend-plugin-api';
import {
  recoveryRunReleasePermission,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import useMountedState from 'react-use/esm/useMountedState';
import { errorMessage, recoveryApiRef } from '../../api/RecoveryClient';
import { answerOrLook, answerTimeoutMs } from '../../utils/answerWithin';
import {
  formatCount,
  formatDuration,
  formatTime,
  entityLabel,
} from '../../utils/format';
import { RetryButton } from '../common';
import {
  type FailoverPermission,
  lackingEntities,
  useFailoverPermission,
} from '../../hooks';

/** Why the release is off, or nothing while it is allowed or still being checked. */
function releaseDenial(
  permission: FailoverPermission,
  entity: string,
): string | undefined {
  if (permission.loading || permission.allowed) return undefined;
  const name = recoveryRunReleasePermission.name;
  if (permission.error) {
    return `Could not check whether you may release this failover: ${errorMessage(permission.error)}`;
  }
  if (permission.entityDenied || !permission.lacking) {
    return `You are not allowed to release this failover (${name} on ${entity})`;
  }
  const { total, list } = lackingEntities(permission.lacking);
  return (
    `You are not allowed to release this failover: it needs ${name} on each machine and service it booted, ` +
    `and you lack it on ${formatCount(total, 'entity', 'entities')}: ${list}`
  );
}

/** The steps of a run's timeline that say it was released, oldest first: one per release. */
function releaseSteps(run: RecoveryRun): string[] {
  return run.steps
    .filter(s => s.message.startsWith('Released by'))
    .map(s => s.message);
}

/**
 * For a finished failover: removes what it keeps on its hypervisor host, once production runs on
 * its primary machines again. Those machines serve production until then, so the button asks
 * first, and says what the backend removed (the release's step in the run's timeline).
 */
export const ReleaseFailover = ({
  run,
  onReleased,
}: {
  run: RecoveryRun;
  /** The run as the release left it, with its new timeline step. */
  onReleased?: (run: RecoveryRun) => void;
}) => {
  const api = useApi(recoveryApiRef);
  const isMounted = useMountedState();
  // Its own permission (a delete), not the one that starts failovers: as the backend asks it.
  const permission = useFailoverPermission(run, recoveryRunReleasePermission);
  const [confirming, setConfirming] = useState(false);
  const [releasing, setReleasing] = useState(false);
  const [outcome, setOutcome] = useState<
    | { released: string }
    | { error: string }
    | { unanswered: string }
    | undefined
  >();

  const release = async () => {
    setConfirming(false);
    setReleasing(true);
    setOutcome(undefined);
    // Released before (a release again removes nothing, and says so): only a step more is this one.
    const before = releaseSteps(run).length;
    try {
      // The teardown may take a while, but a dropped connection must not keep the button off for
      // good: past a minute, the run is read again, and its timeline says whether it was released.
      const result = await answerOrLook(
        api.releaseFailover(run.id),
        answerTimeoutMs(),
        () => api.getRun(run.id),
      );
      if (!isMounted()) return;
      if ('answer' in result) {
        setOutcome({
          released: releaseSteps(result.answer).pop() ?? 'Released.',
        });
        onReleased?.(result.answer);
        return;
      }
      const within = formatDuration(result.unanswered.timeoutMs / 1000);
      if ('lookFailed' in result) {
        setOutcome({
          unanswered:
            `No answer to the release within ${within}, and the failover could not be read again: ` +
            `${errorMessage(result.lookFailed)}. Its host may still be removing what it kept. ` +
            'Releasing again is safe: it removes what is left, and says so.',
        });
        return;
      }
      const steps = releaseSteps(result.seen);
      if (steps.length > before) {
        setOutcome({
          released: `${steps[steps.length - 1]} (no answer to the release within ${within}; its timeline says so)`,
        });
        onReleased?.(result.seen);
        return;
      }
      setOutcome({
        unanswered:
          `No answer to the release within ${within}, and the failover's timeline shows no release yet: ` +
          'its host may still be removing what it kept. Releasing again is safe: it removes what is left, and says so.',
      });
    } catch (error) {
      if (isMounted()) setOutcome({ error: errorMessage(error) });
    } finally {
      if (isMounted()) setReleasing(false);
    }
  };

  const entity = entityLabel(run.entityRef);
  const denial = releaseDenial(permission, entity);
  const denialId = `release-${run.id}-denied`;
  return (
    <Box mt={1}>
      {/* The title on a wrapper: a disabled button gets no pointer events, so no tooltip. */}
      <span title={denial}>
        <Button
          variant="outlined"
          size="small"
          disabled={!permission.allowed || releasing}
          aria-describedby={denial ? denialId : undefined}
          onClick={() => setConfirming(true)}
        >
          {releasing ? 'Releasing…' : 'Release failover machines'}
        </Button>
      </span>
      {denial ? (
        <Typography
          id={denialId}
          variant="caption"
          color="textSecondary"
          component="p"
        >
          {denial}
        </Typography>
      ) : null}
      {/* A check that failed (the permission backend out of reach a moment) is asked again on
          request: otherwise the button stays off until the page is reloaded. */}
      {!permission.loading &&
      !permission.allowed &&
      permission.error &&
      permission.retry ? (
        <RetryButton
          onRetry={permission.retry}
          what="checking the release permission"
        />
      ) : null}
      {outcome && 'released' in outcome ? (
        <Alert severity="success">{outcome.released}</Alert>
      ) : null}
      {outcome && 'error' in outcome ? (
        <Alert severity="error">Not released: {outcome.error}</Alert>
      ) : null}
      {outcome && 'unanswered' in outcome ? (
        <Alert severity="warning">{outcome.unanswered}</Alert>
      ) : null}
      <Dialog
        open={confirming}
        onClose={() => setConfirming(false)}
        aria-labelledby={`release-${run.id}`}
      >
        <DialogTitle id={`release-${run.id}`}>
          Release the failover of {entity}?
        </DialogTitle>
        <DialogContent>
          <DialogContentText>
            The machines this failover booted on {run.hypervisorHost} have
            served production since it ran. Releasing removes them, their
            networks and images from that host, for good: do it only once
            production runs on its primary machines again. Until then, test
            recoveries that need their subnets are refused. Whatever they wrote
            since {formatTime(run.startedAt ?? run.createdAt)} goes with them:
            no capture holds it (captures read primary machines only), so copy
            that data back to production first (fail back).
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirming(false)}>Cancel</Button>
          <Button color="secondary" onClick={release}>
            Release
          </Button>
        </DialogActions>
      </Dialog>
    </Box>
  );
};
