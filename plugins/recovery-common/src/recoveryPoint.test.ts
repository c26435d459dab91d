import { parseRecoveryPoint } from './recoveryPoint';

describe('parseRecoveryPoint', () => {
  it('reads a time with its zone as the instant it names, in UTC', () => {
    expect(parseRecoveryPoint('2026-11-02T01:00:00Z')).toBe('2026-11-02T01:00:00.000Z');
    expect(parseRecoveryPoint('2026-11-02T03:00:00+02:00')).toBe('2026-11-02T01:00:00.000Z');
    expect(parseRecoveryPoint('2026-11-01T20:30-0430')).toBe('2026-11-02T01:00:00.000Z');
    expect(parseRecoveryPoint('2026-11-02t01:00:00.25z')).toBe('2026-11-02T01:00:00.250Z');
    expect(parseRecoveryPoint('2028-02-29T23:59:59+00:00')).toBe('2028-02-29T23:59:59.000Z');
    // Past the millisecond: dropped, never rounded up past a capture taken after the point.
    expect(parseRecoveryPoint('2026-11-02T01:00:00.123999Z')).toBe('2026-11-02T01:00:00.123Z');
  });

  it('refuses a time without its zone, a date alone, a date or time that does not exist, and anything else', () => {
    for (const text of [
      '2026-11-02T01:00:00',
      '2026-11-02',
      '2026-11-02 01:00:00Z',
      '2026-02-30T00:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-11-02T24:00:00Z',
      '2026-11-02T01:60:00Z',
      '2026-11-02T01:00:00+25:00',
      'yesterday',
      '1730509200',
      '',
      ' 2026-11-02T01:00:00Z',
    ]) {
      expect({ text, point: parseRecoveryPoint(text) }).toEqual({ text, point: undefined });
    }
  });
});
