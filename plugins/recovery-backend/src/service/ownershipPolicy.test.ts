import {
  coreServices,
  createBackendModule,
  type DatabaseService,
} from '@backstage/backend-plugin-api';
import { authServiceFactory } from '@backstage/backend-defaults/auth';
import { httpAuthServiceFactory } from '@backstage/backend-defaults/httpAuth';
import { permissionsServiceFactory } from '@backstage/backend-defaults/permissions';
import { userInfoServiceFactory } from '@backstage/backend-defaults/userInfo';
import { mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import authPlugin from '@backstage/plugin-auth-backend';
import guestProvider from '@backstage/plugin-auth-backend-module-guest-provider';
import catalogPlugin from '@backstage/plugin-catalog-backend';
import {
  catalogConditions,
  createCatalogConditionalDecision,
} from '@backstage/plugin-catalog-backend/alpha';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import permissionPlugin from '@backstage/plugin-permission-backend';
import {
  AuthorizeResult,
  isResourcePermission,
  type PolicyDecision,
} from '@backstage/plugin-permission-common';
import type {
  PermissionPolicy,
  PolicyQuery,
  PolicyQueryUser,
} from '@backstage/plugin-permission-node';
import { policyExtensionPoint } from '@backstage/plugin-permission-node/alpha';
import request from 'supertest';
import { CaptureStore } from '../database/CaptureStore';
import { RunStore } from '../database/RunStore';
import { recoveryPlugin } from '../plugin';
import { storedCapture } from '../testing/entities';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';

/*
 * Recovery's permissions granted by ownership the way a Backstage installation grants them, with
 * no mock between the user and the decision: the user signs in through the auth backend (its guest provider, resolved
 * to the catalog's User entity and the groups it is a member of), the plugins check its token and
 * ask the real permission backend, which runs a policy module answering recovery's catalog-entity
 * permissions with catalogConditions.isEntityOwner; the real catalog backend resolves that
 * condition on each entity asked about (its `apply-conditions` endpoint) from the relations it
 * computed itself. (The other tests' policies are mocks that decide ownership themselves.)
 */

const P = 'recovery.backstage-recovery.io/';
/** Where the test's entity provider says its entities come from (the catalog wants both). */
const LOCATION = {
  'backstage.io/managed-by-location':
    'url:https://example.com/catalog-info.yaml',
  'backstage.io/managed-by-origin-location':
    'url:https://example.com/catalog-info.yaml',
};

/** A team's service on its machine, both owned by the team (spec as catalog-info.yaml has it). */
const teamService = (
  name: string,
  team: string,
  dependsOn: string[] = [],
): Entity[] => [
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: { name: team, annotations: LOCATION },
    spec: { type: 'team', children: [] },
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name, annotations: LOCATION },
    spec: {
      type: 'service',
      lifecycle: 'production',
      owner: team,
      dependsOn: [`resource:${name}-01`, ...dependsOn],
    },
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name: `${name}-01`,
      annotations: {
        ...LOCATION,
        [`${P}engine`]: 'primary',
        [`${P}container`]: `${name}-01`,
      },
    },
    spec: { type: 'machine', owner: team },
  },
];

const SHOP = 'component:default/shop';
const BILLING = 'component:default/billing';
const ENTITIES: Entity[] = [
  // The shop needs billing: its boot plan holds billing's machine, another team's.
  ...teamService('shop', 'team-shop', ['component:billing']),
  ...teamService('billing', 'team-billing'),
  // Of the shop's team: the auth backend puts the team in her identity (ownership refs).
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'User',
    metadata: { name: 'alice', annotations: LOCATION },
    spec: { memberOf: ['team-shop'] },
  },
];

/**
 * The policy a platform team writes (the README's): recovery's permissions on an entity to its
 * owners, as a condition the catalog applies; everything else allowed.
 */
class RecoveryOwnersPolicy implements PermissionPolicy {
  async handle(
    query: PolicyQuery,
    user?: PolicyQueryUser,
  ): Promise<PolicyDecision> {
    if (
      query.permission.name.startsWith('recovery.') &&
      isResourcePermission(query.permission, 'catalog-entity')
    ) {
      return createCatalogConditionalDecision(
        query.permission,
        catalogConditions.isEntityOwner({
          claims: user?.info.ownershipEntityRefs ?? [],
        }),
      );
    }
    return { result: AuthorizeResult.ALLOW };
  }
}

const policyModule = createBackendModule({
  pluginId: 'permission',
  moduleId: 'recovery-owners-policy',
  register(reg) {
    reg.registerInit({
      deps: { policy: policyExtensionPoint },
      async init({ policy }) {
        policy.setPolicy(new RecoveryOwnersPolicy());
      },
    });
  },
});

/** The teams' entities, given to the catalog as an entity provider does. */
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

/** The recovery plugin's own database, as its service gives it (to store captures in). */
let recoveryDatabase: DatabaseService | undefined;
const recoveryDatabaseModule = createBackendModule({
  pluginId: 'recovery',
  moduleId: 'test-database',
  register(reg) {
    reg.registerInit({
      deps: { database: coreServices.database },
      async init({ database }) {
        recoveryDatabase = database;
      },
    });
  },
});

