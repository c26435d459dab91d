import type { InitializationEvent } from '@backstage-recovery/plugin-recovery-common';
import { futureEventWarnings } from './futureEvents';

const HOUR = 3_600_000;
const now = Date.parse('2026-12-06T12:00:00.000Z');
const start = (
  machine: string,
  service: string,
  time: number,
): InitializationEvent => ({ machine, service, time, type: 'start' });

describe('futureEventWarnings', () => {
  it('warns once per machine of events dated more than 5 min ahead, with how many and how far', () => {
    expect(
      futureEventWarnings(
        [
          start('w4-app-01', 'orders', now + 20 * HOUR),
          start('w4-app-01', 'shipping', now + 20 * HOUR + 60_000),
          start('w4-app-01', 'orders', now - HOUR),
          start('w4-db-01', 'database', now + 10 * 60_000),
          // A skew of minutes is every site's.
          start('w4-web-01', 'web', now + 4 * 60_000),
        ],
        now,
      ),
    ).toEqual([
      "2 events of w4-app-01 dated up to 20.0 h ahead of this backend's clock: is w4-app-01's clock ahead? Push a reading of it (a clock line) with its events, and they are moved by its offset",
      "1 event of w4-db-01 dated up to 10 min ahead of this backend's clock: is w4-db-01's clock ahead? Push a reading of it (a clock line) with its events, and they are moved by its offset",
    ]);
  });

  it("judges them on the reference clock where the push holds a reading of their machine's clock", () => {
    const reading: InitializationEvent = {
      machine: 'w4-app-01',
      service: '',
      type: 'clock',
      time: now + 20 * HOUR - 60_000,
      reference: now - 60_000,
    };
    expect(
      futureEventWarnings(
        [reading, start('w4-app-01', 'orders', now + 20 * HOUR)],
        now,
      ),
    ).toEqual([]);
  });
});
