import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { stringifyEntityRef } from '@backstage/catalog-model';
import {
  type CatalogService,
  catalogServiceRef,
} from '@backstage/plugin-catalog-node';
import { createServiceFactory } from '@backstage/backend-plugin-api';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { Knex } from 'knex';
import request from 'supertest';
import { CaptureStore } from '../database/CaptureStore';
import { RunStore } from '../database/RunStore';
import { recoveryPlugin } from '../plugin';
import { catalogHidingFromUsers } from '../testing/catalog';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';

/*
 * POST /runs/{id}/release through the plugin's real router, on each database: the way an engineer
 * ends a failover's tenure on the hypervisor host once production is back.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const SHOP = 'component:default/shop';
/** Hidden from users by the catalog. */
const SECRET = 'component:default/secret';
const machineOf = (name: string, service: string): Entity => ({
  ...machineEntity(name),
  relations: [{ type: 'dependencyOf', targetRef: service }],
});
/** With a uid: the catalog can drop it (removeEntityByUid), as when production's entities go. */
const removable = (entity: Entity): Entity => ({
  ...entity,
  metadata: { ...entity.metadata, uid: stringifyEntityRef(entity) },
});
/** Their failovers outlive them in the catalog: gone's machine stays; lost and its machine go; hush's machine is hidden from users. */
const GONE = 'component:default/gone';
const LOST = 'component:default/lost';
const HUSH = 'component:default/hush';
const entities = [
  componentEntity('shop', ['resource:default/shop-01']),
  machineOf('shop-01', SHOP),
  componentEntity('secret', ['resource:default/vault-01']),
  machineOf('vault-01', SECRET),
  ...[
    componentEntity('gone', ['resource:default/gone-01']),
    machineOf('gone-01', GONE),
  ],
  ...[
    componentEntity('lost', ['resource:default/lost-01']),
    machineOf('lost-01', LOST),
  ],
  ...[
    componentEntity('hush', ['resource:default/hush-01']),
    machineOf('hush-01', HUSH),
  ],
].map(removable);

/**
 * The DR engineer may fail over and release; `mock`, every other user, may run tests only;
 * `partial` may fail over and release all but the machines shop-01 and gone-01. `starter` may
 * start failovers, under a policy that denies every `delete` (as platform teams write them);
 * `releaser` may release them, not start one.
 */
const DR = mockCredentials.user.header('user:default/dr');
const PARTIAL = mockCredentials.user.header('user:default/partial');
const STARTER = mockCredentials.user.header('user:default/starter');
const RELEASER = mockCredentials.user.header('user:default/releaser');
const FAILOVER_PERMISSIONS = ['recovery.run.failover', 'recovery.run.release'];
const permissions = mockServices.permissions.mock({
  authorize: async (requests, { credentials }) =>
    requests.map(r => {
      const user = (credentials.principal as { userEntityRef?: string })
        .userEntityRef;
      const { name, attributes } = r.permission;
      let refused: boolean;
      if (user === 'user:default/starter')
        refused = attributes.action === 'delete';
      else if (user === 'user:default/releaser')
        refused = name === 'recovery.run.failover';
      else
        refused =
          FAILOVER_PERMISSIONS.includes(name) &&
          (user === 'user:default/mock' ||
            (user === 'user:default/partial' &&
              ['resource:default/shop-01', 'resource:default/gone-01'].includes(
                (r as { resourceRef?: string }).resourceRef!,
              )));
      return {
        result: refused ? AuthorizeResult.DENY : AuthorizeResult.ALLOW,
      };
    }),
});
const AS_PLUGIN = mockCredentials.service.header();

