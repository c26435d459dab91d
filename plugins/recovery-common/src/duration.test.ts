import { parseDurationSeconds } from './duration';

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
    for (const text of ['', 'soon', '10', '5 m', '-5m', '1y']) {
      expect(parseDurationSeconds(text)).toBeUndefined();
    }
  });
});
