import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { Knex } from 'knex';
import request from 'supertest';
import { CaptureStore } from '../database/CaptureStore';
import { recoveryPlugin } from '../plugin';
import { recordingAuditor } from '../testing/auditor';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';

/*
 * POST /runs/{id}/cancel through the plugin's real router, on each database: an engineer stops a
 * hopeless test recovery that holds the hypervisor host. Audited as run-cancel.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const SHOP = 'component:default/shop';
const entities = [
  componentEntity('shop', ['resource:default/shop-01']),
  {
    ...machineEntity('shop-01'),
    relations: [{ type: 'dependencyOf', targetRef: SHOP }],
  },
];

/** `viewer` may read but start (and so cancel) no run; every other user may do all. */
const VIEWER = mockCredentials.user.header('user:default/viewer');
const DR = mockCredentials.user.header('user:default/dr');
const permissions = mockServices.permissions.mock({
  authorize: async (requests, { credentials }) =>
    requests.map(() => ({
      result:
        (credentials.principal as { userEntityRef?: string }).userEntityRef ===
        'user:default/viewer'
          ? AuthorizeResult.DENY
          : AuthorizeResult.ALLOW,
    })),
});

const auditor = recordingAuditor();
const recorded = auditor.events;

describe.each(databases.eachSupportedId())(
  'POST /runs/{id}/cancel on %p',
  databaseId => {
    let knex: Knex;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    // The engine never says how the shop's machine is: a test run holds the host until cancelled.
    const host = new FakeHost({});
    host.inspectMachine = () => new Promise<never>(() => {});

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({ hypervisorHosts: [host] }),
          catalogServiceMock.factory({ entities }),
          permissions.factory,
          mockServices.auditor.mock({ createEvent: auditor.createEvent })
            .factory,
          mockServices.database.factory({ knex }),
          mockServices.rootConfig.factory({
            data: { recovery: { runs: { machineReadyTimeout: '10m' } } },
          }),
        ],
      }));
      await new CaptureStore(knex).insertCapture(storedCapture('shop-01'));
    });

    const cancel = (id: string, as = DR) =>
      request(server)
        .post(`/api/recovery/runs/${id}/cancel`)
        .set('authorization', as);
    const runOf = async (id: string) =>
      (await request(server).get(`/api/recovery/runs/${id}`)).body;

    it('stops a running test recovery, as the caller with recovery.run.create on its entity: interrupted, its lab gone, audited', async () => {
      const started = await request(server)
        .post('/api/recovery/runs')
        .set('authorization', DR)
        .send({ entityRef: SHOP });
      expect(started.status).toBe(202);
      const id = started.body.id;
      await vi.waitFor(
        async () =>
          expect((await runOf(id)).machines[0].phase).toBe('verifying'),
        { timeout: 10_000, interval: 20 },
      );

      recorded.length = 0;
      const refused = await cancel(id, VIEWER);
      expect(refused.status).toBe(403);
      expect(refused.body.error.message).toBe(
        `Missing permission recovery.run.create on ${SHOP}`,
      );
      expect(recorded).toEqual([
        {
          eventId: 'run-cancel',
          severityLevel: 'medium',
          request: `POST /api/recovery/runs/${id}/cancel`,
          meta: { runId: id },
          ends: [
            {
              status: 'failed',
              error: `Missing permission recovery.run.create on ${SHOP}`,
            },
          ],
        },
      ]);

      recorded.length = 0;
      const answered = await cancel(id);
      expect(answered.status).toBe(202);
      expect(answered.body).toMatchObject({ id, mode: 'test' });
      expect(recorded).toEqual([
        {
          eventId: 'run-cancel',
          severityLevel: 'medium',
          request: `POST /api/recovery/runs/${id}/cancel`,
          meta: { runId: id },
          ends: [
            {
              status: 'succeeded',
              meta: { runId: id, entityRef: SHOP, hypervisorHost: 'fake' },
            },
          ],
        },
      ]);
      await vi.waitFor(
        async () => expect((await runOf(id)).status).toBe('interrupted'),
        { timeout: 10_000, interval: 20 },
      );
      const run = await runOf(id);
      expect(run.error).toEqual({
        message: expect.stringMatching(
          /^Interrupted: cancelled by user:default\/dr at \d{4}-\d\d-\d\dT/,
        ),
        cancelledBy: 'user:default/dr',
      });
      expect(run.steps.slice(-2)).toEqual([
        expect.objectContaining({ level: 'error', message: run.error.message }),
        expect.objectContaining({
          message: 'Lab torn down: removed 1 container and 1 network',
        }),
      ]);
      expect(await host.listLabResources(id)).toEqual({
        machines: [],
        networks: [],
      });

      // Finished: a 409 naming its status.
      const again = await cancel(id);
      expect(again.status).toBe(409);
      expect(again.body.error.message).toBe(
        `Run ${id} has already finished (interrupted): there is nothing to cancel`,
      );
      expect((await cancel('nope')).status).toBe(404);
    });
  },
);
