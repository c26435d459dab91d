/** Mapping of technical unit / container names to service names. */
import { describeValue, MAX_NAME_LENGTH, nameProblem } from '../events/parse';

/**
 * `{"services": {"<exact name>" | "/regex/flags": "<service>"}}`
 *
 * @public
 */
export interface ServiceMap {
  services: Record<string, string>;
}

/**
 * name → service; unmapped names pass through unchanged. Results are memoised.
 *
 * @public
 */
export interface ServiceMapper {
  (name: string): string;
  /**
   * Why the service `name` maps to is no valid service name (a regex result longer than
   * {@link MAX_NAME_LENGTH} characters or blank), naming the map entry and `name`; undefined where
   * it is valid. The mapper itself returns such a result as it is: the caller decides.
   */
  problem(name: string): string | undefined;
  /** The map's entries that no name given to the mapper so far matched, in the map's order. */
  unused(): string[];
  /**
   * Entries that matched names given to the mapper, but every one of them went to an entry
   * before it (exact names first, then regex keys in order), with one such name and that entry.
   */
  shadowed(): Array<{ key: string; name: string; by: string }>;
}

const REGEX_KEY = /^\/(.*)\/([a-z]*)$/s;

const SHAPE = '{"services": {"<name or /regex/>": "<service>"}}';

/**
 * Compiles a map: exact names first, then `/regex/` keys in the map's own key order. A regex
 * key's replacement follows String.prototype.replace: `$1`…`$99` (`$10` with one group is `$1`
 * then `0`), `$<name>`, `$&`, `` $` ``, `$'` and `$$`; the result is the replacement alone.
 * Throws with a precise message on an invalid map or regex. No map (undefined or null) maps
 * every name to itself; any other value that is not a plain object is an error.
 *
 * @public
 */
export function compileServiceMap(map?: ServiceMap | null): ServiceMapper {
  if (map === undefined || map === null)
    return Object.assign((name: string) => name, {
      problem: () => undefined,
      unused: () => [],
      shadowed: () => [],
    });
  if (typeof map !== 'object' || Array.isArray(map))
    throw new Error(
      `service map must be a JSON object ${SHAPE}, got ${describeValue(map)}`,
    );
  if (map.services === undefined)
    throw new Error(`service map has no 'services': expected ${SHAPE}`);
  if (
    typeof map.services !== 'object' ||
    map.services === null ||
    Array.isArray(map.services)
  ) {
    throw new Error(
      `service map's 'services' must be an object {"<name or /regex/>": "<service>"}, got ${describeValue(map.services)}`,
    );
  }
  const exact = new Map<string, string>();
  const patterns: Array<{ key: string; re: RegExp; once: RegExp; to: string }> =
    [];
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
        throw new Error(
          `service map entry '${key}': invalid regular expression (${(e as Error).message})`,
        );
      }
      const nested = nestedQuantifier(m[1]);
      if (nested)
        throw new Error(
          `service map entry '${key}': the group ${nested} repeats what repeats within it (nested quantifiers), so matching a name it does not map can take exponential time (seconds for a 30-character name), stalling analysis and the backend with it; repeat the inner part alone, or spell the outer repetition out`,
        );
      const dangling = danglingGroupReference(re, to);
      if (dangling) throw new Error(`service map entry '${key}': ${dangling}`);
      // The replacement runs without `g`, which would replace every match, not the one found.
      patterns.push({
        key,
        re,
        once: new RegExp(m[1], m[2].replace('g', '')),
        to,
      });
    } else {
      exact.set(key, to);
    }
  }
  const cache = new Map<string, string>();
  const problems = new Map<string, string>();
  const used = new Set<string>();
  // Regex key → a name it matched that an earlier entry took, and that entry.
  const beaten = new Map<string, { name: string; by: string }>();
  const mapper = (name: string) => {
    const hit = cache.get(name);
    if (hit !== undefined) return hit;
    let out = exact.get(name);
    let by: string | undefined;
    if (out !== undefined) {
      used.add(name);
      by = name;
    } else out = name;
    // Every regex key is tried, also past the one that maps the name: a key that only ever
    // matches names an earlier entry takes does nothing, and is not "unmatched" either.
    for (const { key, re, once, to } of patterns) {
      re.lastIndex = 0;
      const m = re.exec(name);
      if (!m) continue;
      if (by !== undefined) {
        if (!beaten.has(key)) beaten.set(key, { name, by });
        continue;
      }
      by = key;
      used.add(key);
      // String.prototype.replace expands the replacement exactly; around it stand the parts
      // of the name before and after the match, cut off again.
      once.lastIndex = 0;
      const replaced = name.replace(once, to);
      out = replaced.slice(
        m.index,
        replaced.length - (name.length - m.index - m[0].length),
      );
      // Exact targets were checked above; a regex result only now.
      const problem = nameProblem(out);
      if (problem)
        problems.set(
          name,
          `service map entry '${key}' turns '${name}' into a service name that ${problem}`,
        );
    }
    cache.set(name, out);
    return out;
  };
  return Object.assign(mapper, {
    problem: (name: string) => {
      mapper(name);
      return problems.get(name);
    },
    unused: () =>
      Object.keys(map.services).filter(
        key => !used.has(key) && !beaten.has(key),
      ),
    shadowed: () =>
      Object.keys(map.services).flatMap(key =>
        !used.has(key) && beaten.has(key) ? [{ key, ...beaten.get(key)! }] : [],
      ),
  });
}

