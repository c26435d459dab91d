import {
  Box,
  Button,
  Chip,
  makeStyles,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableRow,
  Typography,
} from '@material-ui/core';
import { Alert, AlertTitle } from '@material-ui/lab';
import { Fragment, useId, useState } from 'react';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  ANNOTATION_PROBES,
  BootPlan,
  DependencyDisagreements,
  describeMachineState,
  downInFailover,
  downSince,
  withoutNetworkSince,
  formatScore,
  machineNotServing,
  EntityProblem,
  MachineCaptureStatus,
  HiddenRun,
  InferredDependency,
  isFullRun,
  isJobMachine,
  JOB_MACHINE_NOTE,
  Readiness,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  CLOCK_AHEAD_TOLERANCE_SECONDS,
  formatCount,
  formatDuration,
  formatMeasured,
  formatPause,
  formatRunFailure,
  formatTime,
  runModeName,
  sameRef,
  entityLabel,
  machineName,
  readableTimes,
} from '../../utils/format';
import { ReadinessStatusView, RunStatusView, Status } from '../common';
import { TimeAgo } from '../common';
import { RunLink } from '../RunDetails';

const useStyles = makeStyles(theme => ({
  reasons: {
    margin: theme.spacing(0.5, 0, 0, 0),
    paddingLeft: theme.spacing(2.5),
  },
  code: {
    fontFamily: 'monospace',
    fontSize: '0.8rem',
  },
  pre: {
    fontFamily: 'monospace',
    fontSize: '0.75rem',
    whiteSpace: 'pre',
    overflowX: 'auto',
    margin: theme.spacing(1, 0, 0, 0),
  },
  waveRow: {
    display: 'flex',
    alignItems: 'center',
    flexWrap: 'wrap',
    marginBottom: theme.spacing(0.5),
  },
  waveLabel: {
    minWidth: 64,
    fontWeight: theme.typography.fontWeightMedium as number,
  },
  // A long machine name is cut short with an ellipsis (its full ref on hover) rather than
  // running out of the card: a chip's label never wraps.
  chip: {
    margin: theme.spacing(0.25),
    maxWidth: '100%',
  },
  // A short cell of the captures table (machine, age, pause) is kept on one line: the theme's
  // cells break words anywhere ("Machi ne") when a long note squeezes the row, and nowrap
  // leaves no place to break.
  keepWhole: {
    whiteSpace: 'nowrap',
  },
  // Half a page wide, a long machine name is cut short (the link says its full ref on hover)
  // rather than push the table out of the card.
  machineName: {
    display: 'inline-block',
    maxWidth: '14em',
    overflow: 'hidden',
    textOverflow: 'ellipsis',
    verticalAlign: 'bottom',
  },
  // A machine with a note under it: one row to the eye, shaded as its machine's row.
  withNote: {
    '& > td': { borderBottom: 'none' },
  },
  noteCell: {
    paddingTop: 0,
  },
  // Under a big system's captures: how many are shown, and the button showing the rest.
  moreRows: {
    display: 'flex',
    alignItems: 'center',
    flexWrap: 'wrap',
    gap: theme.spacing(1),
    marginTop: theme.spacing(0.5),
  },
  // Rows shaded machine by machine, not row by row: a note's row is its machine's.
  shaded: {
    '&&&': { backgroundColor: theme.palette.background.default },
  },
  unshaded: {
    '&&&': { backgroundColor: 'transparent' },
  },
  // Read out, not shown: the chip's colour says it to the eye.
  screenReaderOnly: {
    position: 'absolute',
    width: 1,
    height: 1,
    overflow: 'hidden',
    clip: 'rect(0 0 0 0)',
    whiteSpace: 'nowrap',
  },
}));

