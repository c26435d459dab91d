import { useLayoutEffect, useRef, useState } from 'react';
import {
  Box,
  LinearProgress,
  Link,
  makeStyles,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@material-ui/core';
import { Alert, AlertTitle } from '@material-ui/lab';
import ErrorIcon from '@material-ui/icons/ErrorOutline';
import WarningIcon from '@material-ui/icons/ReportProblemOutlined';
import {
  isJobMachine,
  JOB_MACHINE_NOTE,
  recoveryRunLogsReadPermission,
  shownMachinePhase,
  timelineSteps,
  type RecoveryRun,
  type RunMachine,
} from '@backstage-recovery/plugin-recovery-common';
import {
  consoleText,
  formatCount,
  formatDuration,
  formatMeasured,
  formatTime,
  formatTimeAfter,
  interruptionReason,
  isRunActive,
  isRunInterrupted,
  runFailure,
  runModeName,
  runStartedBy,
  entityLabel,
  machineName,
  readableTimes,
} from '../../utils/format';
import { CancelRun } from '../CancelRun';
import { ReleaseFailover } from '../ReleaseFailover';
import { RunLink } from './RunLink';
import { PhaseView, RunStatusView } from '../common';

const useStyles = makeStyles(theme => ({
  logTail: {
    fontFamily: 'monospace',
    fontSize: '0.75rem',
    whiteSpace: 'pre-wrap',
    wordBreak: 'break-all',
    background: theme.palette.background.default,
    border: `1px solid ${theme.palette.divider}`,
    borderRadius: 4,
    padding: theme.spacing(1),
    maxHeight: 240,
    overflow: 'auto',
    margin: theme.spacing(1, 0, 0, 0),
  },
  // Marked by an icon too, read out as "Error": not every error step says it is one.
  stepError: {
    color: theme.palette.error.main,
    '& svg': {
      fontSize: '1rem',
      verticalAlign: 'text-bottom',
      marginRight: theme.spacing(0.5),
    },
  },
  // Read as a warning even in a long timeline: it may explain a failure further down.
  stepWarning: {
    color: theme.palette.warning.dark,
    '& svg': {
      color: theme.palette.warning.main,
      fontSize: '1rem',
      verticalAlign: 'text-bottom',
      marginRight: theme.spacing(0.5),
    },
  },
  // A failure's reason as the backend wrote it, line by line: a probe's or an engine's error
  // over several lines would otherwise run together into one.
  reason: {
    whiteSpace: 'pre-line',
  },
  mono: {
    fontFamily: 'monospace',
    whiteSpace: 'nowrap',
  },
  // Half a page wide (the Recovery tab's card), the table must fit: headers and captions
  // wrap, values do not; past that it scrolls within the card rather than being cut off.
  scroll: {
    overflowX: 'auto',
    maxWidth: '100%',
  },
  machines: {
    '& td, & th': {
      paddingLeft: theme.spacing(1),
      paddingRight: theme.spacing(1),
      verticalAlign: 'top',
    },
  },
  value: {
    whiteSpace: 'nowrap',
  },
  timeline: {
    '& td': {
      paddingLeft: theme.spacing(1),
      paddingRight: theme.spacing(1),
    },
  },
  narrow: {
    width: '1%',
    whiteSpace: 'nowrap',
  },
  // A machine's name in the timeline: a long one is cut short (its full ref on hover) rather
  // than, unbroken, widening the table past a narrow card and squeezing the steps' messages.
  stepMachine: {
    display: 'inline-block',
    maxWidth: '12em',
    overflow: 'hidden',
    textOverflow: 'ellipsis',
    verticalAlign: 'bottom',
  },
  // A step may name an image digest or a label longer than the card is wide: it breaks there
  // rather than push the timeline out of the card.
  message: {
    overflowWrap: 'anywhere',
  },
  sectionTitle: {
    marginTop: theme.spacing(2),
  },
  // The timeline's header row: read by screen readers, takes no room in a narrow card.
  hiddenHeader: {
    padding: 0,
    border: 0,
  },
  visuallyHidden: {
    position: 'absolute',
    width: 1,
    height: 1,
    margin: -1,
    padding: 0,
    border: 0,
    overflow: 'hidden',
    clip: 'rect(0 0 0 0)',
    whiteSpace: 'nowrap',
  },
}));

/**
 * A machine's console tail, as a terminal shows it (no escape sequences), scrolled to its end:
 * the lines that say why a machine failed are the last ones, below the box's height when the
 * tail is long. The box takes the focus, so that a keyboard scrolls it too.
 */
const ConsoleTail = ({ tail, label }: { tail: string; label: string }) => {
  const classes = useStyles();
  const box = useRef<HTMLPreElement>(null);
  const text = consoleText(tail);
  useLayoutEffect(() => {
    if (box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [text]);
  return (
    <pre
      ref={box}
      className={classes.logTail}
      role="group"
      aria-label={label}
      // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex -- a scrolled box a keyboard must reach
      tabIndex={0}
    >
      {text}
    </pre>
  );
};

/**
 * Where the backend left a console tail out (the caller lacks the permission to read it on its
 * machine): said, with what shows it, so a withheld tail does not read as none kept.
 */
const WithheldConsole = ({
  machineRef,
  label,
}: {
  machineRef: string;
  label: string;
}) => (
  <Typography variant="body2" role="note" aria-label={label}>
    {label} withheld: reading it needs the{' '}
    <code>{recoveryRunLogsReadPermission.name}</code> permission on{' '}
    {machineName(machineRef)}.
  </Typography>
);

/** The outcome of a run: live progress, success with RTO, or the failing machine and probe. */
export const RunOutcome = ({
  run,
  rtoObjectiveSeconds,
}: {
  run: RecoveryRun;
  rtoObjectiveSeconds?: number;
}) => {
  const classes = useStyles();
  const total = run.machines.length;
  const ready = run.machines.filter(m => m.phase === 'ready').length;

  if (isRunActive(run)) {
    const waves = run.plan.waves.length;
    const current = currentWave(run);
    return (
      <Box>
        <Typography variant="body2">
          {runModeName(run.mode, true)}{' '}
          {run.status === 'pending' ? 'queued' : 'in progress'} on{' '}
          <strong>{run.hypervisorHost}</strong>
          {/* A queued run is at no wave yet. */}
          {run.status === 'running' && current !== undefined && waves > 0
            ? ` — wave ${current + 1} of ${waves}`
            : ''}
          {` — ${ready} of ${total} machines ready`}
        </Typography>
        <LinearProgress
          variant={run.status === 'pending' ? 'indeterminate' : 'determinate'}
          value={total ? (ready / total) * 100 : 0}
          aria-label="Run progress"
        />
      </Box>
    );
  }

  if (run.status === 'succeeded') {
    const over =
      run.rtoSeconds !== undefined &&
      rtoObjectiveSeconds !== undefined &&
      run.rtoSeconds > rtoObjectiveSeconds;
    return (
      <Alert severity={over ? 'warning' : 'success'}>
        <AlertTitle>Recovery succeeded</AlertTitle>
        {formatCount(total, 'machine', 'machines')} recovered; measured RTO{' '}
        <strong>{formatMeasured(run.rtoSeconds)}</strong>
        {rtoObjectiveSeconds !== undefined
          ? ` (objective ${formatDuration(rtoObjectiveSeconds)}${
              over ? ', exceeded' : ''
            })`
          : ''}
        .
      </Alert>
    );
  }

  // Preempted by a failover, or its backend stopped: not a failure of the entity's recovery.
  if (isRunInterrupted(run)) {
    return (
      <Alert severity="warning">
        <AlertTitle>{runModeName(run.mode, true)} interrupted</AlertTitle>
        {interruptionReason(run)} An interrupted run does not count for
        readiness, either way: it says nothing of whether{' '}
        {entityLabel(run.entityRef)} can be recovered.
      </Alert>
    );
  }

  // failed: formatRunFailure's words, with the machine and the probe in bold.
  const { machineRef, probe, reason: words } = runFailure(run);
  const reason = <span className={classes.reason}>{words}</span>;
  const failed = run.machines.find(m => m.machineRef === machineRef);
  return (
    <Alert severity="error">
      <AlertTitle>Recovery failed</AlertTitle>
      {machineRef ? (
        <>
          Machine <strong>{machineName(machineRef)}</strong>
          {probe ? (
            <>
              {' '}
              failed probe <strong>{probe}</strong>
            </>
          ) : (
            ' failed'
          )}
          : {reason}
        </>
      ) : (
        reason
      )}
      {failed?.logTail ? (
        <ConsoleTail tail={failed.logTail} label="Log tail" />
      ) : null}
      {failed?.logTailWithheld ? (
        <WithheldConsole machineRef={failed.machineRef} label="Log tail" />
      ) : null}
    </Alert>
  );
};

function currentWave(run: RecoveryRun): number | undefined {
  const active = run.machines.filter(
    m => m.phase !== 'waiting' && m.phase !== 'ready' && m.phase !== 'skipped',
  );
  if (active.length) return Math.min(...active.map(m => m.wave));
  const waiting = run.machines.filter(m => m.phase === 'waiting');
  if (waiting.length) return Math.min(...waiting.map(m => m.wave));
  return undefined;
}

/** When the run started, as its details' header says: the date its clock times are read against. */
function runStart(run: RecoveryRun): string {
  return run.startedAt ?? run.createdAt;
}

/**
 * Seconds from `from` to `to` with both instants first rounded to `step` seconds: the spans
 * between a machine's instants (restore, start, boot) then add up to its whole span as shown.
 */
function span(from: string, to: string | number, step: number): number {
  const at = (t: string | number) =>
    Math.round((typeof t === 'number' ? t : Date.parse(t)) / (step * 1000));
  return (at(to) - at(from)) * step;
}

/**
 * A span already rounded to its `step` (tenths under a minute, `4.2s`), written as the RTO is,
 * so the machines' times read in the same form as the run's RTO they add up to.
 */
function formatSpan(seconds: number): string {
  if (!Number.isFinite(seconds)) return '—';
  return formatMeasured(Math.max(0, seconds));
}

function phaseDuration(
  start: string | undefined,
  end: string | undefined,
  now: number,
  step: number,
): string {
  if (!start) return '—';
  if (!end) {
    const s = span(start, now, step);
    return Number.isFinite(s) ? `${formatSpan(s)}…` : '…';
  }
  return formatSpan(span(start, end, step));
}

/** Machine by machine: phase, restore / start / ready times and durations. */
export const RunMachinesTable = ({
  run,
  now = Date.now(),
}: {
  run: RecoveryRun;
  now?: number;
}) => {
  const classes = useStyles();
  const machines = [...run.machines].sort(
    (a, b) => a.wave - b.wave || a.machineRef.localeCompare(b.machineRef),
  );
  const live = isRunActive(run);
  // Times of day, dated where the UTC date is not the run's start's.
  const start = runStart(run);
  // While a run is live an unfinished phase is still going; afterwards it ended with the machine.
  const end = (m: RunMachine, value: string | undefined) =>
    value ?? (live && m.phase !== 'failed' ? undefined : m.finishedAt);
  const caption = (text: string) => (
    <Typography variant="caption" color="textSecondary" display="block">
      {text}
    </Typography>
  );
  return (
    <Box className={classes.scroll}>
      <Table size="small" aria-label="Machines" className={classes.machines}>
        <TableHead>
          <TableRow>
            <TableCell>Machine</TableCell>
            <TableCell>Phase</TableCell>
            <TableCell>Restore</TableCell>
            <TableCell>Boot to ready</TableCell>
            <TableCell>Ready at</TableCell>
          </TableRow>
        </TableHead>
        <TableBody>
          {machines.map(m => {
            // Tenths for a machine recovered within a minute (rounding to whole seconds would
            // make 0s + 4s read as 5s in all), whole seconds past that.
            const whole = m.restoreStartedAt
              ? span(m.restoreStartedAt, m.readyAt ?? m.finishedAt ?? now, 1)
              : 0;
            const step = whole < 60 ? 0.1 : 1;
            return (
              <TableRow
                key={m.machineRef}
                data-testid={`run-machine-${machineName(m.machineRef)}`}
              >
                <TableCell>
                  <span title={m.machineRef} className={classes.value}>
                    {machineName(m.machineRef)}
                  </span>
                  {caption(`wave ${m.wave + 1}`)}
                  {isJobMachine(run.plan, m.machineRef)
                    ? caption(JOB_MACHINE_NOTE)
                    : null}
                  {/* The capture it restored: at a recovery point, older than its latest. */}
                  {m.capturedAt
                    ? caption(`capture of ${formatTime(m.capturedAt)}`)
                    : null}
                </TableCell>
                <TableCell>
                  <span className={classes.value}>
                    <PhaseView phase={shownMachinePhase(run.plan, m)} />
                  </span>
                  {m.phase === 'failed' && m.probe
                    ? caption(`probe ${m.probe}`)
                    : null}
                </TableCell>
                <TableCell>
                  <span className={classes.value}>
                    {phaseDuration(
                      m.restoreStartedAt,
                      end(m, m.restoredAt),
                      now,
                      step,
                    )}
                  </span>
                  {m.restoreStartedAt
                    ? caption(
                        `from ${formatTimeAfter(m.restoreStartedAt, start)}`,
                      )
                    : null}
                </TableCell>
                <TableCell>
                  <span className={classes.value}>
                    {phaseDuration(m.startedAt, end(m, m.readyAt), now, step)}
                  </span>
                  {m.startedAt
                    ? caption(`started ${formatTimeAfter(m.startedAt, start)}`)
                    : null}
                  {/* Restored to started: the time the start took, else lost between columns. */}
                  {m.restoredAt && m.startedAt
                    ? caption(
                        `${formatSpan(
                          span(m.restoredAt, m.startedAt, step),
                        )} after restore`,
                      )
                    : null}
                </TableCell>
                <TableCell>
                  <span className={classes.value}>
                    {formatTimeAfter(m.readyAt, start)}
                  </span>
                  {m.restoreStartedAt && m.readyAt
                    ? caption(
                        `${formatSpan(
                          span(m.restoreStartedAt, m.readyAt, step),
                        )} in all`,
                      )
                    : null}
                </TableCell>
              </TableRow>
            );
          })}
        </TableBody>
      </Table>
    </Box>
  );
};

/**
 * The run's timeline, step by step; errors stand out. With `maxSteps`, only the latest steps
 * show, with how many earlier ones are not shown and a button to show them all. What the run's
 * outcome above it says (its failure as a whole) is left to the outcome ({@link timelineSteps}).
 */
export const RunTimeline = ({
  run,
  maxSteps,
}: {
  run: RecoveryRun;
  maxSteps?: number;
}) => {
  const classes = useStyles();
  const [showAll, setShowAll] = useState(false);
  const all = timelineSteps(run);
  const hidden =
    !showAll && maxSteps !== undefined ? Math.max(0, all.length - maxSteps) : 0;
  const steps = hidden ? all.slice(hidden) : all;
  // A warning among the steps left out (a capture restored over the RPO, said before the first
  // wave) is what a run that succeeded all the same must not hide.
  const hiddenWarnings = all
    .slice(0, hidden)
    .filter(s => s.level !== 'info').length;
  if (!all.length) {
    return (
      <Typography variant="body2" color="textSecondary">
        {/* A run interrupted before its first step has only its interruption, which the outcome says. */}
        {run.steps.length
          ? 'No steps recorded besides its outcome.'
          : 'No steps recorded yet.'}
      </Typography>
    );
  }
  const header = (text: string) => (
    <TableCell className={classes.hiddenHeader}>
      <span className={classes.visuallyHidden}>{text}</span>
    </TableCell>
  );
  return (
    <>
      {/* The earlier steps are cut off silently otherwise: a failure's cause may be among them. */}
      {hidden > 0 && (
        <Typography variant="caption" color="textSecondary" display="block">
          {formatCount(hidden, 'earlier step', 'earlier steps')} not shown
          {hiddenWarnings > 0 ? (
            <strong>
              ,{' '}
              {formatCount(
                hiddenWarnings,
                'warning or error',
                'warnings or errors',
              )}{' '}
              among them
            </strong>
          ) : null}
          .{' '}
          <Link
            component="button"
            variant="caption"
            onClick={() => setShowAll(true)}
          >
            Show all {all.length} steps
          </Link>
        </Typography>
      )}
      <Table size="small" aria-label="Timeline" className={classes.timeline}>
        <TableHead>
          <TableRow>
            {header('Time')}
            {header('Machine')}
            {header('Step')}
          </TableRow>
        </TableHead>
        <TableBody>
          {steps.map((step, i) => (
            <TableRow key={`${step.at}-${i}`}>
              <TableCell className={`${classes.mono} ${classes.narrow}`}>
                {/* The date where it changed since the step above (the first: since the start the header gives). */}
                {formatTimeAfter(
                  step.at,
                  i === 0 ? runStart(run) : steps[i - 1].at,
                )}
              </TableCell>
              <TableCell className={classes.narrow}>
                {step.machineRef ? (
                  <span className={classes.stepMachine} title={step.machineRef}>
                    {machineName(step.machineRef)}
                  </span>
                ) : null}
              </TableCell>
              <TableCell
                className={`${classes.message} ${
                  step.level === 'error'
                    ? classes.stepError
                    : step.level === 'warning'
                      ? classes.stepWarning
                      : ''
                }`}
              >
                {step.level === 'error' && <ErrorIcon titleAccess="Error" />}
                {step.level === 'warning' && (
                  <WarningIcon titleAccess="Warning" />
                )}
                {readableTimes(step.message)}
              </TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
    </>
  );
};

/** Everything about one run: outcome, machines, timeline, evidence. */
export const RunDetails = ({
  run,
  rtoObjectiveSeconds,
  maxSteps,
  headingLevel = 3,
  linked = true,
}: {
  run: RecoveryRun;
  rtoObjectiveSeconds?: number;
  maxSteps?: number;
  /** The level of its "Machines" and "Timeline" headings: one below the heading it is under. */
  headingLevel?: 3 | 4;
  /** Whether its id links to the run's page: not on that page itself. */
  linked?: boolean;
}) => {
  const classes = useStyles();
  const heading = headingLevel === 4 ? 'h4' : 'h3';
  // The failed machine's log tail is in the outcome already.
  const failedMachine =
    run.status === 'failed' ? runFailure(run).machineRef : undefined;
  const withLogs = run.machines.filter(
    m => (m.logTail || m.logTailWithheld) && m.machineRef !== failedMachine,
  );
  return (
    <Box>
      <Box display="flex" alignItems="center" flexWrap="wrap" mb={1}>
        <Box mr={2}>
          <RunStatusView status={run.status} />
        </Box>
        <Typography variant="caption" color="textSecondary">
          {run.mode} run {linked ? <RunLink runId={run.id} /> : run.id} ·{' '}
          {runStartedBy(run, entityLabel, 'by ')} · started{' '}
          {formatTime(runStart(run))}
          {run.finishedAt ? ` · finished ${formatTime(run.finishedAt)}` : ''}
        </Typography>
      </Box>
      {run.recoveryPoint ? (
        <Box mb={1}>
          <Alert severity="info" data-testid="run-recovery-point">
            <AlertTitle>
              Recovery point {formatTime(run.recoveryPoint)}
            </AlertTitle>
            Each machine restored its newest capture taken at or before it, not
            its latest. This run proves that point boots, not the latest
            captures: it does not count for readiness.
          </Alert>
        </Box>
      ) : null}
      <RunOutcome run={run} rtoObjectiveSeconds={rtoObjectiveSeconds} />
      {run.mode === 'failover' && !isRunActive(run) ? (
        <ReleaseFailover run={run} />
      ) : null}
      {run.mode === 'test' && isRunActive(run) ? <CancelRun run={run} /> : null}
      <Typography
        variant="subtitle2"
        component={heading}
        className={classes.sectionTitle}
      >
        Machines
      </Typography>
      <RunMachinesTable run={run} />
      <Typography
        variant="subtitle2"
        component={heading}
        className={classes.sectionTitle}
      >
        Timeline
      </Typography>
      <RunTimeline run={run} maxSteps={maxSteps} />
      {withLogs.map(m => (
        <Box key={m.machineRef} mt={1}>
          <Typography variant="caption" aria-hidden>
            Log tail of {machineName(m.machineRef)}
          </Typography>
          {m.logTail ? (
            <ConsoleTail
              tail={m.logTail}
              label={`Log tail of ${machineName(m.machineRef)}`}
            />
          ) : (
            <WithheldConsole
              machineRef={m.machineRef}
              label={`Log tail of ${machineName(m.machineRef)}`}
            />
          )}
        </Box>
      ))}
    </Box>
  );
};
