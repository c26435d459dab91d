import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import { createServiceFactory } from '@backstage/backend-plugin-api';
import { DEPENDENCY_CYCLE_ERROR_NAME } from '@backstage-recovery/plugin-recovery-common';
import type { Knex } from 'knex';
import { resolve } from 'node:path';
import request from 'supertest';
import { CaptureStore } from '../database/CaptureStore';
import { recoveryPlugin } from '../plugin';
import { catalogHidingFromUsers } from '../testing/catalog';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { ApiContract } from '../testing/apiContract';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';

/*
 * The DR walkthrough's catalog through the plugin's real router, on each database: dns (system
 * demo-site) and walk-writer (system walk-sys) depend on each other, and web on dns. One team's
 * cycle must not stop another's failover: refused as it stands, it goes ahead with acceptCycles,
 * its timeline naming the dependency it did not wait for.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const WEB = 'component:default/web';
const DNS = 'component:default/dns';
const WALK = 'component:default/walk-writer';
const inSystem = (entity: Entity, system: string): Entity => ({
  ...entity,
  spec: { ...entity.spec, system },
});
const machineOf = (name: string, service: string): Entity => ({
  ...machineEntity(name),
  relations: [{ type: 'dependencyOf', targetRef: service }],
});
const entities = [
  inSystem(
    componentEntity('web', ['resource:default/web-01', DNS]),
    'demo-site',
  ),
  inSystem(
    componentEntity('dns', ['resource:default/infra-01', WALK]),
    'demo-site',
  ),
  inSystem(
    componentEntity('walk-writer', ['resource:default/walk-01', DNS]),
    'walk-sys',
  ),
  machineOf('web-01', WEB),
  machineOf('infra-01', DNS),
  machineOf('walk-01', WALK),
];

/** walk-writer's machine first: it boots without waiting for dns. */
const WAVES = [
  ['resource:default/walk-01'],
  ['resource:default/infra-01'],
  ['resource:default/web-01'],
];
const USER = mockCredentials.user.header('user:default/dr');
const CYCLE = `Dependency cycle between services: ${DNS} -> ${WALK} -> ${DNS}: no boot order satisfies it; remove one of these dependsOn`;
const OVERRIDE = `A run can go ahead all the same, booting ${WALK} without waiting for ${DNS}: start it accepting cycles (acceptCycles: true; recovery run --accept-cycles; Run anyway in the portal)`;

describe.each(databases.eachSupportedId())(
  'a dependency cycle in the catalog on %p',
  databaseId => {
    let knex: Knex;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    const host = new FakeHost({});

    let contract: ApiContract;

    beforeAll(async () => {
      contract = await ApiContract.load(
        resolve(__dirname, '../schema/openapi.yaml'),
      );
      knex = await databases.init(databaseId);
      const catalog = catalogHidingFromUsers(entities, []);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({ hypervisorHosts: [host] }),
          createServiceFactory({
            service: catalogServiceRef,
            deps: {},
            factory: () => catalog,
          }),
          mockServices.permissions.factory(),
          mockServices.database.factory({ knex }),
        ],
      }));
      const captures = new CaptureStore(knex);
      for (const machine of ['web-01', 'infra-01', 'walk-01'])
        await captures.insertCapture(storedCapture(machine));
    });

    /** Starts a failover of web, the exchange checked against openapi.yaml. */
    const start = async (extra: object) => {
      const body = { entityRef: WEB, mode: 'failover', ...extra };
      const res = await request(server)
        .post('/api/recovery/runs')
        .set('authorization', USER)
        .send(body);
      contract.check(
        {
          method: 'post',
          url: '/runs',
          body,
          contentType: 'application/json',
        },
        res,
      );
      return res;
    };

    it('makes no plan, and readiness says the cycle and that a run can go ahead accepting it', async () => {
      const plan = await request(server)
        .get('/api/recovery/plan/component/default/web')
        .set('authorization', USER);
      contract.check(
        { method: 'get', url: '/plan/component/default/web' },
        plan,
      );
      // The catalog's state, not a bad request: refused as a start is, with the cycle's parts.
      expect(plan.status).toBe(409);
      expect(plan.body.error).toMatchObject({
        name: DEPENDENCY_CYCLE_ERROR_NAME,
        message: `${CYCLE}. ${OVERRIDE}`,
        cycle: CYCLE,
        wouldDrop: [{ from: WALK, waitsFor: DNS }],
      });

      const readiness = await request(server)
        .get('/api/recovery/readiness/component/default/web')
        .set('authorization', USER);
      expect(readiness.status).toBe(200);
      expect(readiness.body.status).toBe('not-recoverable');
      expect(readiness.body.reasons).toContain(`${CYCLE}. ${OVERRIDE}`);
      // No plan, but the one a run accepting the cycle would boot, for the portal to start from.
      expect(readiness.body.plan).toBeUndefined();
      expect(readiness.body.cyclePlan.waves).toEqual(WAVES);
      // Not the overview's: the nightly check plans nothing over a cycle.
      const overview = await request(server)
        .get('/api/recovery/readiness?include=plan')
        .set('authorization', USER);
      const web = overview.body.items.find(
        (i: { entityRef: string }) => i.entityRef === WEB,
      );
      expect(web.status).toBe('not-recoverable');
      expect(web).not.toHaveProperty('plan');
      expect(web).not.toHaveProperty('cyclePlan');
    });

    it('refuses a failover without acceptCycles, naming the cycle and how to go ahead', async () => {
      const refused = await start({});
      expect(refused.status).toBe(409);
      expect(refused.body.error).toMatchObject({
        name: DEPENDENCY_CYCLE_ERROR_NAME,
        message: `${CYCLE}. ${OVERRIDE}`,
        cycle: CYCLE,
        wouldDrop: [{ from: WALK, waitsFor: DNS }],
      });
      const bad = await start({ acceptCycles: 'yes' });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toBe(
        'acceptCycles must be a boolean, got "yes"',
      );
      const runs = await request(server)
        .get('/api/recovery/runs')
        .set('authorization', USER);
      expect(runs.body.items).toEqual([]);
    });

    it('fails over with acceptCycles, booting walk-writer without waiting for dns, and says so in its timeline', async () => {
      const started = await start({ acceptCycles: true });
      expect(started.status).toBe(202);
      expect(started.body.plan.waves).toEqual(WAVES);
      let run: { status: string; steps: Array<Record<string, unknown>> } = {
        status: 'pending',
        steps: [],
      };
      await vi.waitFor(
        async () => {
          run = (
            await request(server)
              .get(`/api/recovery/runs/${started.body.id}`)
              .set('authorization', USER)
          ).body;
          expect(['succeeded', 'failed']).toContain(run.status);
        },
        { timeout: 15_000, interval: 20 },
      );
      expect(run.status).toBe('succeeded');
      expect(run.steps).toContainEqual(
        expect.objectContaining({
          level: 'warning',
          message:
            `Catalog problem: Booted ${WALK} without waiting for ${DNS}: dependency cycle between services: ${DNS} -> ${WALK} -> ${DNS}; ` +
            `of its dependencies that cross systems, ${WALK} -> ${DNS} (system:default/walk-sys to system:default/demo-site) is the last by ref (started accepting cycles)`,
        }),
      );
    });
  },
);
