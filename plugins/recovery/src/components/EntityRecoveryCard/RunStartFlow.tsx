import { type ReactNode, useRef, useState } from 'react';
import { Button } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { useApi } from '@backstage/frontend-plugin-api';
import {
  dependencyCycle,
  recoveryPointTooEarly,
  type RecoveryRun,
  type RunMode,
} from '@backstage-recovery/plugin-recovery-common';
import useMountedState from 'react-use/esm/useMountedState';
import {
  busyWithRunId,
  errorMessage,
  isHostBusy,
  missingDependencies,
  recoveryApiRef,
} from '../../api/RecoveryClient';
import {
  answerOrLook,
  answerTimeoutMs,
  answerWithin,
} from '../../utils/answerWithin';
import { CardNote } from './cardLayout';
import {
  formatDuration,
  formatTime,
  isRunActive,
  runModeName,
  sameRef,
  entityLabel,
} from '../../utils/format';
import { type FollowedRun, runHoldingHost } from '../../hooks';

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
 * What a refused start said the plan cannot include (each dependency, else the backend's own
 * words), and that start's mode and recovery point: the run can go without it, if asked.
 */
interface MissingDependencies {
  text: string;
  mode: RunMode;
  recoveryPoint?: string;
  /** What that start had accepted already (a cycle): asked again with it. */
  acceptCycles?: boolean;
}

/**
 * What a start refused for a dependency cycle the catalog declares said (the cycle, what a run
 * would not wait for), and that start's mode, recovery point and what it had accepted already:
 * the run can go ahead breaking it, if asked.
 */
interface DependencyCycleRefusal {
  cycle: string;
  drops: string;
  mode: RunMode;
  recoveryPoint?: string;
  acceptMissingDependencies?: boolean;
}

/** What a start from the card asks for: a test recovery unless `mode` says failover. */
export interface StartRequest {
  mode?: RunMode;
  acceptMissingDependencies?: boolean;
  /** Go ahead over a dependency cycle the catalog declares, one edge per cycle not waited for. */
  acceptCycles?: boolean;
  recoveryPoint?: string;
}

/**
 * Starting a run of the entity from its card, and what each start came to: followed (through
 * `followed`, the card's {@link useFollowedRun}), refused, or left unanswered.
 */
export function useRunStart({
  entityRef,
  followed,
  onRunChange,
}: {
  entityRef: string;
  followed: FollowedRun;
  onRunChange?: (run: RecoveryRun) => void;
}) {
  const api = useApi(recoveryApiRef);
  // False once the card has moved on to another entity (unmounted): a start that answers after
  // that is about the previous entity and is dropped.
  const mounted = useMountedState();
  const {
    run,
    follow,
    followFound,
    loadRunHoldingHost,
    setBusyWithId,
    setInterrupted,
  } = followed;

  /** The mode of the run being started, while its start is under way. */
  const [starting, setStarting] = useState<RunMode | undefined>();
  const [startError, setStartError] = useState<
    { error: Error; mode: RunMode } | undefined
  >();
  const [missing, setMissing] = useState<MissingDependencies | undefined>();
  const [cycle, setCycle] = useState<DependencyCycleRefusal | undefined>();
  /**
   * A start left unanswered: the entity's run found in progress since (followed), or none, or
   * why the look for it failed.
   */
  const [startUnanswered, setStartUnanswered] = useState<
    StartUnanswered | undefined
  >();
  /**
   * Counts the starts: a start's answer that comes after the card gave up waiting is followed
   * only while no later start has been made.
   */
  const startCount = useRef(0);

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
    {
      mode,
      recoveryPoint,
      late = false,
      acceptMissingDependencies,
      acceptCycles,
    }: {
      mode: RunMode;
      recoveryPoint?: string;
      late?: boolean;
      acceptMissingDependencies?: boolean;
      acceptCycles?: boolean;
    },
  ): Promise<unknown> => {
    const busy = isHostBusy(refusal) ? await findBusyRun(refusal) : undefined;
    const left = missingDependencies(refusal);
    const cyclic = dependencyCycle(refusal);
    if (!mounted()) return undefined;
    if (busy) {
      setBusyWithId(busy.id);
      followFound(busy);
    } else if (left) {
      setMissing({
        text: left.join('; ') || errorMessage(refusal),
        mode,
        recoveryPoint,
        ...(acceptCycles && { acceptCycles }),
      });
    } else if (cyclic) {
      setCycle({
        cycle: cyclic.cycle,
        drops: cyclic.wouldDrop
          .map(
            e =>
              `${entityLabel(e.from)} without waiting for ${entityLabel(e.waitsFor)}`,
          )
          .join(', '),
        mode,
        recoveryPoint,
        ...(acceptMissingDependencies && { acceptMissingDependencies }),
      });
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
    acceptCycles = false,
    recoveryPoint,
  }: StartRequest = {}) => {
    const attempt = ++startCount.current;
    setStarting(mode);
    setStartError(undefined);
    setMissing(undefined);
    setCycle(undefined);
    setBusyWithId(undefined);
    setInterrupted(undefined);
    setStartUnanswered(undefined);
    const request = api.startRun({
      entityRef,
      mode,
      ...(acceptMissingDependencies && { acceptMissingDependencies }),
      ...(acceptCycles && { acceptCycles }),
      ...(recoveryPoint && { recoveryPoint }),
    });
    try {
      // POST /runs answers at once (202): past a minute the answer was lost, not slow. The run may
      // have started all the same, so the card looks, as it finds the run holding the host.
      const outcome = await answerOrLook(request, answerTimeoutMs(), async () =>
        runHoldingHost(await api.listRuns({ active: true }), entityRef),
      );
      if (!mounted()) return undefined;
      if ('answer' in outcome) {
        follow(outcome.answer);
        onRunChange?.(outcome.answer);
        return undefined;
      }
      const found =
        'seen' in outcome && isRunActive(outcome.seen)
          ? outcome.seen
          : undefined;
      const own =
        found && sameRef(found.entityRef, entityRef) ? found : undefined;
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
          await refusedStart(refusal, {
            mode,
            recoveryPoint,
            late: true,
            acceptMissingDependencies,
            acceptCycles,
          });
        },
      );
    } catch (e) {
      return await refusedStart(e, {
        mode,
        recoveryPoint,
        acceptMissingDependencies,
        acceptCycles,
      });
    } finally {
      setStarting(undefined);
    }
    return undefined;
  };

  return { starting, startError, missing, cycle, startUnanswered, startRun };
}

