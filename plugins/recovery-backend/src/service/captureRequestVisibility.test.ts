import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import { createServiceFactory } from '@backstage/backend-plugin-api';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import {
  ANNOTATION_CONTAINER,
  ANNOTATION_ENGINE,
  CaptureFailedError,
  type CaptureRequestError,
  MACHINE_LABEL,
} from '@backstage-recovery/plugin-recovery-common';
import { answerOf } from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import request from 'supertest';
import { CaptureStore } from '../database/CaptureStore';
import { recoveryPlugin } from '../plugin';
import { catalogHidingFromUsers } from '../testing/catalog';
import { storedCapture } from '../testing/entities';
import { toApi } from './CaptureService';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const SHOP = 'component:default/shop';
const [WEB_01, APP_01, VAULT_01] = [
  'resource:default/web-01',
  'resource:default/app-01',
  'resource:default/vault-01',
];
const [LEDGER, LEDGER_01, VAULT_API, VAULT_TEAM] = [
  'component:default/ledger',
  'resource:default/ledger-01',
  'api:default/vault-api',
  'group:default/vault-team',
];

const machine = (name: string): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Resource',
  metadata: { name, namespace: 'default' },
  spec: { type: 'machine' },
  relations: [{ type: 'dependencyOf', targetRef: SHOP }],
});

/**
 * shop runs on three machines; users see shop, web-01 and app-01, not vault-01. ledger runs on
 * ledger-01, which dependsOn an API no Component provides and a Group: users see neither.
 */
const entities: Entity[] = [
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'shop', namespace: 'default' },
    spec: { type: 'service' },
    relations: [WEB_01, APP_01, VAULT_01].map(targetRef => ({
      type: 'dependsOn',
      targetRef,
    })),
  },
  machine('web-01'),
  machine('app-01'),
  machine('vault-01'),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'ledger', namespace: 'default' },
    spec: { type: 'service' },
    relations: [{ type: 'dependsOn', targetRef: LEDGER_01 }],
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: { name: 'ledger-01', namespace: 'default' },
    spec: { type: 'machine' },
    relations: [VAULT_API, VAULT_TEAM].map(targetRef => ({
      type: 'dependsOn',
      targetRef,
    })),
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'API',
    metadata: { name: 'vault-api', namespace: 'default' },
    spec: { type: 'openapi' },
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: { name: 'vault-team', namespace: 'default' },
    spec: { type: 'team', children: [] },
  },
];

/** Why a machine without the annotations saying where its running state lives is not mapped. */
const unmapped = (ref: string) =>
  `Machine ${ref} has no ${ANNOTATION_ENGINE} annotation: set it to the id of the primary engine that runs it; Machine ${ref} has no ${ANNOTATION_CONTAINER} annotation: set it to the container name on its engine`;

/** A failure as the request records it: Backstage's error handler's answer, as CaptureService keeps it. */
const recorded = (error: Error): CaptureRequestError => {
  const { statusCode, body } = answerOf(error, { hideInternal: true });
  return { statusCode, error: body.error };
};