/** Status, objectives and the reasons behind the status. */
export const ReadinessSummary = ({ readiness }: { readiness: Readiness }) => {
  const classes = useStyles();
  const [showAll, setShowAll] = useState(false);
  const listId = useId();
  // A big system's reasons (one a machine never captured, say): the first, the most important,
  // listed at first, as its captures are.
  const long = readiness.reasons.length > ROWS_SHOWN_AT_FIRST;
  const reasons =
    long && !showAll
      ? readiness.reasons.slice(0, ROWS_SHOWN_AT_FIRST)
      : readiness.reasons;
  return (
    <Box>
      <Box display="flex" alignItems="center" flexWrap="wrap">
        <Box mr={2} data-testid="readiness-status">
          <ReadinessStatusView status={readiness.status} />
        </Box>
        <Typography variant="body2" color="textSecondary">
          Objectives: RPO {formatDuration(readiness.objectives.rpoSeconds)} ·
          RTO {formatDuration(readiness.objectives.rtoSeconds)}
        </Typography>
      </Box>
      {readiness.reasons.length > 0 && (
        <ul
          className={classes.reasons}
          aria-label="Reasons"
          id={long ? listId : undefined}
        >
          {reasons.map(reason => (
            <li key={reason}>
              <Typography variant="body2">{readableTimes(reason)}</Typography>
            </li>
          ))}
        </ul>
      )}
      {long && (
        <ShowAllToggle
          showAll={showAll}
          onToggle={() => setShowAll(!showAll)}
          controls={listId}
          total={readiness.reasons.length}
          what="reasons"
        />
      )}
    </Box>
  );
};

/** Bad or missing annotations, naming the annotation at fault. */
export const EntityProblems = ({ problems }: { problems: EntityProblem[] }) => {
  const classes = useStyles();
  if (!problems.length) return null;
  return (
    <Alert severity="warning" aria-label="Configuration problems">
      <AlertTitle>
        {problems.length === 1
          ? 'A configuration problem'
          : `${problems.length} configuration problems`}
      </AlertTitle>
      <ul className={classes.reasons}>
        {problems.map((p, i) => (
          <li key={`${p.entityRef}-${p.annotation ?? ''}-${i}`}>
            <Typography variant="body2" component="span">
              {p.message}
            </Typography>{' '}
            <Typography
              variant="caption"
              component="span"
              color="textSecondary"
            >
              ({entityLabel(p.entityRef)}
              {p.annotation ? (
                <>
                  , <code className={classes.code}>{p.annotation}</code>
                </>
              ) : null}
              )
            </Typography>
          </li>
        ))}
      </ul>
    </Alert>
  );
};

const machineExample = `# the machine
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: web-1
  annotations:
    ${ANNOTATION_ENGINE}: primary
    ${ANNOTATION_CONTAINER}: web-1
spec:
  type: machine`;

/**
 * Shown when the plan has no machines: how to annotate the catalog. A System's plan is made
 * from its parts (Components with `spec.system`), never from its own `dependsOn`, so a System
 * is told to add services that run on machines, not to list the machines itself.
 */
export const NoMachines = ({ kind, name }: { kind: string; name: string }) => {
  const classes = useStyles();
  const lowerKind = kind.toLocaleLowerCase('en-US');
  const isSystem = lowerKind === 'system';
  const example = isSystem
    ? `${machineExample}
---
# a service of this system
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: web
  annotations:
    ${ANNOTATION_PROBES}: http:80/healthz
spec:
  system: ${name}
  dependsOn:
    - resource:default/web-1`
    : `${machineExample}
---
# this ${lowerKind}
spec:
  dependsOn:
    - resource:default/web-1
metadata:
  annotations:
    ${ANNOTATION_PROBES}: http:80/healthz`;
  const code = (text: string) => <code className={classes.code}>{text}</code>;
  return (
    <Alert severity="info" aria-label="No machines">
      <AlertTitle>No machines in this {lowerKind}'s boot plan</AlertTitle>
      <Typography variant="body2">
        Nothing can be captured or recovered until the catalog says which
        machines run it. Describe each primary machine as a {code('Resource')}{' '}
        with {code('spec.type: machine')} and the {code(ANNOTATION_ENGINE)} and{' '}
        {code(ANNOTATION_CONTAINER)} annotations,{' '}
        {isSystem ? (
          <>
            then make the services that run on it parts of this system (
            {code('spec.system')} on each Component) and list the machine in
            their {code('spec.dependsOn')}. The system's own{' '}
            {code('spec.dependsOn')} is not followed.
          </>
        ) : (
          <>then list it in this entity's {code('spec.dependsOn')}.</>
        )}
      </Typography>
      <pre className={classes.pre}>{example}</pre>
    </Alert>
  );
};

