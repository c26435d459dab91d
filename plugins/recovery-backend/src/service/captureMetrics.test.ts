import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { ConflictError } from '@backstage/errors';
import {
  CaptureStoppedError,
  type CapturedMachine,
  type MachineLocator,
} from '@backstage-recovery/plugin-recovery-node';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { recordingLogger } from '../testing/logger';
import { recordedMetrics } from '../testing/metrics';
import { CaptureService } from './CaptureService';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';
import { RecoveryMetrics } from './RecoveryMetrics';

/* How machines' captures end, in the plugin's metrics: once a capture, by result. */

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
const locator = {
  machineRef: 'resource:default/data-01',
  engine: 'primary',
  container: 'data-01',
};
const FINISHED = 'recovery.captures.finished';

/** A source whose capture fails with `error` (the fake's own where none). */
class FailingSource extends FakeCaptureSource {
  error: Error | undefined;
  async capture(
    machine: MachineLocator,
    options: { captureId: string },
  ): Promise<CapturedMachine> {
    if (this.error) throw this.error;
    return super.capture(machine, options);
  }
}

describe('capture metrics', () => {
  async function service(source: FakeCaptureSource) {
    const knex = await databases.init('SQLITE_3');
    await migrate(knex);
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    const recording = recordedMetrics();
    const captures = new CaptureService(
      new CaptureStore(knex),
      providers,
      new PlanService({} as CatalogGraphLoader),
      recordingLogger(),
      3,
      mockServices.auditor.mock(),
      undefined,
      undefined,
      new RecoveryMetrics(recording.metrics),
    );
    return { captures, ...recording };
  }

  it('counts each capture as it ends: succeeded, failed, or interrupted (stopped by the shutdown); not one the source refused as under way', async () => {
    const source = new FailingSource();
    const { captures, calls, made } = await service(source);

    await captures.captureMachine(locator);
    source.error = new Error('engine gone');
    await expect(captures.captureMachine(locator)).rejects.toThrow(
      'engine gone',
    );
    source.error = new CaptureStoppedError('the backend is shutting down');
    await expect(captures.captureMachine(locator)).rejects.toThrow(
      'shutting down',
    );
    source.error = new ConflictError('a capture of data-01 is under way');
    await expect(captures.captureMachine(locator)).rejects.toThrow('under way');

    expect(calls('createCounter', FINISHED)).toEqual([
      [1, { result: 'succeeded' }],
      [1, { result: 'failed' }],
      [1, { result: 'interrupted' }],
    ]);
    expect(made('createCounter', FINISHED)).toBe(1);
  });
});
