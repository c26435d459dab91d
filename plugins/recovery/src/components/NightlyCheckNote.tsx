import { useState } from 'react';
import {
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogTitle,
  Link,
  Typography,
} from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import type { NightlyCheckOutcome } from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { errorMessage, recoveryApiRef } from '../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from './answerWithin';
import { formatTime } from './format';
import { RetryButton } from './LoadError';
import { RunDetails } from './RunDetails';

/** The run a night's outcome names, opened in place: a failover's shows how to release it. */
const RunDialog = ({ runId, onClose }: { runId: string; onClose: () => void }) => {
  const api = useApi(recoveryApiRef);
  const state = useAsyncRetry(() => answerWithin(api.getRun(runId), answerTimeoutMs()), [api, runId]);
  return (
    <Dialog open onClose={onClose} maxWidth="md" fullWidth aria-labelledby="nightly-check-run-title">
      <DialogTitle id="nightly-check-run-title">Run {runId}</DialogTitle>
      <DialogContent>
        {state.loading && !state.value ? <Progress /> : null}
        {state.error ? (
          <Alert severity="error" action={<RetryButton onRetry={state.retry} what="loading the run" />}>
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
 * What the last nightly check did about the entity where it did not test the entity with a run
 * of its own: covered it by another entity's run, left it out, or could not run it, and why. A
 * night that started its own run says nothing here: the last test recovery is that run.
 */
export const NightlyCheckNote = ({ nightlyCheck }: { nightlyCheck?: NightlyCheckOutcome }) => {
  const [open, setOpen] = useState(false);
  if (!nightlyCheck || nightlyCheck.outcome === 'started') return null;
  const { checkedAt, outcome, reason, runId, runEntityRef, message } = nightlyCheck;
  const run = runId ? (
    <Link component="button" variant="body2" underline="always" onClick={() => setOpen(true)} style={{ verticalAlign: 'baseline' }}>
      {runId}
    </Link>
  ) : null;
  const of = runEntityRef ? (
    <>
      {' '}
      of <EntityRefLink entityRef={runEntityRef} />
    </>
  ) : null;
  // Said in the card's words where the outcome names its run; else (none, or one the catalog
  // hides from the caller) in the check's own.
  let said: React.ReactNode;
  let saysAll = false;
  if (outcome === 'covered' && run) said = <>covered by run {run}{of}, not run on its own</>;
  else if (outcome === 'excluded') said = <>left out: its nightly-check annotation is false</>;
  else if (reason === 'kept-failover' && run) said = <>not run — the host holds failover {run}{of}; release it to free the host</>;
  else if (reason === 'host-busy' && run) said = <>not run — the hypervisor host stayed busy with run {run}{of} until the check's time ran out</>;
  else if (outcome === 'refused') {
    said = <>not run — {message}</>;
    saysAll = true;
  } else {
    said = message;
    saysAll = true;
  }
  return (
    <Box mt={1}>
      <Alert severity={outcome === 'refused' ? 'warning' : 'info'} data-testid="nightly-check">
        Nightly check, {formatTime(checkedAt)}: {said}
        {saysAll || outcome === 'excluded' ? null : (
          <Typography variant="caption" component="div" color="textSecondary">
            {message}
          </Typography>
        )}
      </Alert>
      {open && runId ? <RunDialog runId={runId} onClose={() => setOpen(false)} /> : null}
    </Box>
  );
};
