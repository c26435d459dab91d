/** What a message (an analysis warning) names: entity refs, and log names of services and machines. */
import { normalizeRef } from './catalogGraph';

/** Entity refs as they appear in messages (kind:namespace/name); only the forms the catalog accepts. */
const REF_IN_TEXT =
  /\b[a-zA-Z][a-zA-Z0-9]*:[a-zA-Z0-9-]+\/[a-zA-Z0-9]+(?:[-_.][a-zA-Z0-9]+)*/g;

/** The entity refs a text names, normalized. */
export function refsInText(text: string): string[] {
  const refs: string[] = [];
  for (const [match] of text.matchAll(REF_IN_TEXT)) {
    try {
      refs.push(normalizeRef(match));
    } catch {
      // Not a ref after all: it names no entity.
    }
  }
  return refs;
}

/**
 * Whether a text names any of `names` (log names or entity refs). Names match whole: a hidden
 * "db" does not hide a warning about "db-01".
 */
export function namingAny(names: string[]): (text: string) => boolean {
  const tokens = names
    .filter(Boolean)
    .map(name => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  if (!tokens.length) return () => false;
  const pattern = new RegExp(
    `(?<![A-Za-z0-9_-])(?:${tokens.join('|')})(?![A-Za-z0-9_-])`,
  );
  return text => pattern.test(text);
}
