import { DB, makeRun, WEB } from '../testUtils/fixtures';
import {
  entityLabel,
  formatAgainst,
  formatAgo,
  formatRunFailure,
  formatTime,
  formatTimeAfter,
  interruptionReason,
  machineName,
  runFailure,
} from './format';

describe('formatTime', () => {
  const zone = process.env.TZ;
  afterEach(() => {
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it.each(['UTC', 'America/New_York', 'Asia/Kolkata', 'Europe/Paris'])(
    'gives a time in UTC, saying so, in a browser set to %s',
    browserZone => {
      process.env.TZ = browserZone;
      expect(formatTime('2024-05-01T23:30:01.900Z')).toBe(
        '2024-05-01 23:30:01 UTC',
      );
      expect(formatTime('2024-05-01T23:30:01.900Z', { clock: true })).toBe(
        '23:30:01 UTC',
      );
    },
  );

  it('converts a time given with an offset to UTC, date included', () => {
    expect(formatTime('2024-05-01T01:30:00+02:00')).toBe(
      '2024-04-30 23:30:00 UTC',
    );
  });

  it('shows a dash for no time, and an unreadable one as it came', () => {
    expect(formatTime(undefined)).toBe('—');
    expect(formatTime(undefined, { clock: true })).toBe('—');
    expect(formatTime('yesterday')).toBe('yesterday');
  });
});

describe('formatTimeAfter', () => {
  it('gives the time of day where the UTC date is the one before, and the date too where it changed', () => {
    expect(
      formatTimeAfter('2026-12-04T23:59:59.000Z', '2026-12-04T23:59:58.000Z'),
    ).toBe('23:59:59 UTC');
    expect(
      formatTimeAfter('2026-12-05T00:00:03.000Z', '2026-12-04T23:59:59.000Z'),
    ).toBe('2026-12-05 00:00:03 UTC');
    // The UTC date, not the one written: 01:30 at +02:00 is still December 4 in UTC, at +01:00 not.
    expect(
      formatTimeAfter('2026-12-05T01:30:00+02:00', '2026-12-04T10:00:00.000Z'),
    ).toBe('23:30:00 UTC');
    expect(
      formatTimeAfter('2026-12-05T01:30:00+01:00', '2026-12-04T10:00:00.000Z'),
    ).toBe('2026-12-05 00:30:00 UTC');
  });

  it('dates a time with nothing before it, and leaves no time or an unreadable one as formatTime does', () => {
    expect(formatTimeAfter('2026-12-05T00:00:03.000Z', undefined)).toBe(
      '2026-12-05 00:00:03 UTC',
    );
    expect(formatTimeAfter(undefined, '2026-12-04T23:59:59.000Z')).toBe('—');
    expect(formatTimeAfter('yesterday', '2026-12-04T23:59:59.000Z')).toBe(
      'yesterday',
    );
  });
});

describe('formatAgo', () => {
  const now = Date.parse('2024-05-01T12:00:00Z');

  it('gives an age relative to now', () => {
    expect(formatAgo('2024-05-01T10:00:00Z', now)).toBe('2h ago');
    expect(formatAgo('2024-05-01T11:58:30Z', now)).toBe('1m 30s ago');
    expect(formatAgo('2024-05-01T11:59:58Z', now)).toBe('just now');
  });

  it('says a time dated ahead of the clock is in the future, past the tolerance of clocks that differ a little', () => {
    expect(formatAgo('2024-05-01T12:04:00Z', now)).toBe('just now');
    expect(formatAgo('2024-05-01T15:00:00Z', now)).toBe('3h in the future');
  });

  it('shows a dash for no time, and an unreadable one as it came', () => {
    expect(formatAgo(undefined, now)).toBe('—');
    expect(formatAgo('yesterday', now)).toBe('yesterday');
  });
});

describe('formatAgainst', () => {
  it('says a duration as formatDuration does where that tells it from its objective', () => {
    expect(formatAgainst(2 * 3600, 24 * 3600)).toBe('2h');
    expect(formatAgainst(30 * 3600, 24 * 3600)).toBe('1d 6h');
    expect(formatAgainst(3600, 3600)).toBe('1h');
    expect(formatAgainst(undefined, 3600)).toBe('—');
  });

  it('never says a duration over its objective in the same words as the objective', () => {
    // An hourly capture 40 s late against an RPO of 1h; a daily one 30 min late against 1d.
    expect(formatAgainst(3640, 3600)).toBe('1h 0m 40s');
    expect(formatAgainst(24 * 3600 + 1800, 24 * 3600)).toBe('1d 0h 30m');
    // A measured RTO a fraction of a second over 15m.
    expect(formatAgainst(900.4, 900)).toBe('15m 0.4s');
    expect(formatAgainst(900.01, 900)).toBe('15m 0.1s');
    expect(formatAgainst(900.0000001, 900)).toBe('15m 0.1s');
  });
});

describe('runFailure', () => {
  it('names the machine the run failed at, with its probe', () => {
    expect(formatRunFailure(makeRun('failed'))).toBe(
      'Machine web-1 failed probe http:80/healthz: no answer within 60s',
    );
  });

  it('blames no machine for a failure of the run as a whole, though it failed the machine it stopped', () => {
    // As the backend records a host outage: the machine booting is failed with the host's words,
    // the run's error names no machine.
    const outage =
      'hypervisor host recovery-1 stopped answering while resource:default/web-1 was booting: connect ECONNREFUSED';
    const base = makeRun('failed');
    const run = makeRun('failed', {
      error: { message: outage },
      machines: [
        base.machines[0],
        {
          machineRef: WEB,
          wave: 1,
          phase: 'failed',
          captureId: 'cap-web',
          restoreStartedAt: base.machines[1].restoreStartedAt,
          finishedAt: base.finishedAt,
          message: 'connect ECONNREFUSED',
        },
      ],
    });
    expect(runFailure(run)).toEqual({
      machineRef: undefined,
      probe: undefined,
      reason: outage,
    });
    expect(formatRunFailure(run)).toBe(outage);
  });

  it('names the first machine that failed where the run has no error of its own', () => {
    const run = makeRun('failed', { error: undefined });
    expect(runFailure(run).machineRef).toBe(WEB);
    expect(
      runFailure(
        makeRun('failed', {
          error: {
            machineRef: DB,
            message: `${DB} failed: stopped with exit code 1`,
          },
        }),
      ),
    ).toMatchObject({
      machineRef: DB,
      reason: 'stopped with exit code 1',
    });
  });
});

describe('interruptionReason', () => {
  it('says why a run stopped as a sentence, its times as the page writes them', () => {
    expect(
      interruptionReason({
        error: {
          message:
            'Interrupted: cancelled by user:default/dr at 2026-12-07T02:16:40.100Z',
        },
      }),
    ).toBe('Cancelled by user:default/dr at 2026-12-07 02:16:40 UTC.');
  });
});

describe('entityLabel and machineName', () => {
  it('names an entity as Backstage and the readiness notices do: a Component by its name, any other kind with it', () => {
    expect(entityLabel('component:default/web')).toBe('web');
    expect(entityLabel('Component:default/web')).toBe('web');
    // A database recovered as a service is a Resource: not to be read as a machine named db.
    expect(entityLabel(DB)).toBe('resource:db');
    expect(entityLabel('system:default/shop')).toBe('system:shop');
    expect(entityLabel('user:default/alice')).toBe('user:alice');
    expect(entityLabel('component:team-b/api')).toBe('team-b/api');
    expect(entityLabel('resource:team-b/db')).toBe('resource:team-b/db');
  });

  it('names a machine, always a Resource, by its name', () => {
    expect(machineName(WEB)).toBe('web-1');
    expect(machineName('resource:team-b/web-1')).toBe('team-b/web-1');
  });

  it('shows a text that is no entity reference as it came', () => {
    expect(entityLabel('user')).toBe('user');
    expect(machineName('')).toBe('');
  });
});
