import type { ReadinessStatus, RecoveryRun, RunMode } from './types';

/**
 * Lower is riskier: the order the overview, `GET /readiness` and the CLI list entities in.
 *
 * @public
 */
export const READINESS_RISK_RANK: Record<ReadinessStatus, number> = {
  'not-recoverable': 0,
  'at-risk': 1,
  unknown: 2,
  ready: 3,
};

/**
 * An entity's name as the portal's link shows it (`web`, `ops/web`: no kind, and the namespace
 * only where it is not the default one), as Backstage's defaultEntityPresentation shortens a ref.
 */
function shownName(entityRef: string): string {
  const colon = entityRef.indexOf(':');
  const slash = entityRef.indexOf('/', colon + 1);
  const namespace =
    slash === -1 ? 'default' : entityRef.slice(colon + 1, slash);
  const name = entityRef.slice(Math.max(colon, slash) + 1);
  return namespace === 'default' ? name : `${namespace}/${name}`;
}

/**
 * Orders entities by their name as the portal shows it, the full ref only between equal names:
 * by the ref itself, every component would come before every system. In one locale, so every
 * backend replica and reader orders alike.
 *
 * @public
 */
export function byEntityName(
  a: { entityRef: string },
  b: { entityRef: string },
): number {
  return (
    shownName(a.entityRef).localeCompare(shownName(b.entityRef), 'en-US') ||
    a.entityRef.localeCompare(b.entityRef, 'en-US')
  );
}

/**
 * Orders readiness by risk: not recoverable first, then at risk, unknown, ready (a status this
 * version does not know last), then by name (byEntityName). The order `GET /readiness` pages
 * in, which the overview and the CLI show as it comes.
 *
 * @public
 */
export function byRisk(
  a: { status: ReadinessStatus; entityRef: string },
  b: { status: ReadinessStatus; entityRef: string },
): number {
  return (
    (READINESS_RISK_RANK[a.status] ?? 9) -
      (READINESS_RISK_RANK[b.status] ?? 9) || byEntityName(a, b)
  );
}

/**
 * The most entities a page of `GET /readiness` holds: a reader of every page asks for pages this
 * size.
 *
 * @public
 */
export const READINESS_PAGE_MAX = 500;

/**
 * A readiness status in words, as the CLI says it and the portal shows it (capitalized).
 *
 * @public
 */
export const READINESS_STATUS_LABELS: Record<ReadinessStatus, string> = {
  ready: 'ready',
  'at-risk': 'at risk',
  'not-recoverable': 'not recoverable',
  unknown: 'unknown',
};

/**
 * What a run is called: `test recovery` or `failover`; `Test recovery` to start a sentence. A
 * failover counts as a test recovery does, but is no test.
 *
 * @public
 */
export function runModeName(mode: RunMode, capitalized = false): string {
  const name = mode === 'failover' ? 'failover' : 'test recovery';
  return capitalized
    ? name[0].toLocaleUpperCase('en-US') + name.slice(1)
    : name;
}

/**
 * Who started a run, as the portal's runs and the CLI say it: `scheduled` for one the scheduler
 * started (trigger `schedule`: the nightly check), else its user's ref (as `label` words it), or
 * `a user` where none was recorded; a user after `by` where one is given (`started by alice`,
 * beside `scheduled`).
 *
 * @public
 */
export function runStartedBy(
  run: Pick<RecoveryRun, 'trigger' | 'createdBy'>,
  label: (userRef: string) => string = ref => ref,
  by = '',
): string {
  if (run.trigger === 'schedule') return 'scheduled';
  return `${by}${run.createdBy ? label(run.createdBy) : 'a user'}`;
}

/**
 * How far ahead of the backend's clock a capture, a run or a night's check may be dated before
 * its time is doubted: replicas' clocks differ a little. The portal reads browsers' clocks by it too.
 *
 * @public
 */
export const CLOCK_AHEAD_TOLERANCE_SECONDS = 300;
