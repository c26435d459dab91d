import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import {
  clockCorrector,
  counted,
} from '@backstage-recovery/plugin-recovery-node';

/**
 * How far past this backend's clock an event may be dated without a word: skews of seconds or a
 * minute are every site's. Later (up to FUTURE_EVENT_MARGIN_MS, past which a push is refused), it
 * is taken but warned of: its machine's clock is likely ahead, and the event would be its
 * machine's newest for good.
 */
export const FUTURE_EVENT_WARNING_MS = 5 * 60_000;

/** A machine's events dated past `now` + FUTURE_EVENT_WARNING_MS. */
export interface EventsAhead {
  machine: string;
  count: number;
  /** How far past `now` the furthest of them is (ms). */
  aheadMs: number;
}

/**
 * Per machine, its starts and failures dated more than FUTURE_EVENT_WARNING_MS past `now`, on the
 * reference clock where `events` hold a reading of the machine's clock (as the analysis moves
 * them), on their own time otherwise; by machine name.
 */
export function eventsAhead(
  events: InitializationEvent[],
  now: number,
): EventsAhead[] {
  const correct = clockCorrector(events);
  const latest = now + FUTURE_EVENT_WARNING_MS;
  const ahead = new Map<string, EventsAhead>();
  for (const e of events) {
    if (e.type === 'clock') continue;
    const time = correct(e.machine, e.time);
    // Past any time a Date holds: the analysis leaves such an event out, so no warning of it.
    if (!(time > latest) || Number.isNaN(new Date(time).getTime())) continue;
    const found = ahead.get(e.machine);
    if (found) {
      found.count++;
      found.aheadMs = Math.max(found.aheadMs, time - now);
    } else
      ahead.set(e.machine, {
        machine: e.machine,
        count: 1,
        aheadMs: time - now,
      });
  }
  return [...ahead.values()].sort((a, b) =>
    a.machine < b.machine ? -1 : a.machine > b.machine ? 1 : 0,
  );
}

/** A span ahead as a person reads it: `12 min`, `20.0 h`, `3.5 days`. */
export function aheadText(ms: number): string {
  if (ms < 3_600_000) return `${Math.round(ms / 60_000)} min`;
  if (ms < 86_400_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  return `${(ms / 86_400_000).toFixed(1)} days`;
}

/** What one machine's events ahead of the backend's clock say: how many, how far, and what to do. */
export function eventsAheadText({
  machine,
  count,
  aheadMs,
}: EventsAhead): string {
  return (
    `${counted(count, 'event')} of ${machine} dated up to ${aheadText(aheadMs)} ahead of this backend's clock: ` +
    `is ${machine}'s clock ahead? Push a reading of it (a clock line) with its events, and they are moved by its offset`
  );
}

/**
 * The warnings of a push of `events` received at `now`: one per machine with events ahead of the
 * backend's clock (eventsAhead). They are stored all the same: a skew the margin takes is not
 * an error, but each analysis would otherwise weigh boots against a time still to come unsaid.
 */
export function futureEventWarnings(
  events: InitializationEvent[],
  now: number,
): string[] {
  return eventsAhead(events, now).map(eventsAheadText);
}
