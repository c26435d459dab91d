import {
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { createServiceFactory } from '@backstage/backend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import {
  catalogServiceRef,
  type CatalogService,
} from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import request from 'supertest';
import { MACHINE_LABEL } from '@backstage-recovery/plugin-recovery-common';
import { recoveryPlugin } from '../plugin';
import { componentEntity, machineEntity } from '../testing/entities';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';
import { captureAndPoll } from '../testing/captureRequests';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const WEB = 'component:default/walk-web';
const OLD = 'resource:default/web-01';
const RENAMED = 'resource:default/web-01b';

/** walk-web on `machine`, a machine of container web-01 on the primary engine whatever its name. */
const site = (name: string): Entity[] => {
  const machine = machineEntity(name);
  return [
    {
      ...machine,
      metadata: {
        ...machine.metadata,
        annotations: {
          ...machine.metadata.annotations,
          'recovery.backstage-recovery.io/container': 'web-01',
        },
      },
      relations: [{ type: 'dependencyOf', targetRef: WEB }],
    },
    componentEntity('walk-web', [`resource:default/${name}`]),
  ];
};

describe.each(databases.eachSupportedId())(
  'a machine renamed in the catalog, on %s',
  databaseId => {
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    /** The catalog as it is now: renamed by replacing it. */
    let current = catalogServiceMock({ entities: site('web-01') });
    const catalog = new Proxy({} as CatalogService, {
      get: (_, key) => {
        const value = Reflect.get(current, key);
        return typeof value === 'function' ? value.bind(current) : value;
      },
    });

    beforeAll(async () => {
      const knex = await databases.init(databaseId);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({
            captureSources: [new FakeCaptureSource()],
            hypervisorHosts: [new FakeHost({})],
          }),
          createServiceFactory({
            service: catalogServiceRef,
            deps: {},
            factory: () => catalog,
          }),
          mockServices.database.factory({ knex }),
        ],
      }));
    });

    it('refuses a run naming the captures of its container kept under the name it had, and readiness names them too; none restored in their stead', async () => {
      const captured = await captureAndPoll(server, { entityRef: WEB });
      expect(captured.status).toBe('succeeded');
      const { createdAt } = captured.captures[0];
      current = catalogServiceMock({ entities: site('web-01b') });

      const kept = `captures of the same container (web-01) on engine primary are kept under ${OLD} (1 capture, newest ${createdAt}): rename ${RENAMED} back to ${OLD} in the catalog to restore them, or capture ${RENAMED}, its container labelled ${MACHINE_LABEL}=${RENAMED} first where its engine captures only containers labelled as their machine (requireMachineLabel, on by default)`;
      const refused = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: WEB });
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({
        name: 'MachinesNotCapturedError',
        message: `No capture of ${RENAMED} yet: capture first (POST /captures); ${kept}`,
        neverCaptured: [RENAMED],
        keptElsewhere: [
          {
            machineRef: RENAMED,
            keptUnder: OLD,
            engine: 'primary',
            container: 'web-01',
            captures: 1,
            newestCaptureAt: createdAt,
          },
        ],
      });
      // Refused: no run was admitted with the other machine's capture.
      expect(
        (await request(server).get(`/api/recovery/runs?entityRef=${WEB}`)).body
          .items,
      ).toEqual([]);

      for (const path of [
        'component/default/walk-web',
        'resource/default/web-01b',
      ]) {
        const readiness = (
          await request(server).get(`/api/recovery/readiness/${path}`)
        ).body;
        expect(readiness.status).toBe('not-recoverable');
        expect(readiness.reasons[0]).toBe(
          `${RENAMED} has never been captured; ${kept}`,
        );
      }
      const overview = (await request(server).get('/api/recovery/readiness'))
        .body;
      expect(
        overview.items.map((r: any) => [r.entityRef, r.reasons[0]]),
      ).toEqual([[WEB, `${RENAMED} has never been captured; ${kept}`]]);
    });
  },
);
