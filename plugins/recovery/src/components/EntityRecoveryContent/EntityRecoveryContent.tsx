import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import useMountedState from 'react-use/esm/useMountedState';
import { Button, Grid, Link, Typography, useTheme } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import {
  InfoCard,
  Progress,
  Table,
  TableColumn,
} from '@backstage/core-components';
import { useApi } from '@backstage/frontend-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import type {
  Readiness,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { couldNot, recoveryApiRef } from '../../api/RecoveryClient';
import {
  CARD_TITLE,
  DEFAULT_POLL_INTERVAL_MS,
  EntityRecoveryCard,
  EntityRecoveryCardProps,
} from '../EntityRecoveryCard';
import {
  formatCount,
  formatTime,
  formatDuration,
  formatMeasured,
  formatRunFailure,
  interruptionReason,
  isRunActive,
  pollInterval,
  retryDelayMs,
  secondsBetween,
  shortRunId,
  entityLabel,
  runStartedBy,
} from '../../utils/format';
import { answerTimeoutMs, answerWithin } from '../../utils/answerWithin';
import { LoadErrorPanel } from '../common';
import { RunDetails, RunLink } from '../RunDetails';
import { RunStatusView } from '../common';
import { useKeptAsyncRetry, useRecoverySignals } from '../../hooks';

function runResult(run: RecoveryRun): string {
  if (run.status === 'succeeded')
    return `RTO ${formatMeasured(run.rtoSeconds)}`;
  // An interruption says why in a sentence (the status column says it was interrupted), no
  // machine's failure: `Preempted by failover run-7 of system:default/site.`
  if (run.status === 'interrupted') return interruptionReason(run);
  if (run.status === 'failed') return formatRunFailure(run);
  return 'in progress';
}

/** How long a run took; undefined until it has finished. */
function runDuration(run: RecoveryRun): number | undefined {
  return secondsBetween(run.startedAt ?? run.createdAt, run.finishedAt);
}

// The selection reaches the Started cells through context, so the columns stay one constant
// array rather than new ones handed to material-table on every selection.
const RunSelection = createContext<{
  selectedId?: string;
  select: (runId: string) => void;
}>({ select: () => {} });

/**
 * The run's start time as a button that opens its details: rows are only clickable with a
 * mouse, this can be reached with Tab and pressed with Enter or Space.
 */
const SelectRunButton = ({ run }: { run: RecoveryRun }) => {
  const { selectedId, select } = useContext(RunSelection);
  const selected = run.id === selectedId;
  return (
    <Link
      component="button"
      variant="body2"
      color="textPrimary"
      underline="always"
      aria-pressed={selected}
      style={{
        fontWeight: selected ? 'bold' : undefined,
        display: 'block',
        whiteSpace: 'nowrap',
      }}
      onClick={() => select(run.id)}
    >
      {formatTime(run.startedAt ?? run.createdAt)}
    </Link>
  );
};

/**
 * A failure of many words in two lines, its whole text on hover and in the run's details: a row
 * stays a row, not 40 lines of a narrow column.
 */
const clampedResult = {
  display: '-webkit-box',
  WebkitLineClamp: 2,
  WebkitBoxOrient: 'vertical',
  overflow: 'hidden',
} as const;