/**
 * The first group of a regex's source that is repeated (`+`, `*`, `{n,}`, `{n,m}`) and holds a
 * part repeated without bound (`+`, `*`, `{n,}`), as `(a+)+`, else undefined: the shape that makes
 * a backtracking engine try exponentially many ways to split a name it does not match. Names are
 * pushed by anyone with recovery.events.create and matched on the event loop, so the map refuses it.
 */
export function nestedQuantifier(source: string): string | undefined {
  // Each open group: where it starts, and whether a part of it repeats without bound.
  const open: Array<{ start: number; unbounded: boolean }> = [];
  const quantifier = /[+*]|\{(\d+)(,(\d*))?\}/y;
  const quantifierAt = (i: number) => {
    quantifier.lastIndex = i;
    return quantifier.exec(source);
  };
  const isUnbounded = (q: RegExpExecArray) =>
    q[0] === '+' || q[0] === '*' || q[3] === '';
  // More than once: `{2}` and `{1,3}` too, not `?` nor `{0,1}`.
  const repeats = (q: RegExpExecArray) =>
    isUnbounded(q) || Number(q[3] ?? q[1]) > 1;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      // A class holds no group nor quantifier: skip to its unescaped end.
      for (i++; i < source.length && source[i] !== ']'; i++)
        if (source[i] === '\\') i++;
    } else if (c === '(') {
      open.push({ start: i, unbounded: false });
    } else if (c === ')') {
      const group = open.pop();
      if (!group) continue;
      const q = quantifierAt(i + 1);
      if (q && repeats(q) && group.unbounded)
        return `'${source.slice(group.start, i + 1 + q[0].length)}'`;
      // What it holds is held by the group around it (its own quantifier is read next, there).
      if (open.length > 0 && group.unbounded)
        open[open.length - 1].unbounded = true;
    } else if (open.length > 0) {
      const q = quantifierAt(i);
      if (q && isUnbounded(q)) open[open.length - 1].unbounded = true;
    }
  }
  return undefined;
}

/**
 * Why a regex key's replacement refers to a group its regex does not have, else undefined.
 * String.prototype.replace keeps `$2` of a one-group regex as written and turns `$<typo>` into
 * nothing: every name the key matches would become one service named `x$2`, unsaid.
 */
function danglingGroupReference(re: RegExp, to: string): string | undefined {
  // The regex or nothing: matching '' always, it lists every group, unset.
  const probe = new RegExp(`${re.source}|`, re.flags.replace(/[gy]/g, '')).exec(
    '',
  )!;
  const groups = probe.length - 1;
  const names = probe.groups ? Object.keys(probe.groups) : [];
  const has =
    groups === 1
      ? 'its one group'
      : groups === 0
        ? 'no group'
        : `${groups} groups`;
  for (let i = to.indexOf('$'); i >= 0; i = to.indexOf('$', i + 1)) {
    const next = to[i + 1];
    if (next === '$') {
      i++;
    } else if (next >= '0' && next <= '9') {
      // `$nn` where that group exists, else `$n` where that one does, as replace reads them.
      const two = Number(to.slice(i + 1, i + 3));
      if (/^\d\d$/.test(to.slice(i + 1, i + 3)) && two >= 1 && two <= groups)
        i += 2;
      else if (Number(next) >= 1 && Number(next) <= groups) i++;
      else
        return `'$${next}' in ${JSON.stringify(to)} names no group of the regex (it has ${has}${next === '0' ? '; $& is the whole match' : ''}): replace would keep it as written`;
    } else if (next === '<') {
      const end = to.indexOf('>', i);
      if (end < 0) continue;
      const name = to.slice(i + 2, end);
      if (!names.includes(name)) {
        const named = names.length
          ? `its named groups are ${names.join(', ')}`
          : 'it has no named group';
        return `'$<${name}>' in ${JSON.stringify(to)} names no group of the regex (${named}): replace would ${names.length ? 'drop it' : 'keep it as written'}`;
      }
      i = end;
    }
  }
  return undefined;
}
