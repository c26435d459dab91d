import { ResponseError } from '@backstage/errors';
import type { Readiness } from '@backstage-recovery/plugin-recovery-common';
import { BackendError, formatReadiness, startRun } from './remote';

const WEB_01 = 'resource:default/web-01';

/** The backend's refusal of a run whose machines' kept captures are all damaged, as the client reads it. */
const refusalOf = (damaged: object[], neverCaptured: string[]) =>
  ResponseError.fromResponse(
    new Response(
      JSON.stringify({
        error: {
          name: 'CapturesDamagedError',
          message: 'No intact capture of …',
          statusCode: 409,
          damaged,
          neverCaptured,
        },
        response: { statusCode: 409 },
      }),
      {
        status: 409,
        headers: { 'Content-Type': 'application/json' },
      },
    ),
  );

describe('captures found damaged, in the CLI', () => {
  it('says a run refused for captures all damaged capture by capture, and what to do', async () => {
    const damaged = [
      {
        machineRef: WEB_01,
        captureId: 'c2',
        createdAt: '2026-11-03T00:00:00.000Z',
        reason: 'checksum mismatch for /captures/c2.tar',
      },
      {
        machineRef: WEB_01,
        captureId: 'c1',
        createdAt: '2026-11-02T00:00:00.000Z',
        reason: 'artifact /captures/c1.tar is missing from the capture store',
      },
    ];
    const refusal = await refusalOf(damaged, []);
    const client = {
      startRun: async () => Promise.reject(refusal),
    } as unknown as Parameters<typeof startRun>[0];
    await expect(startRun(client, 'component:default/web')).rejects.toThrow(
      new BackendError(
        [
          `no intact capture of ${WEB_01} to restore: every one kept is damaged:`,
          `  ${WEB_01}  capture c2 of 2026-11-03T00:00:00.000Z: checksum mismatch for /captures/c2.tar`,
          `  ${WEB_01}  capture c1 of 2026-11-02T00:00:00.000Z: artifact /captures/c1.tar is missing from the capture store`,
          'capture it anew (recovery capture component:default/web), then run again',
        ].join('\n'),
      ),
    );
  });

  it('names the machines of the plan never captured beside those whose captures are all damaged', async () => {
    const CACHE_01 = 'resource:default/cache-01';
    const damaged = [
      {
        machineRef: WEB_01,
        captureId: 'c2',
        createdAt: '2026-11-03T00:00:00.000Z',
        reason: 'checksum mismatch',
      },
    ];
    const refusal = await refusalOf(damaged, [CACHE_01]);
    const client = {
      startRun: async () => Promise.reject(refusal),
    } as unknown as Parameters<typeof startRun>[0];
    await expect(startRun(client, 'component:default/web')).rejects.toThrow(
      new BackendError(
        [
          `no intact capture of ${WEB_01} to restore: every one kept is damaged:`,
          `  ${WEB_01}    capture c2 of 2026-11-03T00:00:00.000Z: checksum mismatch`,
          `  ${CACHE_01}  never captured`,
          'capture them anew (recovery capture component:default/web), then run again',
        ].join('\n'),
      ),
    );
  });

  it("marks a machine's latest capture damaged where readiness lists the captures", () => {
    const capture = {
      machineRef: WEB_01,
      engine: 'primary',
      container: 'web-01',
      imageId: 'i',
      sizeBytes: 1,
      checksum: 'c',
      durationMs: 1,
      adaptations: [],
    };
    const readiness: Readiness = {
      entityRef: 'component:default/web',
      status: 'at-risk',
      reasons: [
        `Latest capture of ${WEB_01} (capture c2 of 2026-11-03T00:00:00.000Z) is damaged, found so at 2026-11-04T00:00:00.000Z: checksum mismatch`,
      ],
      problems: [],
      objectives: { rpoSeconds: 86400, rtoSeconds: 300 },
      captures: [
        {
          machineRef: 'resource:default/db-01',
          ageSeconds: 60,
          latest: {
            ...capture,
            id: 'd1',
            machineRef: 'resource:default/db-01',
            createdAt: '2026-11-03T00:00:00.000Z',
          },
        },
        {
          machineRef: WEB_01,
          ageSeconds: 3600,
          latest: {
            ...capture,
            id: 'c2',
            createdAt: '2026-11-03T00:00:00.000Z',
            damaged: {
              at: '2026-11-04T00:00:00.000Z',
              reason: 'checksum mismatch',
            },
          },
        },
      ],
    };
    expect(formatReadiness(readiness).split('\n').slice(-4)).toEqual([
      'Captures:',
      '  resource:default/db-01  1m old',
      `  ${WEB_01}  1h old (damaged, found so at 2026-11-04 00:00:00 UTC: no run restores it)`,
      '',
    ]);
  });
});
