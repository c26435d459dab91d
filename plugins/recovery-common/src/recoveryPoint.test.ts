import { ResponseError } from '@backstage/errors';
import {
  CAPTURE_ROUND_GAP_MS,
  earlierRecoveryPoints,
  earliestRecoveryPoint,
  parseRecoveryPoint,
  readRecoveryPoint,
} from './recoveryPoint';
import {
  RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
  recoveryPointTooEarly,
} from './errors';

describe('parseRecoveryPoint', () => {
  it('reads a time with its zone as the instant it names, in UTC', () => {
    expect(parseRecoveryPoint('2026-11-02T01:00:00Z')).toBe(
      '2026-11-02T01:00:00.000Z',
    );
    expect(parseRecoveryPoint('2026-11-02T03:00:00+02:00')).toBe(
      '2026-11-02T01:00:00.000Z',
    );
    expect(parseRecoveryPoint('2026-11-01T20:30-0430')).toBe(
      '2026-11-02T01:00:00.000Z',
    );
    expect(parseRecoveryPoint('2026-11-02t01:00:00.25z')).toBe(
      '2026-11-02T01:00:00.250Z',
    );
    expect(parseRecoveryPoint('2028-02-29T23:59:59+00:00')).toBe(
      '2028-02-29T23:59:59.000Z',
    );
    // Past the millisecond: dropped, never rounded up past a capture taken after the point.
    expect(parseRecoveryPoint('2026-11-02T01:00:00.123999Z')).toBe(
      '2026-11-02T01:00:00.123Z',
    );
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
      // ISO 8601 allows both; a recovery point, as RFC 3339, takes neither.
      '2026-11-02T03:00:00+02',
      '2026-11-01T24:00:00Z',
      'yesterday',
      '1730509200',
      '',
      ' 2026-11-02T01:00:00Z',
    ]) {
      expect({ text, point: parseRecoveryPoint(text) }).toEqual({
        text,
        point: undefined,
      });
    }
  });
});

describe('readRecoveryPoint', () => {
  it('names what keeps the text from being a recovery point', () => {
    expect(readRecoveryPoint('2026-11-02T03:00:00+02:00')).toEqual({
      point: '2026-11-02T01:00:00.000Z',
    });
    expect(readRecoveryPoint('2026-11-02T01:00')).toEqual({
      problem: 'no zone: end it with Z (UTC) or an offset such as +02:00',
    });
    expect(readRecoveryPoint('2026-11-02T03:00+02')).toEqual({
      problem: 'its zone +02 gives hours alone: write +02:00',
    });
    expect(readRecoveryPoint('2026-11-01T24:00:00Z')).toEqual({
      problem: 'hour 24: write 00:00 of the next day',
    });
    expect(readRecoveryPoint('2026-02-29T01:00:00Z')).toEqual({
      problem: '2026-02-29 does not exist: February 2026 has 28 days',
    });
  });

  it('reads the years 0000 to 0099 as written (Date.UTC made them 1900 to 1999, and the point was refused as malformed)', () => {
    expect(readRecoveryPoint('0050-06-01T00:00:00Z')).toEqual({
      point: '0050-06-01T00:00:00.000Z',
    });
    expect(readRecoveryPoint('0000-01-01T00:30:00-01:00')).toEqual({
      point: '0000-01-01T01:30:00.000Z',
    });
    // Not a UTC time RFC 3339 can write: a year before 0000 or after 9999.
    expect(readRecoveryPoint('0000-01-01T00:30:00+01:00')).toEqual({
      problem: 'before the year 0000 in UTC',
    });
    expect(readRecoveryPoint('9999-12-31T23:30:00-01:00')).toEqual({
      problem: 'after the year 9999 in UTC',
    });
    expect(readRecoveryPoint('9999-12-31T23:30:00+01:00')).toEqual({
      point: '9999-12-31T22:30:00.000Z',
    });
  });
});

/** A capture of a plan's machine taken at `createdAt`, lasting `durationMs`. */
const taken = (createdAt: string, durationMs = 1_000) => ({
  createdAt,
  durationMs,
});
const at = (times: string[], durationMs?: number) =>
  times.map(t => taken(`2026-11-02T${t}.000Z`, durationMs));

