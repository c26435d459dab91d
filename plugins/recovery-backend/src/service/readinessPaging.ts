import { InputError } from '@backstage/errors';
import { READINESS_PAGE_MAX } from '@backstage-recovery/plugin-recovery-common';
import { describeValue } from '@backstage-recovery/plugin-recovery-node';
import { cursorPosition, pageCursor } from './paging';

/** Entities a page of `GET /readiness` holds unless `limit` says. */
export const READINESS_PAGE_DEFAULT = 100;
export { READINESS_PAGE_MAX };

/** Which page of `GET /readiness` a request asks for: `limit` entities after the ref `after`. */
export interface ReadinessPageRequest {
  limit: number;
  after?: string;
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

/** The cursor of the page after the one that ends at `entityRef`: opaque to callers, as the catalog's. */
export function readinessCursor(entityRef: string): string {
  return pageCursor({ after: entityRef });
}

/** Entity refs in the order pages split them: by code unit, as every replica and database compares. */
export function compareRefs(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

function limitOf(value: unknown): number {
  if (value === undefined) return READINESS_PAGE_DEFAULT;
  // Decimal digits alone: Number() also reads ` 5`, `0x10`, `1e2` and `5.0` as integers.
  const limit =
    typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(limit) || limit < 1 || limit > READINESS_PAGE_MAX) {
    throw new InputError(
      `Query parameter limit must be given once, an integer from 1 to ${READINESS_PAGE_MAX}, got ${describeValue(value)}`,
    );
  }
  return limit;
}

function afterOf(value: unknown): string {
  return cursorPosition(value, 'GET /readiness', ['after']).after;
}
