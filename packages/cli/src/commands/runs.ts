import { Command, Option } from 'commander';
import {
  downSince,
  formatMeasured,
  formatUtcTime,
  type RecoveryRun,
  runStartedBy,
  type RunStatus,
} from '@backstage-recovery/plugin-recovery-common';
import { entityRefArg } from '../remote';
import { type CliContext, json, table } from '../cli';
import {
  againstBackend,
  API_LIMIT_MAX,
  type BackendCliOptions,
  type Client,
  connect,
  limitArg,
} from './backend';

// Every status a run can have: the compiler holds this list to RunStatus.
const RUN_STATUSES = Object.keys({
  pending: true,
  running: true,
  succeeded: true,
  failed: true,
  interrupted: true,
} satisfies Record<RunStatus, true>) as RunStatus[];

/** As GET /runs answers when no limit is asked. */
const DEFAULT_LIMIT = '20';

export type RunsOptions = BackendCliOptions & {
  status?: RunStatus;
  limit: string;
};

export function addRunsCommand(program: Command, ctx: CliContext): void {
  againstBackend(
    program
      .command('runs')
      .description(
        "an entity's recovery runs, or every entity's, newest first (recovery show-run RUN shows one in full)",
      )
      .argument(
        '[entity]',
        'entity ref (component:default/web, or web for short)',
      )
      .addOption(
        new Option(
          '--status <status>',
          'only the runs with this status',
        ).choices(RUN_STATUSES),
      )
      .option(
        '--limit <n>',
        'how many runs to list at most, older pages read as needed',
        DEFAULT_LIMIT,
      ),
  ).action((entity: string | undefined, opts: RunsOptions) =>
    runs(ctx, entity, opts),
  );
}

/** `recovery runs [ENTITY]`: the runs, newest first, as many as `--limit` says. */
export async function runs(
  ctx: CliContext,
  entity: string | undefined,
  opts: RunsOptions,
): Promise<void> {
  const limit = limitArg(opts.limit, 'runs to list');
  const entityRef =
    entity === undefined ? undefined : entityRefArg(entity, ctx.doing);
  const items = await listRuns(connect(ctx, opts), {
    entityRef,
    status: opts.status,
    limit,
  });
  ctx.io.stdout(
    opts.json
      ? json({ items })
      : formatRunList(items, { entityRef, status: opts.status }),
  );
}

/**
 * Up to `limit` runs newest first, of `status` only where it is given, reading page after page
 * of GET /runs (each at the `pageInfo.nextCursor` of the one before) until enough are found or
 * none is left. The API filters no status: a page of them is read whole and filtered here.
 */
async function listRuns(
  client: Client,
  query: { entityRef?: string; status?: RunStatus; limit: number },
): Promise<RecoveryRun[]> {
  const { entityRef, status, limit } = query;
  const found: RecoveryRun[] = [];
  let cursor: string | undefined;
  for (;;) {
    const asked = status
      ? API_LIMIT_MAX
      : Math.min(API_LIMIT_MAX, limit - found.length);
    const page = await client.listRunsPage({ entityRef, limit: asked, cursor });
    found.push(...page.items.filter(r => !status || r.status === status));
    // The last page has no next cursor.
    cursor = page.pageInfo.nextCursor;
    if (found.length >= limit || !cursor) return found.slice(0, limit);
  }
}

/**
 * How a kept failover runs degraded (RunSupervision.degraded): the machine its supervision could
 * not bring back, since when (or when it was noticed down), and when it is tried again; none for a run that is not.
 */
export function degradedNote(run: RecoveryRun): string | undefined {
  const degraded = run.supervision?.degraded;
  if (!degraded) return undefined;
  const retry = run.supervision?.retry;
  // Without a retry, the supervision tries it again at its next sweep.
  const next = retry ? formatUtcTime(retry.nextAt) : 'at the next sweep';
  return `${degraded.machineRef} ${downSince(degraded, formatUtcTime(degraded.since))}, next try ${next}`;
}

/** Columns shown only where a run listed has something in them. */
const OPTIONAL_COLUMNS = new Set(['RECOVERY POINT', 'DEGRADED']);

/**
 * The runs, a line each under a header: the entity where they are of several, mode, status,
 * when it started, its measured RTO, who started it, the recovery point it restored to, and how a
 * kept failover runs degraded.
 */
export function formatRunList(
  items: RecoveryRun[],
  { entityRef, status }: { entityRef?: string; status?: RunStatus },
): string {
  if (items.length === 0) {
    const which = status ? `${status} runs` : 'runs';
    return `No ${which}${entityRef ? ` of ${entityRef}` : ''}.\n`;
  }
  const rows = [
    [
      'RUN',
      ...(entityRef ? [] : ['ENTITY']),
      'MODE',
      'STATUS',
      'STARTED',
      'MEASURED RTO',
      'STARTED BY',
      'RECOVERY POINT',
      'DEGRADED',
    ],
    ...items.map(run => [
      run.id,
      ...(entityRef ? [] : [run.entityRef]),
      run.mode,
      run.status,
      formatUtcTime(run.startedAt ?? run.createdAt),
      formatMeasured(run.rtoSeconds),
      runStartedBy(run),
      // A run to a recovery point proves that point boots, not the latest captures.
      run.recoveryPoint ? formatUtcTime(run.recoveryPoint) : '',
      degradedNote(run) ?? '',
    ]),
  ];
  const shown = rows[0].map(
    (header, i) =>
      !OPTIONAL_COLUMNS.has(header) || rows.slice(1).some(row => row[i] !== ''),
  );
  return `${table(rows.map(row => row.filter((_, i) => shown[i])))}\n`;
}
