import { coreServices, createBackendModule, createServiceFactory, type SchedulerService } from '@backstage/backend-plugin-api';
import { mockCredentials, mockServices, startTestBackend } from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { InMemoryCatalogClient } from '@backstage/catalog-client/testUtils';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import notificationsPlugin from '@backstage/plugin-notifications-backend';
import request from 'supertest';
import { recoveryPlugin } from './plugin';
import { FakeCaptureSource } from './testing/FakeCaptureSource';
import { FakeHost } from './testing/FakeHost';
import { componentEntity, machineEntity } from './testing/entities';
import { providersModule } from './testing/providers';

const WEB = 'component:default/web';
const ALICE = 'user:default/alice';
const BOB = 'user:default/bob';
const CAROL = 'user:default/carol';
const TEAM_A = 'group:default/team-a';
const TEAM_A_OPS = 'group:default/team-a-ops';

/**
 * web on web-01, owned by team-a, whose member is alice, and whose sub-team team-a-ops has carol;
 * bob is in no team.
 */
const web = componentEntity('web', ['resource:default/web-01']);
web.relations!.push({ type: 'ownedBy', targetRef: TEAM_A });
const entities: Entity[] = [
  { ...machineEntity('web-01'), relations: [{ type: 'dependencyOf', targetRef: WEB }] },
  web,
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: { name: 'team-a', namespace: 'default' },
    spec: { type: 'team', children: ['team-a-ops'] },
    relations: [
      { type: 'hasMember', targetRef: ALICE },
      { type: 'parentOf', targetRef: TEAM_A_OPS },
    ],
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Group',
    metadata: { name: 'team-a-ops', namespace: 'default' },
    spec: { type: 'team', parent: 'team-a', children: [] },
    relations: [
      { type: 'hasMember', targetRef: CAROL },
      { type: 'childOf', targetRef: TEAM_A },
    ],
  },
  ...[ALICE, BOB, CAROL].map(ref => ({
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'User',
    metadata: { name: ref.split('/')[1], namespace: 'default' },
    spec: {},
  })),
];

/** The recovery plugin's scheduler, to run its notice sweep when the test says. */
function schedulerOf(holder: { scheduler?: SchedulerService }) {
  return createBackendModule({
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
  });
}

/** A test backend with the recovery and notifications plugins over a catalog the test can change. */
async function backend() {
  const holder: { scheduler?: SchedulerService } = {};
  const catalog = new InMemoryCatalogClient({ entities: entities.map((e, i) => ({ ...e, metadata: { ...e.metadata, uid: `uid-${i}` } })) });
  const { server } = await startTestBackend({
    features: [
      recoveryPlugin,
      notificationsPlugin,
      providersModule({ captureSources: [new FakeCaptureSource()], hypervisorHosts: [new FakeHost({})] }),
      schedulerOf(holder),
      createServiceFactory({ service: catalogServiceRef, deps: {}, factory: () => catalog }),
      mockServices.rootConfig.factory({
        data: { app: { baseUrl: 'http://localhost:3000' }, recovery: { runs: { machineReadyTimeout: '2s', probeInterval: '1s', minReadyTime: '100ms' } } },
      }),
    ],
  });
  const sweep = () => holder.scheduler!.triggerTask('recovery-readiness-notices');
  const inbox = async (user: string) => {
    const res = await request(server).get('/api/notifications/notifications').set('Authorization', mockCredentials.user.header(user));
    expect(res.status).toBe(200);
    return res.body.notifications as Array<{ id: string; read?: string | null; origin: string; payload: Record<string, unknown> }>;
  };
  /** A capture of web's machines and a test recovery that succeeds: web is recoverable. */
  const recover = async () => {
    expect((await request(server).post('/api/recovery/captures').send({ entityRef: WEB })).status).toBe(201);
    let run = (await request(server).post('/api/recovery/runs').send({ entityRef: WEB })).body;
    for (let i = 0; i < 100 && (run.status === 'pending' || run.status === 'running'); i++) {
      await new Promise(r => setTimeout(r, 50));
      run = (await request(server).get(`/api/recovery/runs/${run.id}`)).body;
    }
    expect(run.status).toBe('succeeded');
  };
  /** Removes entities from the catalog, as a deleted location would. */
  const remove = async (...refs: string[]) => {
    for (const ref of refs) await catalog.removeEntityByUid((await catalog.getEntityByRef(ref))!.metadata.uid!);
  };
  return { server, catalog, sweep, inbox, recover, remove };
}