describe.each(databases.eachSupportedId())(
  'POST /runs/{id}/release on %p',
  databaseId => {
    let knex: Knex;
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let catalog: CatalogService;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    const host = new FakeHost({});
    const teardown = host.teardown.bind(host);

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      catalog = catalogHidingFromUsers(entities, [
        SECRET,
        'resource:default/hush-01',
      ]);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({ hypervisorHosts: [host] }),
          createServiceFactory({
            service: catalogServiceRef,
            deps: {},
            factory: () => catalog,
          }),
          permissions.factory,
          mockServices.database.factory({ knex }),
        ],
      }));
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      for (const machine of [
        'shop-01',
        'vault-01',
        'gone-01',
        'lost-01',
        'hush-01',
      ])
        await captureStore.insertCapture(storedCapture(machine));
    });

    afterEach(() => {
      host.teardown = teardown;
    });

    const release = (id: string, as = DR, body?: object) => {
      const req = request(server)
        .post(`/api/recovery/runs/${id}/release`)
        .set('authorization', as);
      return body ? req.send(body) : req;
    };
    /** Starts a run as `as` and waits for it to finish. */
    const finishedRun = async (
      entityRef: string,
      mode: 'test' | 'failover',
      as = DR,
    ): Promise<string> => {
      const started = await request(server)
        .post('/api/recovery/runs')
        .set('authorization', as)
        .send({ entityRef, mode });
      expect(started.status).toBe(202);
      await vi.waitFor(
        async () => {
          const run = await request(server)
            .get(`/api/recovery/runs/${started.body.id}`)
            .set('authorization', as);
          expect(['succeeded', 'failed']).toContain(run.body.status);
        },
        { timeout: 15_000, interval: 20 },
      );
      return started.body.id;
    };

    it('removes what a finished failover kept on its host and says who released it and what went; again, that nothing was left', async () => {
      const id = await finishedRun(SHOP, 'failover');
      expect(await host.listLabResources(id)).toEqual({
        machines: [`${id}/resource:default/shop-01`],
        networks: [`lab-${id}-prod`],
      });
      const released = await release(id);
      expect(released.status).toBe(200);
      expect(released.body).toMatchObject({
        id,
        mode: 'failover',
        status: 'succeeded',
      });
      expect(released.body.steps.at(-1)).toMatchObject({
        level: 'info',
        message: `Released by user:default/dr: removed 1 container (${id}/resource:default/shop-01) and 1 network (lab-${id}-prod) it kept on fake`,
      });
      expect(await host.listLabResources(id)).toEqual({
        machines: [],
        networks: [],
      });
      // As GET /runs/{id} reads it from now on.
      expect(
        (
          await request(server)
            .get(`/api/recovery/runs/${id}`)
            .set('authorization', DR)
        ).body.steps,
      ).toEqual(released.body.steps);

      const again = await release(id, DR, {});
      expect(again.status).toBe(200);
      expect(again.body.steps.at(-1).message).toBe(
        'Released by user:default/dr: nothing of it was left on fake',
      );
    });

    it('ends a degradation with the release: readiness names what was down no more', async () => {
      const id = await finishedRun(SHOP, 'failover');
      const supervision = {
        restarts: 1,
        lastRestartAt: '2026-03-01T10:00:00.000Z',
      };
      await runStore.setSupervision(id, {
        ...supervision,
        degraded: {
          since: '2026-03-01T10:00:00.000Z',
          machineRef: 'resource:default/shop-01',
          message: 'stopped with exit code 3',
        },
        retry: { nextAt: '2026-03-01T10:01:00.000Z', delaySeconds: 60 },
      });
      const readinessReasons = async () =>
        (
          await request(server)
            .get('/api/recovery/readiness/component/default/shop')
            .set('authorization', DR)
        ).body.reasons as string[];
      expect(await readinessReasons()).toContainEqual(
        expect.stringMatching(new RegExp(`^Failover ${id} runs degraded`)),
      );

      const released = await release(id);

      expect(released.status).toBe(200);
      expect(released.body.supervision).toEqual(supervision);
      expect(await readinessReasons()).not.toContainEqual(
        expect.stringMatching(/runs degraded/),
      );
    });

    it('refuses without recovery.run.release on the entity, a test recovery, an active failover, a run the caller may not see, and a body with a field', async () => {
      const failover = await finishedRun(SHOP, 'failover');
      const denied = await release(failover, mockCredentials.user.header());
      expect(denied.status).toBe(403);
      expect(denied.body.error.message).toBe(
        `Missing permission recovery.run.release on ${SHOP}`,
      );
      expect((await host.listLabResources(failover)).machines).toHaveLength(1);

      const test = await finishedRun(SHOP, 'test');
      const notFailover = await release(test);
      expect(notFailover.status).toBe(409);
      expect(notFailover.body.error.message).toBe(
        `Run ${test} is a test recovery, not a failover: only a failover's machines are kept on the host, and a test recovery's lab is torn down when it finishes`,
      );

      await runStore.insertRun(
        {
          id: 'booting',
          entityRef: SHOP,
          mode: 'failover',
          trigger: 'user',
          hypervisorHost: 'fake',
          plan: { entityRef: SHOP, waves: [], machines: [] } as any,
          options: {},
          machines: [],
        },
        new Date(),
      );
      try {
        const active = await release('booting');
        expect(active.status).toBe(409);
        expect(active.body.error.message).toBe(
          'Failover booting is still pending: release it once it has finished (its machines may be booting production now)',
        );
      } finally {
        await knex('recovery_runs').where({ id: 'booting' }).delete();
      }

      const unknown = await release('no-such-run');
      expect(unknown.status).toBe(404);
      expect(unknown.body.error.message).toBe('Run no-such-run not found');
      // A failover of what the catalog hides from users: as absent to them, whatever their grants.
      const hidden = await finishedRun(SECRET, 'failover', AS_PLUGIN);
      const unseen = await release(hidden);
      expect(unseen.status).toBe(404);
      expect(unseen.body.error.message).toBe(`Run ${hidden} not found`);
      expect((await host.listLabResources(hidden)).machines).toHaveLength(1);
      expect((await release(hidden, AS_PLUGIN)).status).toBe(200);

      const withField = await release(failover, DR, { force: true });
      expect(withField.status).toBe(400);
      expect(withField.body.error.message).toBe(
        'Request body: unknown "force"; it takes no fields',
      );
      expect((await release(failover)).status).toBe(200);
    });

    it('answers 503 naming the host where it cannot tear the failover down, recording nothing as released', async () => {
      const id = await finishedRun(SHOP, 'failover');
      const steps = (await runStore.getRun(id))!.steps.length;
      host.teardown = async () => {
        throw new Error('connect ECONNREFUSED /var/run/docker.sock');
      };
      const unreachable = await release(id);
      expect(unreachable.status).toBe(503);
      expect(unreachable.body.error.message).toBe(
        `Hypervisor host 'fake' could not tear down what failover ${id} kept there: connect ECONNREFUSED /var/run/docker.sock. The failover is not released: release it again once the host answers`,
      );
      expect((await runStore.getRun(id))!.steps).toHaveLength(steps);
      expect((await host.listLabResources(id)).machines).toHaveLength(1);
      host.teardown = teardown;
      expect((await release(id)).body.steps.at(-1).message).toMatch(
        /^Released by user:default\/dr: removed 1 container/,
      );
    });

    it('releases on recovery.run.release, a delete, whatever the grant to start failovers', async () => {
      // A policy that denies deletes lets its users start failovers, not remove what one keeps.
      const id = await finishedRun(SHOP, 'failover', STARTER);
      const refused = await release(id, STARTER);
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toBe(
        `Missing permission recovery.run.release on ${SHOP}`,
      );
      expect((await host.listLabResources(id)).machines).toHaveLength(1);

      // Granted releases alone: it may not start a failover, and may release one.
      const start = await request(server)
        .post('/api/recovery/runs')
        .set('authorization', RELEASER)
        .send({ entityRef: SHOP, mode: 'failover' });
      expect(start.status).toBe(403);
      expect(start.body.error.message).toBe(
        `Missing permission recovery.run.failover on ${SHOP}`,
      );
      const released = await release(id, RELEASER);
      expect(released.status).toBe(200);
      expect(released.body.steps.at(-1).message).toMatch(
        /^Released by user:default\/releaser: removed 1 container/,
      );
      expect((await host.listLabResources(id)).machines).toEqual([]);
    });

    /** Drops these entities from the catalog, as when production's are deleted after a site is lost. */
    const leaveCatalog = (...refs: string[]) =>
      Promise.all(
        refs.map(ref =>
          catalog.removeEntityByUid(ref, {
            credentials: mockCredentials.service(),
          }),
        ),
      );

    it('needs recovery.run.release on each machine the failover booted, not on its entity alone, naming the one missing', async () => {
      const id = await finishedRun(SHOP, 'failover');
      const refused = await release(id, PARTIAL);
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toBe(
        `Missing permission recovery.run.release on 1 entity that failover ${id} booted: resource:default/shop-01. ` +
          'Releasing it removes their live copies from production: it needs that permission on each of them still in the catalog',
      );
      expect((await host.listLabResources(id)).machines).toHaveLength(1);
      expect((await release(id)).status).toBe(200);
    });

    it('releases a failover whose entity has left the catalog on the machines it booted that the catalog still holds', async () => {
      const id = await finishedRun(GONE, 'failover');
      await leaveCatalog(GONE);
      // Its entity gone, the run is no one's to read; releasing it is decided on what it booted.
      expect(
        (
          await request(server)
            .get(`/api/recovery/runs/${id}`)
            .set('authorization', DR)
        ).status,
      ).toBe(404);
      const refused = await release(id, PARTIAL);
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toBe(
        `Missing permission recovery.run.release on 1 entity that failover ${id} booted: resource:default/gone-01. ` +
          'Releasing it removes their live copies from production: it needs that permission on each of them still in the catalog',
      );
      expect((await host.listLabResources(id)).machines).toHaveLength(1);
      const released = await release(id);
      expect(released.status).toBe(200);
      expect(released.body.steps.at(-1).message).toBe(
        `Released by user:default/dr: removed 1 container (${id}/resource:default/gone-01) and 1 network (lab-${id}-prod) it kept on fake`,
      );
      expect(await host.listLabResources(id)).toEqual({
        machines: [],
        networks: [],
      });
    });

    it('answers 404 for a failover whose entity left the catalog to a caller the catalog shows nothing it booted', async () => {
      const id = await finishedRun(HUSH, 'failover');
      await leaveCatalog(HUSH);
      const unseen = await release(id);
      expect(unseen.status).toBe(404);
      expect(unseen.body.error.message).toBe(`Run ${id} not found`);
      expect((await host.listLabResources(id)).machines).toHaveLength(1);
      expect((await release(id, AS_PLUGIN)).status).toBe(200);
    });

    it('refuses with a 403 naming the label to remove by hand a failover none of whose entities the catalog holds any more', async () => {
      const id = await finishedRun(LOST, 'failover');
      await leaveCatalog(LOST, 'resource:default/lost-01');
      for (const as of [DR, AS_PLUGIN]) {
        const refused = await release(id, as);
        expect(refused.status).toBe(403);
        expect(refused.body.error.message).toBe(
          `Run ${id} cannot be released through the API: neither its entity nor any machine or service it booted is in the catalog any more, ` +
            `so no one's recovery.run.release can be checked on them. Remove what it kept on hypervisor host 'fake' by hand: ` +
            `everything labelled recovery.backstage-recovery.io/run-id=${id}`,
        );
      }
      expect((await host.listLabResources(id)).machines).toHaveLength(1);
      await host.teardown(id);
    });
  },
);
