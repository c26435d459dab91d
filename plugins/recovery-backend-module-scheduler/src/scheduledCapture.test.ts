/**
 * The scheduled capture against the real recovery backend plugin, in-process (its tasks API), its
 * capture source played by the project's fake: each machine is captured once an hour, on its own.
 */
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { recoveryPlugin } from '../../recovery-backend/src/plugin';
import { FakeCaptureSource } from '../../recovery-backend/src/testing/FakeCaptureSource';
import { FakeHost } from '../../recovery-backend/src/testing/FakeHost';
import {
  componentEntity,
  machineEntity,
} from '../../recovery-backend/src/testing/entities';
import { providersModule } from '../../recovery-backend/src/testing/providers';
import { tasksModule } from '../../recovery-backend/src/testing/tasksModule';
import { captureMachines } from './tasks';

/** A machine whose boot needs `needs` (other machines, a service) first. */
const machine = (
  name: string,
  needs: string[] = [],
  engine = 'primary',
): Entity => {
  const entity = machineEntity(name);
  entity.metadata.annotations = {
    ...entity.metadata.annotations,
    'recovery.backstage-recovery.io/engine': engine,
  };
  return {
    ...entity,
    relations: needs.map(targetRef => ({ type: 'dependsOn', targetRef })),
  };
};

describe('scheduled capture', () => {
  it("captures each machine once, on its own: not again with a machine that needs it, nor failing with another's problem", async () => {
    const source = new FakeCaptureSource();
    const { module, tasks } = tasksModule();
    await startTestBackend({
      features: [
        recoveryPlugin,
        module,
        providersModule({
          captureSources: [source],
          hypervisorHosts: [new FakeHost({})],
        }),
        catalogServiceMock.factory({
          entities: [
            machine('db-01'),
            // Its engine is served by no capture source: only its own capture can fail.
            machine('legacy-01', [], 'gone'),
            machine('app-01', [
              'resource:default/db-01',
              'component:default/ledger',
            ]),
            { ...componentEntity('ledger', ['resource:default/legacy-01']) },
          ],
        }),
      ],
    });
    const report = await captureMachines(
      tasks(),
      [
        'resource:default/app-01',
        'resource:default/db-01',
        'resource:default/legacy-01',
      ],
      mockServices.logger.mock(),
    );
    expect(report.succeeded).toEqual([
      'resource:default/app-01',
      'resource:default/db-01',
    ]);
    expect(report.failed.map(f => f.entityRef)).toEqual([
      'resource:default/legacy-01',
    ]);
    expect(source.captured).toEqual(['app-01', 'db-01']);
  });
});