/** How many rows of a long list (captures, reasons) the card shows before it offers to show them all. */
export const ROWS_SHOWN_AT_FIRST = 20;

/** The verdict of one machine's last capture against the RPO, and how much it calls for attention. */
function captureVerdict(
  c: MachineCaptureStatus,
  rpoSeconds: number,
): { verdict: JSX.Element; kind: 'ok' | 'warning' | 'error' } {
  const age =
    c.ageSeconds ??
    (c.latest
      ? (Date.now() - Date.parse(c.latest.createdAt)) / 1000
      : undefined);
  // The backend reads a capture dated ahead of its clock as of age 0 (its reasons say
  // the age cannot be told): "within RPO" would pass it for a fresh one.
  const ahead =
    !!c.latest &&
    !(age! > 0) &&
    Date.parse(c.latest.createdAt) - Date.now() >
      CLOCK_AHEAD_TOLERANCE_SECONDS * 1000;
  if (!c.latest || age === undefined) {
    return {
      verdict: <Status kind="error">never captured</Status>,
      kind: 'error',
    };
  }
  if (ahead) {
    return {
      verdict: <Status kind="warning">dated ahead of the clock</Status>,
      kind: 'warning',
    };
  }
  if (age > rpoSeconds) {
    return {
      verdict: (
        <Status kind="error">over RPO {formatDuration(rpoSeconds)}</Status>
      ),
      kind: 'error',
    };
  }
  if (age > rpoSeconds * 0.8) {
    return {
      verdict: (
        <Status kind="warning">near RPO {formatDuration(rpoSeconds)}</Status>
      ),
      kind: 'warning',
    };
  }
  return {
    verdict: <Status kind="ok">within RPO {formatDuration(rpoSeconds)}</Status>,
    kind: 'ok',
  };
}

/**
 * Last capture of each machine and its age against the RPO objective. The age is said once, in
 * "Last capture", which keeps counting; the verdict beside it is the backend's as it loaded
 * (its clock, not the browser's), so it does not repeat an age that would soon differ.
 *
 * Of more than {@link ROWS_SHOWN_AT_FIRST} machines (a big system's), that many are listed at
 * first, those the table marks first (an error: never captured, over the RPO, damaged; then a
 * warning: near the RPO, dated ahead, not serving when captured, near the pause limit), each
 * group in the usual order; a button shows them all, and fewer again.
 */
