import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import { metricsServiceMock } from '@backstage/backend-test-utils/alpha';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryPlugin } from './plugin';
import { captureAndPoll } from './testing/captureRequests';
import { machineEntity } from './testing/entities';
import { FakeCaptureSource } from './testing/FakeCaptureSource';
import { recordedMetrics } from './testing/metrics';
import { providersModule } from './testing/providers';

/* The plugin's metrics as a backend makes them: each instrument once, reached from its services. */

describe('the recovery plugin metrics', () => {
  it('makes each instrument once, counts a capture taken through the API, and gauges readiness from the notices kept', async () => {
    const metrics = metricsServiceMock.mock();
    const { made, calls, collect } = recordedMetrics(metrics);
    const backend = await startTestBackend({
      features: [
        recoveryPlugin,
        metrics.factory,
        providersModule({ captureSources: [new FakeCaptureSource()] }),
        catalogServiceMock.factory({ entities: [machineEntity('data-01')] }),
        mockServices.rootConfig.factory({
          data: { recovery: { objectives: { rto: { minutes: 45 } } } },
        }),
      ],
    });
    try {
      for (const [kind, name] of [
        ['createCounter', 'recovery.runs.finished'],
        ['createHistogram', 'recovery.runs.rto'],
        ['createCounter', 'recovery.captures.finished'],
        ['createObservableGauge', 'recovery.readiness.entities'],
      ] as const)
        expect(made(kind, name)).toBe(1);
      // The RTO objective is a bucket boundary: runs over it are counted apart.
      expect(metrics.createHistogram).toHaveBeenCalledWith(
        'recovery.runs.rto',
        expect.objectContaining({
          unit: 's',
          advice: {
            explicitBucketBoundaries: expect.arrayContaining([2700]),
          },
        }),
      );

      const captured = await captureAndPoll(backend.server, {
        entityRef: 'resource:default/data-01',
      });
      expect(captured.status).toBe('succeeded');
      expect(calls('createCounter', 'recovery.captures.finished')).toEqual([
        [1, { result: 'succeeded' }],
      ]);
      // No sweep of the notices yet: every status, none counted.
      expect(await collect('recovery.readiness.entities')).toEqual([
        [0, { status: 'ready' }],
        [0, { status: 'at-risk' }],
        [0, { status: 'not-recoverable' }],
        [0, { status: 'unknown' }],
      ]);
    } finally {
      await backend.stop();
    }
  });
});
