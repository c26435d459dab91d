import type { DockerEventMessage } from './events';

/** When the engine says an event happened (ns); older engines give seconds only. */
export const nanoOf = (m: DockerEventMessage) =>
  m.timeNano ?? (m.time ?? 0) * 1e9;

/**
 * The `since` (epoch seconds) of `GET /events` that replays every event at or after `ms`, the
 * time of the newest event stored. Docker's `since` is inclusive; the store rounds Docker's
 * nanoseconds to the nearest ms, so the event may lie up to half a ms before `ms`, in the
 * previous second when `ms` is a whole second. Events replayed are stored once.
 */
export function resumeSecond(ms: number): number {
  return Math.floor((ms - 0.5) / 1000);
}

/**
 * Where the event stream resumes after a reconnect: `since` the newest event seen, skipping by key
 * the events already delivered. dockerd may deliver concurrent events slightly out of time order,
 * so none is skipped for being older.
 */
export class ResumePoint {
  /** The newest event seen (ns). */
  private lastNano = 0;
  /** Keys of the events seen in lastNano's second, against replays. */
  private readonly seen = new Set<string>();

  /** `since`: epoch seconds, the second of the newest event seen once there is one. */
  constructor(public since: number) {}

  /** The newest event seen, in epoch ms as the store rounds it (0 before the first). */
  get newestMs(): number {
    return Math.round(this.lastNano / 1e6);
  }

  /** Whether `msg` is new, not a replay; a new one moves the resume point. */
  isNew(msg: DockerEventMessage): boolean {
    const nano = nanoOf(msg);
    const key = `${msg.id ?? msg.Actor?.ID}|${msg.Action ?? msg.status}|${nano}`;
    // Only replays are skipped: an event older than the newest may still be new, as
    // dockerd stamps an event before publishing it. A replay (since is inclusive)
    // lies in the newest event's second, whose keys `seen` holds.
    if (this.seen.has(key)) return false;
    if (Math.floor(nano / 1e9) > Math.floor(this.lastNano / 1e9))
      this.seen.clear();
    this.seen.add(key);
    this.lastNano = Math.max(this.lastNano, nano);
    this.since = Math.floor(this.lastNano / 1e9);
    return true;
  }
}