const columns: TableColumn<RecoveryRun>[] = [
  {
    title: 'Status',
    field: 'status',
    cellStyle: { whiteSpace: 'nowrap' },
    render: run => <RunStatusView status={run.status} />,
  },
  {
    title: 'Started',
    field: 'createdAt',
    // Its time on one line (the button's own), its caption wrapping: unbroken, the caption took
    // the room of the Result column.
    render: run => (
      <>
        <SelectRunButton run={run} />
        <Typography variant="caption" color="textSecondary">
          {run.mode} on {run.hypervisorHost} · {runStartedBy(run, entityLabel)}
          {/* It proves that point boots, not the latest captures: readiness does not count it. */}
          {run.recoveryPoint
            ? ` · to the recovery point ${formatTime(run.recoveryPoint)}`
            : ''}
        </Typography>
      </>
    ),
  },
  {
    title: 'Duration',
    cellStyle: { whiteSpace: 'nowrap' },
    // No field to sort by: without customSort the header would offer a sort that does nothing.
    // Unfinished runs (no duration yet) sort as the shortest.
    customSort: (a, b) => (runDuration(a) ?? -1) - (runDuration(b) ?? -1),
    render: run => formatDuration(runDuration(run)),
  },
  {
    title: 'Result',
    sorting: false,
    cellStyle: { minWidth: '16em' },
    render: run => {
      const result = runResult(run);
      return (
        <Typography variant="body2" title={result} style={clampedResult}>
          {result}
        </Typography>
      );
    },
  },
  {
    // Its page, to follow it or share it; the id's start names it, as a commit's does.
    title: 'Run',
    sorting: false,
    cellStyle: { whiteSpace: 'nowrap' },
    render: run => <RunLink runId={run.id}>{shortRunId(run.id)}</RunLink>,
  },
];

/** Newest first as the backend lists runs: by creation time, then by id, both descending. */
function newestFirst(a: RecoveryRun, b: RecoveryRun): number {
  const at = Date.parse(b.createdAt) - Date.parse(a.createdAt);
  if (at !== 0) return at;
  if (a.id === b.id) return 0;
  return a.id < b.id ? 1 : -1;
}

/**
 * The history as shown: the newest page as just loaded, then every other run loaded for the
 * entity (older pages, and runs an earlier newest page held that newer runs have pushed off
 * it since), newest first, each once.
 */
export function mergeRunHistory(
  newest: RecoveryRun[],
  loaded: RecoveryRun[],
): RecoveryRun[] {
  const ids = new Set(newest.map(r => r.id));
  const seen = new Set<string>();
  const rest = loaded.filter(r => {
    if (ids.has(r.id) || seen.has(r.id)) return false;
    seen.add(r.id);
    return true;
  });
  return [...newest, ...rest].sort(newestFirst);
}

/** The runs loaded past the newest page, for one entity; `end` once a page came back short. */
/** The older pages loaded; `nextCursor`: where the page after them starts (absent: none left). */
type OlderRuns = {
  entityRef: string;
  runs: RecoveryRun[];
  nextCursor?: string;
};

/**
 * The entity's run history; each run can be opened for details. A page of `limit` runs first;
 * while the API says a next page starts ("pageInfo.nextCursor"), "Show older runs" loads it.
 */
