import { useRef, useState } from 'react';
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
  TextField,
} from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { Progress } from '@backstage/core-components';
import { useApi } from '@backstage/frontend-plugin-api';
import {
  earlierRecoveryPoints,
  readRecoveryPoint,
  type RecoveryPointTooEarly,
  recoveryPointTooEarly,
} from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import {
  couldNot,
  errorMessage,
  recoveryApiRef,
} from '../../api/RecoveryClient';
import { answerTimeoutMs, answerWithin } from '../../utils/answerWithin';
import { formatTime, machineName } from '../../utils/format';
import { RetryButton } from '../common';

/** The most captures `GET /captures` lists of one machine: more than retention keeps. */
const MAX_CAPTURES = 500;

/**
 * The recovery points the machines' kept captures allow (earlierRecoveryPoints), asked afresh at
 * each opening of a dialog (`onOpen` called first): captures are taken on a schedule, and
 * retention drops old ones. Nothing while closed.
 */
export function useRecoveryPoints(
  open: boolean,
  machineRefs: string[],
  onOpen?: () => void,
) {
  const api = useApi(recoveryApiRef);
  const machinesKey = machineRefs.join('\n');
  const opened = useRef(onOpen);
  opened.current = onOpen;
  return useAsyncRetry(async () => {
    if (!open) return undefined;
    opened.current?.();
    const captures = await answerWithin(
      Promise.all(
        machinesKey.split('\n').map(ref => api.listCaptures(ref, MAX_CAPTURES)),
      ),
      answerTimeoutMs(),
    );
    return earlierRecoveryPoints(captures);
  }, [open, api, machinesKey]);
}

/** The choice of a time typed in, rather than one of the points listed. */
const TYPED = 'typed';

/**
 * A point as listed: to the second, as times read elsewhere, but to the millisecond where another
 * point falls in the same second (an entity's machines captured within one), so no two read alike.
 */
export function pointLabel(point: string, points: string[]): string {
  const label = formatTime(point);
  if (!points.some(other => other !== point && formatTime(other) === label))
    return label;
  return withMilliseconds(point);
}

/** A time to the millisecond where it has any: a point typed in, or a capture's. */
function withMilliseconds(iso: string): string {
  const ms = new Date(iso).toISOString().slice(20, 23);
  const label = formatTime(iso);
  return ms === '000' ? label : `${label.slice(0, -' UTC'.length)}.${ms} UTC`;
}

/**
 * The recovery point a time typed in names, in UTC; else what is wrong with it, read as `POST
 * /runs` reads it, and a time ahead of the clock (no capture is of it yet).
 */
function typedPoint(
  text: string,
  now = Date.now(),
): { point: string } | { problem: string } {
  const read = readRecoveryPoint(text);
  if ('point' in read && Date.parse(read.point) > now)
    return { problem: 'in the future: no capture is of it yet' };
  return read;
}

/** Why the backend refused the point chosen: each machine without a capture that old. */
const Refusal = ({
  refused,
  onChoose,
}: {
  refused: RecoveryPointTooEarly;
  onChoose: (point: string) => void;
}) => {
  const earliest = refused.earliestRecoveryPoint;
  return (
    <Alert
      severity="warning"
      action={
        earliest && (
          <Button
            color="inherit"
            size="small"
            onClick={() => onChoose(earliest)}
          >
            Choose {withMilliseconds(earliest)}
          </Button>
        )
      }
    >
      No capture kept at or before {withMilliseconds(refused.recoveryPoint)} of{' '}
      {[
        ...refused.machines.map(
          m =>
            `${machineName(m.machineRef)} (its oldest kept is of ${withMilliseconds(m.oldestCaptureAt)})`,
        ),
        ...refused.neverCaptured.map(m => `${machineName(m)} (never captured)`),
      ].join(', ')}
      .{' '}
      {refused.neverCaptured.length > 0
        ? `Capture ${refused.neverCaptured.map(machineName).join(', ')} first: ` +
          'no recovery point can restore a machine never captured.'
        : earliest &&
          `The earliest point every machine allows is ${withMilliseconds(earliest)}.`}
    </Alert>
  );
};

