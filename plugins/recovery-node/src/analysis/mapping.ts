/** Mapping of technical unit / container names to service names. */
import { MAX_NAME_LENGTH, nameProblem } from '../events/parse';

/** `{"services": {"<exact name>" | "/regex/flags": "<service>"}}` */
export interface ServiceMap {
  services: Record<string, string>;
}

/** name → service; unmapped names pass through unchanged. Results are memoised. */
export type ServiceMapper = (name: string) => string;

const REGEX_KEY = /^\/(.*)\/([a-z]*)$/s;

/**
 * Compiles a map: exact names first, then `/regex/` keys in the map's own key order.
 * A regex replacement may use `$1`… to refer to capture groups.
 * Throws with a precise message on an invalid map or regex.
 */
export function compileServiceMap(map?: ServiceMap | null): ServiceMapper {
  if (!map) return name => name;
  if (typeof map !== 'object' || typeof map.services !== 'object' || map.services === null || Array.isArray(map.services)) {
    throw new Error('service map must be an object {"services": {"<name or /regex/>": "<service>"}}');
  }
  const exact = new Map<string, string>();
  const patterns: Array<{ re: RegExp; to: string }> = [];
  for (const [key, to] of Object.entries(map.services)) {
    // The same bounds a name read from a log has: a target is the name every output shows.
    if (typeof to !== 'string' || nameProblem(to)) {
      throw new Error(
        `service map entry '${key}' must map to a non-blank string of at most ${MAX_NAME_LENGTH} characters without NUL or control characters`,
      );
    }
    const m = REGEX_KEY.exec(key);
    if (m && key.length > 1) {
      let re: RegExp;
      try {
        re = new RegExp(m[1], m[2]);
      } catch (e) {
        throw new Error(`service map entry '${key}': invalid regular expression (${(e as Error).message})`);
      }
      patterns.push({ re, to });
    } else {
      exact.set(key, to);
    }
  }
  const cache = new Map<string, string>();
  return (name: string) => {
    const hit = cache.get(name);
    if (hit !== undefined) return hit;
    let out = exact.get(name);
    if (out === undefined) {
      out = name;
      for (const { re, to } of patterns) {
        re.lastIndex = 0;
        const m = re.exec(name);
        if (m) {
          out = to.replace(/\$(\d+)/g, (_s, g) => m[Number(g)] ?? '');
          break;
        }
      }
    }
    cache.set(name, out);
    return out;
  };
}
