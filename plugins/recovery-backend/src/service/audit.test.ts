import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceMock } from '@backstage/plugin-catalog-node/testUtils';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import type { Knex } from 'knex';
import request from 'supertest';
import { recoveryPlugin } from '../plugin';
import { recordingAuditor } from '../testing/auditor';
import { componentEntity, machineEntity } from '../testing/entities';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';
import { captureAndPoll } from '../testing/captureRequests';
import { tasksModule } from '../testing/tasksModule';

/*
 * The audit trail of the API's mutating routes, through the plugin's real router with Backstage's
 * auditor service (mocked to record): who captured, ran, released and analysed what.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const SHOP = 'system:default/shop';
const DB = 'component:default/db';
const APP = 'component:default/app';
const DB_01 = 'resource:default/db-01';
const APP_01 = 'resource:default/app-01';

const machineOf = (name: string, service: string): Entity => ({
  ...machineEntity(name),
  relations: [{ type: 'dependencyOf', targetRef: service }],
});
const partOfShop = (entity: Entity): Entity => ({
  ...entity,
  spec: { ...entity.spec, system: 'shop' },
  relations: [...entity.relations!, { type: 'partOf', targetRef: SHOP }],
});
const entities: Entity[] = [
  partOfShop(componentEntity('db', [DB_01])),
  partOfShop(componentEntity('app', [APP_01])),
  machineOf('db-01', DB),
  machineOf('app-01', APP),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'shop', namespace: 'default' },
    spec: {},
    relations: [DB, APP].map(targetRef => ({ type: 'hasPart', targetRef })),
  },
];

/** app starts ten minutes after db in each boot. */
const BOOTS = [0, 1, 2]
  .flatMap(boot => {
    const at = Date.UTC(2024, 0, 1) + boot * 86_400_000;
    return [
      { time: at, machine: 'db-01', service: 'db' },
      { time: at + 600_000, machine: 'app-01', service: 'app' },
    ];
  })
  .map(e => JSON.stringify(e))
  .join('\n');

/** Granted nothing. */
const GUEST = mockCredentials.user.header('user:default/guest');
/** Granted recovery.analysis.create alone. */
const ANALYST = mockCredentials.user.header('user:default/analyst');
/** Granted everything but recovery.analysis.create. */
const CAPTURER = mockCredentials.user.header('user:default/capturer');

const permissions = mockServices.permissions.mock({
  authorize: async (requests, { credentials }) => {
    const user = (credentials.principal as { userEntityRef?: string })
      .userEntityRef;
    return requests.map(({ permission }) => {
      const granted =
        user === 'user:default/guest'
          ? false
          : user === 'user:default/analyst'
            ? permission.name === 'recovery.analysis.create'
            : user === 'user:default/capturer'
              ? permission.name !== 'recovery.analysis.create'
              : true;
      return {
        result: granted ? AuthorizeResult.ALLOW : AuthorizeResult.DENY,
      };
    });
  },
});

/** Each audit event as the plugin opened it, and how it ended. */
const auditor = recordingAuditor();
const recorded = auditor.events;

