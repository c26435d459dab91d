import { InputError } from '@backstage/errors';
import {
  READINESS_PAGE_MAX,
  type ReadinessStatus,
} from '@backstage-recovery/plugin-recovery-common';
import { describeValue } from '@backstage-recovery/plugin-recovery-node';

/** Entities a page of `GET /readiness` holds unless `limit` says. */
export const READINESS_PAGE_DEFAULT = 100;
export { READINESS_PAGE_MAX };

/**
 * Where a page of `GET /readiness` ends, in the order pages split entities (byRisk): the last
 * entity's ref and the status it was listed with.
 */
export interface ReadinessPageEnd {
  status: ReadinessStatus;
  entityRef: string;
}

/** Which page of `GET /readiness` a request asks for: `limit` entities after `after` (byRisk). */
export interface ReadinessPageRequest {
  limit: number;
  after?: ReadinessPageEnd;
}

/**
 * `limit` (1 to READINESS_PAGE_MAX, READINESS_PAGE_DEFAULT unless given) and `cursor` (a
 * `pageInfo.nextCursor` of an earlier page), each given once.
 */
export function readinessPageFrom(query: {
  limit?: unknown;
  cursor?: unknown;
}): ReadinessPageRequest {
  return {
    limit: limitOf(query.limit),
    ...(query.cursor !== undefined && { after: afterOf(query.cursor) }),
  };
}

/** The cursor of the page after the one that ends at `end`: opaque to callers, as the catalog's. */
export function readinessCursor(end: ReadinessPageEnd): string {
  return Buffer.from(
    JSON.stringify({ after: end.entityRef, status: end.status }),
  ).toString('base64url');
}

function limitOf(value: unknown): number {
  if (value === undefined) return READINESS_PAGE_DEFAULT;
  const limit = typeof value === 'string' ? Number(value) : NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > READINESS_PAGE_MAX) {
    throw new InputError(
      `Query parameter limit must be given once, an integer from 1 to ${READINESS_PAGE_MAX}, got ${describeValue(value)}`,
    );
  }
  return limit;
}

function afterOf(value: unknown): ReadinessPageEnd {
  if (typeof value === 'string' && value.length > 0) {
    try {
      const { after, status } = JSON.parse(
        Buffer.from(value, 'base64url').toString('utf8'),
      );
      // A cursor of a backend that paged by ref alone has no status: its place in this order is unknown.
      if (
        typeof after === 'string' &&
        after.length > 0 &&
        typeof status === 'string'
      )
        // A status only a newer replica knows ranks last (byRisk), as its entities do.
        return { entityRef: after, status: status as ReadinessStatus };
    } catch {
      // Said below.
    }
  }
  throw new InputError(
    `Query parameter cursor must be given once, a pageInfo.nextCursor of GET /readiness, got ${describeValue(value)}`,
  );
}
