import { useCallback, useEffect, useState } from 'react';
import { Grid, Typography } from '@material-ui/core';
import {
  InfoCard,
  Progress,
  ResponseErrorPanel,
  Table,
  TableColumn,
} from '@backstage/core-components';
import { useApi } from '@backstage/core-plugin-api';
import { stringifyEntityRef } from '@backstage/catalog-model';
import { useEntity } from '@backstage/plugin-catalog-react';
import type { RecoveryRun } from '@backstage-recovery/plugin-recovery-common';
import useAsyncRetry from 'react-use/esm/useAsyncRetry';
import { recoveryApiRef } from '../api/RecoveryClient';
import { EntityRecoveryCard, EntityRecoveryCardProps } from './EntityRecoveryCard';
import {
  formatDateTime,
  formatDuration,
  isRunActive,
  secondsBetween,
  shortRef,
} from './format';
import { RunDetails } from './RunDetails';
import { RunStatusView } from './StatusViews';

function runResult(run: RecoveryRun): string {
  if (run.status === 'succeeded') return `RTO ${formatDuration(run.rtoSeconds)}`;
  if (run.status === 'failed') {
    return [
      run.error?.machineRef ? shortRef(run.error.machineRef) : undefined,
      run.error?.probe ? `probe ${run.error.probe}` : undefined,
      run.error?.message,
    ]
      .filter(Boolean)
      .join(': ');
  }
  return 'in progress';
}

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
        <Typography variant="body2">
          {formatDateTime(run.startedAt ?? run.createdAt)}
        </Typography>
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
    render: run =>
      formatDuration(
        secondsBetween(run.startedAt ?? run.createdAt, run.finishedAt),
      ),
  },
  {
    title: 'Result',
    render: run => <Typography variant="body2">{runResult(run)}</Typography>,
  },
];

/** The entity's run history; each run can be opened for details. */
export const RecoveryRunHistory = ({
  entityRef,
  rtoObjectiveSeconds,
  limit = 50,
  refreshKey,
}: {
  entityRef: string;
  rtoObjectiveSeconds?: number;
  limit?: number;
  /** Changing it reloads the history. */
  refreshKey?: unknown;
}) => {
  const api = useApi(recoveryApiRef);
  const { value, loading, error, retry } = useAsyncRetry(
    () => api.listRuns({ entityRef, limit }),
    [api, entityRef, limit, refreshKey],
  );
  const [selectedId, setSelectedId] = useState<string | undefined>();
  const runs = value ?? [];
  const selected = runs.find(r => r.id === selectedId) ?? runs[0];

  // Keep the list fresh while a run is in progress.
  const anyActive = runs.some(isRunActive);
  useEffect(() => {
    if (!anyActive) return undefined;
    const t = setTimeout(retry, 2000);
    return () => clearTimeout(t);
  }, [anyActive, retry, value]);

  if (error) return <ResponseErrorPanel error={error} />;
  if (loading && !value) return <Progress />;

  return (
    <Grid container spacing={3}>
      <Grid item xs={12}>
        <Table<RecoveryRun>
          title="Recovery runs"
          options={{
            paging: runs.length > 10,
            pageSize: 10,
            search: false,
            padding: 'dense',
            rowStyle: (row: RecoveryRun) =>
              row.id === selected?.id ? { backgroundColor: 'rgba(0, 0, 0, 0.06)' } : {},
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
  // A run started or finished in the card shows up in the history at once.
  const [refreshKey, setRefreshKey] = useState(0);
  const onRunChange = useCallback(() => setRefreshKey(k => k + 1), []);
  return (
    <Grid container spacing={3} alignItems="stretch">
      <Grid item xs={12} lg={5}>
        <EntityRecoveryCard {...props} onRunChange={onRunChange} />
      </Grid>
      <Grid item xs={12} lg={7}>
        <RecoveryRunHistory entityRef={entityRef} refreshKey={refreshKey} />
      </Grid>
    </Grid>
  );
};
