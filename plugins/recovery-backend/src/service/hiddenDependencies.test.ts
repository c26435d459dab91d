import {
  coreServices,
  createBackendModule,
  createServiceFactory,
  type BackstageCredentials,
  type PermissionsService,
} from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import catalogPlugin from '@backstage/plugin-catalog-backend';
import {
  catalogConditions,
  createCatalogConditionalDecision,
} from '@backstage/plugin-catalog-backend/alpha';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import {
  AuthorizeResult,
  isResourcePermission,
} from '@backstage/plugin-permission-common';
import type { Knex } from 'knex';
import request from 'supertest';
import { CaptureStore } from '../database/CaptureStore';
import { RunStore } from '../database/RunStore';
import { recoveryPlugin } from '../plugin';
import { storedCapture } from '../testing/entities';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';

/*
 * A plan, readiness and a run's refusal where the entity's plan holds a dependency the catalog
 * does not show the caller, a dependency with problems of its own: the real catalog backend decides
 * what each caller sees (its read permission, conditional on a label, as a policy would answer it),
 * the recovery plugin reads the catalog as itself. The caller is told that something they cannot
 * see stands in the way, counted, never what; one who sees everything gets the whole answer.
 */

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const P = 'recovery.backstage-recovery.io/';
const SECRET = 'example.com/secret';
const LOCATION = {
  'backstage.io/managed-by-location':
    'url:https://example.com/catalog-info.yaml',
  'backstage.io/managed-by-origin-location':
    'url:https://example.com/catalog-info.yaml',
};

const SHOP = 'component:default/shop';
const SHOP_01 = 'resource:default/shop-01';
const VAULT = 'component:default/vault';
const VAULT_01 = 'resource:default/vault-01';

/**
 * shop runs on shop-01 and dependsOn vault, which runs on vault-01: vault and vault-01 are
 * labelled secret (shown to the admin alone). vault-01 says its container, not its engine: it
 * cannot be captured, and never was.
 */
const ENTITIES: Entity[] = [
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'shop', annotations: LOCATION },
    spec: {
      type: 'service',
      lifecycle: 'production',
      owner: 'team-shop',
      dependsOn: [SHOP_01, VAULT],
    },
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name: 'shop-01',
      annotations: {
        ...LOCATION,
        [`${P}engine`]: 'primary',
        [`${P}container`]: 'shop-01',
      },
    },
    spec: { type: 'machine', owner: 'team-shop' },
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: {
      name: 'vault',
      annotations: LOCATION,
      labels: { [SECRET]: 'true' },
    },
    spec: {
      type: 'service',
      lifecycle: 'production',
      owner: 'team-vault',
      dependsOn: [VAULT_01],
    },
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name: 'vault-01',
      annotations: { ...LOCATION, [`${P}container`]: 'vault-box' },
      labels: { [SECRET]: 'true' },
    },
    spec: { type: 'machine', owner: 'team-vault' },
  },
];

const ADMIN = 'user:default/admin';

/**
 * The permission service as a policy answers it: the catalog's read of a secret entity only to the
 * admin (a condition the catalog applies to each entity); everything else allowed, and services
 * (the recovery plugin reading the catalog as itself) see every entity.
 */
const permissions: PermissionsService = {
  authorize: async requests =>
    requests.map(() => ({ result: AuthorizeResult.ALLOW })),
  authorizeConditional: async (queries, options) =>
    queries.map(({ permission }) => {
      const principal = (options.credentials as BackstageCredentials)
        .principal as { type: string; userEntityRef?: string };
      return principal.type === 'user' &&
        principal.userEntityRef !== ADMIN &&
        permission.name === 'catalog.entity.read' &&
        isResourcePermission(permission, 'catalog-entity')
        ? createCatalogConditionalDecision(permission, {
            not: catalogConditions.hasLabel({ label: SECRET }),
          })
        : { result: AuthorizeResult.ALLOW };
    }),
};

const entitiesModule = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'test-entities',
  register(reg) {
    reg.registerInit({
      deps: { catalog: catalogProcessingExtensionPoint },
      async init({ catalog }) {
        catalog.addEntityProvider({
          getProviderName: () => 'test-entities',
          connect: connection =>
            connection.applyMutation({
              type: 'full',
              entities: ENTITIES.map(entity => ({
                entity,
                locationKey: 'test-entities',
              })),
            }),
        });
      },
    });
  },
});

/** What names the hidden dependency: its refs, its machine's name, its container. */
const NAMES_VAULT = /vault/;

/** The missing-annotation problem of vault-01, as the plan says it. */
const noEngine = `Machine ${VAULT_01} has no ${P}engine annotation: set it to the id of the primary engine that runs it`;
const COUNTED =
  '1 entity the catalog does not show you has problems in the way of this recovery (what they are is left out)';

