import { Fragment } from 'react';
import { Typography } from '@material-ui/core';
import { Alert } from '@material-ui/lab';
import { EntityRefLink } from '@backstage/plugin-catalog-react';
import type {
  NightlyCheckProgress,
  NightlyCheckRefusal,
  ReadinessSummary,
} from '@backstage-recovery/plugin-recovery-common';
import { formatCount, formatTime, formatTimeAfter } from '../../utils/format';
import { RunLink } from '../RunDetails';

/** A refusal in the few words of an overview row: "Not run last night: never captured". */
export const REFUSAL_SHORT: Record<NightlyCheckRefusal, string> = {
  uncaptured: 'never captured',
  'kept-failover': 'beside a kept failover',
  'host-busy': "host busy past the check's time",
  'host-unreachable': 'hypervisor host unreachable',
  'no-plan': 'no boot plan',
  // Nothing says where it runs: the catalog's to mend, not the host's.
  'no-machine': 'no machine in its boot plan',
  'out-of-time': "the check's time ran out",
  error: 'an error',
};

/**
 * Since when each refusal recorded is the entity's standing word: when the last whole night's check
 * began (a whole night replaces every entity's outcome, so none is older), or where no entity's
 * outcome is of a whole night any more, the oldest night that reached one. Those of the night
 * under way (or interrupted) count, and the last whole night's for the entities it has not reached.
 */
export function lastNightlyCheck(
  items: ReadinessSummary[],
): string | undefined {
  let whole: string | undefined;
  let oldest: string | undefined;
  for (const { nightlyCheck } of items) {
    if (!nightlyCheck) continue;
    const at = nightlyCheck.checkedAt;
    if (!nightlyCheck.night && (!whole || Date.parse(at) > Date.parse(whole)))
      whole = at;
    if (!oldest || Date.parse(at) < Date.parse(oldest)) oldest = at;
  }
  return whole ?? oldest;
}

/** Whether the nightly check refused the entity, by its standing word since `lastCheckedAt` (lastNightlyCheck): a test it should have had and did not. */
export function refusedLastNight(
  r: ReadinessSummary,
  lastCheckedAt: string | undefined,
): boolean {
  const check = r.nightlyCheck;
  return (
    !!check &&
    check.outcome === 'refused' &&
    !!lastCheckedAt &&
    Date.parse(check.checkedAt) >= Date.parse(lastCheckedAt)
  );
}

/** The latest night the items tell of (their own outcomes' nights, and newer ones not reached), with its progress where it has not ended. */
function latestNight(
  items: ReadinessSummary[],
): { checkedAt: string; progress?: NightlyCheckProgress } | undefined {
  let latest:
    { checkedAt: string; progress?: NightlyCheckProgress } | undefined;
  for (const { nightlyCheck } of items) {
    if (!nightlyCheck) continue;
    const candidates = [
      { checkedAt: nightlyCheck.checkedAt, progress: nightlyCheck.night },
      ...(nightlyCheck.newer
        ? [
            {
              checkedAt: nightlyCheck.newer.checkedAt,
              progress: nightlyCheck.newer,
            },
          ]
        : []),
    ];
    for (const c of candidates) {
      if (!latest || Date.parse(c.checkedAt) > Date.parse(latest.checkedAt))
        latest = c;
    }
  }
  return latest;
}