describe.each(databases.eachSupportedId())(
  'GET /captures/requests/:id on %p',
  databaseId => {
    let knex: Knex;
    let store: CaptureStore;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      const catalog = catalogHidingFromUsers(entities, [
        VAULT_01,
        VAULT_API,
        VAULT_TEAM,
      ]);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          createServiceFactory({
            service: catalogServiceRef,
            deps: {},
            factory: () => catalog,
          }),
          mockServices.database.factory({ knex }),
        ],
      }));
      store = new CaptureStore(knex);
    });

    /** A request of shop, as another viewer of it (who sees vault-01) took it, ended with `failure`. */
    const requested = async (
      requestId: string,
      machineRefs: string[],
      end: { captured: string[]; failure?: CaptureRequestError },
      machineRef?: string,
    ) => {
      await store.requests.insert({
        requestId,
        entityRef: SHOP,
        ...(machineRef && { machineRef }),
        machineRefs,
        createdAt: new Date().toISOString(),
      });
      const captures = end.captured.map(ref =>
        toApi(storedCapture(ref.split('/')[1])),
      );
      await store.requests.finish(
        requestId,
        { captures, failure: end.failure },
        new Date(),
      );
    };

    it("leaves out the machines of the entity's request that the catalog hides from the caller, their captures and failures", async () => {
      const web = toApi(storedCapture('web-01'));
      const failure = recorded(
        new CaptureFailedError(
          `capture of ${SHOP}: 2 of 3 machines not captured: ${APP_01}: ServiceUnavailableError: engine primary out of reach; ${VAULT_01}: EngineError: no such container vault-01; captured, and kept: ${WEB_01}`,
          {
            failed: [
              {
                machineRef: APP_01,
                kind: 'unreachable',
                error: {
                  name: 'ServiceUnavailableError',
                  message: 'engine primary out of reach',
                },
              },
              {
                machineRef: VAULT_01,
                kind: 'failed',
                error: {
                  name: 'EngineError',
                  message: 'no such container vault-01',
                },
              },
            ],
            captures: [web],
          },
        ),
      );
      await requested('r-entity', [WEB_01, APP_01, VAULT_01], {
        captured: [WEB_01],
        failure,
      });

      const res = await request(server).get(
        '/api/recovery/captures/requests/r-entity',
      );
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain('vault-01');
      expect(res.body).toMatchObject({
        requestId: 'r-entity',
        entityRef: SHOP,
        machineRefs: [WEB_01, APP_01],
        status: 'failed',
        captures: [{ machineRef: WEB_01 }],
        statusCode: failure.statusCode,
        error: {
          name: 'CaptureFailedError',
          message: `capture of ${SHOP} failed: ${APP_01}: ServiceUnavailableError: engine primary out of reach; captured, and kept: ${WEB_01} (what it says of machines the catalog does not show you is left out)`,
          failed: [{ machineRef: APP_01, kind: 'unreachable' }],
          captures: [{ machineRef: WEB_01 }],
        },
      });
      expect(res.body.captures).toHaveLength(1);
      expect(res.body.error.failed).toHaveLength(1);
    });

    it('keeps a visible machine whose failure names a hidden one, without those words', async () => {
      // app-01 and vault-01 name one container: app-01 was refused while vault-01's capture held it.
      const failure = recorded(
        new CaptureFailedError(
          `capture of ${SHOP}: 1 of 2 machines not captured: ${APP_01}: ConflictError: capture of ${APP_01} refused: it is being captured since 2024-01-01T00:00:00.000Z (capture c1, as ${VAULT_01}: its container vault on engine primary)`,
          {
            failed: [
              {
                machineRef: APP_01,
                kind: 'busy',
                error: {
                  name: 'ConflictError',
                  message: `capture of ${APP_01} refused: it is being captured since 2024-01-01T00:00:00.000Z (capture c1, as ${VAULT_01}: its container vault on engine primary)`,
                },
              },
            ],
            captures: [],
          },
        ),
      );
      await requested('r-busy', [APP_01], { captured: [], failure }, APP_01);

      const res = await request(server).get(
        '/api/recovery/captures/requests/r-busy',
      );
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain('vault');
      expect(res.body).toMatchObject({
        machineRef: APP_01,
        machineRefs: [APP_01],
        status: 'failed',
        statusCode: 409,
        error: {
          failed: [
            {
              machineRef: APP_01,
              kind: 'busy',
              error: {
                name: 'ConflictError',
                message: `capture of ${APP_01} failed (what it says of machines the catalog does not show you is left out)`,
              },
            },
          ],
        },
      });
    });

    it('answers a request of one hidden machine by what it was, naming no machine', async () => {
      await requested(
        'r-vault',
        [VAULT_01],
        { captured: [VAULT_01] },
        VAULT_01,
      );
      const res = await request(server).get(
        '/api/recovery/captures/requests/r-vault',
      );
      expect(res.status).toBe(200);
      expect(JSON.stringify(res.body)).not.toContain('vault-01');
      expect(res.body).toMatchObject({
        requestId: 'r-vault',
        entityRef: SHOP,
        machineRefs: [],
        status: 'succeeded',
        captures: [],
      });
      expect(res.body).not.toHaveProperty('machineRef');
    });

    it("tells a failure naming a ref the catalog no longer holds (a machine's name before a rename)", async () => {
      // app-01 was web-old before a rename: its container still carries that label, which the
      // catalog holds no entity of, so it hides nothing from anyone.
      const message = `machine ${APP_01}: container "app" on engine primary is labelled ${MACHINE_LABEL}=resource:default/web-old.name_1, and this engine captures only containers labelled as their machine`;
      const failure = recorded(
        new CaptureFailedError(
          `capture of ${SHOP}: 1 of 1 machines not captured: ${APP_01}: NotAllowedError: ${message}`,
          {
            failed: [
              {
                machineRef: APP_01,
                kind: 'failed',
                error: { name: 'NotAllowedError', message },
              },
            ],
            captures: [],
          },
        ),
      );
      await requested('r-renamed', [APP_01], { captured: [], failure }, APP_01);
      const res = await request(server).get(
        '/api/recovery/captures/requests/r-renamed',
      );
      expect(res.status).toBe(200);
      expect(res.body.error.message).toContain(
        `${MACHINE_LABEL}=resource:default/web-old.name_1`,
      );
      expect(res.body.error.message).not.toContain('left out');
      expect(res.body.error.failed[0].error.message).toBe(message);
    });

    it("refuses a machineRef outside the entity's boot plan naming only the plan's machines the caller sees, counting the others", async () => {
      const res = await request(server)
        .post('/api/recovery/captures')
        .send({ entityRef: SHOP, machineRef: 'resource:default/other-01' });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).not.toContain('vault-01');
      expect(res.body.error.message).toBe(
        `machineRef: resource:default/other-01 is not a machine of ${SHOP}'s boot plan (${APP_01}, ${WEB_01}, 1 entity the catalog does not show you)`,
      );
    });

    it('refuses a capture of machines not mapped to a primary engine naming, with their problems, only those the caller sees, counting the others', async () => {
      // No machine of shop has the annotations saying where its running state lives.
      const res = await request(server)
        .post('/api/recovery/captures')
        .send({ entityRef: SHOP });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).not.toContain('vault-01');
      expect(res.body.error.message).toBe(
        `Cannot capture ${APP_01}, ${WEB_01}, 1 entity the catalog does not show you: ${unmapped(APP_01)}; ${unmapped(WEB_01)}`,
      );

      // A caller who sees every machine (a service) is told of each.
      const all = await request(server)
        .post('/api/recovery/captures')
        .set('Authorization', mockCredentials.service.header())
        .send({ entityRef: SHOP });
      expect(all.status).toBe(400);
      expect(all.body.error.message).toBe(
        `Cannot capture ${APP_01}, ${VAULT_01}, ${WEB_01}: ${unmapped(APP_01)}; ${unmapped(VAULT_01)}; ${unmapped(WEB_01)}`,
      );
    });

    it('refuses a capture of a machine not mapped to a primary engine telling why, not what it dependsOn that the caller does not see', async () => {
      // ledger-01's problems name what it dependsOn: no reason it is not mapped, and hidden here.
      const res = await request(server)
        .post('/api/recovery/captures')
        .send({ entityRef: LEDGER });
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).not.toContain('vault');
      expect(res.body.error.message).toBe(
        `Cannot capture ${LEDGER_01}: ${unmapped(LEDGER_01)}`,
      );
    });

    it('answers a request of machines the caller all sees as it is recorded', async () => {
      await requested('r-seen', [WEB_01, APP_01], {
        captured: [WEB_01, APP_01],
      });
      const res = await request(server).get(
        '/api/recovery/captures/requests/r-seen',
      );
      expect(res.status).toBe(200);
      expect(res.body).toEqual(
        JSON.parse(JSON.stringify(await store.requests.get('r-seen'))),
      );
    });
  },
);