describe('readiness notices through the notifications plugin', () => {
  it("tell the entity's owners, not others, once when it stops being recoverable, and again in place when it is back", async () => {
    const { server, sweep, inbox, recover } = await backend();

    // web-01 was never captured.
    await sweep();
    const [lost, ...more] = await inbox(ALICE);
    expect(more).toEqual([]);
    expect(lost).toMatchObject({
      origin: 'plugin:recovery',
      payload: {
        title: `${WEB} is not recoverable`,
        description: 'resource:default/web-01 has never been captured; Never test-recovered',
        severity: 'high',
        link: '/catalog/default/component/web/recovery',
        topic: 'recovery readiness',
      },
    });
    expect(await inbox(BOB)).toEqual([]);
    await sweep();
    expect((await inbox(ALICE)).map(n => n.id)).toEqual([lost.id]);
    const read = await request(server)
      .post('/api/notifications/notifications/update')
      .set('Authorization', mockCredentials.user.header(ALICE))
      .send({ ids: [lost.id], read: true });
    expect(read.status).toBe(200);
    expect((await inbox(ALICE))[0].read).toBeTruthy();

    await recover();
    await sweep();
    const [back, ...others] = await inbox(ALICE);
    expect(others).toEqual([]);
    // The same notification, replaced by its scope, unread again.
    expect(back).toMatchObject({
      id: lost.id,
      read: null,
      payload: { title: `${WEB} is recoverable again (ready)`, severity: 'low' },
    });
    expect(back.payload.description).toMatch(/^Not recoverable for \d+ s, from \S+ to \S+$/);
  });

  it('close the notice in the owners\' inbox when the entity is deleted from the catalog, which then names no owner', async () => {
    const { sweep, inbox, remove } = await backend();
    await sweep();
    const [lost] = await inbox(ALICE);
    expect(lost.payload).toMatchObject({ title: `${WEB} is not recoverable`, severity: 'high' });

    await remove(WEB);
    // Missing from one sweep's list only, it may come back (a catalog being rebuilt): closed at the next.
    await sweep();
    expect(await inbox(ALICE)).toEqual([lost]);
    await sweep();
    const [closed, ...others] = await inbox(ALICE);
    expect(others).toEqual([]);
    expect(closed).toMatchObject({
      id: lost.id,
      payload: { title: `${WEB} is no longer assessed for recovery`, severity: 'low' },
    });
    expect(closed.payload.description).toMatch(/^It left the catalog, or runs on no machine now; it had been not recoverable for \d+ s, from \S+ to \S+$/);
    expect(await inbox(BOB)).toEqual([]);
    // Told once.
    await sweep();
    expect(await inbox(ALICE)).toEqual([closed]);
  });

  it("close the alarm in the inbox of its owner group's members, of its sub-teams too, when the groups have left the catalog since", async () => {
    const { sweep, inbox, recover, remove } = await backend();
    await sweep();
    const [lost] = await inbox(ALICE);
    const [lostToCarol, ...more] = await inbox(CAROL);
    expect(more).toEqual([]);
    for (const notice of [lost, lostToCarol]) expect(notice.payload).toMatchObject({ title: `${WEB} is not recoverable` });

    // The teams are removed: the notifications plugin resolves web, and the groups, to no one.
    await remove(TEAM_A, TEAM_A_OPS);
    await recover();
    await sweep();
    for (const [user, alarm] of [[ALICE, lost], [CAROL, lostToCarol]] as const) {
      const [back, ...others] = await inbox(user);
      expect(others).toEqual([]);
      expect(back).toMatchObject({ id: alarm.id, payload: { title: `${WEB} is recoverable again (ready)`, severity: 'low' } });
    }
    expect(await inbox(BOB)).toEqual([]);
  });

  it('close the alarm of an entity deleted with its owner group in the inbox of those the alarm reached', async () => {
    const { sweep, inbox, remove } = await backend();
    await sweep();
    const [lost] = await inbox(ALICE);
    await remove(WEB, TEAM_A);
    await sweep();
    await sweep();
    const [closed, ...others] = await inbox(ALICE);
    expect(others).toEqual([]);
    expect(closed).toMatchObject({ id: lost.id, payload: { title: `${WEB} is no longer assessed for recovery`, severity: 'low' } });
    // Carol's sub-team stays in the catalog, but nothing of web's leads to it any more: hers is closed too.
    const [closedToCarol, ...again] = await inbox(CAROL);
    expect(again).toEqual([]);
    expect(closedToCarol.payload).toMatchObject({ title: `${WEB} is no longer assessed for recovery` });
  });
});
