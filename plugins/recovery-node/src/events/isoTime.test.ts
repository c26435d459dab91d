import { parseRecoveryPoint } from '@backstage-recovery/plugin-recovery-common';
import { parseEventTime } from './parse';

/** An event time in epoch ms as parseEventTime reads it, NaN where it refuses it. */
const eventTime = (text: string) => {
  try {
    return parseEventTime(text, 'time');
  } catch {
    return NaN;
  }
};

/**
 * Event times are read by recovery-common's readIsoTime, the recovery points' reader, with the two
 * forms logs may write that a recovery point does not take.
 */
describe('event times (parseEventTime)', () => {
  it('takes a zone of hours alone and 24:00, the end of a day, which a recovery point refuses', () => {
    expect(eventTime('2024-05-01T12:00:00+02')).toBe(Date.UTC(2024, 4, 1, 10));
    expect(parseRecoveryPoint('2024-05-01T12:00:00+02')).toBeUndefined();
    expect(eventTime('2024-05-01T24:00:00Z')).toBe(Date.UTC(2024, 4, 2));
    expect(eventTime('2024-12-31T24:00:00,000-01:00')).toBe(
      Date.UTC(2025, 0, 1, 1),
    );
    expect(parseRecoveryPoint('2024-05-01T24:00:00Z')).toBeUndefined();
    expect(eventTime('2024-05-01T24:00:00.001Z')).toBeNaN();
  });

  it('reads as Date.parse reads the same time written for it (a point for a comma, hh:00 for an hours-only zone), and refuses what it cannot read', () => {
    const written = (text: string) =>
      text.replace(',', '.').replace(/([+-]\d{2})$/, '$1:00');
    let read = 0;
    for (const year of ['1970', '2024', '2100', '9999']) {
      for (const date of [
        '01-01',
        '02-28',
        '02-29',
        '04-30',
        '04-31',
        '12-31',
        '13-01',
        '00-10',
        '06-00',
      ]) {
        for (const time of [
          '00:00',
          '23:59:59',
          '24:00',
          '24:00:00.000',
          '24:00:01',
          '12:60',
          '12:00:60',
          '25:00',
          '12:00:00,5',
          '12:00:00.123456',
        ]) {
          for (const zone of [
            'Z',
            'z',
            '+02',
            '-23',
            '+24',
            '+0230',
            '-23:59',
            '+23:60',
            '+24:00',
          ]) {
            const text = `${year}-${date}T${time}${zone}`;
            // Date.parse rolls a day past the month's last into the next month: that it must refuse.
            const [y, m, d] = [
              Number(year),
              Number(date.slice(0, 2)),
              Number(date.slice(3)),
            ];
            const exists =
              m >= 1 &&
              m <= 12 &&
              d >= 1 &&
              d <= new Date(Date.UTC(y, m, 0)).getUTCDate();
            const parsed = exists ? Date.parse(written(text)) : NaN;
            // Event times before 1970 are refused too: no boot log is that old.
            const expected = parsed >= 0 ? parsed : NaN;
            expect({ text, ms: eventTime(text) }).toEqual({
              text,
              ms: expected,
            });
            if (!Number.isNaN(expected)) read++;
          }
        }
      }
    }
    expect(read).toBeGreaterThan(500);
  });

  it('keeps its messages: the form, or a date that does not exist', () => {
    expect(() => parseEventTime('2024-05-01T10:00:00', 'time')).toThrow(
      '\'time\' must be ISO 8601 with a zone (e.g. 2024-05-01T10:00:00Z) or epoch milliseconds, got "2024-05-01T10:00:00"',
    );
    expect(() => parseEventTime('2024-05-01T25:00:00Z', 'time')).toThrow(
      `'time' is not a valid date: "2024-05-01T25:00:00Z"`,
    );
    expect(() => parseEventTime('0050-01-01T00:00:00Z', '--at')).toThrow(
      `'--at' is before 1970`,
    );
  });

  it('reads a logged leap second as the last millisecond of its day, keeping its order; a recovery point refuses it', () => {
    expect(parseEventTime('2016-12-31T23:59:60Z', 'time')).toBe(
      Date.UTC(2016, 11, 31, 23, 59, 59, 999),
    );
    expect(parseEventTime('2017-01-01T00:59:60.250+01', 'time')).toBe(
      Date.UTC(2016, 11, 31, 23, 59, 59, 999),
    );
    expect(parseRecoveryPoint('2016-12-31T23:59:60Z')).toBeUndefined();
    expect(() => parseEventTime('2016-12-31T12:00:60Z', 'time')).toThrow(
      `'time' is not a valid date: "2016-12-31T12:00:60Z"`,
    );
  });
});