export const RecoveryRunHistory = ({
  entityRef,
  rtoObjectiveSeconds,
  limit = 50,
  refreshKey,
  pollIntervalMs = 2000,
}: {
  entityRef: string;
  rtoObjectiveSeconds?: number;
  limit?: number;
  /** Changing it reloads the history. */
  refreshKey?: unknown;
  /**
   * How often the history is reloaded while a run is in progress. Default 2000; with Backstage
   * signals, it is reloaded as the entity's runs change, and this slows to a fallback.
   */
  pollIntervalMs?: number;
}) => {
  const api = useApi(recoveryApiRef);
  const intervalMs = pollInterval(pollIntervalMs, 2000);
  const changes = useRecoverySignals(entityRef, intervalMs);
  // One failed poll does not blank the history: the last list loaded stays on screen. One left
  // unanswered fails as the run's poll does, and is retried.
  const {
    value: newestPage,
    loading,
    error,
    retry,
  } = useKeptAsyncRetry(
    () => api.listRunsPage({ entityRef, limit }),
    [api, entityRef, limit, refreshKey],
    entityRef,
    answerTimeoutMs(intervalMs),
  );
  const [selectedId, setSelectedId] = useState<string | undefined>();
  const shown = newestPage?.items;
  const newest = shown ?? [];
  // Older pages, kept while the newest page is polled. Each poll's runs are kept with them: a
  // run that newer runs push off the newest page stays between it and the older pages.
  const [olderState, setOlder] = useState<OlderRuns>();
  const older = olderState?.entityRef === entityRef ? olderState : undefined;
  useEffect(() => {
    if (!shown) return;
    setOlder(o =>
      o && o.entityRef === entityRef
        ? { ...o, runs: mergeRunHistory(shown, o.runs) }
        : o,
    );
  }, [shown, entityRef]);
  const runs = older ? mergeRunHistory(newest, older.runs) : newest;
  const [olderLoad, setOlderLoad] = useState<{
    entityRef: string;
    error?: Error;
  }>();
  const loadingOlder = olderLoad?.entityRef === entityRef && !olderLoad.error;
  const olderError =
    olderLoad?.entityRef === entityRef ? olderLoad.error : undefined;
  const mounted = useMountedState();
  // The newest page as last loaded, for a page of older runs that arrives after a poll.
  const newestNow = useRef(newest);
  newestNow.current = newest;
  // The page after the oldest run shown: after the older pages once any is loaded, else after
  // the newest page as last polled.
  const nextCursor = older ? older.nextCursor : newestPage?.pageInfo.nextCursor;
  const showOlder = useCallback(async () => {
    if (!nextCursor) return;
    setOlderLoad({ entityRef });
    try {
      // Unanswered, it fails: the button would otherwise say "Loading older runs…" for good.
      const page = await answerWithin(
        api.listRunsPage({ entityRef, limit, cursor: nextCursor }),
        answerTimeoutMs(),
      );
      if (!mounted()) return;
      setOlder(o => ({
        entityRef,
        // With the newest page: newer runs may push its runs off it before the next poll is kept.
        runs: mergeRunHistory(page.items, [
          ...newestNow.current,
          ...(o?.entityRef === entityRef ? o.runs : []),
        ]),
        nextCursor: page.pageInfo.nextCursor,
      }));
      setOlderLoad(undefined);
    } catch (e) {
      if (mounted()) setOlderLoad({ entityRef, error: e as Error });
    }
  }, [api, entityRef, limit, nextCursor, mounted]);
  const more = nextCursor !== undefined;
  const selected = runs.find(r => r.id === selectedId) ?? runs[0];
  const selection = useMemo(
    () => ({ selectedId: selected?.id, select: setSelectedId }),
    [selected?.id],
  );

  // Keep the list fresh while a run is in progress, and retry failed loads with backoff
  // for as long as the history is on screen.
  // The theme's, so the selected run stays visible in a dark theme too.
  const theme = useTheme();
  // Only the newest page is polled: the runs in progress are at its top.
  const anyActive = newest.some(isRunActive);
  const failures = useRef(0);
  const { pollIntervalMs: activeIntervalMs, watch } = changes;
  useEffect(() => {
    if (loading) return undefined;
    let delay: number | undefined;
    if (error) {
      failures.current += 1;
      delay = retryDelayMs(intervalMs, failures.current);
    } else {
      failures.current = 0;
      if (anyActive) delay = activeIntervalMs;
    }
    if (delay === undefined) return undefined;
    const t = setTimeout(retry, delay);
    return () => clearTimeout(t);
  }, [loading, error, shown, anyActive, retry, intervalMs, activeIntervalMs]);
  // A run of the entity admitted, changed or ended (started elsewhere too): the newest page again.
  useEffect(
    () =>
      watch(change => {
        if (change.kind === 'run') retry();
      }),
    [watch, retry],
  );

  // It retries by itself with backoff; the button is for one who will not wait. While a retry
  // loads, react-use still holds the error: progress shows, not the error being retried.
  if (loading && !shown) return <Progress />;
  if (error && !shown)
    return (
      <LoadErrorPanel error={error} onRetry={retry} what="the run history" />
    );

  return (
    <Grid container spacing={3}>
      {error && (
        <Grid item xs={12}>
          <Alert severity="warning">
            {couldNot('reload the run history', error)}. Showing the last list
            loaded; retrying…
          </Alert>
        </Grid>
      )}
      <Grid item xs={12}>
        <RunSelection.Provider value={selection}>
          <Table<RecoveryRun>
            title="Recovery runs"
            options={{
              paging: runs.length > 10,
              pageSize: 10,
              search: false,
              padding: 'dense',
              rowStyle: (row: RecoveryRun) =>
                row.id === selected?.id
                  ? { backgroundColor: theme.palette.action.selected }
                  : {},
            }}
            columns={columns}
            data={runs}
            onRowClick={(_e, row) => row && setSelectedId(row.id)}
            emptyContent={
              <Typography variant="body2" style={{ padding: 16 }}>
                No recovery has been run for this entity yet.
              </Typography>
            }
          />
        </RunSelection.Provider>
      </Grid>
      {(more || older) && (
        <Grid item xs={12}>
          {olderError && (
            <Alert severity="warning" style={{ marginBottom: 8 }}>
              {couldNot('load older runs', olderError)}
            </Alert>
          )}
          {more ? (
            <Button
              variant="outlined"
              size="small"
              disabled={loadingOlder}
              onClick={showOlder}
            >
              {loadingOlder ? 'Loading older runs…' : 'Show older runs'}
            </Button>
          ) : (
            <Typography variant="body2" color="textSecondary">
              No older runs: {formatCount(runs.length, 'run', 'runs')} in all.
            </Typography>
          )}
        </Grid>
      )}
      {selected && (
        <Grid item xs={12}>
          <InfoCard
            title={`Run ${selected.id}`}
            titleTypographyProps={CARD_TITLE}
          >
            <RunDetails
              run={selected}
              rtoObjectiveSeconds={rtoObjectiveSeconds}
            />
          </InfoCard>
        </Grid>
      )}
    </Grid>
  );
};

