import { useCallback, useEffect, useRef, useState } from 'react';
import { Box, Button, Divider, makeStyles, Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import PlayArrowIcon from '@material-ui/icons/PlayArrow';
import HistoryIcon from '@material-ui/icons/History';
import CameraAltIcon from '@material-ui/icons/CameraAlt';
import SwapHorizIcon from '@material-ui/icons/SwapHoriz';
import { InfoCard, Progress } from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { type Entity, stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import { type AsyncPermissionResult, usePermission } from '@backstage/plugin-permission-react';
import {
  type Capture,
  captureInTurn,
  recoveryCaptureCreatePermission,
  recoveryPointTooEarly,
  Readiness,
  recoveryRunCreatePermission,
  recoveryRunFailoverPermission,
  RecoveryRun,
  type RunMode,
} from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import useMountedState from 'react-use/esm/useMountedState';
import {
  busyWithRunId,
  errorMessage,
  isHostBusy,
  missingDependencies,
  recoveryApiRef,
} from '../api/RecoveryClient';
import {
  formatCount,
  formatDuration,
  formatTime,
  interruptionReason,
  isRunActive,
  isRunInterrupted,
  pollInterval,
  runModeName,
  sameRef,
  shortRef,
} from './format';
import { RunDetails } from './RunDetails';
import {
  BootPlanView,
  CaptureTable,
  DependencyDisagreementsView,
  EntityProblems,
  LastRunSummary,
  NoMachines,
  ReadinessSummary,
} from './ReadinessSections';
import {
  answerOrLook,
  answerTimeoutMs,
  answerWithin,
  CAPTURE_ANSWER_TIMEOUT_MS,
  lookAfterNoAnswer,
  NoAnswerError,
} from './answerWithin';
import { LoadErrorPanel, RetryButton } from './LoadError';
import { NightlyCheckNote } from './NightlyCheckNote';
import { RecoveryPointDialog } from './RecoveryPointDialog';
import { StartFailoverDialog } from './StartFailoverDialog';
import { useKeptAsyncRetry } from './useKeptAsyncRetry';
import { useRunPolling } from './useRunPolling';

const useStyles = makeStyles(theme => ({
  // The backend's refusals name runs, entities and labels longer than the card is wide
  // (`recovery.backstage-recovery.io/run-id=<id>`): they break rather than run out of it. An
  // Alert's message is a flex item, which keeps a long word's width unless it may shrink.
  content: {
    overflowWrap: 'break-word',
    '& .MuiAlert-message': { overflowWrap: 'anywhere', minWidth: 0 },
  },
  section: {
    marginTop: theme.spacing(2),
  },
  sectionTitle: {
    marginBottom: theme.spacing(0.5),
  },
  actions: {
    display: 'flex',
    flexWrap: 'wrap',
    gap: theme.spacing(1),
    alignItems: 'center',
  },
}));

/**
 * The card's title as a heading, the first under the entity page's h1: InfoCard makes it a span,
 * which leaves the card's section headings under nothing.
 */
export const CARD_TITLE = { component: 'h2' };

/** How often the card polls a running recovery unless told otherwise, in milliseconds. */
export const DEFAULT_POLL_INTERVAL_MS = 1000;

/** Props of {@link EntityRecoveryCard}. */
export interface EntityRecoveryCardProps {
  /** How often a running recovery is polled, in milliseconds. Default 1000, at least 100. */
  pollIntervalMs?: number;
  /**
   * Called when a run started from the card begins, when the card begins to follow a run of its
   * entity started elsewhere (found on a check, or named by a refused start), and when a followed
   * run finishes.
   */
  onRunChange?: (run: RecoveryRun) => void;
  /** Called with each readiness loaded: the Recovery tab takes the objectives from it. */
  onReadinessChange?: (readiness: Readiness) => void;
}

const Section = ({
  title,
  children,
}: {
  title: string;
  children: React.ReactNode;
}) => {
  const classes = useStyles();
  return (
    <Box className={classes.section} component="section" aria-label={title}>
      {/* Under the card's h2: subtitle2 alone makes an h6, skipping levels. */}
      <Typography variant="subtitle2" component="h3" className={classes.sectionTitle}>
        {title}
      </Typography>
      {children}
    </Box>
  );
};

/**
 * Why an action's button is off for want of a permission. A check that failed (usePermission
 * gives `allowed: false` with an `error`) says nothing about the user: it is reported as a
 * failed check, not as a denial.
 */
const PermissionNote = ({
  state,
  action,
  permissionName,
}: {
  state: AsyncPermissionResult;
  action: string;
  permissionName: string;
}) => {
  if (state.loading || state.allowed) return null;
  return (
    <Typography variant="caption" color="textSecondary">
      {state.error
        ? `Could not check whether you may ${action}: ${errorMessage(state.error)} (`
        : `You are not allowed to ${action} (`}
      <code>{permissionName}</code>).
    </Typography>
  );
};

/**
 * How long the machine being captured has been, ticking each second: one machine's capture may
 * take minutes (its whole image is saved), and a count that moves shows the request is alive.
 * A timer, not a live region: a screen reader is not told each second.
 */
const CaptureElapsed = ({ machineRef, since }: { machineRef: string; since: number }) => {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [since]);
  return (
    <Typography variant="caption" color="textSecondary" role="timer">
      Capture of {shortRef(machineRef)} under way for {formatDuration((now - since) / 1000)}
    </Typography>
  );
};

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
  const machine = shortRef(u.machineRef);
  const said = `No answer to the capture of ${machine} within ${formatDuration(u.timeoutMs / 1000)}`;
  const found = u.taken
    ? `, but ${machine} has a capture taken ${formatTime(u.taken.createdAt)}, newer than the one shown when this capture began: most likely this one, its answer lost on the way.`
    : u.lookFailed
    ? `, and its captures could not be listed: ${errorMessage(u.lookFailed)}. The backend may still be taking it.`
    : // The backend's own limit is configurable: a longer one may still be running.
      `, and no newer capture of it is kept: the backend may still be taking it (it stops a machine's capture at recovery.captures.timeout, 30m unless configured), or never had the request. Capturing again is refused while it is under way, saying since when.`;
  const rest = u.after > 0 ? ` Not captured: ${formatCount(u.after, 'machine', 'machines')} after it.` : '';
  return `${said}${found}${rest}`;
}

