import { ConfigReader } from '@backstage/config';
import { readDurationSettingMs } from './durationSetting';

const KEY = 'recovery.runs.stepTimeout';
const read = (stepTimeout: unknown) =>
  readDurationSettingMs(
    new ConfigReader({ recovery: { runs: { stepTimeout } } } as any),
    KEY,
  );

describe('readDurationSettingMs', () => {
  it('is undefined where the key is not set', () => {
    expect(readDurationSettingMs(new ConfigReader({}), KEY)).toBeUndefined();
  });

  it('reads sums of units', () => {
    expect(read('500ms')).toBe(500);
    expect(read('90s')).toBe(90_000);
    expect(read('1h30m')).toBe(5_400_000);
    expect(read(' 7d ')).toBe(7 * 86_400_000);
  });

  it("reads Backstage's forms: ISO 8601, an object of units, ms texts", () => {
    expect(read('PT1H')).toBe(3_600_000);
    expect(read('P1DT30M')).toBe(86_400_000 + 1_800_000);
    expect(read({ minutes: 5 })).toBe(300_000);
    expect(read({ hours: 1, seconds: 30 })).toBe(3_630_000);
    expect(read('2 minutes')).toBe(120_000);
    expect(read('1.5h')).toBe(5_400_000);
  });

  it('refuses what is no duration, naming the key and the value', () => {
    expect(() => read('soon')).toThrow(
      `Invalid duration "soon" at ${KEY}: use e.g. 90s, 1h30m, PT15M or { minutes: 15 } (Not a valid duration string`,
    );
    expect(() => read('PT1X')).toThrow(
      `Invalid duration "PT1X" at ${KEY}: use e.g. 90s, 1h30m, PT15M or { minutes: 15 } (Invalid ISO format`,
    );
    expect(() => read({ minute: 5 })).toThrow(
      `Invalid duration {"minute":5} at ${KEY}: use e.g. 90s, 1h30m, PT15M or { minutes: 15 } (Needs one or more of 'years'`,
    );
    expect(() => read({ minutes: 5, when: 'now' })).toThrow(
      `Invalid duration {"minutes":5,"when":"now"} at ${KEY}: use e.g. 90s, 1h30m, PT15M or { minutes: 15 } (Unknown property 'when'`,
    );
    expect(() => read(90)).toThrow(
      `Invalid duration 90 at ${KEY}: use e.g. 90s, 1h30m, PT15M or { minutes: 15 }`,
    );
    expect(() => read('90')).toThrow('(The value cannot be a plain number');
    expect(() => read(['5m'])).toThrow(`Invalid duration ["5m"] at ${KEY}`);
  });

  it('refuses a duration of zero or less', () => {
    for (const zero of ['0s', 'PT0S', { minutes: 0 }, '0ms']) {
      expect(() => read(zero)).toThrow(
        `Invalid duration ${JSON.stringify(zero)} at ${KEY}: must be longer than 0s`,
      );
    }
    expect(() => read('PT-1M')).toThrow(
      `Invalid duration "PT-1M" at ${KEY}: must be longer than 0s`,
    );
    expect(() => read('-1m')).toThrow('(Negative durations are not allowed)');
  });
});
