import { Fragment } from 'react';
import { Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import type { NightlyCheckRefusal, ReadinessSummary } from '@backstage-recovery/plugin-recovery-common';
import { formatTime } from './format';
import { RunLink } from './RunLink';

/** A refusal in the few words of an overview row: "Not run last night: never captured". */
export const REFUSAL_SHORT: Record<NightlyCheckRefusal, string> = {
  uncaptured: 'never captured',
  'kept-failover': 'beside a kept failover',
  'host-busy': "host busy past the check's time",
  'no-plan': 'no boot plan',
  'out-of-time': "the check's time ran out",
  error: 'an error',
};

/**
 * When the last night's check began: the latest `checkedAt` among the entities. An entity whose
 * outcome is older was not in that night's check (added since, or its check stopped before it).
 */
export function lastNightlyCheck(items: ReadinessSummary[]): string | undefined {
  let last: string | undefined;
  for (const { nightlyCheck } of items) {
    if (nightlyCheck && (!last || Date.parse(nightlyCheck.checkedAt) > Date.parse(last))) last = nightlyCheck.checkedAt;
  }
  return last;
}

/** Whether the last night's check refused the entity: a test it should have had and did not. */
export function refusedLastNight(r: ReadinessSummary, lastCheckedAt: string | undefined): boolean {
  const check = r.nightlyCheck;
  return !!check && check.outcome === 'refused' && !!lastCheckedAt && Date.parse(check.checkedAt) === Date.parse(lastCheckedAt);
}

/** The row's marker, its words also what the table's search finds. */
export function notRunLastNight(r: ReadinessSummary): string {
  const { reason, runId } = r.nightlyCheck!;
  const short = reason === 'kept-failover' && runId ? `beside failover ${runId}` : REFUSAL_SHORT[reason!] ?? reason ?? 'refused';
  return `Not run last night: ${short}`;
}

/** Refusals of one kind: a kept failover's own, one group a failover, named once. */
interface Group {
  key: string;
  reason: NightlyCheckRefusal;
  count: number;
  runId?: string;
  runEntityRef?: string;
}

const REASON_ORDER: NightlyCheckRefusal[] = ['kept-failover', 'host-busy', 'uncaptured', 'no-plan', 'out-of-time', 'error'];

const GroupText = ({ group: { count, reason, runId, runEntityRef } }: { group: Group }) => {
  if (reason !== 'kept-failover') return <>{count} {REFUSAL_SHORT[reason] ?? reason}</>;
  // Without its id (a failover of an entity the catalog hides from the caller) it cannot be linked.
  if (!runId) return <>{count} beside a kept failover (release it to free the host)</>;
  return (
    <>
      {count} beside failover <RunLink runId={runId} />
      {runEntityRef ? (
        <>
          {' '}
          of <EntityRefLink entityRef={runEntityRef} />
        </>
      ) : null}{' '}
      (release it to free the host)
    </>
  );
};

/**
 * What the last nightly check could not run, counted by why, most first: what the engineer
 * running the check frees or fixes before the next night. Nothing when it ran everything.
 */
export const NightlyCheckSummary = ({ items }: { items: ReadinessSummary[] }) => {
  const last = lastNightlyCheck(items);
  const refused = items.filter(r => refusedLastNight(r, last));
  if (!last || refused.length === 0) return null;
  const groups = new Map<string, Group>();
  for (const { nightlyCheck } of refused) {
    const { reason = 'error', runId, runEntityRef } = nightlyCheck!;
    const key = reason === 'kept-failover' && runId ? `${reason}:${runId}` : reason;
    const group = groups.get(key) ?? { key, reason, count: 0, runId, runEntityRef };
    group.count += 1;
    groups.set(key, group);
  }
  const sorted = [...groups.values()].sort(
    (a, b) => b.count - a.count || REASON_ORDER.indexOf(a.reason) - REASON_ORDER.indexOf(b.reason) || a.key.localeCompare(b.key),
  );
  return (
    <Alert severity="warning" data-testid="nightly-check-summary">
      <Typography variant="body2" component="span">
        Last nightly check ({formatTime(last)}): {refused.length} not run —{' '}
        {sorted.map((g, i) => (
          <Fragment key={g.key}>
            {i > 0 ? ', ' : null}
            <GroupText group={g} />
          </Fragment>
        ))}
      </Typography>
    </Alert>
  );
};