export const CaptureTable = ({
  captures,
  rpoSeconds,
}: {
  captures: MachineCaptureStatus[];
  rpoSeconds: number;
}) => {
  const classes = useStyles();
  const [showAll, setShowAll] = useState(false);
  const tableId = useId();
  if (!captures.length) return null;
  const rows = captures.map(c => {
    const { verdict, kind } = captureVerdict(c, rpoSeconds);
    // Kept, but a recovery from it restores a machine production was not serving from. A
    // long note: in a row of its own under the machine's, not squeezing its cells.
    const notServing =
      c.latest && machineNotServing(c.latest.machineState)
        ? describeMachineState(c.latest.machineState!)
        : undefined;
    const rank =
      kind === 'error' || c.latest?.damaged
        ? 0
        : kind === 'warning' || notServing || c.latest?.pauseWarning
          ? 1
          : 2;
    return { c, verdict, notServing, rank };
  });
  const long = rows.length > ROWS_SHOWN_AT_FIRST;
  // Array.prototype.sort is stable: each group keeps the usual order.
  const ordered = long ? [...rows].sort((a, b) => a.rank - b.rank) : rows;
  const shown =
    long && !showAll ? ordered.slice(0, ROWS_SHOWN_AT_FIRST) : ordered;
  const marked = rows.filter(r => r.rank < 2).length;
  const table = (
    <Table size="small" aria-label="Captures" id={long ? tableId : undefined}>
      <TableHead>
        <TableRow>
          <TableCell className={classes.keepWhole}>Machine</TableCell>
          <TableCell className={classes.keepWhole}>Last capture</TableCell>
          <TableCell>Against RPO</TableCell>
          <TableCell>Production paused</TableCell>
        </TableRow>
      </TableHead>
      <TableBody>
        {shown.map(({ c, verdict, notServing }, i) => {
          const shade = i % 2 === 0 ? classes.shaded : classes.unshaded;
          return (
            <Fragment key={c.machineRef}>
              <TableRow
                className={`${shade} ${notServing ? classes.withNote : ''}`}
              >
                <TableCell className={classes.keepWhole}>
                  <span className={classes.machineName}>
                    <EntityRefLink
                      entityRef={c.machineRef}
                      defaultKind="resource"
                    />
                  </span>
                </TableCell>
                <TableCell className={classes.keepWhole}>
                  <TimeAgo iso={c.latest?.createdAt} />
                </TableCell>
                <TableCell>
                  {verdict}
                  {/* Never restored again: a recovery restores an older intact capture (the reasons say which). */}
                  {c.latest?.damaged && (
                    <div title={c.latest.damaged.reason}>
                      <Status kind="error">damaged: no run restores it</Status>
                    </div>
                  )}
                </TableCell>
                <TableCell className={classes.keepWhole}>
                  {formatPause(c.latest?.pausedMs)}
                  {/* Its volumes grow the pause: a little more and a capture is refused. */}
                  {c.latest?.pauseWarning && (
                    <div title={c.latest.pauseWarning}>
                      <Status kind="warning">near the pause limit</Status>
                    </div>
                  )}
                </TableCell>
              </TableRow>
              {notServing && (
                <TableRow className={shade}>
                  <TableCell colSpan={4} className={classes.noteCell}>
                    <Status kind="warning">
                      {machineName(c.machineRef)} not serving when captured:{' '}
                      {notServing}
                    </Status>
                  </TableCell>
                </TableRow>
              )}
            </Fragment>
          );
        })}
      </TableBody>
    </Table>
  );
  if (!long) return table;
  const first = marked
    ? `, the ${formatCount(marked, 'marked one', 'marked ones')} first`
    : '';
  return (
    <>
      {table}
      <ShowAllToggle
        showAll={showAll}
        onToggle={() => setShowAll(!showAll)}
        controls={tableId}
        total={rows.length}
        what="machines"
        first={first}
      />
    </>
  );
};

/**
 * Under a long list cut to its first {@link ROWS_SHOWN_AT_FIRST}: how many it shows, and the
 * button that shows them all (and the first only again).
 */
const ShowAllToggle = ({
  showAll,
  onToggle,
  controls,
  total,
  what,
  first = '',
}: {
  showAll: boolean;
  onToggle: () => void;
  /** The id of the list it cuts. */
  controls: string;
  total: number;
  /** What the list holds, plural. */
  what: string;
  /** Which come first, after a comma. */
  first?: string;
}) => {
  const classes = useStyles();
  return (
    <Box className={classes.moreRows}>
      <Typography variant="caption" color="textSecondary">
        {showAll
          ? `All ${total} ${what}${first}.`
          : `Showing ${ROWS_SHOWN_AT_FIRST} of ${total} ${what}${first}.`}
      </Typography>
      <Button
        size="small"
        aria-expanded={showAll}
        aria-controls={controls}
        onClick={onToggle}
      >
        {showAll
          ? `Show the first ${ROWS_SHOWN_AT_FIRST} only`
          : `Show all ${total} ${what}`}
      </Button>
    </Box>
  );
};

