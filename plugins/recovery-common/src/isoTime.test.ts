import { readableTimes, readIsoTime } from './isoTime';

const at = (iso: string) => ({ ms: Date.parse(iso) });

describe('readIsoTime', () => {
  it('reads a date and time of day with its zone as the instant it names', () => {
    expect(readIsoTime('2026-11-02T01:00:00Z')).toEqual(
      at('2026-11-02T01:00:00.000Z'),
    );
    expect(readIsoTime('2026-11-02T03:00:00+02:00')).toEqual(
      at('2026-11-02T01:00:00.000Z'),
    );
    expect(readIsoTime('2026-11-01T20:30-0430')).toEqual(
      at('2026-11-02T01:00:00.000Z'),
    );
    expect(readIsoTime('2026-11-02t01:00:00,25z')).toEqual(
      at('2026-11-02T01:00:00.250Z'),
    );
    expect(readIsoTime('2026-11-02T01:00:00-00:00')).toEqual(
      at('2026-11-02T01:00:00.000Z'),
    );
    // Past the millisecond: dropped, never rounded up.
    expect(readIsoTime('2026-11-02T23:59:59.9999999Z')).toEqual(
      at('2026-11-02T23:59:59.999Z'),
    );
    expect(readIsoTime('2028-02-29T00:00:00Z')).toEqual(
      at('2028-02-29T00:00:00.000Z'),
    );
  });

  it('reads the years 0000 to 0099 as written, not as 1900 to 1999, and 0000-02-29 as the leap day it is', () => {
    expect(
      new Date(
        (readIsoTime('0050-01-01T00:00:00Z') as { ms: number }).ms,
      ).toISOString(),
    ).toBe('0050-01-01T00:00:00.000Z');
    expect(
      new Date(
        (readIsoTime('0000-02-29T12:00:00+01:00') as { ms: number }).ms,
      ).toISOString(),
    ).toBe('0000-02-29T11:00:00.000Z');
    expect(readIsoTime('1900-02-29T00:00:00Z')).toEqual({
      kind: 'value',
      problem: '1900-02-29 does not exist: February 1900 has 28 days',
    });
  });

  it('takes a space for the T (RFC 3339) only where asked, the zone still needed', () => {
    const spaced = '2026-11-02 03:00:00.5+02:00';
    expect(readIsoTime(spaced)).toEqual({
      kind: 'form',
      problem: 'a space between date and time: ISO 8601 puts a T there',
    });
    expect(readIsoTime(spaced, { spaceSeparator: true })).toEqual(
      at('2026-11-02T01:00:00.500Z'),
    );
    expect(readIsoTime('2026-11-02 01:00', { spaceSeparator: true })).toEqual({
      kind: 'form',
      problem: 'no zone: end it with Z (UTC) or an offset such as +02:00',
    });
    expect(
      readIsoTime('2026-02-30 01:00:00Z', { spaceSeparator: true }),
    ).toMatchObject({ kind: 'value' });
    for (const text of ['2026-11-02  01:00Z', '2026-11-02 T01:00Z'])
      expect(readIsoTime(text, { spaceSeparator: true })).toMatchObject({
        kind: 'form',
      });
  });

  it('takes a zone of hours alone and 24:00, the end of a day, only where asked', () => {
    expect(readIsoTime('2026-11-02T03:00+02')).toEqual({
      kind: 'form',
      problem: 'its zone +02 gives hours alone: write +02:00',
    });
    expect(readIsoTime('2026-11-02T03:00+02', { hoursOnlyZone: true })).toEqual(
      at('2026-11-02T01:00:00.000Z'),
    );
    expect(readIsoTime('2026-12-31T24:00:00Z')).toEqual({
      kind: 'value',
      problem: 'hour 24: write 00:00 of the next day',
    });
    expect(
      readIsoTime('2026-12-31T24:00:00.000+01:00', { endOfDay: true }),
    ).toEqual(at('2026-12-31T23:00:00.000Z'));
    expect(readIsoTime('2026-12-31T24:00Z', { endOfDay: true })).toEqual(
      at('2027-01-01T00:00:00.000Z'),
    );
    // Only the end of the day itself.
    for (const text of [
      '2026-12-31T24:00:00.001Z',
      '2026-12-31T24:00:01Z',
      '2026-12-31T24:01Z',
    ]) {
      expect({ text, read: readIsoTime(text, { endOfDay: true }) }).toEqual({
        text,
        read: expect.objectContaining({ kind: 'value' }),
      });
    }
  });

  it('names what is wrong: the form (no zone, a date alone, a space for the T), or a field that does not exist', () => {
    const problems = Object.fromEntries(
      [
        '2026-11-02T01:00:00',
        '2026-11-02',
        '2026-11-02 01:00:00Z',
        ' 2026-11-02T01:00:00Z',
        'yesterday',
        '1730509200',
        '',
        '2026-11-02T01:00:00+2',
        '2026-02-30T00:00:00Z',
        '2026-13-01T00:00:00Z',
        '2026-11-00T00:00:00Z',
        '2026-11-02T25:00:00Z',
        '2026-11-02T01:60:00Z',
        '2026-11-02T01:00:60Z',
        '2016-12-31T23:59:60Z',
        '2016-12-31T23:59:61Z',
        '2026-11-02T01:00:00+24:00',
        '2026-11-02T01:00:00-02:60',
      ].map(text => [text, readIsoTime(text)]),
    );
    expect(problems).toEqual({
      '2026-11-02T01:00:00': {
        kind: 'form',
        problem: 'no zone: end it with Z (UTC) or an offset such as +02:00',
      },
      '2026-11-02': {
        kind: 'form',
        problem: 'a date alone: give the time of day and its zone too',
      },
      '2026-11-02 01:00:00Z': {
        kind: 'form',
        problem: 'a space between date and time: ISO 8601 puts a T there',
      },
      ' 2026-11-02T01:00:00Z': { kind: 'form', problem: 'spaces around it' },
      yesterday: { kind: 'form', problem: 'not a date and time of day' },
      '1730509200': { kind: 'form', problem: 'not a date and time of day' },
      '': { kind: 'form', problem: 'not a date and time of day' },
      '2026-11-02T01:00:00+2': {
        kind: 'form',
        problem: 'not a date and time of day',
      },
      '2026-02-30T00:00:00Z': {
        kind: 'value',
        problem: '2026-02-30 does not exist: February 2026 has 28 days',
      },
      '2026-13-01T00:00:00Z': {
        kind: 'value',
        problem: 'month 13 does not exist',
      },
      '2026-11-00T00:00:00Z': {
        kind: 'value',
        problem: '2026-11-00 does not exist: November 2026 has 30 days',
      },
      '2026-11-02T25:00:00Z': {
        kind: 'value',
        problem: 'hour 25 does not exist (00 to 23)',
      },
      '2026-11-02T01:60:00Z': {
        kind: 'value',
        problem: 'minute 60 does not exist (00 to 59)',
      },
      '2026-11-02T01:00:60Z': {
        kind: 'value',
        problem:
          'second 60 does not exist (00 to 59; 60 only for a leap second, at 23:59:60 UTC)',
      },
      '2016-12-31T23:59:60Z': {
        kind: 'value',
        problem:
          'second 60 is a leap second: write 23:59:59 or 00:00:00 of the next day',
      },
      '2016-12-31T23:59:61Z': {
        kind: 'value',
        problem: 'second 61 does not exist (00 to 59)',
      },
      '2026-11-02T01:00:00+24:00': {
        kind: 'value',
        problem: 'zone offset +24:00 does not exist (at most 23:59 either way)',
      },
      '2026-11-02T01:00:00-02:60': {
        kind: 'value',
        problem: 'zone offset -02:60 does not exist (at most 23:59 either way)',
      },
    });
  });

  it('reads a leap second where asked, at 23:59:60 UTC whatever the zone, as the last millisecond before midnight', () => {
    const endOf2016 = Date.UTC(2016, 11, 31, 23, 59, 59, 999);
    expect(readIsoTime('2016-12-31T23:59:60Z', { leapSecond: true })).toEqual({
      ms: endOf2016,
    });
    expect(readIsoTime('2016-12-31T23:59:60.5Z', { leapSecond: true })).toEqual(
      { ms: endOf2016 },
    );
    expect(
      readIsoTime('2017-01-01T00:59:60+01:00', { leapSecond: true }),
    ).toEqual({ ms: endOf2016 });
    expect(
      readIsoTime('2016-12-31T18:59:60-05', {
        leapSecond: true,
        hoursOnlyZone: true,
      }),
    ).toEqual({ ms: endOf2016 });
    // Ordered between the second before it and the next day's first.
    expect(endOf2016).toBeGreaterThan(Date.UTC(2016, 11, 31, 23, 59, 59, 998));
    expect(endOf2016).toBeLessThan(Date.UTC(2017, 0, 1));
    expect(readIsoTime('2016-12-31T23:58:60Z', { leapSecond: true })).toEqual({
      kind: 'value',
      problem:
        'second 60 does not exist (00 to 59; 60 only for a leap second, at 23:59:60 UTC)',
    });
    expect(
      readIsoTime('2016-12-31T23:59:60+01:00', { leapSecond: true }),
    ).toMatchObject({ kind: 'value' });
  });
});

describe('readableTimes', () => {
  it('writes each ISO time of a message in UTC as the portal and the CLI write times, and leaves the rest as it came', () => {
    expect(
      readableTimes(
        'capture c1 of 2026-12-07T02:14:13.549Z, stopped at 2026-12-07T04:16:34+02:00; run 2026-12-07T02:14 not zoned: 2026-12-07',
      ),
    ).toBe(
      'capture c1 of 2026-12-07 02:14:13 UTC, stopped at 2026-12-07 02:16:34 UTC; run 2026-12-07T02:14 not zoned: 2026-12-07',
    );
  });
});
