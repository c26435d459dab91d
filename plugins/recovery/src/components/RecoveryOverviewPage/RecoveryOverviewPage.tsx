import { useEffect, useMemo } from 'react';
import { Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import {
  Content,
  ContentHeader,
  Header,
  Page,
  SupportButton,
  Table,
  TableColumn,
} from '@backstage/core-components';
import { useApi } from '@backstage/frontend-plugin-api';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import {
  byEntityName,
  byRisk,
  type ReadinessSummary,
  type RunSummary,
} from '@backstage-recovery/plugin-recovery-common';
import { couldNot, recoveryApiRef } from '../../api/RecoveryClient';
import {
  formatAgainst,
  formatCount,
  formatDuration,
  formatMeasured,
  READINESS_LABELS,
  READINESS_RISK_RANK,
  readableTimes,
  runModeName,
  shortRef,
} from '../../utils/format';
import { LoadErrorPanel } from '../common';
import {
  lastNightlyCheck,
  NightlyCheckSummary,
  notRunLastNight,
  refusedLastNight,
} from '../NightlyCheck';
import { ReadinessStatusView, RunStatusView } from '../common';
import { TimeAgo } from '../common';
import { RunLink } from '../RunDetails';
import { useKeptAsyncRetry } from '../../hooks';

/** How often the overview reloads while it is open: capture ages and last runs move on. */
export const OVERVIEW_RELOAD_MS = 60_000;

function oldestCaptureAge(r: ReadinessSummary): number | undefined {
  if (!r.captures.length) return undefined;
  if (r.captures.some(c => !c.latest)) return Infinity;
  return Math.max(...r.captures.map(c => c.ageSeconds ?? 0));
}

/**
 * Orders rows by oldest capture: no machines first, then youngest to oldest, never captured
 * last. Compared, not subtracted: Infinity - Infinity is NaN, which breaks the sort.
 */
export function compareCaptureAge(
  a: ReadinessSummary,
  b: ReadinessSummary,
): number {
  const x = oldestCaptureAge(a) ?? -1;
  const y = oldestCaptureAge(b) ?? -1;
  if (x === y) return 0;
  return x < y ? -1 : 1;
}

/** Whether `text` holds the search box's `term`, whatever the case (as material-table compares). */
function holds(text: string, term: string): boolean {
  return text
    .toLocaleUpperCase('en-US')
    .includes(term.toLocaleUpperCase('en-US'));
}

/** A row of the overview: the entity's readiness, and why last night's check did not run it. */
type OverviewRow = ReadinessSummary & { notRunLastNight?: string };

/** The last run that counts for the entity: its mode, outcome and age. */
const LastRunCell = ({
  run,
  rtoSeconds,
}: {
  run: RunSummary;
  rtoSeconds: number;
}) => {
  let outcome = '';
  if (run.status === 'succeeded') {
    // To the millisecond, as the card and the run say it: over the objective, it never reads as it.
    outcome = `RTO ${formatMeasured(run.rtoSeconds)} / ${formatDuration(rtoSeconds)}`;
  } else if (run.status === 'failed') {
    if (run.failedAt) outcome = `at ${shortRef(run.failedAt)}`;
  }
  return (
    <>
      <RunStatusView status={run.status} />
      <Typography variant="caption" display="block" color="textSecondary">
        {[runModeName(run.mode, true), outcome].filter(Boolean).join(' · ')} ·{' '}
        {/* Its time links to its page; a run of an entity the catalog hides has no id here. */}
        {run.id ? (
          <RunLink runId={run.id}>
            <TimeAgo iso={run.finishedAt ?? run.createdAt} />
          </RunLink>
        ) : (
          <TimeAgo iso={run.finishedAt ?? run.createdAt} />
        )}
      </Typography>
    </>
  );
};

const columns: TableColumn<OverviewRow>[] = [
  {
    title: 'Entity',
    field: 'entityRef',
    highlight: true,
    customSort: byEntityName,
    render: r => <EntityRefLink entityRef={r.entityRef} />,
  },
  {
    title: 'Readiness',
    field: 'status',
    // A status this version does not know (a newer backend's) sorts last, as in byRisk.
    customSort: (a, b) =>
      (READINESS_RISK_RANK[a.status] ?? 9) -
      (READINESS_RISK_RANK[b.status] ?? 9),
    // The search box finds the words shown, `Not recoverable`, not only the field's `not-recoverable`.
    customFilterAndSearch: (term: string, r) =>
      holds(READINESS_LABELS[r.status] ?? r.status, term) ||
      holds(r.status, term),
    render: r => <ReadinessStatusView status={r.status} />,
  },
  // Columns without a field sort only with a customSort: the others offer no sorting.
  {
    title: 'Why',
    sorting: false,
    // Every reason, those folded into "and 2 more" too: which entities a machine never captured
    // puts at risk is found by its name.
    // "Not run last night" too: the entities a kept failover keeps from their test are found so.
    customFilterAndSearch: (term: string, r) =>
      r.reasons.some(reason => holds(reason, term)) ||
      (!!r.notRunLastNight && holds(r.notRunLastNight, term)),
    render: r => (
      <>
        {r.reasons.length ? (
          <>
            <Typography variant="body2">
              {readableTimes(r.reasons[0])}
            </Typography>
            {r.reasons.length > 1 && (
              <Typography variant="caption" color="textSecondary">
                and {r.reasons.length - 1} more
              </Typography>
            )}
          </>
        ) : (
          !r.notRunLastNight && '—'
        )}
        {r.notRunLastNight && (
          <Typography
            variant="caption"
            display="block"
            data-testid="not-run-last-night"
          >
            {r.notRunLastNight}
          </Typography>
        )}
      </>
    ),
  },
  {
    title: 'Oldest capture',
    customSort: compareCaptureAge,
    render: r => {
      const age = oldestCaptureAge(r);
      if (age === undefined) return '—';
      if (age === Infinity) return 'never captured';
      const over = age > r.objectives.rpoSeconds;
      return (
        <Typography variant="body2" color={over ? 'error' : 'inherit'}>
          {formatAgainst(age, r.objectives.rpoSeconds)} / RPO{' '}
          {formatDuration(r.objectives.rpoSeconds)}
        </Typography>
      );
    },
  },
  {
    // A test recovery or a failover: the cell says which.
    title: 'Last run',
    sorting: false,
    render: r =>
      r.lastRun ? (
        <LastRunCell run={r.lastRun} rtoSeconds={r.objectives.rtoSeconds} />
      ) : (
        'never'
      ),
  },
  {
    title: 'Machines',
    // No plan (a dependency cycle, say) is not "0 machines": it sorts first and shows "—".
    customSort: (a, b) => (a.machineCount ?? -1) - (b.machineCount ?? -1),
    render: r => r.machineCount ?? '—',
  },
];

/**
 * The readiness of every entity the backend knows, most at risk first; reloaded every
 * `reloadIntervalMs` (a minute) while it is shown, the table kept on screen meanwhile.
 */
export const RecoveryOverviewContent = ({
  reloadIntervalMs = OVERVIEW_RELOAD_MS,
}: {
  reloadIntervalMs?: number;
}) => {
  const api = useApi(recoveryApiRef);
  // A reload that fails keeps the last overview loaded on screen, saying so; one left unanswered
  // for a minute fails too (useKeptAsyncRetry), so the reloads go on.
  const {
    value: loaded,
    loading,
    error,
    retry,
  } = useKeptAsyncRetry(
    async () => ({
      items: await api.listReadiness(),
      at: new Date().toISOString(),
    }),
    [api],
    'overview',
  );
  // The next reload a while after the last one ended, however it ended; none once unmounted.
  // On each new overview or error too: a load that answers at once is never seen loading.
  useEffect(() => {
    if (loading) return undefined;
    const timer = setTimeout(retry, reloadIntervalMs);
    return () => clearTimeout(timer);
  }, [loading, loaded, error, retry, reloadIntervalMs]);
  const value = loaded?.items;
  // New rows only with a new overview: material-table keeps its state on the rows it is given.
  const rows = useMemo(() => {
    const last = lastNightlyCheck(value ?? []);
    return [...(value ?? [])]
      .sort(byRisk)
      .map((r): OverviewRow =>
        refusedLastNight(r, last)
          ? { ...r, notRunLastNight: notRunLastNight(r) }
          : r,
      );
  }, [value]);
  // react-use keeps the error while a retry loads: the table's loading state shows instead.
  if (error && !loading && !loaded)
    return <LoadErrorPanel error={error} onRetry={retry} what="the overview" />;
  const counts = rows.reduce<Record<string, number>>((acc, r) => {
    acc[r.status] = (acc[r.status] ?? 0) + 1;
    return acc;
  }, {});
  return (
    <>
      <ContentHeader title="Readiness by risk">
        <SupportButton>
          Readiness of every service and system with recovery configured:
          capture age against the RPO, last test recovery (or failover) against
          the RTO. It reloads every {formatDuration(reloadIntervalMs / 1000)}{' '}
          while open.
        </SupportButton>
      </ContentHeader>
      {loaded && (
        <Typography
          variant="caption"
          color="textSecondary"
          display="block"
          data-testid="overview-loaded"
        >
          Loaded <TimeAgo iso={loaded.at} />; reloads every{' '}
          {formatDuration(reloadIntervalMs / 1000)}.
        </Typography>
      )}
      {error && loaded && (
        <Alert severity="warning">
          {couldNot('reload the readiness', error)}. Showing it as loaded{' '}
          <TimeAgo iso={loaded.at} />; trying again.
        </Alert>
      )}
      {value && <NightlyCheckSummary items={value} />}
      <Table<OverviewRow>
        title={
          value
            ? `${formatCount(rows.length, 'entity', 'entities')} — ${counts['not-recoverable'] ?? 0} not recoverable, ${
                counts['at-risk'] ?? 0
              } at risk, ${counts.unknown ?? 0} unknown, ${counts.ready ?? 0} ready`
            : 'Entities'
        }
        // Only the first load: a reload keeps the rows on screen, without a spinner over them.
        isLoading={loading && !value}
        options={{ paging: rows.length > 20, pageSize: 20, padding: 'dense' }}
        columns={columns}
        data={rows}
        emptyContent={
          <Typography variant="body2" style={{ padding: 16 }}>
            No entity has recovery configured yet.
          </Typography>
        }
      />
    </>
  );
};

/**
 * The `/recovery` page. `noHeader` when the app already renders a page header: a Page all the
 * same, as the catalog's entity pages are, whose <main> landmark a screen reader jumps to.
 */
export const RecoveryOverviewPage = ({ noHeader }: { noHeader?: boolean }) => {
  return (
    <Page themeId="tool">
      {noHeader ? null : (
        <Header
          title="Recovery"
          subtitle="Can each service be recovered now, within its objectives?"
        />
      )}
      <Content>
        <RecoveryOverviewContent />
      </Content>
    </Page>
  );
};
