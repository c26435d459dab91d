import {
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { createServiceFactory } from '@backstage/backend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import request from 'supertest';
import { recoveryPlugin } from '../plugin';
import { componentEntity, machineEntity } from '../testing/entities';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';
import { captureAndPoll } from '../testing/captureRequests';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const SYS = 'system:default/walk-sys';
const WEB = 'component:default/walk-web';
const NOMACHINE = 'component:default/walk-nomachine';
/** Runs on web-01 and waits for walk-nomachine: its plan takes a service that runs nowhere. */
const FRONT = 'component:default/walk-front';
const WEB_01 = 'resource:default/web-01';
/** dependsOn walk-web alone, in a System of no machine of its own: its plan reaches web-01 only through walk-web. */
const CLIENT = 'component:default/walk-client';
const CLIENT_SYS = 'system:default/client-sys';
const UNCOVERED = `${NOMACHINE} runs on no machine Resource: no capture or run covers it; add dependsOn to the machine it runs on`;

const partOf = (entity: Entity, system: string): Entity => ({
  ...entity,
  spec: { ...entity.spec, system },
  relations: [...(entity.relations ?? []), { type: 'partOf', targetRef: SYS }],
});
/** As the catalog holds them: each relation with its reverse. */
const entities: Entity[] = [
  {
    ...machineEntity('web-01'),
    relations: [
      { type: 'dependencyOf', targetRef: WEB },
      { type: 'dependencyOf', targetRef: FRONT },
    ],
  },
  {
    ...partOf(componentEntity('walk-web', [WEB_01]), 'walk-sys'),
    relations: [
      { type: 'dependsOn', targetRef: WEB_01 },
      { type: 'partOf', targetRef: SYS },
      { type: 'dependencyOf', targetRef: CLIENT },
    ],
  },
  {
    ...componentEntity('walk-client', [WEB]),
    spec: { type: 'service', system: 'client-sys' },
    relations: [
      { type: 'dependsOn', targetRef: WEB },
      { type: 'partOf', targetRef: CLIENT_SYS },
    ],
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'client-sys', namespace: 'default' },
    spec: {},
    relations: [{ type: 'hasPart', targetRef: CLIENT }],
  },
  {
    ...partOf(componentEntity('walk-nomachine', []), 'walk-sys'),
    relations: [
      { type: 'partOf', targetRef: SYS },
      { type: 'dependencyOf', targetRef: FRONT },
    ],
  },
  componentEntity('walk-front', [WEB_01, NOMACHINE]),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'walk-sys', namespace: 'default' },
    spec: {},
    relations: [
      { type: 'hasPart', targetRef: WEB },
      { type: 'hasPart', targetRef: NOMACHINE },
    ],
  },
];

describe.each(databases.eachSupportedId())(
  'a service on no machine, on %s',
  databaseId => {
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];

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
            factory: () => catalogServiceMock({ entities }),
          }),
          mockServices.database.factory({ knex }),
          mockServices.rootConfig.factory({
            data: {
              recovery: {
                runs: {
                  machineReadyTimeout: '2s',
                  probeInterval: '1s',
                  minReadyTime: '100ms',
                },
              },
            },
          }),
        ],
      }));
    });

    const readinessOf = async (ref: string) =>
      (
        await request(server).get(
          `/api/recovery/readiness/${ref.replace(':', '/')}`,
        )
      ).body;
    const recover = async (entityRef: string) => {
      expect((await captureAndPoll(server, { entityRef })).status).toBe(
        'succeeded',
      );
      let run = (
        await request(server).post('/api/recovery/runs').send({ entityRef })
      ).body;
      for (
        let i = 0;
        i < 100 && (run.status === 'pending' || run.status === 'running');
        i++
      ) {
        await new Promise(r => setTimeout(r, 50));
        run = (await request(server).get(`/api/recovery/runs/${run.id}`)).body;
      }
      expect(run.status).toBe('succeeded');
    };

    it('keeps a system whose part runs on no machine from reading ready, naming that part; the overview lists the part itself', async () => {
      await recover(SYS);
      await recover(FRONT);

      // Its other part, on a machine the system's run recovered, is ready: only what takes the
      // uncovered service is at risk.
      expect(await readinessOf(WEB)).toMatchObject({
        status: 'ready',
        reasons: [],
      });
      expect(await readinessOf(SYS)).toMatchObject({
        status: 'at-risk',
        reasons: [UNCOVERED],
      });
      expect(await readinessOf(FRONT)).toMatchObject({
        status: 'at-risk',
        reasons: [UNCOVERED],
      });
      // Alone, it is covered by nothing: unknown, saying what to add.
      expect(await readinessOf(NOMACHINE)).toMatchObject({
        status: 'unknown',
        reasons: [UNCOVERED, 'Never test-recovered'],
      });

      const overview = await request(server).get('/api/recovery/readiness');
      expect(overview.status).toBe(200);
      expect(
        overview.body.items.map((r: any) => [r.entityRef, r.status, r.reasons]),
      ).toEqual([
        [FRONT, 'at-risk', [UNCOVERED]],
        [SYS, 'at-risk', [UNCOVERED]],
        [NOMACHINE, 'unknown', [UNCOVERED, 'Never test-recovered']],
        // Ready as walk-web is: their plan is its, which the system's run covered.
        [CLIENT_SYS, 'ready', []],
        [CLIENT, 'ready', []],
        [WEB, 'ready', []],
      ]);
    });

    it('lists a service whose plan reaches a machine only through another service, and its System, as each answers alone', async () => {
      const overview = await request(server).get('/api/recovery/readiness');
      expect(overview.status).toBe(200);
      for (const ref of [CLIENT, CLIENT_SYS]) {
        const alone = await readinessOf(ref);
        expect(alone.plan.waves.flat()).toEqual([WEB_01]);
        expect(
          overview.body.items.find((r: any) => r.entityRef === ref),
        ).toMatchObject({ status: alone.status, reasons: alone.reasons });
      }
    });
  },
);