describe.each(databases.eachSupportedId())(
  'the audit trail of the API, on %p',
  databaseId => {
    let knex: Knex;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    /** The plugin's tasks API, as the scheduler module drives it. */
    const nightly = tasksModule();

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          nightly.module,
          providersModule({
            captureSources: [new FakeCaptureSource()],
            hypervisorHosts: [new FakeHost({})],
          }),
          catalogServiceMock.factory({ entities }),
          permissions.factory,
          mockServices.auditor.mock({ createEvent: auditor.createEvent })
            .factory,
          mockServices.database.factory({ knex }),
          mockServices.rootConfig.factory({
            data: { recovery: { runs: { minReadyTime: '100ms' } } },
          }),
        ],
      }));
    });

    beforeEach(() => {
      recorded.length = 0;
    });

    const post = (path: string, body?: object, as?: string) => {
      const req = request(server).post(`/api/recovery${path}`);
      if (as) req.set('authorization', as);
      return body === undefined ? req : req.send(body);
    };
    /** The one audit event the last request opened. */
    const only = () => {
      expect(recorded).toHaveLength(1);
      return recorded[0];
    };
    /** The machines a run boots, in its plan's order: the shop's two. */
    const booted = (run: {
      plan: { machines: Array<{ machineRef: string }> };
    }) => {
      const refs = run.plan.machines.map(m => m.machineRef);
      expect([...refs].sort()).toEqual([APP_01, DB_01]);
      return refs;
    };
    const finished = (id: string) =>
      vi.waitFor(
        async () => {
          const run = await request(server).get(`/api/recovery/runs/${id}`);
          expect(['succeeded', 'failed']).toContain(run.body.status);
        },
        { timeout: 20_000, interval: 50 },
      );

    it("records a capture (it pauses production machines), naming the entity and the captures of its machines; a refusal as the capture's failure", async () => {
      const captured = await captureAndPoll(server, { entityRef: SHOP });
      expect(captured.status).toBe('succeeded');
      const items = captured.captures;
      expect(items.map(c => c.machineRef).sort()).toEqual([APP_01, DB_01]);
      expect(only()).toEqual({
        eventId: 'capture-create',
        severityLevel: 'medium',
        meta: { entityRef: SHOP },
        request: 'POST /api/recovery/captures',
        ends: [
          {
            status: 'succeeded',
            meta: {
              entityRef: SHOP,
              requestId: captured.requestId,
              captures: items.map(c => ({
                captureId: c.id,
                machineRef: c.machineRef,
              })),
            },
          },
        ],
      });

      recorded.length = 0;
      const refused = await post(
        '/captures',
        { entityRef: APP, machineRef: APP_01 },
        GUEST,
      );
      expect(refused.status).toBe(403);
      expect(only()).toEqual({
        eventId: 'capture-create',
        severityLevel: 'medium',
        meta: { entityRef: APP, machineRef: APP_01 },
        request: 'POST /api/recovery/captures',
        ends: [
          {
            status: 'failed',
            error: `Missing permission recovery.capture.create on ${APP}`,
          },
        ],
      });
    });

    it('records a test run as medium and a failover and its release as high, naming the run and the machines it boots or removes', async () => {
      expect((await captureAndPoll(server, { entityRef: SHOP })).status).toBe(
        'succeeded',
      );

      recorded.length = 0;
      const test = await post('/runs', { entityRef: SHOP });
      expect(test.status).toBe(202);
      expect(only()).toEqual({
        eventId: 'run-start',
        severityLevel: 'medium',
        meta: { entityRef: SHOP, mode: 'test' },
        request: 'POST /api/recovery/runs',
        ends: [
          {
            status: 'succeeded',
            meta: {
              runId: test.body.id,
              entityRef: SHOP,
              mode: 'test',
              hypervisorHost: test.body.hypervisorHost,
              machineRefs: booted(test.body),
            },
          },
        ],
      });
      await finished(test.body.id);

      recorded.length = 0;
      const refused = await post(
        '/runs',
        { entityRef: SHOP, mode: 'failover' },
        GUEST,
      );
      expect(refused.status).toBe(403);
      expect(only()).toMatchObject({
        eventId: 'run-start',
        severityLevel: 'high',
        meta: { entityRef: SHOP, mode: 'failover' },
        ends: [
          {
            status: 'failed',
            error: expect.stringContaining('Missing permission recovery.run'),
          },
        ],
      });

      recorded.length = 0;
      const failover = await post('/runs', {
        entityRef: SHOP,
        mode: 'failover',
      });
      expect(failover.status).toBe(202);
      expect(only()).toEqual({
        eventId: 'run-start',
        severityLevel: 'high',
        meta: { entityRef: SHOP, mode: 'failover' },
        request: 'POST /api/recovery/runs',
        ends: [
          {
            status: 'succeeded',
            meta: {
              runId: failover.body.id,
              entityRef: SHOP,
              mode: 'failover',
              hypervisorHost: failover.body.hypervisorHost,
              machineRefs: booted(failover.body),
            },
          },
        ],
      });
      await finished(failover.body.id);

      recorded.length = 0;
      const released = await post(`/runs/${failover.body.id}/release`);
      expect(released.status).toBe(200);
      expect(only()).toEqual({
        eventId: 'run-release',
        severityLevel: 'high',
        meta: { runId: failover.body.id },
        request: `POST /api/recovery/runs/${failover.body.id}/release`,
        ends: [
          {
            status: 'succeeded',
            meta: {
              runId: failover.body.id,
              entityRef: SHOP,
              hypervisorHost: failover.body.hypervisorHost,
              machineRefs: booted(failover.body),
            },
          },
        ],
      });

      recorded.length = 0;
      expect((await post('/runs/nope/release')).status).toBe(404);
      expect(only()).toMatchObject({
        eventId: 'run-release',
        severityLevel: 'high',
        meta: { runId: 'nope' },
        ends: [{ status: 'failed', error: 'Run nope not found' }],
      });
    });

    it('records a request whose body is refused (malformed, not JSON, too large) as its failure', async () => {
      const malformed = await request(server)
        .post('/api/recovery/runs')
        .set('content-type', 'application/json')
        .send('{"entityRef": "system:default/shop", "mode": ');
      expect(malformed.status).toBe(400);
      expect(only()).toEqual({
        eventId: 'run-start',
        severityLevel: 'medium',
        meta: { mode: 'test' },
        request: 'POST /api/recovery/runs',
        ends: [
          {
            status: 'failed',
            error: expect.stringMatching(
              /^Request body must be a JSON object: /,
            ),
          },
        ],
      });

      recorded.length = 0;
      const notJson = await request(server)
        .post('/api/recovery/analysis')
        .set('content-type', 'text/plain')
        .send('system:default/shop');
      expect(notJson.status).toBe(415);
      expect(only()).toMatchObject({
        eventId: 'analysis-create',
        ends: [
          {
            status: 'failed',
            error:
              'Request body must be JSON (Content-Type: application/json), got text/plain',
          },
        ],
      });

      recorded.length = 0;
      const large = await post('/captures', {
        entityRef: SHOP,
        padding: 'x'.repeat(1024 * 1024),
      });
      expect(large.status).toBe(413);
      expect(only()).toMatchObject({
        eventId: 'capture-create',
        ends: [{ status: 'failed', error: expect.stringMatching(/too large/) }],
      });
      expect(recorded[0].meta).toEqual({});

      recorded.length = 0;
      const release = await request(server)
        .post('/api/recovery/runs/some-run/release')
        .set('content-type', 'application/json')
        .send('[');
      expect(release.status).toBe(400);
      expect(only()).toMatchObject({
        eventId: 'run-release',
        meta: { runId: 'some-run' },
        ends: [{ status: 'failed' }],
      });
    });

    it('records a release or cancel refused for the run its path names (unknown, or of the other mode) as its failure', async () => {
      /** The one event the last request opened: refused with `status`, saying `error`. */
      const refusedAs = async (
        path: string,
        status: number,
        eventId: string,
        runId: string,
        error: string,
      ) => {
        recorded.length = 0;
        const res = await post(path);
        expect({ path, status: res.status }).toEqual({ path, status });
        expect(res.body.error.message).toBe(error);
        expect(only()).toEqual({
          eventId,
          severityLevel: eventId === 'run-release' ? 'high' : 'medium',
          meta: { runId },
          request: `POST /api/recovery${path}`,
          ends: [{ status: 'failed', error }],
        });
      };
      for (const [action, eventId] of [
        ['release', 'run-release'],
        ['cancel', 'run-cancel'],
      ]) {
        await refusedAs(
          `/runs/nope/${action}`,
          404,
          eventId,
          'nope',
          'Run nope not found',
        );
      }

      expect((await captureAndPoll(server, { entityRef: SHOP })).status).toBe(
        'succeeded',
      );
      const test = await post('/runs', { entityRef: SHOP });
      expect(test.status).toBe(202);
      await finished(test.body.id);
      const failover = await post('/runs', {
        entityRef: SHOP,
        mode: 'failover',
      });
      expect(failover.status).toBe(202);
      await finished(failover.body.id);
      await refusedAs(
        `/runs/${failover.body.id}/cancel`,
        409,
        'run-cancel',
        failover.body.id,
        `Run ${failover.body.id} is a failover: its machines stand in for production, so it cannot be cancelled. ` +
          `Once it has finished and production is back, release it (POST /runs/${failover.body.id}/release)`,
      );
      recorded.length = 0;
      const testReleased = await post(`/runs/${test.body.id}/release`);
      expect(testReleased.status).toBe(409);
      expect(only()).toMatchObject({
        eventId: 'run-release',
        meta: { runId: test.body.id },
        ends: [{ status: 'failed', error: testReleased.body.error.message }],
      });
      expect((await post(`/runs/${failover.body.id}/release`)).status).toBe(
        200,
      );
    });

    it('records pushed events as low, and an analysis, of one system or the sweep, as medium', async () => {
      const pushed = await request(server)
        .post('/api/recovery/events?format=jsonl&source=boots.jsonl')
        .set('content-type', 'application/x-ndjson')
        .send(BOOTS);
      expect(pushed.status).toBe(201);
      expect(only()).toEqual({
        eventId: 'events-push',
        severityLevel: 'low',
        meta: { source: 'boots.jsonl', format: 'jsonl' },
        request: 'POST /api/recovery/events?format=jsonl&source=boots.jsonl',
        ends: [
          {
            status: 'succeeded',
            meta: {
              source: 'boots.jsonl',
              format: 'jsonl',
              received: 6,
              stored: pushed.body.stored,
            },
          },
        ],
      });

      recorded.length = 0;
      const analysed = await post('/analysis', { entityRef: SHOP });
      expect(analysed.status).toBe(201);
      expect(only()).toEqual({
        eventId: 'analysis-create',
        severityLevel: 'medium',
        meta: { entityRef: SHOP },
        request: 'POST /api/recovery/analysis',
        ends: [
          {
            status: 'succeeded',
            meta: { entityRef: SHOP, analysisId: analysed.body.id },
          },
        ],
      });

      recorded.length = 0;
      expect((await post('/analysis', {})).status).toBe(201);
      expect(only()).toMatchObject({
        eventId: 'analysis-create',
        severityLevel: 'medium',
        ends: [
          {
            status: 'succeeded',
            meta: { sweep: true, analysed: [SHOP], skipped: [], failed: [] },
          },
        ],
      });

      recorded.length = 0;
      expect((await post('/events', undefined, GUEST)).status).toBe(403);
      expect(only()).toMatchObject({
        eventId: 'events-push',
        severityLevel: 'low',
        ends: [
          {
            status: 'failed',
            error: 'Missing permission recovery.events.create',
          },
        ],
      });
    });

    it('records a night of the nightly check, recorded in-process as the plugin itself', async () => {
      const checkedAt = new Date().toISOString();
      await nightly.tasks().recordNightlyCheck({
        checkedAt,
        outcomes: [],
        partial: true,
        entities: 2,
      });
      expect(only()).toEqual({
        eventId: 'nightly-check-record',
        severityLevel: 'medium',
        request: undefined,
        ends: [
          {
            status: 'succeeded',
            meta: { checkedAt, partial: true, outcomes: 0 },
          },
        ],
      });

      // A night older than the one recorded: its refusal on record.
      recorded.length = 0;
      await expect(
        nightly.tasks().recordNightlyCheck({
          checkedAt: '2020-01-01T00:00:00.000Z',
          outcomes: [],
        }),
      ).rejects.toMatchObject({ statusCode: 409 });
      expect(only()).toMatchObject({
        eventId: 'nightly-check-record',
        ends: [
          {
            status: 'failed',
            error: expect.stringContaining(
              'is recorded: that of 2020-01-01T00:00:00.000Z, older, is not',
            ),
          },
        ],
      });
    });

    it('gates an analysis by recovery.analysis.create, on the system, not by recovery.capture.create', async () => {
      // Boots to analyse, whatever ran before.
      await request(server)
        .post('/api/recovery/events?format=jsonl')
        .set('content-type', 'application/x-ndjson')
        .send(BOOTS);
      const analyst = await post('/analysis', { entityRef: SHOP }, ANALYST);
      expect(analyst.status).toBe(201);
      const capturer = await post('/analysis', { entityRef: SHOP }, CAPTURER);
      expect(capturer.status).toBe(403);
      expect(capturer.body.error.message).toBe(
        `Missing permission recovery.analysis.create on ${SHOP}`,
      );
      // The sweep analyses only the systems the caller has it on.
      const sweptByCapturer = await post('/analysis', {}, CAPTURER);
      expect(sweptByCapturer.body).toMatchObject({ analysed: [], hidden: 0 });
      const sweptByAnalyst = await post('/analysis', {}, ANALYST);
      expect(sweptByAnalyst.body).toMatchObject({
        analysed: [SHOP],
        hidden: 0,
      });
      // And capturing needs recovery.capture.create still.
      expect(
        (await post('/captures', { entityRef: APP }, ANALYST)).status,
      ).toBe(403);
    });
  },
);
