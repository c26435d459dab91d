import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import { Grid, Link, Typography, useTheme } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import {
  InfoCard,
  Progress,
  Table,
  TableColumn,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import type {
  Readiness,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import { errorMessage, recoveryApiRef } from '../api/RecoveryClient';
import {
  DEFAULT_POLL_INTERVAL_MS,
  EntityRecoveryCard,
  EntityRecoveryCardProps,
} from './EntityRecoveryCard';
import {
  formatTime,
  formatDuration,
  formatRunFailure,
  isRunActive,
  pollInterval,
  retryDelayMs,
  secondsBetween,
  shortRef,
} from './format';
import { LoadErrorPanel } from './LoadError';
import { RunDetails } from './RunDetails';
import { RunStatusView } from './StatusViews';
import { useKeptAsyncRetry } from './useKeptAsyncRetry';

function runResult(run: RecoveryRun): string {
  if (run.status === 'succeeded') return `RTO ${formatDuration(run.rtoSeconds)}`;
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
      style={{ fontWeight: selected ? 'bold' : undefined, display: 'block' }}
      onClick={() => select(run.id)}
    >
      {formatTime(run.startedAt ?? run.createdAt)}
    </Link>
  );
};

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
    cellStyle: { whiteSpace: 'nowrap' },
    render: run => (
      <>
        <SelectRunButton run={run} />
        <Typography variant="caption" color="textSecondary">
          {run.mode} on {run.hypervisorHost} ·{' '}
          {run.trigger === 'schedule'
            ? 'scheduled'
            : shortRef(run.createdBy ?? 'user')}
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
    render: run => <Typography variant="body2">{runResult(run)}</Typography>,
  },
];

/** The entity's run history; each run can be opened for details. */
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
  /** How often the history is reloaded while a run is in progress. Default 2000. */
  pollIntervalMs?: number;
}) => {
  const api = useApi(recoveryApiRef);
  const intervalMs = pollInterval(pollIntervalMs, 2000);
  // One failed poll does not blank the history: the last list loaded stays on screen.
  const { value: shown, loading, error, retry } = useKeptAsyncRetry(
    () => api.listRuns({ entityRef, limit }),
    [api, entityRef, limit, refreshKey],
    entityRef,
  );
  const [selectedId, setSelectedId] = useState<string | undefined>();
  const runs = shown ?? [];
  const selected = runs.find(r => r.id === selectedId) ?? runs[0];
  const selection = useMemo(
    () => ({ selectedId: selected?.id, select: setSelectedId }),
    [selected?.id],
  );

  // Keep the list fresh while a run is in progress, and retry failed loads with backoff
  // for as long as the history is on screen.
  // The theme's, so the selected run stays visible in a dark theme too.
  const theme = useTheme();
  const anyActive = runs.some(isRunActive);
  const failures = useRef(0);
  useEffect(() => {
    if (loading) return undefined;
    let delay: number | undefined;
    if (error) {
      failures.current += 1;
      delay = retryDelayMs(intervalMs, failures.current);
    } else {
      failures.current = 0;
      if (anyActive) delay = intervalMs;
    }
    if (delay === undefined) return undefined;
    const t = setTimeout(retry, delay);
    return () => clearTimeout(t);
  }, [loading, error, shown, anyActive, retry, intervalMs]);

  // It retries by itself with backoff; the button is for one who will not wait. While a retry
  // loads, react-use still holds the error: progress shows, not the error being retried.
  if (loading && !shown) return <Progress />;
  if (error && !shown) return <LoadErrorPanel error={error} onRetry={retry} />;

  return (
    <Grid container spacing={3}>
      {error && (
        <Grid item xs={12}>
          <Alert severity="warning">
            Could not reload the run history: {errorMessage(error)}. Showing the last
            list loaded; retrying…
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
                row.id === selected?.id ? { backgroundColor: theme.palette.action.selected } : {},
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
      {selected && (
        <Grid item xs={12}>
          <InfoCard title={`Run ${selected.id}`}>
            <RunDetails run={selected} rtoObjectiveSeconds={rtoObjectiveSeconds} />
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
  return <EntityRecoveryContentFor key={entityRef} entityRef={entityRef} {...props} />;
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
  return (
    <Grid container spacing={3} alignItems="stretch">
      <Grid item xs={12} lg={5}>
        <EntityRecoveryCard
          {...cardProps}
          onRunChange={onRunChange}
          onReadinessChange={onReadinessChange}
        />
      </Grid>
      <Grid item xs={12} lg={7}>
        {/* The history polls at half the card's rate (2 s against 1 s by default). */}
        <RecoveryRunHistory
          entityRef={entityRef}
          rtoObjectiveSeconds={rtoObjectiveSeconds}
          refreshKey={refreshKey}
          pollIntervalMs={pollInterval(props.pollIntervalMs, DEFAULT_POLL_INTERVAL_MS) * 2}
        />
      </Grid>
    </Grid>
  );
};