describe('recovery permissions granted to entity owners by the real permission and catalog backends', () => {
  let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
  let runStore: RunStore;
  let captureStore: CaptureStore;
  const source = new FakeCaptureSource();

  /** Alice's Backstage token, as the auth backend issued it at sign-in. */
  let ALICE: string;

  beforeAll(async () => {
    ({ server } = await startTestBackend({
      features: [
        recoveryPlugin,
        recoveryDatabaseModule,
        providersModule({
          hypervisorHosts: [new FakeHost({})],
          captureSources: [source],
        }),
        catalogPlugin,
        entitiesModule,
        permissionPlugin,
        policyModule,
        authPlugin,
        guestProvider,
        // The real services in place of the test backend's mocks: tokens issued and checked as in
        // production, and permissions asked of the permission backend over HTTP (the mock's
        // default allows everything).
        authServiceFactory,
        httpAuthServiceFactory,
        userInfoServiceFactory,
        permissionsServiceFactory,
        mockServices.rootConfig.factory({
          data: {
            app: { baseUrl: 'http://localhost:3000' },
            auth: {
              providers: {
                guest: {
                  userEntityRef: 'user:default/alice',
                  dangerouslyAllowOutsideDevelopment: true,
                },
              },
            },
            permission: { enabled: true },
            backend: {
              database: { client: 'better-sqlite3', connection: ':memory:' },
            },
          },
        }),
      ],
    }));
    // The catalog processes what its provider gave it in the background: until it has, there is
    // no Alice to sign in as, nor the ownedBy relations the condition is applied on.
    ALICE = await vi.waitFor(
      async () => {
        const signIn = await request(server)
          .get('/api/auth/guest/refresh')
          .set('x-requested-with', 'XMLHttpRequest');
        const identity = signIn.body.backstageIdentity;
        if (
          !identity?.identity.ownershipEntityRefs.includes(
            'group:default/team-shop',
          )
        ) {
          throw new Error(
            `Alice is not signed in as of the shop's team yet: ${JSON.stringify(signIn.body)}`,
          );
        }
        const token = `Bearer ${identity.token}`;
        const billing = await request(server)
          .get('/api/catalog/entities/by-name/resource/default/billing-01')
          .set('authorization', token);
        if (
          !billing.body.relations?.some(
            (r: { type: string; targetRef: string }) =>
              r.type === 'ownedBy' &&
              r.targetRef === 'group:default/team-billing',
          )
        ) {
          throw new Error(
            `The catalog does not relate billing-01 to its owner yet: ${JSON.stringify(billing.body)}`,
          );
        }
        return token;
      },
      { timeout: 60_000, interval: 200 },
    );
    const knex = await recoveryDatabase!.getClient();
    runStore = new RunStore(knex);
    captureStore = new CaptureStore(knex);
    for (const machine of ['shop-01', 'billing-01'])
      await captureStore.insertCapture(storedCapture(machine));
  });

  it('registers recovery.run.release with the permission framework as a delete on catalog entities', async () => {
    const res = await request(server)
      .get('/api/recovery/.well-known/backstage/permissions/metadata')
      .set('authorization', ALICE);
    expect(res.status).toBe(200);
    expect(res.body.permissions).toContainEqual({
      type: 'resource',
      name: 'recovery.run.release',
      attributes: { action: 'delete' },
      resourceType: 'catalog-entity',
    });
  });

  it("lets a service's owner start a test recovery of it, and refuses them another team's with a 403, creating no run", async () => {
    const shop = await request(server)
      .post('/api/recovery/runs')
      .set('authorization', ALICE)
      .send({ entityRef: SHOP, mode: 'test' });
    expect(shop.status).toBe(202);
    expect(shop.body).toMatchObject({
      entityRef: SHOP,
      createdBy: 'user:default/alice',
    });

    const billing = await request(server)
      .post('/api/recovery/runs')
      .set('authorization', ALICE)
      .send({ entityRef: BILLING, mode: 'test' });
    expect(billing.status).toBe(403);
    expect(billing.body.error).toMatchObject({
      name: 'NotAllowedError',
      message: `Missing permission recovery.run.create on ${BILLING}`,
    });
    expect(await runStore.listRuns({ entityRef: BILLING })).toEqual([]);

    await vi.waitFor(
      async () =>
        expect(['succeeded', 'failed']).toContain(
          (await runStore.getRun(shop.body.id))!.status,
        ),
      { timeout: 15_000, interval: 50 },
    );
  });

  it("shows the owner of a run's entity the console tail of their own machine and withholds another team's machine's", async () => {
    // A recorded run of the shop that booted billing's machine too (as a failover of a service
    // on a shared machine does), each console having printed something.
    const machineRefs = [
      'resource:default/shop-01',
      'resource:default/billing-01',
    ];
    await runStore.insertRun(
      {
        id: 'shop-tails',
        entityRef: SHOP,
        mode: 'test',
        trigger: 'user',
        hypervisorHost: 'fake',
        plan: {
          entityRef: SHOP,
          waves: [machineRefs],
          machines: machineRefs.map(machineRef => ({
            machineRef,
            wave: 0,
            services: [SHOP],
            waitsFor: [],
            probes: [],
          })),
        } as never,
        options: {},
        machines: machineRefs.map(machineRef => ({ machineRef, wave: 0 })),
      },
      new Date(Date.now() - 5_000),
    );
    await runStore.updateRun('shop-tails', { status: 'running' });
    for (const machineRef of machineRefs)
      await runStore.updateRunMachine('shop-tails', machineRef, {
        phase: 'ready',
        logTail: `${machineRef} booting: SECRET=${machineRef.split('/')[1]}`,
      });
    await runStore.updateRun('shop-tails', {
      status: 'succeeded',
      finishedAt: new Date().toISOString(),
      rtoSeconds: 3,
    });

    const res = await request(server)
      .get('/api/recovery/runs/shop-tails')
      .set('authorization', ALICE);
    expect(res.status).toBe(200);
    // The catalog applies the ownership condition to each machine, not to the shop.
    const byRef = new Map(
      res.body.machines.map((m: { machineRef: string }) => [m.machineRef, m]),
    );
    expect(byRef.get('resource:default/shop-01')).toMatchObject({
      logTail: 'resource:default/shop-01 booting: SECRET=shop-01',
    });
    expect(byRef.get('resource:default/billing-01')).toMatchObject({
      logTailWithheld: true,
    });
    expect(byRef.get('resource:default/billing-01')).not.toHaveProperty(
      'logTail',
    );
    expect(JSON.stringify(res.body)).not.toContain('SECRET=billing-01');
  });

  it("refuses a service's owner a capture that would pause another team's machine their service depends on (403), capturing nothing", async () => {
    const SHOP_01 = 'resource:default/shop-01';
    const BILLING_01 = 'resource:default/billing-01';
    const why = `A capture pauses each machine it takes in production: it needs that permission on each machine it captures, not only on ${SHOP}`;
    const one = await request(server)
      .post('/api/recovery/captures')
      .set('authorization', ALICE)
      .send({ entityRef: SHOP, machineRef: BILLING_01 });
    expect(one.status).toBe(403);
    expect(one.body.error).toMatchObject({
      name: 'NotAllowedError',
      message: `Missing permission recovery.capture.create on 1 entity of the boot plan of ${SHOP} asked for (machineRef): ${BILLING_01}. ${why}`,
    });
    const whole = await request(server)
      .post('/api/recovery/captures')
      .set('authorization', ALICE)
      .send({ entityRef: SHOP });
    expect(whole.status).toBe(403);
    expect(whole.body.error.message).toBe(
      `Missing permission recovery.capture.create on 1 entity of the boot plan of ${SHOP}: ${BILLING_01}. ${why}. ` +
        'Capture the machines you may one at a time (machineRef)',
    );

    // Her own machine of the same plan she captures.
    const own = await request(server)
      .post('/api/recovery/captures')
      .set('authorization', ALICE)
      .send({ entityRef: SHOP, machineRef: SHOP_01 });
    expect(own.status).toBe(202);
    await vi.waitFor(
      async () =>
        expect(
          (
            await request(server)
              .get(`/api/recovery/captures/requests/${own.body.requestId}`)
              .set('authorization', ALICE)
          ).body.status,
        ).toBe('succeeded'),
      { timeout: 15_000, interval: 50 },
    );
    expect(source.captured).toEqual(['shop-01']);
  });

  it("answers what a machine's failed health check said when captured only to those who may read its console, and never in readiness", async () => {
    for (const machine of ['shop-01', 'billing-01'])
      await captureStore.insertCapture({
        ...storedCapture(machine),
        id: `cap-${machine}-unhealthy`,
        createdAt: new Date(Date.now() + 1_000).toISOString(),
        machineState: {
          status: 'running',
          health: 'unhealthy',
          failingStreak: 2,
          healthOutput: `postgres://app:password-${machine}@db:5432 refused`,
        },
      });
    const latest = async (machine: string) => {
      const res = await request(server)
        .get(`/api/recovery/captures?machineRef=resource:default/${machine}`)
        .set('authorization', ALICE);
      expect(res.status).toBe(200);
      return res.body.items[0];
    };
    // Her machine's, as its console; of billing's machine, the state without what the check said.
    expect((await latest('shop-01')).machineState).toEqual({
      status: 'running',
      health: 'unhealthy',
      failingStreak: 2,
      healthOutput: 'postgres://app:password-shop-01@db:5432 refused',
    });
    expect((await latest('billing-01')).machineState).toEqual({
      status: 'running',
      health: 'unhealthy',
      failingStreak: 2,
    });

    const readiness = await request(server)
      .get('/api/recovery/readiness/component/default/shop')
      .set('authorization', ALICE);
    expect(readiness.status).toBe(200);
    expect(JSON.stringify(readiness.body)).toContain(
      'resource:default/billing-01 was running but unhealthy (2 failing health checks in a row) when captured',
    );
    expect(JSON.stringify(readiness.body)).not.toContain('password-');
  });
});
