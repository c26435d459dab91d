import type { ReadinessStatus, RunMode } from './types';

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
 * Orders readiness by risk: not recoverable first, then at risk, unknown, ready (a status this
 * version does not know last), then by entity ref. As `GET /readiness` and every reader order it.
 *
 * @public
 */
export function byRisk(
  a: { status: ReadinessStatus; entityRef: string },
  b: { status: ReadinessStatus; entityRef: string },
): number {
  return (
    (READINESS_RISK_RANK[a.status] ?? 9) -
      (READINESS_RISK_RANK[b.status] ?? 9) ||
    a.entityRef.localeCompare(b.entityRef)
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
 * How far ahead of the backend's clock a capture, a run or a night's check may be dated before
 * its time is doubted: replicas' clocks differ a little. The portal reads browsers' clocks by it too.
 *
 * @public
 */
export const CLOCK_AHEAD_TOLERANCE_SECONDS = 300;