/** The "Recovery" tab of an entity page: the readiness card and the full run history. */
export const EntityRecoveryContent = (props: EntityRecoveryCardProps) => {
  const { entity } = useEntity();
  const entityRef = stringifyEntityRef(entity);
  // Backstage keeps the tab mounted when the page moves to another entity: a new key starts
  // its state afresh, so no objective (or run) of the previous entity is carried over.
  return (
    <EntityRecoveryContentFor
      key={entityRef}
      entityRef={entityRef}
      {...props}
    />
  );
};

const EntityRecoveryContentFor = (
  props: EntityRecoveryCardProps & { entityRef: string },
) => {
  const { entityRef, ...cardProps } = props;
  const {
    onRunChange: onRunChangeProp,
    onReadinessChange: onReadinessChangeProp,
  } = props;
  // A run started or finished in the card shows up in the history at once; the caller is
  // told too, as the card alone would.
  const [refreshKey, setRefreshKey] = useState(0);
  const onRunChange = useCallback(
    (run: RecoveryRun) => {
      setRefreshKey(k => k + 1);
      onRunChangeProp?.(run);
    },
    [onRunChangeProp],
  );
  // The runs are measured against the RTO objective the card loads with the readiness.
  const [rtoObjectiveSeconds, setRtoObjectiveSeconds] = useState<number>();
  const onReadinessChange = useCallback(
    (readiness: Readiness) => {
      setRtoObjectiveSeconds(readiness.objectives.rtoSeconds);
      onReadinessChangeProp?.(readiness);
    },
    [onReadinessChangeProp],
  );
  // Side by side only on a wide screen: beside the runs at a laptop's width, the card's capture
  // table broke its headers and machine names mid-word.
  return (
    <Grid container spacing={3} alignItems="stretch">
      <Grid item xs={12} xl={5}>
        <EntityRecoveryCard
          {...cardProps}
          onRunChange={onRunChange}
          onReadinessChange={onReadinessChange}
        />
      </Grid>
      <Grid item xs={12} xl={7}>
        {/* The history polls at half the card's rate (2 s against 1 s by default). */}
        <RecoveryRunHistory
          entityRef={entityRef}
          rtoObjectiveSeconds={rtoObjectiveSeconds}
          refreshKey={refreshKey}
          pollIntervalMs={
            pollInterval(props.pollIntervalMs, DEFAULT_POLL_INTERVAL_MS) * 2
          }
        />
      </Grid>
    </Grid>
  );
};