describe.each(databases.eachSupportedId())(
  'what a plan, readiness and a refused run say of a dependency the caller cannot see, on %p',
  databaseId => {
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    let runStore: RunStore;
    const asAdmin = mockCredentials.user.header(ADMIN);

    beforeAll(async () => {
      const [catalogKnex, recoveryKnex]: Knex[] = [
        await databases.init(databaseId),
        await databases.init(databaseId),
      ];
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({
            hypervisorHosts: [new FakeHost({})],
            captureSources: [new FakeCaptureSource()],
          }),
          catalogPlugin,
          entitiesModule,
          createServiceFactory({
            service: coreServices.permissions,
            deps: {},
            factory: () => permissions,
          }),
          // Each plugin its own database, as Backstage gives them.
          createServiceFactory({
            service: coreServices.database,
            deps: { plugin: coreServices.pluginMetadata },
            factory: ({ plugin }) => ({
              getClient: async () =>
                plugin.getId() === 'catalog' ? catalogKnex : recoveryKnex,
            }),
          }),
          mockServices.rootConfig.factory({
            data: { app: { baseUrl: 'http://localhost:3000' } },
          }),
        ],
      }));
      // The catalog processes its provider's entities in the background: wait for the relations.
      await vi.waitFor(
        async () => {
          const vault = await request(server)
            .get('/api/catalog/entities/by-name/resource/default/vault-01')
            .set('authorization', asAdmin);
          const shop = await request(server)
            .get('/api/catalog/entities/by-name/component/default/shop')
            .set('authorization', asAdmin);
          const related = (body: Entity, type: string, targetRef: string) =>
            body.relations?.some(
              r => r.type === type && r.targetRef === targetRef,
            );
          if (
            !related(vault.body, 'dependencyOf', VAULT) ||
            !related(shop.body, 'dependsOn', VAULT) ||
            !related(shop.body, 'dependsOn', SHOP_01)
          )
            throw new Error('The catalog has not related the entities yet');
        },
        { timeout: 60_000, interval: 200 },
      );
      await new CaptureStore(recoveryKnex).insertCapture(
        storedCapture('shop-01'),
      );
      runStore = new RunStore(recoveryKnex);
    }, 120_000);

    it('hides the dependency from the user (the catalog itself), and shows it to the admin', async () => {
      const hidden = await request(server).get(
        '/api/catalog/entities/by-name/resource/default/vault-01',
      );
      expect(hidden.status).toBe(404);
      const shown = await request(server)
        .get('/api/catalog/entities/by-name/resource/default/vault-01')
        .set('authorization', asAdmin);
      expect(shown.status).toBe(200);
    });

    it("counts the hidden dependency's problems in the plan, naming none of it", async () => {
      const res = await request(server).get(
        '/api/recovery/plan/component/default/shop',
      );
      expect(res.status).toBe(200);
      expect(res.body.problems).toEqual([
        { entityRef: SHOP, message: COUNTED },
      ]);
      expect(JSON.stringify(res.body.problems)).not.toMatch(NAMES_VAULT);
    });

    it('says readiness is not recoverable as before, counting what of the hidden dependency stands in the way', async () => {
      const res = await request(server).get(
        '/api/recovery/readiness/component/default/shop',
      );
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('not-recoverable');
      // Both its problem and its never having been captured: one entity, said once.
      expect(res.body.reasons).toEqual([COUNTED, 'Never test-recovered']);
      expect(res.body.problems).toEqual([
        { entityRef: SHOP, message: COUNTED },
      ]);
    });

    it('counts the same in the overview, which lists only what the user sees', async () => {
      const res = await request(server).get('/api/recovery/readiness');
      expect(res.status).toBe(200);
      expect(
        res.body.items.map((i: { entityRef: string }) => i.entityRef),
      ).toEqual([SHOP]);
      expect(res.body.items[0]).toMatchObject({
        status: 'not-recoverable',
        reasons: [COUNTED, 'Never test-recovered'],
        problems: [{ entityRef: SHOP, message: COUNTED }],
      });
    });

    it('refuses the run with the same 409, counting the machine never captured that the user cannot see', async () => {
      const res = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: SHOP, mode: 'test' });
      expect(res.status).toBe(409);
      expect(res.body.error).toEqual({
        name: 'MachinesNotCapturedError',
        message:
          'No capture of 1 entity the catalog does not show you yet: capture first (POST /captures)',
        statusCode: 409,
        neverCaptured: [],
      });
      expect(JSON.stringify(res.body.error)).not.toMatch(NAMES_VAULT);
      expect(await runStore.listRuns({ entityRef: SHOP })).toEqual([]);
    });

    it('tells the admin, who sees everything, all of it, as before', async () => {
      const plan = await request(server)
        .get('/api/recovery/plan/component/default/shop')
        .set('authorization', asAdmin);
      expect(plan.status).toBe(200);
      expect(plan.body.problems).toEqual([
        { entityRef: VAULT_01, annotation: `${P}engine`, message: noEngine },
      ]);

      const readiness = await request(server)
        .get('/api/recovery/readiness/component/default/shop')
        .set('authorization', asAdmin);
      expect(readiness.body.status).toBe('not-recoverable');
      expect(readiness.body.reasons).toEqual([
        noEngine,
        `${VAULT_01} has never been captured`,
        'Never test-recovered',
      ]);
      expect(readiness.body.problems).toEqual(plan.body.problems);

      const overview = await request(server)
        .get('/api/recovery/readiness')
        .set('authorization', asAdmin);
      const shop = overview.body.items.find(
        (i: { entityRef: string }) => i.entityRef === SHOP,
      );
      expect(shop.reasons).toEqual(readiness.body.reasons);
      expect(shop.problems).toEqual(plan.body.problems);

      const run = await request(server)
        .post('/api/recovery/runs')
        .set('authorization', asAdmin)
        .send({ entityRef: SHOP, mode: 'test' });
      expect(run.status).toBe(409);
      expect(run.body.error).toEqual({
        name: 'MachinesNotCapturedError',
        message: `No capture of ${VAULT_01} yet: capture first (POST /captures)`,
        statusCode: 409,
        neverCaptured: [VAULT_01],
      });
    });
  },
);
