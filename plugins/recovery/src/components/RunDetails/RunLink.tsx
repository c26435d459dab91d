import { useState } from 'react';
import {
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  Link,
} from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { Progress } from '@backstage/core-components';
import { useApi } from '@backstage/frontend-plugin-api';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { errorMessage, recoveryApiRef } from '../../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from '../../utils/answerWithin';
import { RetryButton } from '../common';
import { RunDetails } from './RunDetails';

/** The run a night's outcome names, opened in place: a failover's shows how to release it. */
const RunDialog = ({
  runId,
  onClose,
}: {
  runId: string;
  onClose: () => void;
}) => {
  const api = useApi(recoveryApiRef);
  const state = useAsyncRetry(
    () => answerWithin(api.getRun(runId), answerTimeoutMs()),
    [api, runId],
  );
  return (
    <Dialog
      open
      onClose={onClose}
      maxWidth="md"
      fullWidth
      aria-labelledby="nightly-check-run-title"
    >
      <DialogTitle id="nightly-check-run-title">Run {runId}</DialogTitle>
      <DialogContent>
        {state.loading && !state.value ? <Progress /> : null}
        {state.error ? (
          <Alert
            severity="error"
            action={
              <RetryButton onRetry={state.retry} what="loading the run" />
            }
          >
            Could not load run {runId}: {errorMessage(state.error)}
          </Alert>
        ) : null}
        {state.value ? <RunDetails run={state.value} maxSteps={12} /> : null}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Close</Button>
      </DialogActions>
    </Dialog>
  );
};

/**
 * A run's id that opens the run in a dialog, where the page it is on shows no run of that entity:
 * the run a nightly check's outcome names, a failover kept on the host, say.
 */
export const RunLink = ({ runId }: { runId: string }) => {
  const [open, setOpen] = useState(false);
  return (
    <>
      <Link
        component="button"
        variant="body2"
        underline="always"
        onClick={() => setOpen(true)}
        style={{ verticalAlign: 'baseline' }}
      >
        {runId}
      </Link>
      {open ? <RunDialog runId={runId} onClose={() => setOpen(false)} /> : null}
    </>
  );
};