describe('earlierRecoveryPoints', () => {
  // The database's kept captures go back to 01:00, the web machine's only to 06:00.
  const DB = at(['09:00:00', '07:00:00', '05:00:00', '01:00:00']);
  const WEB = at(['08:00:00', '06:00:00']);

  it('lists the capture times at which every machine has a capture, newest first, less the latest state', () => {
    // At 08:00 the database restores its 07:00 capture, the web machine its newest: still earlier
    // than the latest state, which restores the database's 09:00 capture.
    expect(earlierRecoveryPoints([DB, WEB])).toEqual([
      '2026-11-02T08:00:00.000Z',
      '2026-11-02T07:00:00.000Z',
      '2026-11-02T06:00:00.000Z',
    ]);
    // A newer database capture makes its 09:00 one a point too.
    expect(earlierRecoveryPoints([[...at(['10:00:00']), ...DB], WEB])).toEqual([
      '2026-11-02T09:00:00.000Z',
      '2026-11-02T08:00:00.000Z',
      '2026-11-02T07:00:00.000Z',
      '2026-11-02T06:00:00.000Z',
    ]);
  });

  it('lists none where a machine has no capture, or each has only one', () => {
    expect(earlierRecoveryPoints([DB, []])).toEqual([]);
    expect(earlierRecoveryPoints([[DB[0]], [WEB[0]]])).toEqual([]);
    expect(earlierRecoveryPoints([])).toEqual([]);
  });

  it('lists one point per capture round (machine after machine, a second apart), at its last capture', () => {
    // Three rounds an hour apart, each capturing a, b, c in turn; then b captured alone at 03:30.
    const rounds = ['01', '02', '03'];
    const machines = [0, 1, 2].map(i =>
      at(
        rounds.map(h => `${h}:00:0${i}`),
        800,
      ),
    );
    machines[1].push(...at(['03:30:00']));
    expect(earlierRecoveryPoints(machines)).toEqual([
      // 03:30 is the latest state; the last round, 03:00:02, restores every machine's round of 03:00.
      '2026-11-02T03:00:02.000Z',
      '2026-11-02T02:00:02.000Z',
      '2026-11-02T01:00:02.000Z',
    ]);
  });

  it("measures a round's gaps from the end of each capture: a round of slow captures is one", () => {
    // Each capture lasts ten minutes and the next starts as it ends: one round, then another.
    const slow = (start: string) =>
      [0, 1, 2].map(i => [
        taken(
          new Date(Date.parse(start) + i * 600_000 + i).toISOString(),
          600_000,
        ),
      ]);
    const [a, b, c] = [0, 1, 2].map(i => [
      ...slow('2026-11-02T01:00:00.000Z')[i],
      ...slow('2026-11-02T02:00:00.000Z')[i],
    ]);
    expect(earlierRecoveryPoints([a, b, c])).toEqual([
      '2026-11-02T01:20:00.002Z',
    ]);
  });

  it(`starts a round at a capture ${CAPTURE_ROUND_GAP_MS / 1000} s or more after the one before ended`, () => {
    const after = (gapMs: number) => [
      taken(
        new Date(Date.parse('2026-11-02T01:00:00.000Z') + gapMs).toISOString(),
        0,
      ),
    ];
    const a = at(['00:00:00', '01:00:00', '03:00:00'], 0);
    const b = (gapMs: number) => [
      ...at(['00:00:01'], 0),
      ...after(gapMs),
      ...at(['03:00:01'], 0),
    ];
    expect(earlierRecoveryPoints([a, b(CAPTURE_ROUND_GAP_MS)])).toEqual([
      '2026-11-02T01:01:00.000Z',
      '2026-11-02T01:00:00.000Z',
      '2026-11-02T00:00:01.000Z',
    ]);
    expect(earlierRecoveryPoints([a, b(CAPTURE_ROUND_GAP_MS - 1)])).toEqual([
      '2026-11-02T01:00:59.999Z',
      '2026-11-02T00:00:01.000Z',
    ]);
  });
});

describe('recoveryPointTooEarly', () => {
  const refusal = (status: number, error: object) =>
    ResponseError.fromResponse(
      new Response(
        JSON.stringify({ error, response: { statusCode: status } }),
        {
          status,
          statusText: 'Conflict',
          headers: { 'Content-Type': 'application/json' },
        },
      ),
    );

  it('reads the machines a refused recovery point names, and the earliest point they allow', async () => {
    const body = {
      name: RECOVERY_POINT_TOO_EARLY_ERROR_NAME,
      message: 'No capture kept at or before the recovery point …',
      recoveryPoint: '2026-11-02T00:00:00.000Z',
      machines: [
        {
          machineRef: 'resource:default/web-01',
          oldestCaptureAt: '2026-11-02T06:00:00.000Z',
        },
      ],
      neverCaptured: [],
      earliestRecoveryPoint: '2026-11-02T06:00:00.000Z',
    };
    expect(recoveryPointTooEarly(await refusal(409, body))).toEqual({
      recoveryPoint: '2026-11-02T00:00:00.000Z',
      machines: [
        {
          machineRef: 'resource:default/web-01',
          oldestCaptureAt: '2026-11-02T06:00:00.000Z',
        },
      ],
      neverCaptured: [],
      earliestRecoveryPoint: '2026-11-02T06:00:00.000Z',
    });
    // A machine never captured: no earliest point.
    expect(
      recoveryPointTooEarly(
        await refusal(409, {
          ...body,
          neverCaptured: ['resource:default/new-01'],
          earliestRecoveryPoint: undefined,
        }),
      ),
    ).toEqual({
      recoveryPoint: '2026-11-02T00:00:00.000Z',
      machines: body.machines,
      neverCaptured: ['resource:default/new-01'],
    });
    expect(
      recoveryPointTooEarly(
        await refusal(409, { ...body, name: 'ConflictError' }),
      ),
    ).toBeUndefined();
    expect(recoveryPointTooEarly(new Error(body.message))).toBeUndefined();
  });

  it('takes the newest of the oldest captures as the earliest point', () => {
    expect(
      earliestRecoveryPoint([
        { oldestCaptureAt: '2026-11-02T06:00:00.000Z' },
        { oldestCaptureAt: '2026-11-02T07:00:00.000Z' },
      ]),
    ).toBe('2026-11-02T07:00:00.000Z');
    expect(earliestRecoveryPoint([])).toBeUndefined();
  });
});
