/**
 * The services and machines a timeline names: at most MAX_SERVICES services, names that look
 * alike (analysed apart, though meant as one), and machines nothing in the history orders.
 */
import { byName, counted, listed } from './graph';
import { delayText } from './kernel';
import type { TimelineOptions } from './timeline';
import { AnalysisInputError, type Start } from './timelineEvents';
import type { TimelineClock } from './timelineWeights';

/** Services one analysis takes (6,000 took 1.5 GB; 24,000 overflowed a Map of pairs). */
const MAX_SERVICES = 5000;

/** The services by name; throws past MAX_SERVICES, and warns of look-alike names. */
export function serviceNamesOf(starts: Start[], warnings: string[]): string[] {
  const serviceNames = [...new Set(starts.map(s => s.service))].sort(byName);
  if (serviceNames.length > MAX_SERVICES) {
    throw new AnalysisInputError(
      `${serviceNames.length} distinct services (the analysis takes at most ${MAX_SERVICES}: its pair statistics grow with the square), e.g. ${serviceNames
        .slice(0, 3)
        .join(
          ', ',
        )}: map transient units to one service (a map entry such as "/^session-\\d+\\.scope$/": "session.scope") or leave them out of the input`,
    );
  }
  warnings.push(
    ...lookAlikeNames(
      'services',
      serviceNames,
      'where they are one, map them to one name',
    ),
  );
  return serviceNames;
}

/** Machine names that look alike, and machines whose services never start near another's. */
export function machineWarnings(
  T: Float64Array,
  starts: Start[],
  machineNames: string[],
  o: TimelineOptions,
  { timeScale }: TimelineClock,
  machinesWithClock: Set<string>,
): string[] {
  return [
    ...lookAlikeNames(
      'machines',
      machineNames,
      'where they are one, correct the logs that name it otherwise',
    ),
    ...alone(
      T,
      starts.map(s => s.machine),
      machineNames,
      o.maxDelay,
      timeScale,
      machinesWithClock,
    ),
  ];
}

/**
 * Machines none of whose initializations had another machine's within the window, before or
 * after: nothing in the history orders them against the others, so the plan puts them in the
 * first wave. With several machines that is most often a clock hours off without clock readings.
 */
function alone(
  T: Float64Array,
  machine: string[],
  machineNames: string[],
  window: number,
  scale: number,
  withClock: Set<string>,
): string[] {
  if (machineNames.length < 2) return [];
  const near = new Set<string>();
  // Forward, then backward: the nearest initialization passed, and the nearest of another machine than its.
  for (const order of [1, -1]) {
    let last = -1;
    let lastOther = -1;
    for (let k = 0; k < T.length; k++) {
      const i = order > 0 ? k : T.length - 1 - k;
      const other =
        last >= 0 && machine[last] !== machine[i] ? last : lastOther;
      if (other >= 0 && Math.abs(T[i] - T[other]) <= window)
        near.add(machine[i]);
      if (last >= 0 && machine[last] !== machine[i]) lastOther = last;
      last = i;
    }
  }
  const lonely = machineNames.filter(m => !near.has(m));
  if (!lonely.length) return [];
  const unread = lonely.filter(m => !withClock.has(m));
  return [
    `${counted(lonely.length, 'machine')} never started a service within ${delayText(window * scale)} of another machine's, so nothing orders ${lonely.length === 1 ? 'it' : 'them'} against the others: ${listed(lonely)}${unread.length ? ` (a clock hours off? ${listed(unread)} ${unread.length === 1 ? 'has' : 'have'} no clock readings)` : ''}`,
  ];
}

/**
 * Names (sorted) that differ only in case, Unicode form (`café` composed and decomposed, a
 * full-width letter) or surrounding spaces (`" nginx"` of a hand-made line), which print alike or nearly: analysed apart, their dependencies read as a
 * name depending on itself and their machines as one machine in two waves, so a warning names them.
 */
function lookAlikeNames(
  what: 'services' | 'machines',
  names: string[],
  advice: string,
): string[] {
  const groups = new Map<string, string[]>();
  for (const name of names) {
    const key = name.normalize('NFKC').toLowerCase().trim();
    const group = groups.get(key);
    if (group) group.push(name);
    else groups.set(key, [name]);
  }
  const alike = [...groups.values()].filter(g => g.length > 1);
  if (!alike.length) return [];
  // Names that print the same are shown with their code points beyond ASCII.
  const shown = (group: string[]) => {
    const same =
      new Set(group.map(x => x.normalize('NFC'))).size < group.length;
    return group
      .map(x =>
        same
          ? JSON.stringify(x).replace(
              /[^\x20-\x7e]/g,
              c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
            )
          : JSON.stringify(x),
      )
      .join(', ');
  };
  const more =
    alike.length > 5 ? ` and ${counted(alike.length - 5, 'more group')}` : '';
  return [
    `${what} whose names differ only in case, Unicode form or surrounding spaces are analysed as different ${what}: ${alike.slice(0, 5).map(shown).join('; ')}${more} (${advice})`,
  ];
}
