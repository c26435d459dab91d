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
import type { Entity } from '@backstage/catalog-model';
import { InMemoryCatalogClient } from '@backstage/catalog-client/testUtils';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import notificationsPlugin from '@backstage/plugin-notifications-backend';
import request from 'supertest';
import { recoveryPlugin } from './plugin';
import { FakeCaptureSource } from './testing/FakeCaptureSource';
import { FakeHost } from './testing/FakeHost';
import { recordingLogger } from './testing/logger';
import { componentEntity, machineEntity } from './testing/entities';
import { providersModule } from './testing/providers';
import { captureAndPoll } from './testing/captureRequests';

const WEB = 'component:default/web';
const DATABASE = 'component:default/database';
const SHOP = 'system:default/shop';
const ALICE = 'user:default/alice';
const BOB = 'user:default/bob';
const CAROL = 'user:default/carol';
const DAVE = 'user:default/dave';
const TEAM_A = 'group:default/team-a';
const TEAM_A_OPS = 'group:default/team-a-ops';
const TEAM_B = 'group:default/team-b';

const group = (
  name: string,
  relations: Array<{ type: string; targetRef: string }>,
  spec: Entity['spec'] = { type: 'team', children: [] },
): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Group',
  metadata: { name, namespace: 'default' },
  spec,
  relations,
});

/**
 * web on web-01 needs database, on db-01; both owned by team-a, whose member is alice, and whose
 * sub-team team-a-ops has carol. The system shop, of the two, is owned by team-b (dave); bob is in
 * no team.
 */