/** A start left unanswered past its bound, and what the card found of it since. */
interface StartUnanswered {
  mode: RunMode;
  timeoutMs: number;
  /** The entity's run found in progress when the card looked (followed). */
  found?: RecoveryRun;
  /** Why the look for it failed. */
  lookFailed?: Error;
  /** The run the start's own answer named, come after the card had given up waiting (followed). */
  late?: RecoveryRun;
}

/**
 * What the card says of a start left unanswered: the run its late answer named, or the entity's
 * run it found in progress, each followed; or that none is yet (or the look failed) and one may
 * still appear.
 */
const StartUnansweredNote = ({
  mode,
  timeoutMs,
  found,
  lookFailed,
  late,
  entityRef,
}: StartUnanswered & { entityRef: string }) => {
  const within = formatDuration(timeoutMs / 1000);
  if (late) {
    return (
      <Alert severity="info">
        The answer to the start of the {runModeName(mode)} came after {within}: it started (
        {runModeName(late.mode)} {late.id}), following it.
      </Alert>
    );
  }
  if (found) {
    return (
      <Alert severity="info">
        No answer to the start within {within}, but a {runModeName(found.mode)} of{' '}
        {shortRef(entityRef)} is in progress (started {formatTime(found.startedAt ?? found.createdAt)}):
        following it.
      </Alert>
    );
  }
  return (
    <Alert severity="warning">
      No answer to the start of the {runModeName(mode)} within {within},{' '}
      {lookFailed
        ? `and the check for a run in progress failed too: ${errorMessage(lookFailed)}`
        : `and no run of ${shortRef(entityRef)} is in progress`}
      . It may have started all the same: a run may still appear (the run history on the Recovery
      tab lists it). Look there before starting again.
    </Alert>
  );
};

/**
 * The run holding the hypervisor host among the active ones: the entity's own if it has one
 * (followed as its run), else the newest (GET /runs lists newest first).
 */
function runHoldingHost(active: RecoveryRun[], entityRef: string): RecoveryRun | undefined {
  return active.find(r => sameRef(r.entityRef, entityRef)) ?? active[0];
}

/**
 * "Recovery readiness" card for `Component` and `System` entity pages: readiness, captures
 * vs RPO, last test recovery vs RTO, place in the boot plan, and a live test recovery.
 */
