/**
 * The nightly check's last pass in the recovery plugin's metrics, on the real plugin: the module
 * records how many entities it checked and why those that did not recover did not; the plugin
 * counts the runs it made.
 */
import { metricsServiceMock } from '@backstage/backend-test-utils/alpha';
import type { Entity } from '@backstage/catalog-model';
import { FakeCaptureSource } from '../../recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../recovery-backend/src/testing/FakeHost';
import {
  componentEntity,
  machineEntity,
} from '../../recovery-backend/src/testing/entities';
import { recordedMetrics } from '../../recovery-backend/src/testing/metrics';
import { providersModule } from '../../recovery-backend/src/testing/providers';
import { startSchedulerBackend } from './testing/schedulerBackend';

const machine = (name: string, service: string): Entity => {
  const entity = machineEntity(name);
  entity.metadata.annotations = {
    ...entity.metadata.annotations,
    'recovery.backstage-recovery.io/engine': 'primary',
  };
  return {
    ...entity,
    relations: [
      { type: 'dependencyOf', targetRef: `component:default/${service}` },
    ],
  };
};

describe('nightly check metrics', () => {
  it('records the entities its last pass checked and those that did not recover, by why, and when it ended', async () => {
    const metrics = metricsServiceMock.mock();
    const { calls, made } = recordedMetrics(metrics);
    const entities: Entity[] = [
      componentEntity('web', ['resource:default/web-01']),
      componentEntity('api', ['resource:default/api-01']),
      machine('web-01', 'web'),
      machine('api-01', 'api'),
    ];
    const { task } = await startSchedulerBackend({
      entities,
      config: { recovery: { runs: { minReadyTime: '10ms' } } },
      features: [
        metrics.factory,
        providersModule({
          captureSources: [new FakeCaptureSource()],
          // api-01 exits once started: api's test recovery fails.
          hypervisorHosts: [new FakeHost({}, ['resource:default/api-01'])],
        }),
      ],
    });
    await task('recovery-capture').fn(new AbortController().signal);
    const before = Math.floor(Date.now() / 1000);
    await task('recovery-nightly-check').fn(new AbortController().signal);
    const after = Math.ceil(Date.now() / 1000);

    expect(
      calls('createGauge', 'recovery.nightly_check.entities.checked'),
    ).toEqual([[2]]);
    expect(
      calls('createGauge', 'recovery.nightly_check.entities.failed'),
    ).toEqual([
      [1, { reason: 'run-failed' }],
      [0, { reason: 'run-interrupted' }],
      [0, { reason: 'refused' }],
      [0, { reason: 'no-machine' }],
      [0, { reason: 'host-unreachable' }],
    ]);
    const [[endedAt]] = calls(
      'createGauge',
      'recovery.nightly_check.last_pass',
    );
    expect(endedAt).toBeGreaterThanOrEqual(before);
    expect(endedAt).toBeLessThanOrEqual(after);
    // The plugin counted the runs the check made, as scheduled ones.
    expect(calls('createCounter', 'recovery.runs.finished')).toEqual(
      expect.arrayContaining([
        [1, { result: 'succeeded', mode: 'test', trigger: 'schedule' }],
        [1, { result: 'failed', mode: 'test', trigger: 'schedule' }],
      ]),
    );

    expect(made('createGauge', 'recovery.nightly_check.entities.checked')).toBe(
      1,
    );
    expect(made('createGauge', 'recovery.nightly_check.entities.failed')).toBe(
      1,
    );
  });
});
