import { READINESS_PAGE_MAX } from '@backstage-recovery/plugin-recovery-common';
import { cursorPosition, pageCursor, pageLimit } from './paging';

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
    limit: pageLimit(query.limit, READINESS_PAGE_DEFAULT, READINESS_PAGE_MAX),
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

function afterOf(value: unknown): string {
  return cursorPosition(value, 'GET /readiness', ['after']).after;
}