/** One line about the last run (a test recovery or a failover): result, when, measured RTO vs objective. */
export const LastRunSummary = ({
  run,
  rtoSeconds,
  entityRef,
}: {
  run?: RecoveryRun | HiddenRun;
  rtoSeconds: number;
  /** The entity whose readiness this is: a run of another one that covered it is named. */
  entityRef?: string;
}) => {
  if (!run) {
    // Readiness gives no last run both when none was ever run and when none counts for this
    // plan (interrupted, or made before the plan gained a machine): this is true of both.
    return (
      <Typography variant="body2" color="textSecondary">
        No finished test recovery covers the current boot plan. Interrupted runs
        do not count, nor runs that left out some of its machines or services.
      </Typography>
    );
  }
  const when = run.finishedAt ?? run.startedAt ?? run.createdAt;
  let detail: string;
  if (run.status === 'succeeded') {
    const over = run.rtoSeconds !== undefined && run.rtoSeconds > rtoSeconds;
    detail = `measured RTO ${formatMeasured(run.rtoSeconds)} vs objective ${formatDuration(
      rtoSeconds,
    )}${over ? ' (exceeded)' : ''}`;
  } else if (run.status === 'failed') {
    // A hidden run's error already says what is left out.
    detail = isFullRun(run)
      ? formatRunFailure(run)
      : readableTimes(run.error?.message ?? 'failed');
  } else {
    detail = 'in progress';
  }
  return (
    <Box
      display="flex"
      alignItems="center"
      flexWrap="wrap"
      data-testid="last-run"
    >
      <Box mr={1}>
        <RunStatusView status={run.status} />
      </Box>
      <Typography variant="body2">
        {/* Its time links to its page, where the catalog shows its entity (else its id is not known). */}
        {isFullRun(run) ? (
          <RunLink runId={run.id}>
            <TimeAgo iso={when} />
          </RunLink>
        ) : (
          <TimeAgo iso={when} />
        )}{' '}
        — {detail}
        {!isFullRun(run) ? (
          <>
            {' '}
            (in the {runModeName(run.mode)} of an entity the catalog does not
            show you)
          </>
        ) : entityRef && !sameRef(run.entityRef, entityRef) ? (
          <>
            {' '}
            (in the {runModeName(run.mode)} of{' '}
            <EntityRefLink entityRef={run.entityRef} />
            {/* Only a success booted and probed them all; a failure may have stopped earlier. */}
            {run.status === 'succeeded'
              ? ', which booted and probed all of its machines'
              : ''}
            )
          </>
        ) : null}
        {/* Said as a link: its time alone does not look like the way to the run's page. */}
        {isFullRun(run) ? (
          <>
            {' · '}
            <RunLink runId={run.id}>View run</RunLink>
          </>
        ) : null}
      </Typography>
    </Box>
  );
};

/**
 * A kept failover running degraded (RunSupervision.degraded): production runs there, and a machine
 * of it, with what waits for it, is down. Said plainly on the card, not left to the run's timeline:
 * what is down, since when (or when it was noticed down: downSince), why, and when it is tried again. Nothing for any other run.
 */
export const DegradedFailoverNote = ({
  run,
}: {
  run?: RecoveryRun | HiddenRun;
}) => {
  const supervision = run && isFullRun(run) ? run.supervision : undefined;
  const degraded = supervision?.degraded;
  if (!run || !isFullRun(run) || run.status !== 'succeeded' || !degraded)
    return null;
  const down = downInFailover(run);
  return (
    <Alert severity="error" data-testid="degraded-failover">
      <AlertTitle>
        Failover running degraded:{' '}
        {formatCount(down.length, 'machine', 'machines')}{' '}
        {downSince(degraded, formatTime(degraded.since))} (
        <TimeAgo iso={degraded.since} />)
      </AlertTitle>
      {machineName(degraded.machineRef)} stopped on {run.hypervisorHost} and
      could not be brought back: {readableTimes(degraded.message)}.
      {degraded.notStarted && degraded.notStarted.length > 0 && (
        <>
          {' '}
          Left stopped, as they wait for it:{' '}
          {degraded.notStarted.map(machineName).join(', ')}.
        </>
      )}
      {degraded.withoutNetwork?.map(sharer => (
        <Fragment key={sharer.machineRef}>
          {' '}
          {withoutNetworkSince(
            sharer,
            degraded,
            formatTime(sharer.since),
            machineName,
          )}
          .
        </Fragment>
      ))}
      {supervision?.retry && (
        <> Next try at {formatTime(supervision.retry.nextAt)}.</>
      )}{' '}
      Look at why on {run.hypervisorHost} (the run's timeline, the machine's
      log), or release the failover once production runs on its primary machines
      again.
    </Alert>
  );
};

