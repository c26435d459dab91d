import {
  coreServices,
  createBackendModule,
  createServiceFactory,
  type SchedulerService,
} from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
} from '@backstage/backend-test-utils';
import { InMemoryCatalogClient } from '@backstage/catalog-client/testUtils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import notificationsPlugin from '@backstage/plugin-notifications-backend';
import request from 'supertest';
import { recoveryPlugin } from '../plugin';
import { FakeCaptureSource } from '../testing/FakeCaptureSource';
import { FakeHost } from '../testing/FakeHost';
import { componentEntity, machineEntity } from '../testing/entities';
import { providersModule } from '../testing/providers';
import { captureAndPoll } from '../testing/captureRequests';

// The notices a real backend sends through the notifications plugin, read from users' inboxes:
// what "recoverable again" reaches, and how a reason tied to another entity's run reads.

const WEB = 'component:default/web';
const DATABASE = 'component:default/database';
const SHOP = 'system:default/shop';
const DB_01 = 'resource:default/db-01';
const ALICE = 'user:default/alice';
const DAVE = 'user:default/dave';
const TEAM_A = 'group:default/team-a';
const TEAM_B = 'group:default/team-b';

/**
 * web on web-01 needs database, on db-01; both owned by team-a (alice). The system shop, of the
 * two, is owned by team-b (dave).
 */
function catalogEntities(): Entity[] {
  const web = componentEntity('web', ['resource:default/web-01', DATABASE]);
  web.relations!.push(
    { type: 'ownedBy', targetRef: TEAM_A },
    { type: 'partOf', targetRef: SHOP },
  );
  const database = componentEntity('database', [DB_01]);
  database.relations!.push(
    { type: 'ownedBy', targetRef: TEAM_A },
    { type: 'partOf', targetRef: SHOP },
    { type: 'dependencyOf', targetRef: WEB },
  );
  const group = (name: string, member: string): Entity => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: { name, namespace: 'default' },
    spec: { type: 'team', children: [] },
    relations: [{ type: 'hasMember', targetRef: member }],
  });
  return [
    {
      ...machineEntity('web-01'),
      relations: [{ type: 'dependencyOf', targetRef: WEB }],
    },
    {
      ...machineEntity('db-01'),
      relations: [{ type: 'dependencyOf', targetRef: DATABASE }],
    },
    web,
    database,
    {
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'System',
      metadata: { name: 'shop', namespace: 'default' },
      spec: { owner: 'team-b' },
      relations: [
        { type: 'hasPart', targetRef: WEB },
        { type: 'hasPart', targetRef: DATABASE },
        { type: 'ownedBy', targetRef: TEAM_B },
      ],
    },
    group('team-a', ALICE),
    group('team-b', DAVE),
    ...[ALICE, DAVE].map(ref => ({
      apiVersion: 'backstage.io/v1alpha1',
      kind: 'User',
      metadata: { name: ref.split('/')[1], namespace: 'default' },
      spec: {},
    })),
  ];
}

interface Notice {
  id: string;
  payload: { title: string; description: string };
}