/** The row's marker, its words also what the table's search finds. */
export function notRunLastNight(r: ReadinessSummary): string {
  const { reason, runId } = r.nightlyCheck!;
  const short =
    reason === 'kept-failover' && runId
      ? `beside failover ${runId}`
      : (REFUSAL_SHORT[reason!] ?? reason ?? 'refused');
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

const REASON_ORDER: NightlyCheckRefusal[] = [
  'kept-failover',
  'host-busy',
  'host-unreachable',
  'uncaptured',
  'no-plan',
  'no-machine',
  'out-of-time',
  'error',
];

const GroupText = ({
  group: { count, reason, runId, runEntityRef },
}: {
  group: Group;
}) => {
  if (reason !== 'kept-failover')
    return (
      <>
        {count} {REFUSAL_SHORT[reason] ?? reason}
      </>
    );
  // Without its id (a failover of an entity the catalog hides from the caller) it cannot be linked.
  if (!runId)
    return <>{count} beside a kept failover (release it to free the host)</>;
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

/** Refusals counted by why, most first: a kept failover's own, one group a failover, named once. */
function groupsOf(refused: ReadinessSummary[]): Group[] {
  const groups = new Map<string, Group>();
  for (const { nightlyCheck } of refused) {
    const { reason = 'error', runId, runEntityRef } = nightlyCheck!;
    const key =
      reason === 'kept-failover' && runId ? `${reason}:${runId}` : reason;
    const group = groups.get(key) ?? {
      key,
      reason,
      count: 0,
      runId,
      runEntityRef,
    };
    group.count += 1;
    groups.set(key, group);
  }
  return [...groups.values()].sort(
    (a, b) =>
      b.count - a.count ||
      REASON_ORDER.indexOf(a.reason) - REASON_ORDER.indexOf(b.reason) ||
      a.key.localeCompare(b.key),
  );
}

/** `3 not run — 2 never captured, 1 no boot plan`, or `0 not run`. */
const NotRun = ({ refused }: { refused: ReadinessSummary[] }) => {
  if (refused.length === 0) return <>0 not run</>;
  return (
    <>
      {refused.length} not run —{' '}
      {groupsOf(refused).map((g, i) => (
        <Fragment key={g.key}>
          {i > 0 ? ', ' : null}
          <GroupText group={g} />
        </Fragment>
      ))}
    </>
  );
};

/** `12 of 40 entities checked`: how far a night that has not ended got. */
export function progressText({
  checked,
  entities,
}: NightlyCheckProgress): string {
  return entities === undefined
    ? `${formatCount(checked, 'entity', 'entities')} checked`
    : `${checked} of ${formatCount(entities, 'entity', 'entities')} checked`;
}

/**
 * What the last nightly check could not run, counted by why, most first: what the engineer
 * running the check frees or fixes before the next night. Nothing when the last night ran
 * everything and ended.
 *
 * A night that has not ended is never summed up as a whole one: while it is under way, when it
 * started, how far it got and what it could not run so far; once interrupted (killed, its backend
 * restarted), when, how far it got; and, for the entities it has not reached, what earlier checks
 * said (the last whole one's, mostly), which their pages still show.
 */
export const NightlyCheckSummary = ({
  items,
}: {
  items: ReadinessSummary[];
}) => {
  const latest = latestNight(items);
  if (!latest) return null;
  const since = lastNightlyCheck(items);
  const ofLatest = (r: ReadinessSummary) =>
    !!r.nightlyCheck &&
    Date.parse(r.nightlyCheck.checkedAt) === Date.parse(latest.checkedAt);
  const refused = items.filter(r => refusedLastNight(r, since));
  const { progress } = latest;
  if (!progress) {
    if (refused.length === 0) return null;
    return (
      <Alert severity="warning" data-testid="nightly-check-summary">
        <Typography variant="body2" component="span">
          Last nightly check ({formatTime(latest.checkedAt)}):{' '}
          <NotRun refused={refused} />
        </Typography>
      </Alert>
    );
  }
  const tonight = refused.filter(ofLatest);
  // Those the night has not reached keep their earlier outcomes: the last whole night's, or an
  // interrupted one's before it.
  const earlier = items.filter(r => r.nightlyCheck && !ofLatest(r));
  const earlierRefused = refused.filter(r => !ofLatest(r));
  const lastWhole = earlier.reduce<string | undefined>((at, r) => {
    const c = r.nightlyCheck!;
    return !c.night && (!at || Date.parse(c.checkedAt) > Date.parse(at))
      ? c.checkedAt
      : at;
  }, undefined);
  const onlyWhole = earlier.every(r => r.nightlyCheck!.checkedAt === lastWhole);
  const underWay = progress.state === 'under-way';
  const notReached = underWay
    ? 'those not reached yet'
    : 'those it did not reach';
  return (
    <Alert
      severity={underWay && refused.length === 0 ? 'info' : 'warning'}
      data-testid="nightly-check-summary"
    >
      <Typography variant="body2" component="span">
        {underWay ? (
          <>
            Nightly check under way, started {formatTime(progress.checkedAt)}:{' '}
            {progressText(progress)} so far
          </>
        ) : (
          <>
            The nightly check of {formatTime(progress.checkedAt)} was
            interrupted at{' '}
            {formatTimeAfter(progress.heardAt, progress.checkedAt)}:{' '}
            {progressText(progress)}
          </>
        )}
        {tonight.length > 0 ? (
          <>
            , <NotRun refused={tonight} />
          </>
        ) : null}
        .
        {earlier.length > 0 ? (
          <>
            {' '}
            {onlyWhole ? (
              <>
                Last whole check ({formatTime(lastWhole)}), for {notReached}
              </>
            ) : (
              <>
                Earlier checks
                {lastWhole ? (
                  <> (the last whole one: {formatTime(lastWhole)})</>
                ) : null}
                , for {notReached}
              </>
            )}
            : <NotRun refused={earlierRefused} />.
          </>
        ) : null}
      </Typography>
    </Alert>
  );
};
