import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { ConflictError } from '@backstage/errors';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { MachineLocator } from '@backstage-recovery/plugin-recovery-node';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { componentEntity, machineEntity } from '../testing/entities';
import { RecoveryStore } from '../database/RecoveryStore';
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

  it('names the machine whose capture failed, and those captured before it, keeping the status', async () => {
    const knex = await databases.init('SQLITE_3');
    await RecoveryStore.migrate(knex);
    // web on web-01 depends on db on data-01: data-01 is captured first, then web-01 fails.
    const entities = [
      machineEntity('data-01'),
      machineEntity('web-01'),
      { ...componentEntity('db', []), relations: [{ type: 'dependsOn', targetRef: 'resource:default/data-01' }] },
      {
        ...componentEntity('web', []),
        relations: [
          { type: 'dependsOn', targetRef: 'component:default/db' },
          { type: 'dependsOn', targetRef: 'resource:default/web-01' },
        ],
      },
    ];
    const source = new (class extends FakeCaptureSource {
      async capture(machine: MachineLocator, options: { captureId: string }) {
        if (machine.container === 'web-01') throw new ConflictError('capture 42 is under way');
        return super.capture(machine, options);
      }
    })();
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    const graphs = new CatalogGraphLoader(catalogServiceMock({ entities }), mockServices.auth(), { rpoSeconds: 86400, rtoSeconds: 3600 });
    const captures = new CaptureService(new RecoveryStore(knex), providers, new PlanService(graphs), mockServices.logger.mock(), 3);
    const failure = await captures.captureEntity('component:default/web').catch(e => e);
    expect(failure.message).toBe(
      'capture of resource:default/web-01 failed (captured before it, and kept: resource:default/data-01); caused by ConflictError: capture 42 is under way',
    );
    expect(failure.name).toBe('ConflictError');
    expect((await new RecoveryStore(knex).listCaptures('resource:default/data-01')).length).toBe(1);
  });
});
