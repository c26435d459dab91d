import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { RecoveryStore } from '../database/RecoveryStore';
import type { CatalogGraphLoader } from '../plan/catalogGraph';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { CaptureService } from './CaptureService';
import { PlanService } from './PlanService';
import { ProviderRegistry } from './ProviderRegistry';

const databases = TestDatabases.create({ ids: ['SQLITE_3'] });
const locator = { machineRef: 'resource:default/data-01', engine: 'primary', container: 'data-01' };

describe('CaptureService', () => {
  async function service() {
    const knex = await databases.init('SQLITE_3');
    await RecoveryStore.migrate(knex);
    const source = new FakeCaptureSource();
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    // captureMachine plans nothing.
    const plans = new PlanService({} as CatalogGraphLoader);
    const captures = new CaptureService(new RecoveryStore(knex), providers, plans, mockServices.logger.mock(), 3);
    return { knex, source, captures };
  }

  it('records a capture and keeps its archive', async () => {
    const { knex, source, captures } = await service();
    const capture = await captures.captureMachine(locator);
    expect(source.captured).toEqual(['data-01']);
    expect(source.discarded).toEqual([]);
    expect(capture).toMatchObject({ machineRef: 'resource:default/data-01', durationMs: 5, pausedMs: 2 });
    const [stored] = await new RecoveryStore(knex).listCaptures(locator.machineRef);
    expect(stored).toMatchObject(capture);
  });

  it('discards the archive and image of a capture it could not record', async () => {
    const { knex, source, captures } = await service();
    // The database is gone between the capture and its record.
    await knex.destroy();
    await expect(captures.captureMachine(locator)).rejects.toThrow();
    expect(source.captured).toEqual(['data-01']);
    expect(source.discarded).toHaveLength(1);
  });
});
