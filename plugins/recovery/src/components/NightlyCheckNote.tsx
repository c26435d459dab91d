import { Box, Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import type { NightlyCheckOutcome } from '@backstage-recovery/plugin-recovery-common';
import { formatTime } from './format';
import { RunLink } from './RunLink';

/**
 * What the last nightly check did about the entity where it did not test the entity with a run
 * of its own: covered it by another entity's run, left it out, or could not run it, and why. A
 * night that started its own run says nothing here: the last test recovery is that run.
 */
export const NightlyCheckNote = ({ nightlyCheck }: { nightlyCheck?: NightlyCheckOutcome }) => {
  if (!nightlyCheck || nightlyCheck.outcome === 'started') return null;
  const { checkedAt, outcome, reason, runId, runEntityRef, message } = nightlyCheck;
  const run = runId ? <RunLink runId={runId} /> : null;
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
    </Box>
  );
};
