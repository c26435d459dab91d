import { utimes } from 'node:fs/promises';

/**
 * Refreshes a capture's note (its mtime) for as long as the capture runs: a note left unrefreshed
 * is one a stopped backend left. Every PAUSED_NOTE_HEARTBEAT_MS while the capture has its machine
 * paused (production waits: a backend killed meanwhile is told by it within seconds), then every
 * NOTE_HEARTBEAT_MS (captureNotes.ts).
 */
export class NoteHeartbeat {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly notePath: string) {}

  /** Beats every `ms` from now on, in place of the beat before. */
  beat(ms: number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => {
      const now = new Date();
      utimes(this.notePath, now, now).catch(() => {});
    }, ms);
    // A beat keeps no backend alive: a note left behind is what it is for.
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