export type RunStart = ReturnType<typeof useRunStart>;

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
        The answer to the start of the {runModeName(mode)} came after {within}:
        it started ({runModeName(late.mode)} {late.id}), following it.
      </Alert>
    );
  }
  if (found) {
    return (
      <Alert severity="info">
        No answer to the start within {within}, but a {runModeName(found.mode)}{' '}
        of {entityLabel(entityRef)} is in progress (started{' '}
        {formatTime(found.startedAt ?? found.createdAt)}): following it.
      </Alert>
    );
  }
  return (
    <Alert severity="warning">
      No answer to the start of the {runModeName(mode)} within {within},{' '}
      {lookFailed
        ? `and the check for a run in progress failed too: ${errorMessage(lookFailed)}`
        : `and no run of ${entityLabel(entityRef)} is in progress`}
      . It may have started all the same: a run may still appear (the run
      history on the Recovery tab lists it). Look there before starting again.
    </Alert>
  );
};

/**
 * A warning that held a start up, with the button that asks for the start again all the same
 * (`disabled`: whether a start of that mode is off now).
 */
const GoAheadWarning = ({
  label,
  disabled,
  onGoAhead,
  children,
}: {
  label: string;
  disabled: boolean;
  onGoAhead: () => void;
  children: ReactNode;
}) => (
  <Alert
    severity="warning"
    action={
      <Button
        color="inherit"
        size="small"
        disabled={disabled}
        onClick={() => onGoAhead()}
      >
        {label}
      </Button>
    }
  >
    {children}
  </Alert>
);

/**
 * What the last start from the card came to, where it started nothing followed: refused, left
 * unanswered, or held up by dependencies the plan cannot include, which it offers to go without,
 * or by a dependency cycle, which it offers to go ahead over (`startDisabled`: whether a start of
 * that mode is off now).
 */
export const RunStartNotes = ({
  entityRef,
  start: { startError, startUnanswered, missing, cycle, startRun },
  startDisabled,
}: {
  entityRef: string;
  start: RunStart;
  startDisabled: Record<RunMode, boolean>;
}) => (
  <>
    {startError && (
      <CardNote>
        <Alert severity="error">
          Could not start the {runModeName(startError.mode)}:{' '}
          {errorMessage(startError.error)}
        </Alert>
      </CardNote>
    )}
    {startUnanswered && (
      <CardNote>
        <StartUnansweredNote {...startUnanswered} entityRef={entityRef} />
      </CardNote>
    )}
    {missing && (
      <CardNote>
        <GoAheadWarning
          label={
            missing.mode === 'failover'
              ? 'Fail over without them'
              : 'Run without them'
          }
          disabled={startDisabled[missing.mode]}
          onGoAhead={() =>
            startRun({
              mode: missing.mode,
              acceptMissingDependencies: true,
              acceptCycles: missing.acceptCycles,
              recoveryPoint: missing.recoveryPoint,
            })
          }
        >
          The catalog declares dependencies the boot plan cannot include:{' '}
          {missing.text.replace(/\.$/, '')}.{' '}
          {missing.mode === 'failover'
            ? 'A failover without them brings back less than production needs: fix the catalog, or fail over without them and bring those back by hand.'
            : 'A test recovery without them tests less than the recovery production needs: fix the catalog, or run without them.'}
        </GoAheadWarning>
      </CardNote>
    )}
    {cycle && (
      <CardNote>
        <GoAheadWarning
          label={cycle.mode === 'failover' ? 'Fail over anyway' : 'Run anyway'}
          disabled={startDisabled[cycle.mode]}
          onGoAhead={() =>
            startRun({
              mode: cycle.mode,
              acceptCycles: true,
              acceptMissingDependencies: cycle.acceptMissingDependencies,
              recoveryPoint: cycle.recoveryPoint,
            })
          }
        >
          {cycle.cycle.replace(/\.$/, '')}.{' '}
          {cycle.mode === 'failover' ? 'A failover' : 'A test recovery'} can go
          ahead all the same
          {cycle.drops ? `, booting ${cycle.drops}` : ''}: its timeline names
          each dependency it did not wait for.
        </GoAheadWarning>
      </CardNote>
    )}
  </>
);
