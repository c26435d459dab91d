import { InputError } from '@backstage/errors';
import { describeValue } from '@backstage-recovery/plugin-recovery-node';

// The cursors of the API's lists (GET /readiness, /runs, /captures): each `pageInfo.nextCursor`
// is the keyset position its page ends at, opaque to callers as the catalog's are.

/**
 * A list's `limit` query parameter: an integer from 1 to `max`, given once; `fallback` when absent.
 * Decimal digits alone: Number() also reads ` 5`, `0x10`, `1e2` and `5.0` as integers, and an
 * array (`limit=5&limit=6`, `limit[]=5`) whose Number() may be one.
 */
export function pageLimit(
  value: unknown,
  fallback: number,
  max: number,
): number {
  if (value === undefined) return fallback;
  const limit =
    typeof value === 'string' && /^[0-9]+$/.test(value) ? Number(value) : NaN;
  if (!(limit >= 1 && limit <= max)) {
    throw new InputError(
      `Query parameter limit must be given once, an integer from 1 to ${max}, got ${describeValue(value)}`,
    );
  }
  return limit;
}

/** The cursor of the page after the one that ends at `position` (each field a non-empty string). */
export function pageCursor(position: Record<string, string>): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/**
 * The position a `cursor` query parameter encodes: one of `list`'s cursors (it holds every field
 * of `fields`, each a non-empty string without NUL that `valid` accepts), else a 400 naming the
 * parameter.
 */
export function cursorPosition<K extends string>(
  value: unknown,
  list: string,
  fields: readonly K[],
  valid: (field: K, text: string) => boolean = () => true,
): Record<K, string> {
  if (typeof value === 'string' && value.length > 0) {
    try {
      const position = JSON.parse(
        Buffer.from(value, 'base64url').toString('utf8'),
      );
      if (
        position !== null &&
        typeof position === 'object' &&
        fields.every(field => {
          const text = position[field];
          // NUL too: PostgreSQL refuses it in text, which would answer a 500.
          return (
            typeof text === 'string' &&
            text.length > 0 &&
            !text.includes('\0') &&
            valid(field, text)
          );
        })
      ) {
        return Object.fromEntries(
          fields.map(field => [field, position[field]]),
        ) as Record<K, string>;
      }
    } catch {
      // Said below.
    }
  }
  throw new InputError(
    `Query parameter cursor must be given once, a pageInfo.nextCursor of ${list}, got ${describeValue(value)}`,
  );
}

/** A keyset position of the lists newest first (runs, captures): when it was made, and its id. */
export interface NewestFirstPosition {
  createdAt: string;
  id: string;
}

/**
 * The cursor of a newest-first page that ends at `last`: `key` names its kind (`run`, `capture`),
 * so that one list's cursor is refused by the other.
 */
export function newestFirstCursor(
  key: string,
  last: NewestFirstPosition,
): string {
  return pageCursor({ [key]: last.id, createdAt: last.createdAt });
}

/** The position a newest-first list's `cursor` encodes (newestFirstCursor), undefined when absent. */
export function newestFirstPositionFrom(
  value: unknown,
  list: string,
  key: string,
): NewestFirstPosition | undefined {
  if (value === undefined) return undefined;
  const position = cursorPosition(
    value,
    list,
    [key, 'createdAt'],
    (field, text) =>
      field !== 'createdAt' || !Number.isNaN(new Date(text).getTime()),
  );
  return { id: position[key], createdAt: position.createdAt };
}
