import { useState } from 'react';
import {
  Box,
  Button,
  Dialog,
  DialogActions,
  DialogContent,
  DialogContentText,
  DialogTitle,
  FormControlLabel,
  Radio,
  RadioGroup,
} from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import type { Capture } from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { errorMessage, recoveryApiRef } from '../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from './answerWithin';
import { formatTime } from './format';
import { RetryButton } from './LoadError';

/** The most captures `GET /captures` lists of one machine: more than retention keeps. */
const MAX_CAPTURES = 500;

/**
 * The recovery points the kept captures allow, newest first, as ISO times: each capture time at
 * which every machine has a capture taken at or before it (a machine whose captures start later
 * rules out the points before its oldest), less those that would restore every machine's newest
 * capture, which is the latest state (the card's "Run test recovery"). Each point differs from the
 * next in at least one machine's capture: it is one of them's time.
 */
export function earlierRecoveryPoints(capturesByMachine: Capture[][]): string[] {
  if (capturesByMachine.length === 0) return [];
  const times = capturesByMachine.map(captures =>
    captures.map(c => Date.parse(c.createdAt)).filter(t => !Number.isNaN(t)),
  );
  if (times.some(t => t.length === 0)) return [];
  // Every machine has a capture at or before a point from the newest of the oldest captures on;
  // from the newest of the newest on, each machine restores its newest: the latest state.
  const earliest = Math.max(...times.map(t => Math.min(...t)));
  const latest = Math.max(...times.map(t => Math.max(...t)));
  const points = new Set(times.flat().filter(t => t >= earliest && t < latest));
  return [...points].sort((a, b) => b - a).map(t => new Date(t).toISOString());
}

/**
 * A point as listed: to the second, as times read elsewhere, but to the millisecond where another
 * point falls in the same second (an entity's machines captured within one), so no two read alike.
 */
export function pointLabel(point: string, points: string[]): string {
  const label = formatTime(point);
  if (!points.some(other => other !== point && formatTime(other) === label)) return label;
  return `${label.slice(0, -' UTC'.length)}.${new Date(point).toISOString().slice(20, 23)} UTC`;
}

/**
 * The dialog that starts a test recovery at an earlier recovery point: it lists the points the
 * kept captures of `machineRefs` (the plan's machines) allow, and calls `onStart` with the one
 * chosen.
 */
export const RecoveryPointDialog = ({
  open,
  machineRefs,
  onClose,
  onStart,
}: {
  open: boolean;
  machineRefs: string[];
  onClose: () => void;
  onStart: (recoveryPoint: string) => void;
}) => {
  const api = useApi(recoveryApiRef);
  const [chosen, setChosen] = useState<string | undefined>();
  const machinesKey = machineRefs.join('\n');
  // Asked afresh at each opening: captures are taken on a schedule, and retention drops old ones.
  const state = useAsyncRetry(async () => {
    if (!open) return undefined;
    setChosen(undefined);
    const refs = machinesKey.split('\n');
    const captures = await answerWithin(
      Promise.all(refs.map(ref => api.listCaptures(ref, MAX_CAPTURES))),
      answerTimeoutMs(),
    );
    return earlierRecoveryPoints(captures);
  }, [open, api, machinesKey]);
  const points = state.value;

  return (
    <Dialog open={open} onClose={onClose} aria-labelledby="recovery-point-title" fullWidth maxWidth="sm">
      <DialogTitle id="recovery-point-title">Test recovery at an earlier recovery point</DialogTitle>
      <DialogContent>
        <DialogContentText>
          Each machine restores its newest kept capture taken at or before the point chosen: such a
          run proves that this point boots, and does not count for readiness.
        </DialogContentText>
        {state.loading ? (
          <Progress />
        ) : state.error ? (
          <Alert
            severity="error"
            action={<RetryButton onRetry={state.retry} what="loading the captures" />}
          >
            Could not load the captures: {errorMessage(state.error)}
          </Alert>
        ) : points && points.length === 0 ? (
          <Alert severity="info">
            The kept captures allow no recovery point earlier than the latest state: every machine
            needs a capture taken at or before it.
          </Alert>
        ) : points ? (
          <Box mt={1}>
            <RadioGroup
              aria-label="Recovery point"
              name="recovery-point"
              value={chosen ?? ''}
              onChange={e => setChosen(e.target.value)}
            >
              {points.map(point => (
                <FormControlLabel
                  key={point}
                  value={point}
                  control={<Radio />}
                  label={pointLabel(point, points)}
                />
              ))}
            </RadioGroup>
          </Box>
        ) : null}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          color="primary"
          variant="contained"
          disabled={!chosen || state.loading}
          onClick={() => chosen && onStart(chosen)}
        >
          Start test recovery
        </Button>
      </DialogActions>
    </Dialog>
  );
};