const web = componentEntity('web', ['resource:default/web-01', DATABASE]);
web.relations!.push(
  { type: 'ownedBy', targetRef: TEAM_A },
  { type: 'partOf', targetRef: SHOP },
);
const database = componentEntity('database', ['resource:default/db-01']);
database.relations!.push(
  { type: 'ownedBy', targetRef: TEAM_A },
  { type: 'partOf', targetRef: SHOP },
  { type: 'dependencyOf', targetRef: WEB },
);
const entities: Entity[] = [
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
  group(
    'team-a',
    [
      { type: 'hasMember', targetRef: ALICE },
      { type: 'parentOf', targetRef: TEAM_A_OPS },
    ],
    { type: 'team', children: ['team-a-ops'] },
  ),
  group(
    'team-a-ops',
    [
      { type: 'hasMember', targetRef: CAROL },
      { type: 'childOf', targetRef: TEAM_A },
    ],
    { type: 'team', parent: 'team-a', children: [] },
  ),
  group('team-b', [{ type: 'hasMember', targetRef: DAVE }]),
  ...[ALICE, BOB, CAROL, DAVE].map(ref => ({
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

interface Notice {
  id: string;
  created: string;
  read?: string | null;
  origin: string;
  payload: Record<string, unknown> & { title: string; description: string };
}

/**
 * A test backend with the recovery and notifications plugins over a catalog the test can change;
 * without the notifications plugin where `notificationsPlugin` is false.
 */
async function backend(
  options: {
    notificationsPlugin?: boolean;
    /** The recovery plugin's logger (default: the test backend's). */
    logger?: ReturnType<typeof recordingLogger>;
  } = {},
) {
  const holder: { scheduler?: SchedulerService } = {};
  const catalog = new InMemoryCatalogClient({
    entities: entities.map((e, i) => ({
      ...e,
      metadata: { ...e.metadata, uid: `uid-${i}` },
    })),
  });
  const host = new FakeHost({});
  const { server } = await startTestBackend({
    features: [
      recoveryPlugin,
      ...(options.notificationsPlugin === false ? [] : [notificationsPlugin]),
      ...(options.logger
        ? [
            mockServices.rootLogger.mock({ child: () => options.logger! })
              .factory,
          ]
        : []),
      providersModule({
        captureSources: [new FakeCaptureSource()],
        hypervisorHosts: [host],
      }),
      schedulerOf(holder),
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
    // Notices sent in the same millisecond could not be told apart by when they were created.
    await new Promise(r => setTimeout(r, 20));
  };
  /** A user's notifications, newest first (as the notifications page orders them, by `created`). */
  const inbox = async (user: string) => {
    const res = await request(server)
      .get('/api/notifications/notifications')
      .set('Authorization', mockCredentials.user.header(user));
    expect(res.status).toBe(200);
    return res.body.notifications as Notice[];
  };
  /** A test recovery of web (its machines captured first), to its end. */
  const run = async (expected: 'succeeded' | 'failed') => {
    expect((await captureAndPoll(server, { entityRef: WEB })).status).toBe(
      'succeeded',
    );
    let started = (
      await request(server).post('/api/recovery/runs').send({ entityRef: WEB })
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
    return started as { id: string; error?: { message: string } };
  };
  /** web recovered: web, database and shop recoverable. */
  const recover = () => run('succeeded');
  /**
   * A test recovery of web that fails on db-01, which it boots as the database's and the system's
   * plans do: it counts against all three (one failed as a whole would count against web alone).
   */
  const failRun = async () => {
    const startMachine = host.startMachine;
    host.startMachine = async machine => {
      if (machine.machineRef === 'resource:default/db-01')
        throw new Error('OCI runtime create failed: exec format error');
      return startMachine.call(host, machine);
    };
    try {
      return await run('failed');
    } finally {
      host.startMachine = startMachine;
    }
  };
  /** Removes entities from the catalog, as a deleted location would. */
  const remove = async (...refs: string[]) => {
    for (const ref of refs)
      await catalog.removeEntityByUid(
        (await catalog.getEntityByRef(ref))!.metadata.uid!,
      );
  };
  /** Past a first sweep (nothing to compare with), captured, and seen recoverable: a loss from here is news. */
  const seenRecoverable = async () => {
    await sweep();
    expect((await captureAndPoll(server, { entityRef: WEB })).status).toBe(
      'succeeded',
    );
    await sweep();
  };
  return {
    server,
    catalog,
    sweep,
    inbox,
    recover,
    failRun,
    remove,
    seenRecoverable,
  };
}

describe('readiness notices through the notifications plugin', () => {
  it('tell nothing at a fresh start, nor "recoverable again" of what was never recoverable; a real loss at once', async () => {
    const { server, sweep, inbox, failRun } = await backend();
    // A first start: web-01 and db-01 never captured, every entity not recoverable. No earlier state: no change.
    await sweep();
    for (const user of [ALICE, CAROL, DAVE, BOB])
      expect(await inbox(user)).toEqual([]);
    // Captured: recoverable, not yet test-recovered. Never told otherwise: nothing to undo.
    expect((await captureAndPoll(server, { entityRef: WEB })).status).toBe(
      'succeeded',
    );
    await sweep();
    for (const user of [ALICE, CAROL, DAVE, BOB])
      expect(await inbox(user)).toEqual([]);
    // A test recovery fails: recoverable before, not now. Told at the next sweep.
    await failRun();
    await sweep();
    expect((await inbox(ALICE)).map(n => n.payload.title)).toEqual([
      "database and web are not recoverable: web's test recovery failed",
    ]);
    expect((await inbox(DAVE)).map(n => n.payload.title)).toEqual([
      'system shop is not recoverable: a test recovery of another entity failed',
    ]);
  });

  it('tell one alarm per failed run to each team, with its cause, which run and when; withheld from a team that does not own its entity', async () => {
    const { sweep, inbox, failRun, seenRecoverable } = await backend();
    await seenRecoverable();
    for (const user of [ALICE, DAVE]) expect(await inbox(user)).toEqual([]);

    const failed = await failRun();
    expect(failed.error?.message).toContain(
      'OCI runtime create failed: exec format error',
    );
    await sweep();
    // web and database, team-a's, in one alarm: the run, its entity, its cause, when, in the plugin's words.
    const [alarm, ...more] = await inbox(ALICE);
    expect(more).toEqual([]);
    expect(alarm).toMatchObject({
      origin: 'plugin:recovery',
      payload: {
        title:
          "database and web are not recoverable: web's test recovery failed",
        severity: 'high',
        // The failed run's page, which says why.
        link: `/recovery/runs/${failed.id}`,
        topic: 'recovery readiness',
      },
    });
    expect(alarm.payload.description).toMatch(
      new RegExp(
        `^web's test recovery \\(run ${failed.id}\\) failed at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC: .*OCI runtime create failed: exec format error.*; ` +
          'it was the last test recovery of database and web, not recoverable until one succeeds$',
      ),
    );
    expect((await inbox(CAROL)).map(n => n.id)).toHaveLength(1);
    // The system, team-b's: told of it, not of web's run, its cause or web itself.
    const [systems, ...others] = await inbox(DAVE);
    expect(others).toEqual([]);
    expect(systems.payload).toMatchObject({
      title:
        'system shop is not recoverable: a test recovery of another entity failed',
      severity: 'high',
    });
    expect(systems.payload.description).toMatch(
      /^A test recovery of another entity failed on resource:default\/db-01 at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; it was the last test recovery of system shop/,
    );
    expect(JSON.stringify(systems)).not.toMatch(
      new RegExp(`${failed.id}|exec format|\\bweb\\b`),
    );
    expect(await inbox(BOB)).toEqual([]);
  });

  it('show each notice at the time it was sent: "recoverable again" as a new notice, the alarm resolved in place, a later loss new again', async () => {
    const { server, sweep, inbox, recover, failRun, seenRecoverable } =
      await backend();
    await seenRecoverable();
    await failRun();
    await sweep();
    const [alarm] = await inbox(ALICE);
    const read = await request(server)
      .post('/api/notifications/notifications/update')
      .set('Authorization', mockCredentials.user.header(ALICE))
      .send({ ids: [alarm.id], read: true });
    expect(read.status).toBe(200);
    await sweep();
    expect((await inbox(ALICE)).map(n => [n.id, Boolean(n.read)])).toEqual([
      [alarm.id, true],
    ]);

    await recover();
    await sweep();
    const [back, resolved, ...others] = await inbox(ALICE);
    expect(others).toEqual([]);
    // A notice of its own, created when it was sent: newer than the alarm, on top of the page.
    expect(back.id).not.toBe(alarm.id);
    expect(Date.parse(back.created)).toBeGreaterThan(Date.parse(alarm.created));
    expect(back.payload).toMatchObject({
      title: 'database and web are recoverable again',
      severity: 'low',
    });
    expect(back.payload.description).toMatch(
      /^Not recoverable for \d+ s, from \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC; now ready: database and web$/,
    );
    // The alarm, in place and dated as it was sent, no longer reads as an outage under way.
    expect(resolved).toMatchObject({
      id: alarm.id,
      created: alarm.created,
      payload: {
        title:
          "Resolved: database and web are not recoverable: web's test recovery failed",
        severity: 'low',
      },
    });
    const [shopBack, shopResolved] = await inbox(DAVE);
    expect(shopBack.payload.title).toBe(
      'system shop is recoverable again (ready)',
    );
    expect(shopResolved.payload.title).toBe(
      'Resolved: system shop is not recoverable: a test recovery of another entity failed',
    );

    // Lost again: a new alarm, on top, dated now; the earlier notices stay as they were.
    await failRun();
    await sweep();
    const [again, ...earlier] = await inbox(ALICE);
    expect(Date.parse(again.created)).toBeGreaterThan(Date.parse(back.created));
    expect(again.payload).toMatchObject({
      title: "database and web are not recoverable: web's test recovery failed",
      severity: 'high',
    });
    expect(earlier.map(n => [n.id, n.payload.title])).toEqual([
      [back.id, back.payload.title],
      [alarm.id, resolved.payload.title],
    ]);
  });

  it('resolve the alarm in place for those who got it alone: an entity\'s new owners get no "Resolved" naming another entity\'s run', async () => {
    const { catalog, sweep, inbox, recover, failRun, seenRecoverable } =
      await backend();
    await seenRecoverable();
    await failRun();
    await sweep();
    const [lost] = await inbox(ALICE);
    expect(lost.payload.title).toBe(
      "database and web are not recoverable: web's test recovery failed",
    );
    const dave = (await inbox(DAVE)).map(n => n.id);

    // database moves to team-b (dave), who may not see web: then both recover.
    const moved = (await catalog.getEntityByRef(DATABASE))!;
    moved.relations = moved.relations!.map(r =>
      r.type === 'ownedBy' ? { ...r, targetRef: TEAM_B } : r,
    );
    await recover();
    await sweep();
    expect((await inbox(ALICE)).find(n => n.id === lost.id)).toMatchObject({
      payload: { title: `Resolved: ${lost.payload.title}` },
    });
    const toDave = (await inbox(DAVE)).filter(n => !dave.includes(n.id));
    expect(toDave.length).toBeGreaterThan(0);
    for (const n of toDave)
      expect(JSON.stringify(n.payload)).not.toMatch(/\bweb\b/);
  });

  it("close the alarm in the owners' inbox when the entity is deleted from the catalog, which then names no owner", async () => {
    const { sweep, inbox, remove, failRun, seenRecoverable } = await backend();
    await seenRecoverable();
    await failRun();
    await sweep();
    const [lost] = await inbox(ALICE);

    await remove(WEB, DATABASE);
    // Missing from one sweep's list only, it may come back (a catalog being rebuilt): closed at the next.
    await sweep();
    expect(await inbox(ALICE)).toEqual([lost]);
    await sweep();
    const [gone, closed, ...others] = await inbox(ALICE);
    expect(others).toEqual([]);
    expect(gone.payload).toMatchObject({
      title: 'database and web are no longer assessed for recovery',
      severity: 'low',
    });
    expect(gone.payload.description).toMatch(
      /^database and web left the catalog, or run on no machine now; they had been not recoverable for \d+ s, from .* UTC to .* UTC$/,
    );
    expect(closed).toMatchObject({
      id: lost.id,
      payload: { title: `Resolved: ${lost.payload.title}`, severity: 'low' },
    });
    expect(await inbox(BOB)).toEqual([]);
    // Told once.
    await sweep();
    expect(await inbox(ALICE)).toEqual([gone, closed]);
  });

  it("close the alarm in the inbox of its owner group's members, of its sub-teams too, when the groups have left the catalog since", async () => {
    const { sweep, inbox, recover, remove, failRun, seenRecoverable } =
      await backend();
    await seenRecoverable();
    await failRun();
    await sweep();
    const [lost] = await inbox(ALICE);
    const [lostToCarol, ...more] = await inbox(CAROL);
    expect(more).toEqual([]);
    for (const notice of [lost, lostToCarol])
      expect(notice.payload.title).toBe(
        "database and web are not recoverable: web's test recovery failed",
      );

    // The teams are removed: the notifications plugin resolves web, and the groups, to no one.
    await remove(TEAM_A, TEAM_A_OPS);
    await recover();
    await sweep();
    for (const [user, alarm] of [
      [ALICE, lost],
      [CAROL, lostToCarol],
    ] as const) {
      const [back, resolved, ...others] = await inbox(user);
      expect(others).toEqual([]);
      expect(back.payload).toMatchObject({
        title: 'database and web are recoverable again',
        severity: 'low',
      });
      expect(resolved).toMatchObject({
        id: alarm.id,
        payload: { title: `Resolved: ${alarm.payload.title}` },
      });
    }
    expect(await inbox(BOB)).toEqual([]);
  });

  it('close the alarm of an entity deleted with its owner group in the inbox of those the alarm reached', async () => {
    const { sweep, inbox, remove, failRun, seenRecoverable } = await backend();
    await seenRecoverable();
    await failRun();
    await sweep();
    const [lost] = await inbox(ALICE);
    await remove(WEB, DATABASE, TEAM_A);
    await sweep();
    await sweep();
    const [gone, closed, ...others] = await inbox(ALICE);
    expect(others).toEqual([]);
    expect(gone.payload.title).toBe(
      'database and web are no longer assessed for recovery',
    );
    expect(closed).toMatchObject({
      id: lost.id,
      payload: { title: `Resolved: ${lost.payload.title}` },
    });
    // Carol's sub-team stays in the catalog, but nothing of web's leads to it any more: hers is closed too.
    const [goneToCarol, closedToCarol, ...again] = await inbox(CAROL);
    expect(again).toEqual([]);
    expect(goneToCarol.payload.title).toBe(
      'database and web are no longer assessed for recovery',
    );
    expect(closedToCarol.payload.title).toBe(`Resolved: ${lost.payload.title}`);
  });

  it('without the notifications plugin, are tried once and said to need it, in one warning: not at every sweep', async () => {
    const logger = recordingLogger();
    const { sweep, failRun, seenRecoverable } = await backend({
      notificationsPlugin: false,
      logger,
    });
    await seenRecoverable();
    await failRun();
    const fetched = vi.spyOn(globalThis, 'fetch');
    try {
      await sweep();
      await sweep();
      await sweep();
      const toNotifications = fetched.mock.calls.filter(([url]) =>
        String(url).includes('/api/notifications'),
      );
      expect(toNotifications).toHaveLength(1);
    } finally {
      fetched.mockRestore();
    }
    expect(
      logger.lines.filter(l => l.message.startsWith('Readiness notices')),
    ).toEqual([
      {
        level: 'warn',
        message: expect.stringMatching(
          /^Readiness notices: no notifications backend is installed \(a notice was answered 404 Not Found\): install @backstage\/plugin-notifications-backend, or set recovery.notifications.enabled: false to turn notices off\. \d+ notices wait/,
        ),
        fields: expect.anything(),
        error: new Error(
          'Failed to send notifications: Error: Request failed with status 404',
        ),
      },
    ]);
  });
});
