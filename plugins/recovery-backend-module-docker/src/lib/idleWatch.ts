import type { Readable } from 'node:stream';

/**
 * Ends an engine's event stream that brings nothing for `idleMs`: a connection dropped silently
 * (a NAT's, say) gives no error, only silence, so it is destroyed and opened again. `heard` on each
 * message; `idle` says whether it was ended for that.
 */
export class IdleWatch {
  private timer: NodeJS.Timeout | undefined;
  idle = false;

  constructor(
    private readonly stream: Readable,
    private readonly idleMs: number,
  ) {
    this.heard();
  }

  heard(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.idle = true;
      this.stream.destroy();
    }, this.idleMs);
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