async function backend() {
  const holder: { scheduler?: SchedulerService } = {};
  const catalog = new InMemoryCatalogClient({
    entities: catalogEntities().map((e, i) => ({
      ...e,
      metadata: { ...e.metadata, uid: `uid-${i}` },
    })),
  });
  /** Machines that exit as they start, failing a run on them. */
  const crashes: string[] = [];
  const host = new FakeHost({}, crashes);
  const { server } = await startTestBackend({
    features: [
      recoveryPlugin,
      notificationsPlugin,
      providersModule({
        captureSources: [new FakeCaptureSource()],
        hypervisorHosts: [host],
      }),
      createBackendModule({
        pluginId: 'recovery',
        moduleId: 'test-scheduler',
        register(env) {
          env.registerInit({
            deps: { scheduler: coreServices.scheduler },
            async init({ scheduler }) {
              holder.scheduler = scheduler;
            },
          });
        },
      }),
      createServiceFactory({
        service: catalogServiceRef,
        deps: {},
        factory: () => catalog,
      }),
      mockServices.rootConfig.factory({
        data: {
          app: { baseUrl: 'http://localhost:3000' },
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
  });
  const sweep = async () => {
    await holder.scheduler!.triggerTask('recovery-readiness-notices');
    await new Promise(r => setTimeout(r, 20));
  };
  /** A user's notifications, newest first. */
  const inbox = async (user: string) => {
    const res = await request(server)
      .get('/api/notifications/notifications')
      .set('Authorization', mockCredentials.user.header(user));
    expect(res.status).toBe(200);
    return res.body.notifications as Notice[];
  };
  /** A test recovery of `entityRef`, to its end. */
  const run = async (entityRef: string, expected: 'succeeded' | 'failed') => {
    let started = (
      await request(server).post('/api/recovery/runs').send({ entityRef })
    ).body;
    for (
      let i = 0;
      i < 100 && (started.status === 'pending' || started.status === 'running');
      i++
    ) {
      await new Promise(r => setTimeout(r, 50));
      started = (await request(server).get(`/api/recovery/runs/${started.id}`))
        .body;
    }
    expect(started.status).toBe(expected);
    return started as {
      id: string;
      error?: { machineRef?: string; message: string };
    };
  };
  /** Past a first sweep, captured, and web test-recovered: web, database and shop ready, and seen so. */
  const seenReady = async () => {
    await sweep();
    expect((await captureAndPoll(server, { entityRef: WEB })).status).toBe(
      'succeeded',
    );
    await run(WEB, 'succeeded');
    await sweep();
    for (const user of [ALICE, DAVE]) expect(await inbox(user)).toEqual([]);
  };
  return { catalog, crashes, host, server, sweep, inbox, run, seenReady };
}

describe('readiness notices in the inboxes of a backend', () => {
  it("quote a failure since on a machine of the plan naming its run to owners who own that run's entity, and withheld to those who do not", async () => {
    const { crashes, sweep, inbox, run, seenReady } = await backend();
    await seenReady();
    // database's own test recovery fails on db-01, which web's and shop's plans hold too: their
    // last covering run (web's) succeeded before it.
    crashes.push(DB_01);
    const failed = await run(DATABASE, 'failed');
    expect(failed.error?.machineRef).toBe(DB_01);
    await sweep();

    // team-a owns database: web's alarm names the run, its entity and why it failed, as web's page does for them.
    const toAlice = await inbox(ALICE);
    const webAlarm = toAlice.find(
      n => n.payload.title === 'web is not recoverable',
    )!;
    expect(webAlarm.payload.description).toBe(
      `A test recovery after the last that recovered its plan failed on ${DB_01}, gated there by nothing its plan does not gate it by ` +
        `(run ${failed.id} of ${DATABASE}): ${failed.error!.message}`,
    );
    expect(toAlice.map(n => n.payload.title).sort()).toEqual([
      'database is not recoverable: its test recovery failed',
      'web is not recoverable',
    ]);

    // team-b does not: shop's alarm says a run of another entity failed on db-01, not which nor why.
    const [shopAlarm, ...more] = await inbox(DAVE);
    expect(more).toEqual([]);
    expect(shopAlarm.payload.title).toBe('system shop is not recoverable');
    expect(shopAlarm.payload.description).toBe(
      `A test recovery after the last that recovered its plan failed on ${DB_01}, gated there by nothing its plan does not gate it by: ` +
        `${DB_01} failed, in a run of another entity (its details on this entity's Recovery tab, to those the catalog shows that entity)`,
    );
    expect(JSON.stringify(shopAlarm)).not.toMatch(
      new RegExp(
        `${failed.id}|${DATABASE}|${failed.error!.message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`,
      ),
    );
  });

  it('tell no one of a test recovery a failover interrupted: it is interrupted, not failed, and says nothing of recoverability', async () => {
    const { host, server, sweep, inbox, seenReady } = await backend();
    await seenReady();
    // web's next test recovery stays in its first restore until a failover has preempted it.
    const restore = host.restoreMachine.bind(host);
    let held: (() => void) | undefined;
    host.restoreMachine = async (lab, capture) => {
      if (!held) await new Promise<void>(resolve => (held = resolve));
      return restore(lab, capture);
    };
    let failoverId: string | undefined;
    try {
      const test = (
        await request(server).post('/api/recovery/runs').send({
          entityRef: WEB,
        })
      ).body;
      await vi.waitFor(() => expect(held).toBeDefined());
      const failover = (
        await request(server)
          .post('/api/recovery/runs')
          .send({ entityRef: DATABASE, mode: 'failover' })
      ).body;
      failoverId = failover.id;
      await vi.waitFor(
        async () =>
          expect(
            (await request(server).get(`/api/recovery/runs/${failover.id}`))
              .body.status,
          ).toBe('succeeded'),
        { timeout: 10_000, interval: 50 },
      );
      expect(
        (await request(server).get(`/api/recovery/runs/${test.id}`)).body,
      ).toMatchObject({
        status: 'interrupted',
        error: { message: `Interrupted: preempted by failover ${failover.id}` },
      });
      await sweep();
      for (const user of [ALICE, DAVE]) expect(await inbox(user)).toEqual([]);
    } finally {
      held?.();
      host.restoreMachine = restore;
      if (failoverId) await host.teardown(failoverId);
    }
  });

  it('tell "recoverable again" to those the alarm reached alone: new owners of an entity, never told it was lost, are told nothing of it', async () => {
    const { catalog, crashes, sweep, inbox, run, seenReady } = await backend();
    await seenReady();
    // web's test recovery fails on db-01: the last of web, database and shop.
    crashes.push(DB_01);
    await run(WEB, 'failed');
    await sweep();
    expect((await inbox(ALICE)).map(n => n.payload.title)).toEqual([
      "database and web are not recoverable: web's test recovery failed",
    ]);
    const toDave = (await inbox(DAVE)).map(n => n.id);

    // database moves to team-b (dave), then both recover.
    const moved = (await catalog.getEntityByRef(DATABASE))!;
    moved.relations = moved.relations!.map(r =>
      r.type === 'ownedBy' ? { ...r, targetRef: TEAM_B } : r,
    );
    crashes.length = 0;
    await run(WEB, 'succeeded');
    await sweep();
    // One notice to team-a for both, as the alarm was.
    expect((await inbox(ALICE)).map(n => n.payload.title)).toEqual([
      'database and web are recoverable again',
      "Resolved: database and web are not recoverable: web's test recovery failed",
    ]);
    // Dave is told of shop, his, alone: its alarm resolved in place, and one new notice.
    const daves = await inbox(DAVE);
    expect(
      daves.filter(n => !toDave.includes(n.id)).map(n => n.payload.title),
    ).toEqual(['system shop is recoverable again (ready)']);
    expect(daves.map(n => n.payload.title)).toEqual([
      'system shop is recoverable again (ready)',
      'Resolved: system shop is not recoverable: a test recovery of another entity failed',
    ]);
  });
});
