import { formatUtcTime } from './duration';

describe('formatUtcTime, the one form of a time the portal and the notices write', () => {
  const zone = process.env.TZ;
  afterEach(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it.each(['UTC', 'America/New_York', 'Asia/Kolkata'])(
    'writes the UTC time to the second, saying so, on a machine set to %s',
    machineZone => {
      process.env.TZ = machineZone;
      // Cut to the second, not rounded: 01.900 is still second 01 in the engines' logs.
      expect(formatUtcTime('2026-12-05T23:56:05.900Z')).toBe(
        '2026-12-05 23:56:05 UTC',
      );
      expect(formatUtcTime('2026-12-05T23:56:05.900Z', { clock: true })).toBe(
        '23:56:05 UTC',
      );
    },
  );

  it('converts a time written with an offset, date included', () => {
    expect(formatUtcTime('2026-12-06T01:30:00+02:00')).toBe(
      '2026-12-05 23:30:00 UTC',
    );
  });

  it('writes a dash for no time and gives back text that is no time', () => {
    expect(formatUtcTime(undefined)).toBe('—');
    expect(formatUtcTime('')).toBe('—');
    expect(formatUtcTime(undefined, { clock: true })).toBe('—');
    expect(formatUtcTime('yesterday')).toBe('yesterday');
  });
});