/**
 * The dialog that starts a test recovery at an earlier recovery point: it lists the points the
 * kept captures of `machineRefs` (the plan's machines) allow, one per capture round
 * (earlierRecoveryPoints), or takes a time typed in, and calls `onStart` with the one chosen. It
 * stays open while the run starts: `onStart` rejects with the backend's refusal of a point earlier
 * than some machines' kept captures, said here with the earliest point they allow.
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
  onStart: (recoveryPoint: string) => Promise<void> | void;
}) => {
  const [chosen, setChosen] = useState<string | undefined>();
  const [typed, setTyped] = useState('');
  const [starting, setStarting] = useState(false);
  /** Why a start at the point chosen was refused: earlier than machines' kept captures, else. */
  const [refused, setRefused] = useState<
    RecoveryPointTooEarly | Error | undefined
  >();
  const state = useRecoveryPoints(open, machineRefs, () => {
    setChosen(undefined);
    setTyped('');
    setRefused(undefined);
  });
  const points = state.value;
  const read = typed === '' ? undefined : typedPoint(typed);
  const point =
    chosen === TYPED
      ? read && 'point' in read
        ? read.point
        : undefined
      : chosen;

  /** The earliest point a refusal offers: among those listed, else typed in. */
  const choose = (offered: string) => {
    setRefused(undefined);
    if (points?.includes(offered)) {
      setChosen(offered);
    } else {
      setChosen(TYPED);
      setTyped(offered);
    }
  };

  const start = async (recoveryPoint: string) => {
    setStarting(true);
    setRefused(undefined);
    try {
      await onStart(recoveryPoint);
    } catch (e) {
      setRefused(recoveryPointTooEarly(e) ?? (e as Error));
    } finally {
      setStarting(false);
    }
  };

  return (
    <Dialog
      open={open}
      onClose={onClose}
      aria-labelledby="recovery-point-title"
      fullWidth
      maxWidth="sm"
    >
      <DialogTitle id="recovery-point-title">
        Test recovery at an earlier recovery point
      </DialogTitle>
      <DialogContent>
        <DialogContentText>
          Each machine restores its newest kept capture taken at or before the
          point chosen: such a run proves that this point boots, and does not
          count for readiness. The points listed are the ends of capture rounds,
          where every machine restores its capture of that round.
        </DialogContentText>
        {refused instanceof Error ? (
          <Alert severity="error">
            Could not start the test recovery: {errorMessage(refused)}
          </Alert>
        ) : (
          refused && <Refusal refused={refused} onChoose={choose} />
        )}
        {state.loading ? (
          <Progress />
        ) : state.error ? (
          <Alert
            severity="error"
            action={
              <RetryButton onRetry={state.retry} what="loading the captures" />
            }
          >
            {couldNot('load the captures', state.error)}
          </Alert>
        ) : points ? (
          <Box mt={1}>
            {points.length === 0 && (
              <Alert severity="info">
                The kept captures allow no recovery point earlier than the
                latest state: every machine needs a capture taken at or before
                it.
              </Alert>
            )}
            <RadioGroup
              aria-label="Recovery point"
              name="recovery-point"
              value={chosen ?? ''}
              onChange={e => setChosen(e.target.value)}
            >
              {points.map(p => (
                <FormControlLabel
                  key={p}
                  value={p}
                  control={<Radio />}
                  label={pointLabel(p, points)}
                />
              ))}
              <FormControlLabel
                value={TYPED}
                control={<Radio />}
                label="Another time"
              />
            </RadioGroup>
            <Box ml={4}>
              <TextField
                id="recovery-point-typed"
                fullWidth
                size="small"
                label="Time, ISO 8601 with its zone"
                placeholder="2026-11-02T03:00:00+02:00"
                value={typed}
                onChange={e => {
                  setTyped(e.target.value);
                  setChosen(TYPED);
                }}
                onFocus={() => setChosen(TYPED)}
                error={!!read && 'problem' in read}
                helperText={
                  !read
                    ? 'Such as 2026-11-02T01:00:00Z or 2026-11-02T03:00:00+02:00'
                    : 'problem' in read
                      ? `Not a recovery point: ${read.problem}`
                      : `Read as ${withMilliseconds(read.point)}`
                }
              />
            </Box>
          </Box>
        ) : null}
      </DialogContent>
      <DialogActions>
        <Button onClick={onClose}>Cancel</Button>
        <Button
          color="primary"
          variant="contained"
          disabled={!point || state.loading || starting}
          onClick={() => point && start(point)}
        >
          Start test recovery
        </Button>
      </DialogActions>
    </Dialog>
  );
};