export const EntityRecoveryCard = (props: EntityRecoveryCardProps) => {
  const { entity } = useEntity();
  const entityRef = stringifyEntityRef(entity);
  // Backstage keeps the card mounted when the page moves to another entity: a new key starts
  // its state afresh, so one entity's run, start error or capture result never shows on
  // another's page.
  return (
    <EntityRecoveryCardFor
      key={entityRef}
      entity={entity}
      entityRef={entityRef}
      {...props}
    />
  );
};

/** The card for one entity: all its state belongs to `entityRef`. */
const EntityRecoveryCardFor = (
  props: EntityRecoveryCardProps & { entity: Entity; entityRef: string },
) => {
  const { entity, entityRef, onRunChange, onReadinessChange } = props;
  const pollIntervalMs = pollInterval(props.pollIntervalMs, DEFAULT_POLL_INTERVAL_MS);
  const classes = useStyles();
  const api = useApi(recoveryApiRef);
  // False once the card has moved on to another entity (unmounted): a start or capture that
  // answers after that is about the previous entity and is dropped.
  const mounted = useMountedState();

  // Readiness is reloaded after a run or a capture; if that reload fails, the card keeps
  // what it showed (the run's outcome included) and offers to retry.
  const readinessState = useKeptAsyncRetry(
    () => api.getReadiness(entityRef),
    [api, entityRef],
    entityRef,
  );
  const { retry } = readinessState;
  const readiness = readinessState.value;
  // Told once per readiness loaded: a page passing a new callback on each render (an inline
  // arrow) would otherwise hear of the same readiness again at each of its renders.
  const readinessListener = useRef(onReadinessChange);
  readinessListener.current = onReadinessChange;
  useEffect(() => {
    if (readiness) readinessListener.current?.(readiness);
  }, [readiness]);

  // Granted per entity: the policy may allow them on some entities only (those one owns, say).
  const runPermission = usePermission({
    permission: recoveryRunCreatePermission,
    resourceRef: entityRef,
  });
  const capturePermission = usePermission({
    permission: recoveryCaptureCreatePermission,
    resourceRef: entityRef,
  });
  // A failover takes recovery.run.failover besides (and on each machine and service of the plan:
  // the dialog asks about those once opened). Offered to no one else: it is no test.
  const failoverPermission = usePermission({
    permission: recoveryRunFailoverPermission,
    resourceRef: entityRef,
  });

  // A run in progress holds the hypervisor host: this entity's (started elsewhere, or before a
  // reload) or another's (the nightly check of a system containing it). Readiness reports
  // finished runs only, so the active runs are asked for on load and after each followed run
  // ends (another may have been admitted meanwhile), and the one found is followed live. A check
  // left unanswered fails, as a refused one does: until it ends, Run test recovery stays off.
  const loadRunHoldingHost = useCallback(
    async () =>
      runHoldingHost(await answerWithin(api.listRuns({ active: true }), answerTimeoutMs()), entityRef),
    [api, entityRef],
  );
  const activeRunState = useAsyncRetry(loadRunHoldingHost, [loadRunHoldingHost]);
  const { retry: recheckActiveRun } = activeRunState;
  const activeRun = activeRunState.value;

  // A run the card followed that a failover preempted: the card goes on to follow that
  // failover, and without this the run being watched would vanish without a word.
  const [interrupted, setInterrupted] = useState<RecoveryRun | undefined>();
  const onDone = useCallback(
    (finished: RecoveryRun) => {
      if (isRunInterrupted(finished)) setInterrupted(finished);
      retry();
      recheckActiveRun();
      onRunChange?.(finished);
    },
    [retry, recheckActiveRun, onRunChange],
  );
  const { run, error: pollError, follow } = useRunPolling({
    intervalMs: pollIntervalMs,
    onDone,
  });

  /** The mode of the run being started, while its start is under way. */
  const [starting, setStarting] = useState<RunMode | undefined>();
  const [startError, setStartError] = useState<{ error: Error; mode: RunMode } | undefined>();
  /**
   * What a refused start said the plan cannot include (each dependency, else the backend's own
   * words), and that start's mode and recovery point: the run can go without it, if asked.
   */
  const [missing, setMissing] = useState<
    { text: string; mode: RunMode; recoveryPoint?: string } | undefined
  >();
  /** Whether the dialog choosing an earlier recovery point is open. */
  const [choosingPoint, setChoosingPoint] = useState(false);
  /** Whether the dialog confirming a failover is open. */
  const [confirmingFailover, setConfirmingFailover] = useState(false);
  /**
   * Counts the starts: a start's answer that comes after the card gave up waiting is followed
   * only while no later start has been made.
   */
  const startCount = useRef(0);
  // The id of a run of another entity holding the host (found on a check, or named by a
  // refused start), followed in place of the entity's own.
  const [busyWithId, setBusyWithId] = useState<string | undefined>();

  // While a check is reloading, its value is the previous answer: a run already followed
  // (and perhaps finished since) is not followed again.
  const runId = run?.id;
  const following = isRunActive(run);
  // The caller's run history (the Recovery tab) loaded before a run of the entity started
  // elsewhere (a pipeline, another tab) would not list it until it ended: told as it is followed.
  const runListener = useRef(onRunChange);
  runListener.current = onRunChange;
  const followFound = useCallback(
    (found: RecoveryRun) => {
      follow(found);
      if (sameRef(found.entityRef, entityRef)) runListener.current?.(found);
    },
    [follow, entityRef],
  );
  useEffect(() => {
    if (!activeRun || !isRunActive(activeRun) || following || activeRun.id === runId) return;
    if (!sameRef(activeRun.entityRef, entityRef)) setBusyWithId(activeRun.id);
    followFound(activeRun);
  }, [activeRun, following, runId, entityRef, followFound]);
  /**
   * The machine being captured, how far along the plan that is, and since when (this browser's
   * clock); undefined when none is.
   */
  const [capturing, setCapturing] = useState<
    { machineRef?: string; index: number; total?: number; since?: number } | undefined
  >();
  const [captureResult, setCaptureResult] = useState<
    | { ok: true; count: number }
    | { ok: false; error: Error; kept: string[] }
    | { ok: false; unanswered: CaptureUnanswered; kept: string[] }
    | undefined
  >();
  /**
   * A start left unanswered: the entity's run found in progress since (followed), or none, or
   * why the look for it failed.
   */
  const [startUnanswered, setStartUnanswered] = useState<StartUnanswered | undefined>();

  /**
   * The active run that held the host when a start was refused (admitted after the last
   * check): the one the 409 names; else, if the wording is not understood, the run the
   * active runs say holds the host.
   */
  const findBusyRun = async (
    conflict: unknown,
  ): Promise<RecoveryRun | undefined> => {
    const runId = busyWithRunId(conflict);
    try {
      const busy = runId
        ? await answerWithin(api.getRun(runId), answerTimeoutMs())
        : await loadRunHoldingHost();
      return isRunActive(busy) ? busy : undefined;
    } catch {
      return undefined; // the conflict itself is still reported
    }
  };

  /**
   * What a refused start says, on the card (`late`: its answer came after the card had given up
   * waiting) or to the dialog its recovery point was chosen in: a busy host's run is followed;
   * dependencies the plan cannot include are offered to go without, in the same mode and to the
   * same point; a point earlier than machines' kept captures is returned for the dialog to say;
   * anything else (a 403 naming the permissions lacking, a machine never captured, a failover kept
   * on the host) is said in the backend's words.
   */
  const refusedStart = async (
    refusal: unknown,
    { mode, recoveryPoint, late = false }: { mode: RunMode; recoveryPoint?: string; late?: boolean },
  ): Promise<unknown> => {
    const busy = isHostBusy(refusal) ? await findBusyRun(refusal) : undefined;
    const left = missingDependencies(refusal);
    if (!mounted()) return undefined;
    if (busy) {
      setBusyWithId(busy.id);
      followFound(busy);
    } else if (left) {
      setMissing({ text: left.join('; ') || errorMessage(refusal), mode, recoveryPoint });
    } else if (recoveryPoint && !late && recoveryPointTooEarly(refusal)) {
      // Said in the dialog the point was chosen in, which offers the earliest the captures allow.
      return refusal;
    } else {
      setStartError({ error: refusal as Error, mode });
    }
    return undefined;
  };

  // The run the card follows now, for a start's late answer (the closure's own is stale by then).
  const followedRun = useRef(run);
  followedRun.current = run;

  /**
   * Starts a run of the entity, a test recovery unless `mode` says failover: of its latest state,
   * or to `recoveryPoint` (each machine restores its newest kept capture taken at or before it;
   * readiness does not count such a run). Returns the refusal of a `recoveryPoint` earlier than
   * some machines' kept captures, for the dialog it was chosen in to say; anything else is said on
   * the card.
   */
  const startRun = async ({
    mode = 'test',
    acceptMissingDependencies = false,
    recoveryPoint,
  }: { mode?: RunMode; acceptMissingDependencies?: boolean; recoveryPoint?: string } = {}) => {
    const attempt = ++startCount.current;
    setStarting(mode);
    setStartError(undefined);
    setMissing(undefined);
    setBusyWithId(undefined);
    setInterrupted(undefined);
    setStartUnanswered(undefined);
    const request = api.startRun({
      entityRef,
      mode,
      ...(acceptMissingDependencies && { acceptMissingDependencies }),
      ...(recoveryPoint && { recoveryPoint }),
    });
    try {
      // POST /runs answers at once (202): past a minute the answer was lost, not slow. The run may
      // have started all the same, so the card looks, as it finds the run holding the host.
      const outcome = await answerOrLook(
        request,
        answerTimeoutMs(),
        async () => runHoldingHost(await api.listRuns({ active: true }), entityRef),
      );
      if (!mounted()) return undefined;
      if ('answer' in outcome) {
        follow(outcome.answer);
        onRunChange?.(outcome.answer);
        return undefined;
      }
      const found = 'seen' in outcome && isRunActive(outcome.seen) ? outcome.seen : undefined;
      const own = found && sameRef(found.entityRef, entityRef) ? found : undefined;
      if (found) {
        // Another entity's run holds the host: followed as a refused start's is.
        if (!own) setBusyWithId(found.id);
        followFound(found);
      }
      setStartUnanswered({
        mode,
        timeoutMs: outcome.unanswered.timeoutMs,
        found: own,
        lookFailed: 'lookFailed' in outcome ? outcome.lookFailed : undefined,
      });
      // The answer may still come (a slow proxy, a connection that recovers): not dropped, but
      // followed or said as an answer in time is, unless the card has moved on to another start.
      const current = () => mounted() && startCount.current === attempt;
      request.then(
        started => {
          if (!current()) return;
          setStartUnanswered(note => note && { ...note, late: started });
          // Found already when the card looked: followed as it is.
          if (followedRun.current?.id === started.id) return;
          setBusyWithId(undefined);
          follow(started);
          onRunChange?.(started);
        },
        async refusal => {
          if (!current()) return;
          setStartUnanswered(undefined);
          await refusedStart(refusal, { mode, recoveryPoint, late: true });
        },
      );
    } catch (e) {
      return await refusedStart(e, { mode, recoveryPoint });
    } finally {
      setStarting(undefined);
    }
    return undefined;
  };

  // A machine a request, each shown as it is taken: a site's images take minutes to save.
  const captureNow = async () => {
    setCapturing({ index: 0 });
    setCaptureResult(undefined);
    const kept: string[] = [];
    // The machine whose request is under way, and how many follow it.
    let current: { machineRef: string; after: number } | undefined;
    // No bound over the whole capture (it grows with the site), but over each request: the plan
    // within a minute, a machine's capture within CAPTURE_ANSWER_TIMEOUT_MS.
    const bounded = {
      getBootPlan: (ref: string) => answerWithin(api.getBootPlan(ref), answerTimeoutMs()),
      getReadiness: (ref: string) => answerWithin(api.getReadiness(ref), answerTimeoutMs()),
      captureNow: (ref: string, machineRef?: string) =>
        answerWithin(api.captureNow(ref, machineRef), CAPTURE_ANSWER_TIMEOUT_MS),
    };
    try {
      const captures = await captureInTurn(bounded, entityRef, {
        // Without a plan (a dependency cycle) the machines readiness lists: no need to ask again.
        machines: readiness && !readiness.plan ? readiness.captures.map(c => c.machineRef) : undefined,
        start: (machineRef, index, total) => {
          current = { machineRef, after: total - index - 1 };
          if (mounted()) setCapturing({ machineRef, index, total, since: Date.now() });
        },
        captured: ({ capture }) => {
          kept.push(capture.machineRef);
        },
      });
      if (!mounted()) return;
      setCaptureResult({ ok: true, count: captures.length });
      retry();
    } catch (e) {
      const machine = current;
      if (e instanceof NoAnswerError && machine) {
        // Not said failed: the backend may have taken it, its answer lost, or be taking it still.
        // Its newest capture says which, against the one readiness showed when this began.
        const { machineRef, after } = machine;
        const shown = readiness?.captures.find(c => sameRef(c.machineRef, machineRef))?.latest;
        const look = await lookAfterNoAnswer(() => api.listCaptures(machineRef, 1));
        if (!mounted()) return;
        const newest = 'seen' in look ? look.seen[0] : undefined;
        const taken =
          newest && newest.id !== shown?.id && (!shown || Date.parse(newest.createdAt) > Date.parse(shown.createdAt))
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
        });
        if (kept.length > 0 || taken) retry();
        return;
      }
      if (!mounted()) return;
      setCaptureResult({ ok: false, error: e as Error, kept });
      // Those captured before it are kept: readiness has moved on.
      if (kept.length > 0) retry();
    } finally {
      if (mounted()) setCapturing(undefined);
    }
  };

  if (readinessState.loading && !readiness) {
    return (
      <InfoCard title="Recovery readiness" titleTypographyProps={CARD_TITLE}>
        <Progress />
      </InfoCard>
    );
  }
  if (readinessState.error && !readiness) {
    return (
      <InfoCard title="Recovery readiness" titleTypographyProps={CARD_TITLE}>
        <LoadErrorPanel error={readinessState.error} onRetry={retry} what="loading readiness" />
      </InfoCard>
    );
  }
  if (!readiness) return null;

  const plan = readiness.plan;
  const hasMachines = !!plan && plan.machines.length > 0;
  // What a capture takes: the plan's machines, or without a plan those readiness lists.
  const canCapture = plan ? hasMachines : readiness.captures.length > 0;
  const hasDisagreements =
    !!readiness.disagreements?.inferredNotDeclared.length ||
    !!readiness.disagreements?.declaredNotObserved.length;
  const capturesSection = (
    <Section title="Captures">
      <CaptureTable
        captures={readiness.captures}
        rpoSeconds={readiness.objectives.rpoSeconds}
      />
    </Section>
  );
  const running = isRunActive(run);
  // A run of another entity (a system containing this one) is not measured against this
  // entity's RTO, and its section says whose it is.
  const runOfOther = !!run && !sameRef(run.entityRef, entityRef);
  // Until the active runs are known, one may hold the host: starting would get a 409.
  const checkingForRun = activeRunState.loading;
  // Found but not followed yet (the effect runs after this render): the host is still busy.
  const hostBusy =
    running || (!!activeRun && isRunActive(activeRun) && activeRun.id !== run?.id);
  const runAllowed = runPermission.allowed;
  const captureAllowed = capturePermission.allowed;
  // A failover takes both grants on the entity (and on what its plan boots: asked in the dialog).
  const failoverAllowed = runAllowed && failoverPermission.allowed;
  // A failover preempts a test recovery, but not another failover: the host is busy with one that
  // is followed, or found and not followed yet.
  const failoverRunning =
    (running && run?.mode === 'failover') ||
    (!!activeRun && isRunActive(activeRun) && activeRun.mode === 'failover' && activeRun.id !== run?.id);
  // The test recovery a failover started now would interrupt, for its confirmation to say.
  const testRunning = [run, activeRun].find(r => isRunActive(r) && r?.mode === 'test');

  return (
    <InfoCard
      title="Recovery readiness"
      titleTypographyProps={CARD_TITLE}
      className={classes.content}
    >
      {readinessState.error && (
        <Box mb={2}>
          <Alert
            severity="warning"
            action={<RetryButton onRetry={retry} what="loading readiness" />}
          >
            Could not reload readiness: {errorMessage(readinessState.error)}. Showing
            what was last loaded.
          </Alert>
        </Box>
      )}
      <ReadinessSummary readiness={readiness} />

      {readiness.problems.length > 0 && (
        <Box className={classes.section}>
          <EntityProblems problems={readiness.problems} />
        </Box>
      )}

      {!plan ? (
        // No plan could be made (a dependency cycle, say): the reasons above say why; what was
        // captured still shows.
        readiness.captures.length > 0 && capturesSection
      ) : !hasMachines ? (
        <Box className={classes.section}>
          <NoMachines kind={entity.kind} name={entity.metadata.name} />
        </Box>
      ) : (
        <>
          {capturesSection}
          {/* The last run that counts may be a failover: the title says which. */}
          <Section title={`Last ${runModeName(readiness.lastRun?.mode ?? 'test')}`}>
            <LastRunSummary
              run={readiness.lastRun}
              rtoSeconds={readiness.objectives.rtoSeconds}
              entityRef={readiness.entityRef}
            />
            {/* Why last night's check did not test it, when it did not. */}
            <NightlyCheckNote nightlyCheck={readiness.nightlyCheck} />
          </Section>
          <Section title="Boot plan">
            <BootPlanView plan={plan!} position={readiness.position} />
          </Section>
        </>
      )}

      {/* Shown with or without a plan: a dependency declared but never observed often
          explains the cycle that kept a plan from being made. */}
      {hasDisagreements && (
        <Section title="Declared vs observed dependencies">
          <DependencyDisagreementsView disagreements={readiness.disagreements} />
        </Section>
      )}

      {interrupted && interrupted.id !== run?.id && (
        <Box className={classes.section}>
          <Alert severity="warning" onClose={() => setInterrupted(undefined)}>
            The {runModeName(interrupted.mode)}
            {sameRef(interrupted.entityRef, entityRef) ? '' : ` of ${shortRef(interrupted.entityRef)}`}{' '}
            started {formatTime(interrupted.startedAt ?? interrupted.createdAt)} was interrupted:{' '}
            {interruptionReason(interrupted)} It does not count for readiness; the run history
            on the Recovery tab keeps it.
          </Alert>
        </Box>
      )}

      {run && (
        <Section
          title={`${runModeName(run.mode, true)}${
            runOfOther ? ` of ${shortRef(run.entityRef)}` : ''
          }${running ? ' in progress' : ''}`}
        >
          {running && run.id === busyWithId && (
            <Alert severity="info">
              Hypervisor host {run.hypervisorHost} is busy with{' '}
              a {runModeName(run.mode)} of{' '}
              {shortRef(run.entityRef)} (started{' '}
              {formatTime(run.startedAt ?? run.createdAt)}): following it
              here.{' '}
              {/* What a failover boots stays on the host, serving production, after it ends. */}
              {run.mode === 'failover'
                ? 'A failover keeps the machines it boots on the host: a test recovery that needs them, or their subnets, is refused until the failover is released.'
                : 'A test recovery can start once it has finished.'}
            </Alert>
          )}
          {/* The card's own failover: no test, and what it boots stays. */}
          {run.mode === 'failover' && !runOfOther && run.id !== busyWithId && (
            <Alert severity="warning">
              A failover of {shortRef(entityRef)}: live copies of its plan's machines on production's
              subnets on {run.hypervisorHost}, kept there, also if it fails. Once production runs on
              its primary machines again, release it (Release failover machines, once it has
              finished).
            </Alert>
          )}
          {pollError && (
            <Alert severity="warning">
              Lost contact with the run: {errorMessage(pollError)}. Retrying…
            </Alert>
          )}
          <RunDetails
            run={run}
            rtoObjectiveSeconds={
              runOfOther ? undefined : readiness.objectives.rtoSeconds
            }
            maxSteps={12}
            headingLevel={4}
          />
        </Section>
      )}

      {activeRunState.error && (
        <Box className={classes.section}>
          {/* Otherwise asked again only after a run the card follows ends: a failed check on load
              would stay until the page is reloaded. */}
          <Alert
            severity="warning"
            action={<RetryButton onRetry={recheckActiveRun} what="checking for a run in progress" />}
          >
            Could not check for a recovery run in progress:{' '}
            {errorMessage(activeRunState.error)}
          </Alert>
        </Box>
      )}
      {startError && (
        <Box className={classes.section}>
          <Alert severity="error">
            Could not start the {runModeName(startError.mode)}: {errorMessage(startError.error)}
          </Alert>
        </Box>
      )}
      {startUnanswered && (
        <Box className={classes.section}>
          <StartUnansweredNote {...startUnanswered} entityRef={entityRef} />
        </Box>
      )}
      {missing && (
        <Box className={classes.section}>
          <Alert
            severity="warning"
            action={
              <Button
                color="inherit"
                size="small"
                disabled={
                  missing.mode === 'failover'
                    ? !failoverAllowed || failoverRunning || !!starting
                    : !runAllowed || hostBusy || !!starting
                }
                onClick={() =>
                  startRun({
                    mode: missing.mode,
                    acceptMissingDependencies: true,
                    recoveryPoint: missing.recoveryPoint,
                  })
                }
              >
                {missing.mode === 'failover' ? 'Fail over without them' : 'Run without them'}
              </Button>
            }
          >
            The catalog declares dependencies the boot plan cannot include:{' '}
            {missing.text.replace(/\.$/, '')}.{' '}
            {missing.mode === 'failover'
              ? 'A failover without them brings back less than production needs: fix the catalog, or fail over without them and bring those back by hand.'
              : 'A test recovery without them tests less than the recovery production needs: fix the catalog, or run without them.'}
          </Alert>
        </Box>
      )}
      {captureResult && (
        <Box className={classes.section}>
          {captureResult.ok ? (
            <Alert severity="success">
              Captured {formatCount(captureResult.count, 'machine', 'machines')}.
            </Alert>
          ) : 'unanswered' in captureResult ? (
            <Alert severity="warning">
              {captureUnansweredText(captureResult.unanswered)}
              {captureResult.kept.length > 0 &&
                ` Captured before it, and kept: ${captureResult.kept.map(shortRef).join(', ')}.`}
            </Alert>
          ) : (
            <Alert severity="error">
              Capture failed: {errorMessage(captureResult.error)}
              {captureResult.kept.length > 0 &&
                `. Captured before it, and kept: ${captureResult.kept.map(shortRef).join(', ')}.`}
            </Alert>
          )}
        </Box>
      )}

      <Divider className={classes.section} />
      <Box className={`${classes.section} ${classes.actions}`}>
        <Button
          variant="contained"
          color="primary"
          startIcon={<PlayArrowIcon />}
          disabled={
            !runAllowed || !hasMachines || hostBusy || !!starting || checkingForRun
          }
          onClick={() => startRun()}
        >
          {running && run?.mode === 'failover'
            ? 'Failover running…'
            : running || starting === 'test'
            ? 'Test recovery running…'
            : 'Run test recovery'}
        </Button>
        {/* Offered only to those who may start runs: a recovery point is a run's option. */}
        {runAllowed && hasMachines && (
          <Button
            variant="outlined"
            size="small"
            startIcon={<HistoryIcon />}
            disabled={hostBusy || !!starting || checkingForRun}
            onClick={() => setChoosingPoint(true)}
          >
            Earlier recovery point…
          </Button>
        )}
        {/* Shown only to those the permission framework lets fail the entity over. Not off while a
            test recovery holds the host: a failover preempts it. */}
        {failoverAllowed && hasMachines && (
          <Button
            variant="outlined"
            color="secondary"
            startIcon={<SwapHorizIcon />}
            disabled={failoverRunning || !!starting || checkingForRun}
            onClick={() => setConfirmingFailover(true)}
          >
            {starting === 'failover' ? 'Starting failover…' : 'Fail over…'}
          </Button>
        )}
        <Button
          variant="outlined"
          startIcon={<CameraAltIcon />}
          disabled={!captureAllowed || !canCapture || !!capturing}
          onClick={captureNow}
        >
          {!capturing
            ? 'Capture now'
            : capturing.machineRef
            ? `Capturing ${shortRef(capturing.machineRef)} (${capturing.index + 1} of ${capturing.total})…`
            : 'Capturing…'}
        </Button>
        {capturing?.machineRef && capturing.since !== undefined && (
          <CaptureElapsed key={capturing.since} machineRef={capturing.machineRef} since={capturing.since} />
        )}
        {runAllowed && hasMachines && (
          <RecoveryPointDialog
            open={choosingPoint}
            machineRefs={plan!.machines.map(m => m.machineRef)}
            onClose={() => setChoosingPoint(false)}
            onStart={async recoveryPoint => {
              // Open while the run starts: a point earlier than machines' kept captures is refused there.
              const refused = await startRun({ recoveryPoint });
              if (refused) throw refused;
              setChoosingPoint(false);
            }}
          />
        )}
        {failoverAllowed && hasMachines && confirmingFailover && (
          <StartFailoverDialog
            open
            entityRef={entityRef}
            entityName={entity.metadata.name}
            plan={plan!}
            preempts={testRunning}
            onClose={() => setConfirmingFailover(false)}
            onStart={async recoveryPoint => {
              // Open while the run starts: a point earlier than machines' kept captures is refused there.
              const refused = await startRun({ mode: 'failover', recoveryPoint });
              if (refused) throw refused;
              setConfirmingFailover(false);
            }}
          />
        )}
        <PermissionNote
          state={runPermission}
          action="run test recoveries"
          permissionName={recoveryRunCreatePermission.name}
        />
        {/* Said only where the check failed: a denial leaves the failover unoffered, as to most. */}
        {runAllowed && failoverPermission.error && (
          <PermissionNote
            state={failoverPermission}
            action="fail over"
            permissionName={recoveryRunFailoverPermission.name}
          />
        )}
        <PermissionNote
          state={capturePermission}
          action="capture machines"
          permissionName={recoveryCaptureCreatePermission.name}
        />
      </Box>
    </InfoCard>
  );
};
