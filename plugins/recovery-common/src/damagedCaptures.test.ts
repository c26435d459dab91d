import { ResponseError } from '@backstage/errors';
import { CAPTURES_DAMAGED_ERROR_NAME, capturesDamaged } from './errors';
import { earlierRecoveryPoints } from './recoveryPoint';

describe('captures found damaged', () => {
  const t = (iso: string) => ({ createdAt: iso, durationMs: 1_000 });
  const damaged = {
    at: '2026-11-06T00:00:00.000Z',
    reason: 'checksum mismatch',
  };

  it('offers no recovery point at a damaged capture: a run passes over it to the older intact one', () => {
    const a = [
      t('2026-11-01T00:00:00.000Z'),
      t('2026-11-02T00:00:00.000Z'),
      t('2026-11-03T00:00:00.000Z'),
    ];
    const b = [
      t('2026-11-01T00:00:10.000Z'),
      t('2026-11-02T00:00:10.000Z'),
      t('2026-11-03T00:00:10.000Z'),
    ];
    expect(earlierRecoveryPoints([a, b])).toEqual([
      '2026-11-02T00:00:10.000Z',
      '2026-11-01T00:00:10.000Z',
    ]);
    // b's capture of Nov 2 damaged: that round's point would restore b's of Nov 1, not its own.
    expect(
      earlierRecoveryPoints([a, [b[0], { ...b[1], damaged }, b[2]]]),
    ).toEqual(['2026-11-02T00:00:00.000Z', '2026-11-01T00:00:10.000Z']);
    // Every capture of a machine damaged: no point restores it.
    expect(earlierRecoveryPoints([a, b.map(c => ({ ...c, damaged }))])).toEqual(
      [],
    );
  });

  it('reads the captures a start refused names (409 CapturesDamagedError), and nothing of other errors', async () => {
    const body = {
      error: {
        name: CAPTURES_DAMAGED_ERROR_NAME,
        message: 'No intact capture of resource:default/web-01 to restore: ...',
        statusCode: 409,
        damaged: [
          {
            machineRef: 'resource:default/web-01',
            captureId: 'c2',
            createdAt: '2026-11-03T00:00:00.000Z',
            reason: 'checksum mismatch',
          },
          {
            machineRef: 'resource:default/web-01',
            captureId: 7,
            createdAt: '2026-11-02T00:00:00.000Z',
            reason: 'cut short',
          },
        ],
        neverCaptured: ['resource:default/cache-01', 3],
      },
      request: { method: 'POST', url: '/runs' },
      response: { statusCode: 409 },
    };
    const error = await ResponseError.fromResponse(
      new Response(JSON.stringify(body), {
        status: 409,
        headers: { 'content-type': 'application/json' },
      }) as any,
    );
    expect(capturesDamaged(error)).toEqual({
      damaged: [
        {
          machineRef: 'resource:default/web-01',
          captureId: 'c2',
          createdAt: '2026-11-03T00:00:00.000Z',
          reason: 'checksum mismatch',
        },
      ],
      neverCaptured: ['resource:default/cache-01'],
    });
    expect(
      capturesDamaged({
        statusCode: 409,
        body: {
          error: { name: 'MachinesNotCapturedError', neverCaptured: ['x'] },
        },
      }),
    ).toBeUndefined();
    expect(capturesDamaged(new Error('boom'))).toBeUndefined();
  });
});
