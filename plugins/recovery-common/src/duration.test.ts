import {
  formatAgainst,
  formatBytes,
  formatDuration,
  formatMeasured,
  formatSeconds,
  formatSecondsAgainst,
  parseDurationSeconds,
} from './duration';

describe('parseDurationSeconds', () => {
  it('reads single units and sums', () => {
    expect(parseDurationSeconds('500ms')).toBe(0.5);
    expect(parseDurationSeconds('90s')).toBe(90);
    expect(parseDurationSeconds('15m')).toBe(900);
    expect(parseDurationSeconds('24h')).toBe(86400);
    expect(parseDurationSeconds('7d')).toBe(604800);
    expect(parseDurationSeconds(' 1h30m ')).toBe(5400);
  });

  it('refuses what is not a duration', () => {
    for (const text of [
      '',
      'soon',
      '10',
      '5 m',
      '-5m',
      '1y',
      `${'9'.repeat(400)}d`,
    ]) {
      expect(parseDurationSeconds(text)).toBeUndefined();
    }
  });
});

describe('formatBytes', () => {
  it('formats sizes for people', () => {
    expect(formatBytes(512)).toBe('512 bytes');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB');
  });
});

describe('formatSeconds', () => {
  it('words ages and objectives in the unit that reads best', () => {
    expect([90, 2700, 9000, 276_480].map(formatSeconds)).toEqual([
      '90 s',
      '45 min',
      '2.5 h',
      '3.2 d',
    ]);
  });
});

describe('formatSecondsAgainst', () => {
  it('words a value over its objective as more than the objective, also where formatSeconds rounds them alike', () => {
    expect(formatSecondsAgainst(86_460, 86_400)).toBe('24 h + 60 s');
    expect(formatSecondsAgainst(3_620, 3_600)).toBe('60 min + 20 s');
    expect(formatSecondsAgainst(3_640, 3_600)).toBe('61 min');
    // Rounded apart, or not over: as formatSeconds.
    expect(formatSecondsAgainst(7_200, 3_600)).toBe('2 h');
    expect(formatSecondsAgainst(3_600, 3_600)).toBe('60 min');
    expect(formatSecondsAgainst(3_590, 3_600)).toBe('60 min');
  });

  it('never words an excess as nothing, nor a value as an objective worded in another unit', () => {
    // A measured RTO has milliseconds: 0.3 s over is still over.
    expect(formatSecondsAgainst(600.3, 600)).toBe('10 min + 0.3 s');
    expect(formatSecondsAgainst(600.001, 600)).toBe('10 min + 0.1 s');
    expect(formatSecondsAgainst(601.2, 600)).toBe('10 min + 1 s');
    // `2 h` is the same amount as `120 min`.
    expect(formatSecondsAgainst(7_200, 7_190)).toBe('120 min + 10 s');
    expect(formatSecondsAgainst(7_300, 7_190)).toBe('120 min + 110 s');
    expect(formatSecondsAgainst(7_600, 7_190)).toBe('2.1 h');
  });
});

describe('durations as the portal and the CLI write them', () => {
  it('writes objectives and ages in its forms', () => {
    expect(
      [86400, 300, 3600, 90, 7260, 200_000, 0.4, undefined].map(formatDuration),
    ).toEqual(['1d', '5m', '1h', '1m 30s', '2h 1m', '2d 7h', '0s', '—']);
    expect(formatAgainst(3640, 3600)).toBe('1h 0m 40s');
    expect(formatAgainst(900.4, 900)).toBe('15m 0.4s');
    expect(formatAgainst(1800, 3600)).toBe('30m');
  });
});

describe('formatMeasured', () => {
  it('writes a measured duration to the millisecond, as the steps that add up to it', () => {
    // An RTO of 2.621 s is not `3s` beside steps that say 2.621.
    expect(formatMeasured(2.621)).toBe('2.621s');
    expect(formatMeasured(0.1 + 0.2)).toBe('0.3s');
    expect(formatMeasured(0)).toBe('0s');
    expect(formatMeasured(252)).toBe('4m 12s');
    expect(formatMeasured(252.104)).toBe('4m 12.104s');
    expect(formatMeasured(900.4)).toBe('15m 0.4s');
    expect(formatMeasured(3600)).toBe('1h');
    expect(formatMeasured(3640)).toBe('1h 0m 40s');
    expect(formatMeasured(90_061.5)).toBe('1d 1h 1m 1.5s');
    expect(formatMeasured(undefined)).toBe('—');
    expect(formatMeasured(Number.NaN)).toBe('—');
  });
});
