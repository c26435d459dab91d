import { useEffect, useRef, useState } from 'react';
import { Box, Button, LinearProgress, Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import CameraAltIcon from '@material-ui/icons/CameraAlt';
import { useApi } from '@backstage/frontend-plugin-api';
import {
  type Capture,
  captureFailure,
  type CaptureRequestProgress,
  captureInTurn,
  type Readiness,
} from '@backstage-recovery/plugin-recovery-common';
import {
  describeMachineState,
  machineNotServing,
  machineStateWorthSaying,
} from '@backstage-recovery/plugin-recovery-common';
import useMountedState from 'react-use/esm/useMountedState';
import { errorMessage, recoveryApiRef } from '../../api/RecoveryClient';
import {
  answerTimeoutMs,
  answerWithin,
  CAPTURE_ANSWER_TIMEOUT_MS,
  lookAfterNoAnswer,
  NoAnswerError,
} from '../../utils/answerWithin';
import { useCardStyles } from './cardLayout';
import { SIGNALLED_POLL_INTERVAL_MS, useRecoverySignals } from '../../hooks';
import {
  formatCount,
  formatDuration,
  formatTime,
  sameRef,
  machineName,
  readableTimes,
} from '../../utils/format';

/** A machine's capture left unanswered past its bound, and what its captures said after. */
interface CaptureUnanswered {
  machineRef: string;
  timeoutMs: number;
  /** The machines of the plan after it: not asked for. */
  after: number;
  /** Its newest capture, newer than the one readiness showed when the capture began. */
  taken?: Capture;
  /** Why its captures could not be listed. */
  lookFailed?: Error;
}

function captureUnansweredText(u: CaptureUnanswered): string {
  const machine = machineName(u.machineRef);
  const said = `No answer to the capture of ${machine} within ${formatDuration(u.timeoutMs / 1000)}`;
  const found = u.taken
    ? `, but ${machine} has a capture taken ${formatTime(u.taken.createdAt)}, newer than the one shown when this capture began: most likely this one, its answer lost on the way.`
    : u.lookFailed
      ? `, and its captures could not be listed: ${errorMessage(u.lookFailed)}. The backend may still be taking it.`
      : // The backend's own limit is configurable: a longer one may still be running.
        `, and no newer capture of it is kept: the backend may still be taking it (it stops a machine's capture at recovery.captures.timeout, 30m unless configured), or never had the request. Capturing again is refused while it is under way, saying since when.`;
  const rest =
    u.after > 0
      ? ` Not captured: ${formatCount(u.after, 'machine', 'machines')} after it.`
      : '';
  return `${said}${found}${rest}`;
}

/**
 * The machine being captured, how far along the plan that is, and since when (this browser's
 * clock).
 */
interface Capturing {
  machineRef?: string;
  index: number;
  total?: number;
  since?: number;
  /** The last progress line of its copy under way (a large volume, an image), where said. */
  progress?: CaptureRequestProgress;
}

/** How the last capture from the card ended; `saying`: captures kept whose machine's state is worth saying (not serving). */
type CaptureResult = (
  | { ok: true; count: number }
  | { ok: false; error: Error; kept: string[] }
  | { ok: false; unanswered: CaptureUnanswered; kept: string[] }
) & { saying?: Capture[] };

/**
 * "Capture now" from the card: a machine a request, each shown as it is taken (a site's images
 * take minutes to save). `onCaptured` is called as each capture is kept, for readiness to be
 * reloaded. `capturing` is undefined when none is under way.
 */
export function useCaptureFlow({
  entityRef,
  readiness,
  onCaptured,
}: {
  entityRef: string;
  /** What the card shows: its captures tell a capture left unanswered from one taken since. */
  readiness: Readiness | undefined;
  onCaptured: () => void;
}) {
  const api = useApi(recoveryApiRef);
  // False once the card has moved on to another entity (unmounted): a capture that answers
  // after that is about the previous entity and is dropped.
  const mounted = useMountedState();
  const [capturing, setCapturing] = useState<Capturing | undefined>();
  const [captureResult, setCaptureResult] = useState<
    CaptureResult | undefined
  >();
  // Each machine's capture under way: the client polls its capture request until it ends, so
  // the card stops that polling once it unmounts (the backend's capture goes on regardless).
  const underWay = useRef(new Set<AbortController>());
  useEffect(() => {
    const controllers = underWay.current;
    return () => controllers.forEach(c => c.abort());
  }, []);
  // With Backstage signals, a request is polled as it changes (and slowly all the same); without,
  // at the client's own rate.
  const changes = useRecoverySignals(entityRef, SIGNALLED_POLL_INTERVAL_MS);

  const captureNow = async () => {
    setCapturing({ index: 0 });
    setCaptureResult(undefined);
    const kept: string[] = [];
    // Captures of machines not serving when captured (or whose health check had not passed yet).
    const saying: Capture[] = [];
    // The machine whose request is under way, and how many follow it.
    let current: { machineRef: string; after: number } | undefined;
    // No bound over the whole capture (it grows with the site), but over each request: the plan
    // within a minute, a machine's capture within CAPTURE_ANSWER_TIMEOUT_MS.
    const bounded = {
      getBootPlan: (ref: string) =>
        answerWithin(api.getBootPlan(ref), answerTimeoutMs()),
      getReadiness: (ref: string) =>
        answerWithin(api.getReadiness(ref), answerTimeoutMs()),
      captureNow: async (ref: string, machineRef?: string) => {
        // Unmounted while the plan was asked for, or between machines: none is started.
        if (!mounted()) throw new DOMException('Card unmounted', 'AbortError');
        const capture = new AbortController();
        underWay.current.add(capture);
        try {
          return await answerWithin(
            api.captureNow(ref, machineRef, {
              signal: capture.signal,
              ...(changes.live && { changes }),
              onProgress: progress => {
                if (mounted()) setCapturing(c => c && { ...c, progress });
              },
            }),
            CAPTURE_ANSWER_TIMEOUT_MS,
          );
        } finally {
          // Past its bound the polling stops too; once ended, aborting does nothing.
          capture.abort();
          underWay.current.delete(capture);
        }
      },
    };
    try {
      const captures = await captureInTurn(bounded, entityRef, {
        // Without a plan (a dependency cycle) the machines readiness lists: no need to ask again.
        machines:
          readiness && !readiness.plan
            ? readiness.captures.map(c => c.machineRef)
            : undefined,
        start: (machineRef, index, total) => {
          current = { machineRef, after: total - index - 1 };
          if (mounted())
            setCapturing({ machineRef, index, total, since: Date.now() });
        },
        captured: ({ capture }) => {
          kept.push(capture.machineRef);
          // Its "Last capture" moves on now, not once every machine of the plan is captured.
          if (mounted()) onCaptured();
          if (
            machineStateWorthSaying(capture.machineState) ||
            capture.restartWarning ||
            capture.pauseWarning
          )
            saying.push(capture);
        },
      });
      if (!mounted()) return;
      setCaptureResult({ ok: true, count: captures.length, saying });
    } catch (e) {
      const machine = current;
      if (e instanceof NoAnswerError && machine) {
        // Not said failed: the backend may have taken it, its answer lost, or be taking it still.
        // Its newest capture says which, against the one readiness showed when this began.
        const { machineRef, after } = machine;
        const shown = readiness?.captures.find(c =>
          sameRef(c.machineRef, machineRef),
        )?.latest;
        const look = await lookAfterNoAnswer(() =>
          api.listCaptures(machineRef, 1),
        );
        if (!mounted()) return;
        const newest = 'seen' in look ? look.seen[0] : undefined;
        const taken =
          newest &&
          newest.id !== shown?.id &&
          (!shown || Date.parse(newest.createdAt) > Date.parse(shown.createdAt))
            ? newest
            : undefined;
        setCaptureResult({
          ok: false,
          unanswered: {
            machineRef,
            timeoutMs: e.timeoutMs,
            after,
            taken,
            lookFailed: 'lookFailed' in look ? look.lookFailed : undefined,
          },
          kept,
          saying,
        });
        // Those kept reloaded readiness as each was taken; one taken unanswered has not.
        if (taken) onCaptured();
        return;
      }
      if (!mounted()) return;
      setCaptureResult({ ok: false, error: e as Error, kept, saying });
    } finally {
      if (mounted()) setCapturing(undefined);
    }
  };

  return { capturing, captureResult, captureNow };
}

/**
 * The captures kept of machines that were not serving when captured (stopped, restarting, paused
 * by someone else, unhealthy), each with its state: kept all the same, but no proof production was
 * well; of those whose health check had not passed yet; and of those whose pause neared its limit.
 */
const MachineStatesNote = ({ captures }: { captures: Capture[] }) => {
  if (captures.length === 0) return null;
  const notServing = captures.some(c => machineNotServing(c.machineState));
  return (
    <Alert
      severity={
        notServing || captures.some(c => c.pauseWarning || c.restartWarning)
          ? 'warning'
          : 'info'
      }
    >
      {captures.map(c => (
        <div key={c.id}>
          {machineStateWorthSaying(c.machineState) &&
            (machineNotServing(c.machineState)
              ? `${machineName(c.machineRef)} was ${describeMachineState(c.machineState!)} when captured: the capture holds a machine that was not serving. It is kept (its disk is the best copy there is), but readiness puts what it serves at risk until it is captured running and not unhealthy.`
              : `${machineName(c.machineRef)} was ${describeMachineState(c.machineState!)} when captured.`)}
          {c.restartWarning &&
            ` ${machineName(c.machineRef)} was ${c.restartWarning}.`}
          {c.pauseWarning &&
            ` ${machineName(c.machineRef)}'s capture paused production close to its limit: ${c.pauseWarning}.`}
        </div>
      ))}
    </Alert>
  );
};

/** How the last capture from the card ended: what it kept, and what it could not. */
export const CaptureResultNote = ({
  result,
}: {
  result: CaptureResult | undefined;
}) => {
  const classes = useCardStyles();
  if (!result) return null;
  return (
    <Box className={classes.section}>
      <MachineStatesNote captures={result.saying ?? []} />
      {result.ok ? (
        <Alert severity="success">
          Captured {formatCount(result.count, 'machine', 'machines')}.
        </Alert>
      ) : 'unanswered' in result ? (
        <Alert severity="warning">
          {captureUnansweredText(result.unanswered)}
          {result.kept.length > 0 &&
            ` Captured before it, and kept: ${result.kept.map(machineName).join(', ')}.`}
        </Alert>
      ) : (
        <Alert severity="error">
          Capture failed: {errorMessage(result.error)}
          {/* A failure does not stop the others: those kept came before it or after; several
              failures (a CaptureFailedError) name them in their own message already. */}
          {result.kept.length > 0 &&
            !captureFailure(result.error) &&
            `. Captured, and kept: ${result.kept.map(machineName).join(', ')}.`}
        </Alert>
      )}
    </Box>
  );
};

/**
 * How long the machine being captured has been, ticking each second: one machine's capture may
 * take minutes (its whole image is saved), and a count that moves shows the request is alive.
 * A timer, not a live region: a screen reader is not told each second.
 */
const CaptureElapsed = ({
  machineRef,
  since,
}: {
  machineRef: string;
  since: number;
}) => {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [since]);
  const seconds = (now - since) / 1000;
  return (
    <Typography variant="caption" color="textSecondary" role="timer">
      Capture of {machineName(machineRef)} under way
      {/* "for 0s" as each machine starts reads as a capture that took no time. */}
      {seconds >= 1 ? ` for ${formatDuration(seconds)}` : ''}
    </Typography>
  );
};