/**
 * The sentence on where the entity boots. `position.wave` is the latest wave of its machines
 * and `waitsFor` leaves out its own machines: for a system (or a service on several machines)
 * that is its last machine's wave with nothing outside to wait for, so the span of its waves
 * is said instead of "wave 3 of 3, waiting for no other machine".
 */
const PlanPosition = ({
  plan,
  position,
}: {
  plan: BootPlan;
  position: NonNullable<Readiness['position']>;
}) => {
  const n = plan.waves.length;
  const own = new Set(position.machines);
  const mine = plan.machines.filter(m => own.has(m.machineRef));
  const first = Math.min(position.wave, ...mine.map(m => m.wave));
  const several = mine.length > 1;
  const waves =
    first === position.wave
      ? `wave ${position.wave + 1} of ${n}`
      : `waves ${first + 1} to ${position.wave + 1} of ${n}`;
  let free: string;
  if (several) free = ', waiting for no machine outside it';
  else if (position.wave === 0) free = ', waiting for no other machine';
  // Boot plans place a machine by what it waits for, so this is a plan from elsewhere: say
  // what it holds without explaining the wave.
  else free = '; it waits for no other machine';
  return (
    <Typography variant="body2" data-testid="plan-position">
      {several ? `Its ${mine.length} machines boot in ` : 'Boots in '}
      <strong>{waves}</strong>
      {position.waitsFor.length ? (
        <>
          , after{' '}
          {position.waitsFor.map((m, i) => (
            <span key={m}>
              {i > 0 ? ', ' : ''}
              <EntityRefLink entityRef={m} defaultKind="resource" />
            </span>
          ))}
        </>
      ) : (
        free
      )}
      .
    </Typography>
  );
};

