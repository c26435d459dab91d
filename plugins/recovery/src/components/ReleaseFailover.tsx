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
import { useApi } from '@backstage/core-plugin-api';
import { usePermission } from '@backstage/plugin-permission-react';
import {
  recoveryRunFailoverPermission,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import useMountedState from 'react-use/esm/useMountedState';
import { errorMessage, recoveryApiRef } from '../api/RecoveryClient';
import { shortRef } from './format';

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
  const permission = usePermission({
    permission: recoveryRunFailoverPermission,
    resourceRef: run.entityRef,
  });
  const [confirming, setConfirming] = useState(false);
  const [releasing, setReleasing] = useState(false);
  const [outcome, setOutcome] = useState<
    { released: string } | { error: string } | undefined
  >();

  const release = async () => {
    setConfirming(false);
    setReleasing(true);
    setOutcome(undefined);
    try {
      const released = await api.releaseFailover(run.id);
      if (!isMounted()) return;
      const step = [...released.steps].reverse().find(s => s.message.startsWith('Released by'));
      setOutcome({ released: step?.message ?? 'Released.' });
      onReleased?.(released);
    } catch (error) {
      if (isMounted()) setOutcome({ error: errorMessage(error) });
    } finally {
      if (isMounted()) setReleasing(false);
    }
  };

  const entity = shortRef(run.entityRef);
  return (
    <Box mt={1}>
      <Button
        variant="outlined"
        size="small"
        disabled={!permission.allowed || releasing}
        onClick={() => setConfirming(true)}
      >
        {releasing ? 'Releasing…' : 'Release failover machines'}
      </Button>
      {!permission.loading && !permission.allowed ? (
        <Typography variant="caption" color="textSecondary" component="p">
          {permission.error
            ? `Could not check whether you may release this failover: ${errorMessage(permission.error)}`
            : `You are not allowed to release this failover (recovery.run.failover on ${entity})`}
        </Typography>
      ) : null}
      {outcome && 'released' in outcome ? (
        <Alert severity="success">{outcome.released}</Alert>
      ) : null}
      {outcome && 'error' in outcome ? (
        <Alert severity="error">Not released: {outcome.error}</Alert>
      ) : null}
      <Dialog
        open={confirming}
        onClose={() => setConfirming(false)}
        aria-labelledby={`release-${run.id}`}
      >
        <DialogTitle id={`release-${run.id}`}>Release the failover of {entity}?</DialogTitle>
        <DialogContent>
          <DialogContentText>
            The machines this failover booted on {run.hypervisorHost} have served production since
            it ran. Releasing removes them, their networks and images from that host, for good:
            do it only once production runs on its primary machines again. Until then, test
            recoveries that need their subnets are refused.
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