/**
 * The last progress line of the machine's copy under way, as its capture request says it (bytes
 * so far or of all, and the rate): a long copy moves rather than waits silently. Under it a bar:
 * how much of the copy is done where its total is known; else (mostly: a capture seldom knows its
 * size beforehand) only that it moves.
 */
const CaptureProgressLine = ({
  progress,
}: {
  progress: CaptureRequestProgress;
}) => {
  const { doneBytes, totalBytes } = progress;
  const percent =
    doneBytes !== undefined && totalBytes
      ? Math.min(100, (doneBytes / totalBytes) * 100)
      : undefined;
  return (
    <>
      <Typography variant="caption" color="textSecondary" component="div">
        {machineName(progress.machineRef)}: {readableTimes(progress.message)}
      </Typography>
      <LinearProgress
        variant={percent === undefined ? 'indeterminate' : 'determinate'}
        value={percent}
        aria-label={`Copy of ${machineName(progress.machineRef)}`}
      />
    </>
  );
};

/** "Capture now", saying which machine is being captured and for how long while one is. */
export const CaptureButton = ({
  capturing,
  disabled,
  describedBy,
  onClick,
}: {
  capturing: Capturing | undefined;
  disabled: boolean;
  /** The id of what says why it is off (a permission's note), for `aria-describedby`. */
  describedBy?: string;
  onClick: () => void;
}) => (
  <>
    <Button
      variant="outlined"
      startIcon={<CameraAltIcon />}
      disabled={disabled || !!capturing}
      aria-describedby={describedBy}
      onClick={onClick}
    >
      {!capturing
        ? 'Capture now'
        : capturing.machineRef
          ? `Capturing ${machineName(capturing.machineRef)} (${capturing.index + 1} of ${capturing.total})…`
          : 'Capturing…'}
    </Button>
    {capturing?.machineRef && capturing.since !== undefined && (
      <CaptureElapsed
        key={capturing.since}
        machineRef={capturing.machineRef}
        since={capturing.since}
      />
    )}
    {capturing?.progress &&
      sameRef(capturing.progress.machineRef, capturing.machineRef ?? '') && (
        <CaptureProgressLine progress={capturing.progress} />
      )}
  </>
);
