import { useState } from 'react';
import {
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
} from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { useApi } from '@backstage/frontend-plugin-api';
import { usePermission } from '@backstage/plugin-permission-react';
import {
  recoveryRunCreatePermission,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import useMountedState from 'react-use/esm/useMountedState';
import { errorMessage, recoveryApiRef } from '../../api/RecoveryClient';
import { entityLabel } from '../../utils/format';

/**
 * For a pending or running test recovery: cancels it (POST /runs/:id/cancel), so that a hopeless
 * run does not hold the hypervisor host until its timeouts. It stops booting, tears its lab down
 * and ends interrupted; the run shown (followed by its page or card) says so as it does. Asks
 * first. Takes what starting one takes: recovery.run.create on the run's entity.
 */
export const CancelRun = ({ run }: { run: RecoveryRun }) => {
  const api = useApi(recoveryApiRef);
  const isMounted = useMountedState();
  const permission = usePermission({
    permission: recoveryRunCreatePermission,
    resourceRef: run.entityRef,
  });
  const [confirming, setConfirming] = useState(false);
  const [cancelling, setCancelling] = useState(false);
  const [outcome, setOutcome] = useState<
    { asked: true } | { error: string } | undefined
  >();

  const cancel = async () => {
    setConfirming(false);
    setCancelling(true);
    setOutcome(undefined);
    try {
      await api.cancelRun(run.id);
      if (isMounted()) setOutcome({ asked: true });
    } catch (error) {
      if (isMounted()) {
        setOutcome({ error: errorMessage(error) });
        setCancelling(false);
      }
    }
  };

  const entity = entityLabel(run.entityRef);
  const denial =
    !permission.loading && !permission.allowed
      ? `You are not allowed to cancel this run (${recoveryRunCreatePermission.name} on ${entity})`
      : undefined;
  return (
    <Box mt={1}>
      {/* The title on a wrapper: a disabled button gets no pointer events, so no tooltip. */}
      <span title={denial}>
        <Button
          variant="outlined"
          size="small"
          disabled={!permission.allowed || cancelling}
          onClick={() => setConfirming(true)}
        >
          {cancelling ? 'Cancelling…' : 'Cancel test recovery'}
        </Button>
      </span>
      {outcome && 'asked' in outcome ? (
        <Alert severity="info">
          Cancelling: the run stops booting, tears its lab down and ends
          interrupted.
        </Alert>
      ) : null}
      {outcome && 'error' in outcome ? (
        <Alert severity="error">Not cancelled: {outcome.error}</Alert>
      ) : null}
      <Dialog
        open={confirming}
        onClose={() => setConfirming(false)}
        aria-labelledby={`cancel-${run.id}`}
      >
        <DialogTitle id={`cancel-${run.id}`}>
          Cancel the test recovery of {entity}?
        </DialogTitle>
        <DialogContent>
          <DialogContentText>
            The run stops booting now, its lab on {run.hypervisorHost} is torn
            down, and it ends interrupted with no result: it says nothing about
            whether {entity} recovers, and readiness does not count it.
          </DialogContentText>
        </DialogContent>
        <DialogActions>
          <Button onClick={() => setConfirming(false)}>Keep running</Button>
          <Button color="secondary" onClick={cancel}>
            Cancel the run
          </Button>
        </DialogActions>
      </Dialog>
    </Box>
  );
};
