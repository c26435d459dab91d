import { Box, Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import {
  cancellerIn,
  type NightlyCheckOutcome,
  type NightlyCheckProgress,
} from '@backstage-recovery/plugin-recovery-common';
import { formatTime, formatTimeAfter } from '../../utils/format';
import { progressText } from './NightlyCheckSummary';
import { RunLink } from '../RunDetails';

/** `the nightly check of <night> was interrupted at <time> (12 of 40 entities checked)`, or under way since. */
function nightText(night: NightlyCheckProgress): string {
  return night.state === 'interrupted'
    ? `interrupted at ${formatTimeAfter(night.heardAt, night.checkedAt)}, ${progressText(night)}`
    : `under way, ${progressText(night)} so far`;
}

/**
 * What the last nightly check did about the entity where it did not test the entity with a run
 * of its own: covered it by another entity's run, left it out, or could not run it, and why. A
 * night that started its own run says nothing here: the last test recovery is that run; unless
 * someone cancelled it (a cancelled run counts for no one), which it says, naming who, as it does
 * to those that run was to cover.
 *
 * A night that did not end says so: under way (how far it got so far), or interrupted (when, and
 * how far it got), which it never hides, the entity's own run it started included, whose end it
 * did not record. A newer night that has not reached the entity is said beneath: the outcome shown
 * is then an earlier night's, dated then.
 */
export const NightlyCheckNote = ({
  nightlyCheck,
}: {
  nightlyCheck?: NightlyCheckOutcome;
}) => {
  if (!nightlyCheck) return null;
  const {
    checkedAt,
    outcome,
    reason,
    runId,
    runEntityRef,
    message,
    night,
    newer,
  } = nightlyCheck;
  const interrupted = night?.state === 'interrupted';
  const newerLine = newer ? (
    <Typography
      variant="caption"
      component="div"
      data-testid="nightly-check-newer"
    >
      {newer.state === 'interrupted'
        ? `The nightly check of ${formatTime(newer.checkedAt)} was interrupted at ${formatTimeAfter(newer.heardAt, newer.checkedAt)} before reaching it (${progressText(newer)}).`
        : `The nightly check under way since ${formatTime(newer.checkedAt)} has not reached it yet (${progressText(newer)} so far).`}
    </Typography>
  ) : null;
  const run = runId ? <RunLink runId={runId} /> : null;
  // A cancelled run counts for no one: the last test recovery is not it, so the night says so.
  const canceller = run ? cancellerIn(message) : undefined;
  if (
    outcome === 'started' &&
    !canceller &&
    !interrupted &&
    newer?.state !== 'interrupted'
  )
    return null;
  // Linked as written: a person the catalog may hold no User entity of still reads as who it is.
  const by = canceller ? (
    <EntityRefLink entityRef={canceller}>{canceller}</EntityRefLink>
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
  if (outcome === 'started' && by) {
    said = (
      <>
        not checked — its run {run} was cancelled by {by}, and a cancelled run
        counts for no one, so it was not started again
      </>
    );
    saysAll = true;
  } else if (outcome === 'covered' && by) {
    said = (
      <>
        not checked — run {run}
        {of}, which was to cover it, was cancelled by {by}
      </>
    );
    saysAll = true;
  } else if (outcome === 'covered' && run)
    said = (
      <>
        covered by run {run}
        {of}, not run on its own
      </>
    );
  else if (outcome === 'excluded')
    said = <>left out: its nightly-check annotation is false</>;
  else if (reason === 'kept-failover' && run)
    said = (
      <>
        not run — the host holds failover {run}
        {of}; release it to free the host
      </>
    );
  else if (reason === 'host-busy' && run)
    said = (
      <>
        not run — the hypervisor host stayed busy with run {run}
        {of} until the check's time ran out
      </>
    );
  else if (reason === 'host-unreachable' && run)
    said = (
      <>
        not checked — the hypervisor host could not be reached: run {run}
        {of} failed there, and the check asked no more of it that night
      </>
    );
  else if (outcome === 'refused') {
    said = <>not run — {message}</>;
    saysAll = true;
  } else {
    said = message;
    saysAll = true;
  }
  const warn =
    outcome === 'refused' ||
    !!by ||
    interrupted ||
    newer?.state === 'interrupted';
  return (
    <Box mt={1}>
      <Alert severity={warn ? 'warning' : 'info'} data-testid="nightly-check">
        Nightly check, {formatTime(checkedAt)}
        {night ? ` (${nightText(night)})` : null}: {said}
        {saysAll || outcome === 'excluded' ? null : (
          <Typography variant="caption" component="div" color="textSecondary">
            {message}
          </Typography>
        )}
        {newerLine}
      </Alert>
    </Box>
  );
};
