import { mockServices, TestDatabases } from '@backstage/backend-test-utils';
import { ConflictError } from '@backstage/errors';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import type { CapturedMachine, MachineLocator } from '@backstage-recovery/plugin-recovery-node';
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
  async function service<S extends FakeCaptureSource>(source: S = new FakeCaptureSource() as S, keepLast = 3) {
    const knex = await databases.init('SQLITE_3');
    await RecoveryStore.migrate(knex);
    const providers = new ProviderRegistry();
    providers.addCaptureSource(source);
    // captureMachine plans nothing.
    const plans = new PlanService({} as CatalogGraphLoader);
    const logger = mockServices.logger.mock();
    const captures = new CaptureService(new RecoveryStore(knex), providers, plans, logger, keepLast);
    return { knex, source, captures, store: new RecoveryStore(knex), logger };
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

  it('records the capture through the source, before the source lets go of it', async () => {
    let store!: RecoveryStore;
    const recordedWhileHeld: string[][] = [];
    const source = new (class extends FakeCaptureSource {
      async capture(machine: MachineLocator, options: { captureId: string; record?: (c: CapturedMachine) => Promise<void> }) {
        const captured = await super.capture(machine, options);
        await options.record!(captured);
        // Still held here: a backend stopped now leaves the source's note, and the record is in.
        recordedWhileHeld.push((await store.listCaptures(machine.machineRef)).map(c => c.id));
        return captured;
      }
    })();
    const held = await service(source);
    store = held.store;
    const capture = await held.captures.captureMachine(locator);
    expect(recordedWhileHeld).toEqual([[capture.id]]);
    // Recorded once.
    expect((await store.listCaptures(locator.machineRef)).map(c => c.id)).toEqual([capture.id]);
  });

  it('after pruning, has the source remove what no record of the machine accounts for, and survives its failure', async () => {
    const answers: string[][] = [];
    let fails = false;
    const source = new (class extends FakeCaptureSource {
      async removeUnrecorded(machine: MachineLocator, recorded: () => Promise<string[]>) {
        expect(machine).toEqual(locator);
        answers.push(await recorded());
        if (fails) throw new Error('engine gone');
        return [];
      }
    })();
    const { captures, store, logger } = await service(source, 2);
    const taken: string[] = [];
    for (let i = 0; i < 3; i++) taken.push((await captures.captureMachine(locator)).id);
    // The machine's records once the last 2 are kept: the capture just taken among them.
    expect(answers.map(ids => [...ids].sort())).toEqual([[taken[0]], [taken[0], taken[1]].sort(), [taken[1], taken[2]].sort()]);
    expect(source.discarded).toEqual([taken[0]]);
    fails = true;
    const fourth = await captures.captureMachine(locator);
    expect((await store.listCaptures(locator.machineRef)).map(c => c.id)).toContain(fourth.id);
    expect(logger.warn).toHaveBeenCalledWith(
      'Could not remove what unrecorded captures of resource:default/data-01 left: Error: engine gone',
    );
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