/** Where this entity's machines sit in the boot plan, and a compact view of the waves. */
export const BootPlanView = ({
  plan,
  position,
}: {
  plan: BootPlan;
  position?: Readiness['position'];
}) => {
  const classes = useStyles();
  const own = new Set(position?.machines ?? []);
  const n = plan.waves.length;
  const learned = [
    plan.inferred?.length &&
      `${formatCount(plan.inferred.length, 'dependency', 'dependencies')} observed in boot history`,
    plan.inferredMachineWaits?.length &&
      `${formatCount(plan.inferredMachineWaits.length, 'machine wait', 'machine waits')} seen in reboots`,
  ].filter((x): x is string => Boolean(x));
  return (
    <Box>
      {position ? (
        <PlanPosition plan={plan} position={position} />
      ) : (
        <Typography variant="body2" data-testid="plan-position">
          {formatCount(plan.machines.length, 'machine', 'machines')} in{' '}
          {formatCount(n, 'wave', 'waves')}.
        </Typography>
      )}
      {learned.length > 0 && (
        <Typography variant="caption" color="textSecondary" display="block">
          The order also follows {learned.join(' and ')}
          {plan.analysis ? (
            <>
              {' '}
              (analysis of <TimeAgo iso={plan.analysis.createdAt} />)
            </>
          ) : null}
          .
        </Typography>
      )}
      {plan.inferred?.length ? (
        <ul className={classes.reasons} aria-label="Learned dependencies">
          {plan.inferred.map(d => (
            <li key={`${d.service}->${d.dependsOn}`}>
              <Typography variant="caption" color="textSecondary">
                {entityLabel(d.service)} waits for {entityLabel(d.dependsOn)}{' '}
                <LearnedEvidence dependency={d} />
              </Typography>
            </li>
          ))}
        </ul>
      ) : null}
      {plan.analysis?.warnings?.length ? (
        <Box mt={0.5}>
          <Typography variant="caption" color="textSecondary" display="block">
            The analysis of the boot history warns:
          </Typography>
          <ul className={classes.reasons} aria-label="Analysis warnings">
            {plan.analysis.warnings.map(warning => (
              <li key={warning}>
                <Typography variant="caption" color="textSecondary">
                  {warning}
                </Typography>
              </li>
            ))}
          </ul>
        </Box>
      ) : null}
      <Box mt={1} role="group" aria-label="Boot waves">
        {plan.waves.map((wave, i) => (
          <div className={classes.waveRow} key={i}>
            <Typography variant="caption" className={classes.waveLabel}>
              Wave {i + 1}
            </Typography>
            {wave.map(m => (
              <Chip
                key={m}
                size="small"
                label={
                  <>
                    {machineName(m)}
                    {isJobMachine(plan, m) ? ' · job' : null}
                    {own.has(m) ? (
                      <span className={classes.screenReaderOnly}>
                        {' '}
                        (this entity's machine)
                      </span>
                    ) : null}
                  </>
                }
                title={isJobMachine(plan, m) ? `${m} (${JOB_MACHINE_NOTE})` : m}
                className={classes.chip}
                color={own.has(m) ? 'primary' : 'default'}
                variant={own.has(m) ? 'default' : 'outlined'}
              />
            ))}
          </div>
        ))}
      </Box>
    </Box>
  );
};

/**
 * What a learned dependency rests on: its score and, where the plan has them, the boots behind
 * it, marked where the analysis has low confidence in it (fewer boots than it trusts).
 */
const LearnedEvidence = ({
  dependency: d,
}: {
  dependency: InferredDependency;
}) => (
  <>
    (score {formatScore(d.score)}
    {d.samples !== undefined
      ? `, ${formatCount(d.samples, 'boot', 'boots')}`
      : ''}
    )
    {d.confidence === 'low' ? (
      <>
        {' '}
        <Status kind="warning">low confidence</Status>
      </>
    ) : null}
  </>
);

/** Where the catalog's declared dependsOn and the observed boot history disagree. */
export const DependencyDisagreementsView = ({
  disagreements,
}: {
  disagreements?: DependencyDisagreements;
}) => {
  const classes = useStyles();
  const inferred = disagreements?.inferredNotDeclared ?? [];
  const unobserved = disagreements?.declaredNotObserved ?? [];
  if (!inferred.length && !unobserved.length) return null;
  return (
    <Box role="group" aria-label="Declared vs observed dependencies">
      {inferred.length > 0 && (
        <>
          <Typography variant="body2">
            Observed in boot history but not declared in{' '}
            <code className={classes.code}>spec.dependsOn</code>:
          </Typography>
          <ul className={classes.reasons}>
            {inferred.map(d => (
              <li key={`${d.service}->${d.dependsOn}`}>
                <Typography variant="body2">
                  {entityLabel(d.service)} waits for {entityLabel(d.dependsOn)}{' '}
                  <Typography
                    component="span"
                    variant="caption"
                    color="textSecondary"
                  >
                    <LearnedEvidence dependency={d} />
                  </Typography>
                </Typography>
              </li>
            ))}
          </ul>
        </>
      )}
      {unobserved.length > 0 && (
        <>
          <Typography variant="body2">
            Declared but never observed in boot history:
          </Typography>
          <ul className={classes.reasons}>
            {unobserved.map(d => (
              <li key={`${d.service}->${d.dependsOn}`}>
                <Typography variant="body2">
                  {entityLabel(d.service)} depends on {entityLabel(d.dependsOn)}
                </Typography>
              </li>
            ))}
          </ul>
        </>
      )}
    </Box>
  );
};
