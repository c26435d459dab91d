import { MiddlewareFactory } from '@backstage/backend-defaults/rootHttpRouter';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import {
  createServiceFactory,
  type PermissionsService,
} from '@backstage/backend-plugin-api';
import { AuthorizeResult } from '@backstage/plugin-permission-common';
import { JOURNALD_UNIT_STARTED } from '@backstage-recovery/plugin-recovery-node';
import type { Knex } from 'knex';
import express from 'express';
import request from 'supertest';
import { gzipSync } from 'zlib';
import { EventStore } from '../database/EventStore';
import { CaptureStore } from '../database/CaptureStore';
import { RunStore } from '../database/RunStore';
import { catalogHidingFromUsers } from '../testing/catalog';
import {
  componentEntity,
  machineEntity,
  captureOf,
  storedCapture,
} from '../testing/entities';
import { FakeHost } from '../testing/FakeHost';
import { providersModule } from '../testing/providers';
import { recoveryPlugin } from '../plugin';
import { AuthorizedRunService } from '../run/AuthorizedRunService';
import type { RunService } from '../run/RunService';
import { RecoveryAuthorizer } from './RecoveryAuthorizer';
import { createRouter, RouterOptions } from './router';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

/**
 * Inserts scheduled test runs of a plan with these waves, started `offsetMs` after 10 s ago:
 * recent, as the plugin's clean-up fails active runs whose heartbeat is a minute old.
 */
const insertRecentRun = (runStore: RunStore, waves: string[][]) => {
  const base = Date.now() - 10_000;
  return (id: string, entityRef: string, offsetMs: number) =>
    runStore.insertRun(
      {
        id,
        entityRef,
        mode: 'test',
        trigger: 'schedule',
        hypervisorHost: 'lab-host',
        plan: { entityRef, waves, machines: [] } as any,
        options: {},
        machines: [],
      },
      new Date(base + offsetMs),
    );
};

/** On shop-01 and vault-01; the catalog hides it from users. */
const secretService: Entity = {
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Component',
  metadata: { name: 'secret', namespace: 'default' },
  spec: { type: 'service' },
  relations: [
    { type: 'dependsOn', targetRef: 'resource:default/shop-01' },
    { type: 'dependsOn', targetRef: 'resource:default/vault-01' },
  ],
};

const entities: Entity[] = [
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'web', namespace: 'default' },
    spec: { type: 'service' },
    relations: [],
  },
  // A service on a machine: enough for a run to get as far as the hypervisor host.
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'shop', namespace: 'default' },
    spec: { type: 'service' },
    relations: [{ type: 'dependsOn', targetRef: 'resource:default/shop-01' }],
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: {
      name: 'shop-01',
      namespace: 'default',
      annotations: {
        'recovery.backstage-recovery.io/engine': 'primary',
        'recovery.backstage-recovery.io/container': 'shop-01',
      },
    },
    spec: { type: 'machine' },
    relations: [
      { type: 'dependencyOf', targetRef: 'component:default/shop' },
      { type: 'dependencyOf', targetRef: 'component:default/secret' },
    ],
  },
  // On the same machine, but users may not see it in the catalog.
  secretService,
  // Users see this machine, but it runs only the secret service.
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Resource',
    metadata: { name: 'vault-01', namespace: 'default' },
    spec: { type: 'machine' },
    relations: [
      { type: 'dependencyOf', targetRef: 'component:default/secret' },
    ],
  },
  // A system users see, with a part they do not (no partOf on the parts: not in GET /readiness).
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'store', namespace: 'default' },
    spec: {},
    relations: [
      { type: 'hasPart', targetRef: 'component:default/shop' },
      { type: 'hasPart', targetRef: 'component:default/secret' },
    ],
  },
];
const HIDDEN = 'component:default/secret';

/** The catalog with its permissions: a user does not see the secret service; the plugin itself sees all. */
const restrictedCatalog = () => {
  const restricted = catalogHidingFromUsers(entities, [HIDDEN]);
  return createServiceFactory({
    service: catalogServiceRef,
    deps: {},
    factory: () => restricted,
  });
};

const journald = (
  host: string,
  unit: string,
  realtimeUs: string,
  messageId = JOURNALD_UNIT_STARTED,
) =>
  JSON.stringify({
    __REALTIME_TIMESTAMP: realtimeUs,
    _HOSTNAME: host,
    MESSAGE_ID: messageId,
    UNIT: unit,
    MESSAGE: `Started ${unit}.`,
  });

describe.each(databases.eachSupportedId())(
  'recovery router on %p',
  databaseId => {
    let knex: Knex;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          restrictedCatalog(),
          mockServices.database.factory({ knex }),
        ],
      }));
    });

    it('stores journald and docker events with sub-millisecond times, rounded to the ms', async () => {
      // journald counts µs and docker ns: neither is a whole number of ms here.
      const body = [
        journald('db-01', 'postgresql.service', '1700000000123457'),
        journald('db-01', 'nginx.service', '1700000000124500'),
      ].join('\n');
      const pushed = await request(server)
        .post('/api/recovery/events')
        .send(body);
      expect(pushed.status).toBe(201);
      expect(pushed.body).toMatchObject({
        format: 'journald',
        received: 2,
        stored: 2,
      });

      const docker = JSON.stringify({
        Type: 'container',
        Action: 'start',
        Actor: { Attributes: { name: 'cache' } },
        timeNano: 1_700_000_000_999_600_123,
      });
      const streamed = await request(server)
        .post('/api/recovery/events?format=docker')
        .send(docker);
      expect(streamed.status).toBe(201);
      expect(streamed.body).toMatchObject({ received: 1, stored: 1 });

      const rows = await knex('recovery_events')
        .select('service', 'time')
        .orderBy('time');
      expect(rows.map(r => [r.service, Number(r.time)])).toEqual([
        ['postgresql.service', 1_700_000_000_123],
        ['nginx.service', 1_700_000_000_125],
        ['cache', 1_700_000_001_000],
      ]);
      // Sent again, the rounded times match what is stored: nothing new.
      const again = await request(server)
        .post('/api/recovery/events')
        .send(body);
      expect(again.body).toMatchObject({
        received: 2,
        stored: 0,
        duplicates: 2,
      });
    });

    it('answers a malformed entity ref with 400 naming the field', async () => {
      const cases: Array<[request.Test, string]> = [
        [
          request(server)
            .post('/api/recovery/captures')
            .send({ entityRef: 'component:' }),
          'entityRef: Entity reference "component:" was not on the form',
        ],
        [
          request(server)
            .post('/api/recovery/runs')
            .send({ entityRef: '/web' }),
          'entityRef: Entity reference "/web" was not on the form',
        ],
        [
          request(server)
            .post('/api/recovery/analysis')
            .send({ entityRef: ':web' }),
          'entityRef: Entity reference ":web" was not on the form',
        ],
        [
          request(server).get('/api/recovery/captures?machineRef=resource%3A'),
          'machineRef: Entity reference "resource:" was not on the form',
        ],
        [
          request(server).get('/api/recovery/runs?entityRef=default%2F'),
          'entityRef: Entity reference "default/" was not on the form',
        ],
        [
          request(server).get('/api/recovery/runs?entityRef=a&entityRef=b'),
          'Query parameter entityRef must be given once',
        ],
        // Parsed leniently (as the name ":ref"), but no entity can have that name.
        [
          request(server).get('/api/recovery/runs?entityRef=bad%3A%3Aref'),
          'entityRef: Entity reference "bad::ref" has an invalid name ":ref"',
        ],
        [
          request(server).get(
            '/api/recovery/captures?machineRef=resource%3Adefault%2Fweb%2001',
          ),
          'machineRef: Entity reference "resource:default/web 01" has an invalid name "web 01"',
        ],
        [
          request(server)
            .post('/api/recovery/runs')
            .send({ entityRef: 'comp-onent:Default/web' }),
          'entityRef: Entity reference "comp-onent:Default/web" has an invalid kind "comp-onent"',
        ],
        // In the path: a slash or colon inside a segment, or a name the catalog cannot hold.
        [
          request(server).get('/api/recovery/readiness/component/%2F/web'),
          'path: Entity reference "component://web" was not on the form',
        ],
        [
          request(server).get('/api/recovery/plan/component/default/a%3Ab'),
          'path: Entity reference "component:default/a:b" has an invalid name "a:b"',
        ],
        [
          request(server).get('/api/recovery/analysis/system/default/web%2001'),
          'path: Entity reference "system:default/web 01" has an invalid name "web 01"',
        ],
      ];
      for (const [req, message] of cases) {
        const res = await req;
        expect({
          status: res.status,
          message: res.body.error?.message,
        }).toEqual({
          status: 400,
          message: expect.stringContaining(message),
        });
      }
    });

    it('stores events whose names are not UTF-8 and says so', async () => {
      // 'Zürich' from a Windows-1252 export: 0xFC is no UTF-8.
      const body = Buffer.concat([
        Buffer.from('{"time": 1700000100000, "machine": "z', 'latin1'),
        Buffer.from([0xfc]),
        Buffer.from('rich-01", "service": "db"}\n'),
      ]);
      const res = await request(server)
        .post('/api/recovery/events?source=zurich.jsonl')
        .set('content-type', 'text/plain')
        .send(body);
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ received: 1, stored: 1 });
      expect(res.body.warnings).toEqual([
        expect.stringMatching(
          /^zurich\.jsonl:1: 1 event names a service or machine with bytes that are not UTF-8 \(first "z\uFFFDrich-01"/,
        ),
      ]);
    });

    it('keeps who pushed each batch, as authenticated, beside the source they named', async () => {
      const push = (source: string, authorization: string, machine: string) =>
        request(server)
          .post(`/api/recovery/events?source=${source}`)
          .set('authorization', authorization)
          .send(
            JSON.stringify({ time: 1700000200000, machine, service: 'db' }),
          );
      // Both name the same source: only the backend tells them apart.
      expect(
        (
          await push(
            'collector.jsonl',
            mockCredentials.user.header('user:default/mallory'),
            'pushed-by-user-01',
          )
        ).status,
      ).toBe(201);
      expect(
        (
          await push(
            'collector.jsonl',
            mockCredentials.service.header(),
            'pushed-by-service-01',
          )
        ).status,
      ).toBe(201);
      const rows = await knex('recovery_events')
        .where({ source: 'api:collector.jsonl' })
        .orderBy('machine')
        .select('machine', 'pushed_by');
      expect(rows).toEqual([
        { machine: 'pushed-by-service-01', pushed_by: 'external:test-service' },
        { machine: 'pushed-by-user-01', pushed_by: 'user:default/mallory' },
      ]);
    });

    it("warns, once a machine, of events dated ahead of the backend's clock, and stores them", async () => {
      const ahead = Date.now() + 20 * 3_600_000;
      const res = await request(server)
        .post('/api/recovery/events?source=skewed.jsonl')
        .send(
          [
            { time: ahead, machine: 'skewed-01', service: 'db' },
            { time: ahead + 60_000, machine: 'skewed-01', service: 'api' },
            {
              time: Date.now() - 60_000,
              machine: 'on-time-01',
              service: 'web',
            },
          ]
            .map(line => JSON.stringify(line))
            .join('\n'),
        );
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ received: 3, stored: 3 });
      expect(res.body.warnings).toEqual([
        expect.stringMatching(
          /^2 events of skewed-01 dated up to 20\.0 h ahead of this backend's clock/,
        ),
      ]);
    });

    it('says where the lines went when a body has no initialization events', async () => {
      const skipped = await request(server)
        .post('/api/recovery/events?lenient=true&source=boot.jsonl')
        .send(
          [
            '{"time": "yesterday", "machine": "m", "service": "s"}',
            'not json',
            '',
            '{"time": 1, "machine": "m", "service": "s", "event": "stop"}',
          ].join('\n'),
        );
      expect(skipped.status).toBe(400);
      expect(skipped.body.error.message).toBe(
        'boot.jsonl: no initialization events in 3 lines (formats: jsonl, journald, docker); ' +
          '3 skipped as malformed, 0 ignored as not initialization events; retry without lenient=true to see the first malformed line',
      );

      const noise = await request(server)
        .post('/api/recovery/events')
        .send(
          [
            journald('db-01', 'x.service', '1700000000000000', 'other'),
            '{"__REALTIME_TIMESTAMP": "1", "MESSAGE": "hello"}',
          ].join('\n'),
        );
      expect(noise.status).toBe(400);
      expect(noise.body.error.message).toBe(
        'request body: no initialization events in 2 lines (formats: jsonl, journald, docker); 0 skipped as malformed, 2 ignored as not initialization events',
      );
    });

    it('refuses names, times and sources the store cannot hold with a 400 naming the line or parameter', async () => {
      const line = (o: object) =>
        JSON.stringify({
          time: 1_700_000_000_000,
          machine: 'limits-01',
          service: 'svc',
          ...o,
        });
      const cases: Array<[string, string, string]> = [
        [
          '',
          line({ service: 's'.repeat(300) }),
          "request body:1: 'service' is longer than 255 characters (300)",
        ],
        [
          '',
          `${line({})}\n${line({ machine: 'm'.repeat(256) })}`,
          "request body:2: 'machine' is longer than 255 characters (256)",
        ],
        [
          '',
          line({ service: 'a\u0000b' }),
          "request body:1: 'service' contains a NUL character",
        ],
        [
          '',
          line({ time: '99999999999999999999' }),
          `request body:1: 'time' is out of range ("99999999999999999999"`,
        ],
        [
          '?format=journald',
          journald('limits-01', 'x.service', '99999999999999999999999'),
          "request body:1: '__REALTIME_TIMESTAMP' is out of range",
        ],
        [
          '?format=docker&source=docker.json',
          JSON.stringify({
            Type: 'container',
            Action: 'start',
            Actor: {
              Attributes: {
                name: 'c',
                'recovery.backstage-recovery.io/service': 'x'.repeat(300),
              },
            },
            timeNano: 1,
          }),
          "docker.json:1: 'recovery.backstage-recovery.io/service' is longer than 255 characters (300)",
        ],
        [
          `?source=${'f'.repeat(252)}`,
          line({}),
          'Query parameter source must be 1 to 251 characters long, got 252',
        ],
        [
          '?source=',
          line({}),
          'Query parameter source must be 1 to 251 characters long, got 0',
        ],
        [
          '?source=a%00b',
          line({}),
          'Query parameter source must not contain NUL characters',
        ],
        [
          '?source=a&source=b',
          line({}),
          'Query parameter source must be given once',
        ],
      ];
      for (const [query, body, message] of cases) {
        const res = await request(server)
          .post(`/api/recovery/events${query}`)
          .send(body);
        expect({
          query,
          status: res.status,
          message: res.body.error?.message,
        }).toEqual({
          query,
          status: 400,
          message: expect.stringContaining(message),
        });
      }

      // At the limits, and lenient past them: stored, the rest of the batch not lost.
      const source = 'f'.repeat(251);
      const latest = Date.now() + 23 * 3_600_000;
      const emoji = '\u{1F680}'.repeat(255);
      const pushed = await request(server)
        .post(`/api/recovery/events?lenient=true&source=${source}`)
        // The latest date taken: 23 h ahead of the backend's clock (a day is the margin).
        .send(
          [
            line({ machine: 'm'.repeat(255), service: emoji }),
            line({ time: latest }),
            line({ service: 's'.repeat(256) }),
            line({ time: 1e20 }),
          ].join('\n'),
        );
      expect({ status: pushed.status, body: pushed.body }).toMatchObject({
        status: 201,
        body: { received: 2, stored: 2, skipped: 2 },
      });
      const rows = await knex('recovery_events')
        .where('source', `api:${source}`)
        .select('machine', 'service', 'time')
        .orderBy('time');
      expect(
        rows.map(r => [
          r.machine.length,
          [...r.service].length,
          Number(r.time),
        ]),
      ).toEqual([
        [255, 255, 1_700_000_000_000],
        [9, 3, latest],
      ]);
    });

    it("keeps what the catalog hides from a user out of that user's answers, as if it were not there", async () => {
      const list = await request(server).get('/api/recovery/readiness');
      expect(list.status).toBe(200);
      expect(
        list.body.items.map((r: { entityRef: string }) => r.entityRef),
      ).toEqual(['component:default/shop']);
      const notFound = {
        status: 404,
        message: `Entity ${HIDDEN} not found in the catalog`,
      };
      for (const req of [
        request(server).get('/api/recovery/readiness/component/default/secret'),
        request(server).get('/api/recovery/plan/component/default/secret'),
        request(server).post('/api/recovery/runs').send({ entityRef: HIDDEN }),
        request(server)
          .post('/api/recovery/captures')
          .send({ entityRef: HIDDEN }),
      ]) {
        const res = await req;
        expect({
          status: res.status,
          message: res.body.error?.message,
        }).toEqual(notFound);
      }
      expect(
        (await request(server).get('/api/recovery/plan/component/default/shop'))
          .status,
      ).toBe(200);
    });

    it("a backend without a hypervisor host answers a run with 503 saying what to add, not as the caller's error", async () => {
      const res = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: 'component:default/shop' });
      expect({ status: res.status, message: res.body.error?.message }).toEqual({
        status: 503,
        message:
          'No hypervisor host is registered: add a provider module such as the Docker module',
      });
    });

    it('lists the active runs of any entity, newest first, for a card to see what holds the host', async () => {
      const runStore = new RunStore(knex);
      const insert = insertRecentRun(runStore, []);
      // Runs of entities the user sees: a run of one the catalog does not show is left out.
      await insert('active-old', 'component:default/shop', 0);
      await insert('finished', 'component:default/web', 1_000);
      await insert('active-new', 'component:default/web', 2_000);
      await insert('pending', 'component:default/shop', 3_000);
      await runStore.updateRun('active-old', { status: 'running' });
      await runStore.updateRun('active-new', { status: 'running' });
      await runStore.updateRun('finished', { status: 'succeeded' });

      const ids = async (query: string) => {
        const res = await request(server).get(`/api/recovery/runs${query}`);
        expect(res.status).toBe(200);
        return res.body.items.map((r: { id: string }) => r.id);
      };
      expect(await ids('?active=true')).toEqual([
        'pending',
        'active-new',
        'active-old',
      ]);
      expect(await ids('?active=true&limit=1')).toEqual(['pending']);
      expect(await ids('?active=true&entityRef=component:default/web')).toEqual(
        ['active-new'],
      );
      expect(await ids('?entityRef=component:default/web')).toEqual([
        'active-new',
        'finished',
      ]);

      // `false` is not "finished only": refused rather than ignored.
      const refused: Array<[string, string]> = [
        ['?active=false', '"false"'],
        ['?active=1', '"1"'],
        ['?active=true&active=true', 'an array (["true","true"])'],
      ];
      for (const [query, got] of refused) {
        const res = await request(server).get(`/api/recovery/runs${query}`);
        expect({
          query,
          status: res.status,
          message: res.body.error?.message,
        }).toEqual({
          query,
          status: 400,
          message: `Query parameter active must be "true" when given, got ${got}`,
        });
      }
      await knex('recovery_runs')
        .whereIn('id', ['active-old', 'finished', 'active-new', 'pending'])
        .delete();
    });

    /** Every page of a list, each at the `pageInfo.nextCursor` of the one before: its items' ids. */
    const everyPage = async (path: string) => {
      const pages: string[][] = [];
      const totals: unknown[] = [];
      let cursor: string | undefined;
      do {
        const query = cursor
          ? `${path}&cursor=${encodeURIComponent(cursor)}`
          : path;
        const res = await request(server).get(`/api/recovery${query}`);
        expect({ query, status: res.status }).toEqual({ query, status: 200 });
        pages.push(res.body.items.map((item: { id: string }) => item.id));
        totals.push(res.body.totalItems);
        cursor = res.body.pageInfo.nextCursor;
        // Bounded: a cursor that does not move on would repeat for good.
      } while (cursor && pages.length < 10);
      return { pages, totals };
    };
    /** A GET's status and error message. */
    const answer = async (path: string) => {
      const res = await request(server).get(`/api/recovery${path}`);
      return { path, status: res.status, message: res.body.error?.message };
    };

    it('pages the runs by cursor, newest first, ties broken by id, for an entity and for all', async () => {
      const runStore = new RunStore(knex);
      const insert = insertRecentRun(runStore, []);
      await insert('page-a', 'component:default/web', 0);
      await insert('page-b', 'component:default/shop', 1_000);
      // Two runs of one instant: the id orders them, and a page may end between them.
      await insert('page-c', 'component:default/web', 2_000);
      await insert('page-d', 'component:default/web', 2_000);
      await insert('page-hidden', HIDDEN, 3_000);
      await insert('page-e', 'component:default/web', 4_000);
      const web = '/runs?entityRef=component:default/web';
      // No run lost or read twice, a page ending between the two of one instant or not; the
      // last page has no next cursor, and no page a count (the catalog says what is seen).
      expect(await everyPage(`${web}&limit=1`)).toEqual({
        pages: [['page-e'], ['page-d'], ['page-c'], ['page-a']],
        totals: [undefined, undefined, undefined, undefined],
      });
      expect((await everyPage(`${web}&limit=2`)).pages).toEqual([
        ['page-e', 'page-d'],
        ['page-c', 'page-a'],
      ]);
      // Any entity's: the hidden run is left out, each page still full.
      expect((await everyPage('/runs?limit=2')).pages).toEqual([
        ['page-e', 'page-d'],
        ['page-c', 'page-b'],
        ['page-a'],
      ]);
      // A page that holds every run left says so: no cursor to an empty page.
      const whole = await request(server).get(`/api/recovery${web}&limit=4`);
      expect(whole.body.pageInfo).toEqual({});

      await knex('recovery_runs')
        .whereIn('id', [
          'page-a',
          'page-b',
          'page-c',
          'page-d',
          'page-hidden',
          'page-e',
        ])
        .delete();
    });

    it("pages a machine's captures by cursor, newest first, ties broken by id, each page with how many are kept", async () => {
      const captures = new CaptureStore(knex);
      const vault = 'resource:default/vault-01';
      const at = (s: number) =>
        new Date(Date.UTC(2026, 10, 1, 0, 0, s)).toISOString();
      // Two captures of one instant: the id orders them, and a page may end between them.
      for (const [id, createdAt] of [
        ['pc-a', at(0)],
        ['pc-b', at(1)],
        ['pc-c', at(1)],
        ['pc-d', at(2)],
      ])
        await captures.insertCapture(captureOf(id, vault, createdAt));
      const path = `/captures?machineRef=${vault}`;
      expect(await everyPage(`${path}&limit=1`)).toEqual({
        pages: [['pc-d'], ['pc-c'], ['pc-b'], ['pc-a']],
        totals: [4, 4, 4, 4],
      });
      expect((await everyPage(`${path}&limit=3`)).pages).toEqual([
        ['pc-d', 'pc-c', 'pc-b'],
        ['pc-a'],
      ]);
      expect((await everyPage(path)).pages).toEqual([
        ['pc-d', 'pc-c', 'pc-b', 'pc-a'],
      ]);
      await knex('recovery_captures')
        .whereIn('id', ['pc-a', 'pc-b', 'pc-c', 'pc-d'])
        .delete();
    });

    it('refuses a cursor that is not a nextCursor of the list it is given to, naming the parameter', async () => {
      const cursorOf = (position: object) =>
        Buffer.from(JSON.stringify(position)).toString('base64url');
      const ofRuns = cursorOf({
        run: 'r-1',
        createdAt: '2026-11-01T00:00:00.000Z',
      });
      const ofCaptures = cursorOf({
        capture: 'c-1',
        createdAt: '2026-11-01T00:00:00.000Z',
      });
      const captures = '/captures?machineRef=resource:default/vault-01';
      for (const [path, list, got] of [
        ['/runs?cursor=nope', 'GET /runs', '"nope"'],
        ['/runs?cursor=', 'GET /runs', '""'],
        ['/runs?cursor=a&cursor=b', 'GET /runs', 'an array (["a","b"])'],
        // Another list's cursor, or one whose time is none.
        [`/runs?cursor=${ofCaptures}`, 'GET /runs', `"${ofCaptures}"`],
        [
          `/runs?cursor=${cursorOf({ run: 'r-1', createdAt: 'yesterday' })}`,
          'GET /runs',
          `"${cursorOf({ run: 'r-1', createdAt: 'yesterday' })}"`,
        ],
        [`${captures}&cursor=${ofRuns}`, 'GET /captures', `"${ofRuns}"`],
        [`${captures}&cursor=%7B%7D`, 'GET /captures', '"{}"'],
        // A NUL in an id, which PostgreSQL refuses in text: a 400, not its 500.
        ...[
          ['/runs?cursor=', 'GET /runs', { run: 'r\u0000' }],
          [`${captures}&cursor=`, 'GET /captures', { capture: 'c\u0000' }],
        ].map(([prefix, of, id]) => {
          const cursor = cursorOf({
            ...(id as object),
            createdAt: '2026-11-01',
          });
          return [`${prefix}${cursor}`, of as string, `"${cursor}"`];
        }),
      ])
        expect(await answer(path)).toEqual({
          path,
          status: 400,
          message: `Query parameter cursor must be given once, a pageInfo.nextCursor of ${list}, got ${got}`,
        });
      // The old parameter is gone, not ignored: a page from the top would pass for the next.
      expect(await answer('/runs?before=r-1')).toEqual({
        path: '/runs?before=r-1',
        status: 400,
        message:
          'Unknown query parameter "before" for GET /api/recovery/runs; it takes entityRef, active, limit, cursor',
      });
    });

    it("keeps runs of what the catalog hides from a user out of that user's answers, as if they were not there", async () => {
      const runStore = new RunStore(knex);
      const insert = insertRecentRun(runStore, [['resource:default/shop-01']]);
      await insert('seen', 'component:default/shop', 0);
      await insert('hidden-old', HIDDEN, 1_000);
      await insert('hidden-new', HIDDEN, 2_000);

      const ids = async (query: string) => {
        const res = await request(server).get(`/api/recovery/runs${query}`);
        expect(res.status).toBe(200);
        return res.body.items.map((r: { id: string }) => r.id);
      };
      expect(await ids('')).toEqual(['seen']);
      expect(await ids('?active=true')).toEqual(['seen']);
      // The newest runs are hidden ones: the page still holds `limit` visible ones if there are.
      expect(await ids('?limit=1')).toEqual(['seen']);
      const byEntity = await request(server).get(
        `/api/recovery/runs?entityRef=${HIDDEN}`,
      );
      expect({
        status: byEntity.status,
        message: byEntity.body.error?.message,
      }).toEqual({
        status: 404,
        message: `Entity ${HIDDEN} not found in the catalog`,
      });

      // A hidden entity's run answers as a run that does not exist.
      for (const id of ['hidden-new', 'no-such-run']) {
        const res = await request(server).get(`/api/recovery/runs/${id}`);
        expect({
          status: res.status,
          message: res.body.error?.message,
        }).toEqual({ status: 404, message: `Run ${id} not found` });
      }
      expect(
        (await request(server).get('/api/recovery/runs/seen')).status,
      ).toBe(200);
      await knex('recovery_runs')
        .whereIn('id', ['seen', 'hidden-old', 'hidden-new'])
        .delete();
    });

    it("leaves the parts of a system the catalog hides from a user out of that user's analysis of it", async () => {
      // Three boots: secret on vault-01, then shop on shop-01 ten minutes later. So few samples
      // make the analysis warn by name ("shop → secret"), which must go too.
      const day = Date.UTC(2024, 0, 1);
      const lines = [0, 1, 2].flatMap(boot => [
        {
          time: day + boot * 86_400_000,
          machine: 'vault-01',
          service: 'secret',
        },
        {
          time: day + boot * 86_400_000 + 600_000,
          machine: 'shop-01',
          service: 'shop',
        },
      ]);
      const pushed = await request(server)
        .post('/api/recovery/events?source=store.jsonl')
        .send(lines.map(l => JSON.stringify(l)).join('\n'));
      expect(pushed.status).toBe(201);
      const analysed = await request(server)
        .post('/api/recovery/analysis')
        .send({ entityRef: 'system:default/store' });
      expect(analysed.status).toBe(201);

      // The plugin itself (any service) sees every part.
      const full = await request(server)
        .get('/api/recovery/analysis/system/default/store')
        .set('authorization', mockCredentials.service.header());
      expect(full.status).toBe(200);
      expect(full.body.result.entityRefs).toEqual({
        secret: HIDDEN,
        shop: 'component:default/shop',
      });
      expect(
        full.body.result.dependencies.map(
          (d: { service: string; dependsOn: string }) => [
            d.service,
            d.dependsOn,
          ],
        ),
      ).toEqual([['shop', 'secret']]);
      expect(full.body.result.warnings.join('\n')).toContain('shop → secret');
      expect(full.body.result.waves).toEqual([['vault-01'], ['shop-01']]);
      expect(full.body.result.machineDependencies).toContainEqual({
        machine: 'shop-01',
        waitsFor: ['vault-01'],
        because: [
          {
            waitsFor: 'vault-01',
            reason: expect.any(String),
            service: 'shop',
            dependsOn: 'secret',
            score: expect.any(Number),
          },
        ],
      });

      // A user: not the secret service, by ref or log name, nor the machine that runs only it.
      for (const res of [
        analysed,
        await request(server).get(
          '/api/recovery/analysis/system/default/store',
        ),
      ]) {
        expect(res.status).toBe(200 + (res === analysed ? 1 : 0));
        const text = JSON.stringify(res.body);
        for (const hidden of [HIDDEN, 'secret', 'vault-01'])
          expect(text).not.toContain(hidden);
        const { result } = res.body;
        expect(result.entityRefs).toEqual({ shop: 'component:default/shop' });
        expect(result.machineRefs).toEqual({
          'shop-01': 'resource:default/shop-01',
        });
        expect(result.services).toEqual([
          { service: 'shop', machines: ['shop-01'], initializations: 3 },
        ]);
        expect(result.dependencies).toEqual([]);
        expect(result.waves).toEqual([['shop-01']]);
        expect(result.machineDependencies).toEqual([
          { machine: 'shop-01', waitsFor: [], because: [] },
        ]);
        expect(result.correlation).toEqual({
          services: ['shop'],
          matrix: [[0]],
        });
        expect(result.warnings).toEqual([
          expect.stringMatching(/^only 3 boots of at least half the services/),
          'left out as the catalog does not show them to you: 1 service, 1 machine and 1 warning about them',
        ]);
      }
      await knex('recovery_events').where('source', 'api:store.jsonl').delete();
    });

    it('answers the analysis of an entity that is not a System as POST does, with 400, not "none yet"', async () => {
      const expected = {
        name: 'InputError',
        message:
          'component:default/shop is not a System: dependency analysis runs per system',
      };
      const got = await request(server).get(
        '/api/recovery/analysis/component/default/shop',
      );
      const asked = await request(server)
        .post('/api/recovery/analysis')
        .send({ entityRef: 'component:default/shop' });
      expect([got.status, got.body.error]).toEqual([
        400,
        expect.objectContaining(expected),
      ]);
      expect([asked.status, asked.body.error]).toEqual([
        400,
        expect.objectContaining(expected),
      ]);
    });

    it("refuses a clock reading that would move its machine's boots with a 400 naming the line; lenient skips it", async () => {
      const t = Date.UTC(2024, 0, 1);
      const body = [
        JSON.stringify({ time: t, machine: 'shop-01', service: 'shop' }),
        JSON.stringify({
          time: t,
          machine: 'shop-01',
          event: 'clock',
          reference: 8.64e15,
        }),
      ].join('\n');
      const refused = await request(server)
        .post('/api/recovery/events?source=far.jsonl')
        .set('content-type', 'text/plain')
        .send(body);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toEqual(
        expect.stringMatching(
          /^far\.jsonl:2: a clock reading's 'reference' is \d+ years ahead of its 'time': no clock is more than 100 years off/,
        ),
      );
      const lenient = await request(server)
        .post('/api/recovery/events?source=far.jsonl&lenient=true')
        .set('content-type', 'text/plain')
        .send(body);
      expect(lenient.body).toMatchObject({ received: 1, skipped: 1 });
      await knex('recovery_events').where('source', 'api:far.jsonl').delete();
    });

    it('refuses, naming its line and the reading, a start the clock reading after it moves past the last date, rather than store what no analysis can place; lenient skips it', async () => {
      const t = Date.UTC(2024, 0, 1);
      const body = [
        JSON.stringify({ time: t, machine: 'shop-01', service: 'shop' }),
        JSON.stringify({
          time: 8.64e15 - 1000,
          machine: 'shop-01',
          service: 'shop',
        }),
        JSON.stringify({
          time: t,
          machine: 'shop-01',
          event: 'clock',
          reference: t + 86_400_000,
        }),
      ].join('\n');
      const refused = await request(server)
        .post('/api/recovery/events?source=edge.jsonl')
        .set('content-type', 'text/plain')
        .send(body);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toBe(
        'edge.jsonl:2: its time +275760-09-12T23:59:59.000Z (machine time) is past the last date there is (+275760-09-13T00:00:00.000Z) once moved by +1.0 days, ' +
          "the offset of shop-01's clock from its reading at line 3 (taken at 2024-01-01T00:00:00.000Z, machine time): is the event's time, or that reading's 'reference', in the wrong unit?",
      );
      expect(
        await knex('recovery_events')
          .where('source', 'api:edge.jsonl')
          .select('time'),
      ).toEqual([]);
      const lenient = await request(server)
        .post('/api/recovery/events?source=edge.jsonl&lenient=true')
        .set('content-type', 'text/plain')
        .send(body);
      expect(lenient.body).toMatchObject({
        received: 2,
        stored: 2,
        skipped: 1,
      });
      const rows = await knex('recovery_events')
        .where('source', 'api:edge.jsonl')
        .select('time');
      expect(rows.map(r => Number(r.time)).sort()).toEqual([t, t]);
      await knex('recovery_events').where('source', 'api:edge.jsonl').delete();
    });

    it("refuses an event dated more than a day past the backend's clock with a 400 naming the line, judged on the reference clock where the push reads its machine's clock; lenient skips it", async () => {
      const now = Date.now();
      const hour = 3_600_000;
      const future = JSON.stringify({
        time: '2999-12-06T01:00:00Z',
        machine: 'web-01',
        service: 'web',
        event: 'start',
      });
      const body = [
        JSON.stringify({ time: now - hour, machine: 'web-01', service: 'web' }),
        future,
      ].join('\n');
      const refused = await request(server)
        .post('/api/recovery/events?format=jsonl&source=future.jsonl')
        .set('content-type', 'text/plain')
        .send(body);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toMatch(
        /^future\.jsonl:2: its time 2999-12-06T01:00:00\.000Z is more than 1 day after it was received \(\S+Z\): an event from the future would stay web-01's newest for good\. Is web-01's clock ahead\? Push a reading of it/,
      );
      expect(
        await knex('recovery_events').where('source', 'api:future.jsonl'),
      ).toEqual([]);
      const lenient = await request(server)
        .post(
          '/api/recovery/events?format=jsonl&source=future.jsonl&lenient=true',
        )
        .set('content-type', 'text/plain')
        .send(body);
      expect([lenient.status, lenient.body]).toMatchObject([
        201,
        { received: 1, stored: 1, skipped: 1 },
      ]);
      expect(
        (
          await knex('recovery_events')
            .where('source', 'api:future.jsonl')
            .select('time')
        ).map(r => Number(r.time)),
      ).toEqual([now - hour]);

      // Hours ahead (a clock skewed, a local time written as UTC): taken, the analysis corrects it.
      const skewed = JSON.stringify({
        time: now + 14 * hour,
        machine: 'web-02',
        service: 'web',
      });
      expect(
        (
          await request(server)
            .post('/api/recovery/events?source=future.jsonl')
            .set('content-type', 'text/plain')
            .send(skewed)
        ).status,
      ).toBe(201);
      // Two days ahead by its machine's clock, which its reading in the push says is two days ahead: taken.
      const reading = JSON.stringify({
        time: now + 48 * hour,
        machine: 'web-03',
        event: 'clock',
        reference: now,
      });
      const ahead = JSON.stringify({
        time: now + 47 * hour,
        machine: 'web-03',
        service: 'web',
      });
      const read = await request(server)
        .post('/api/recovery/events?source=future.jsonl')
        .set('content-type', 'text/plain')
        .send([ahead, reading].join('\n'));
      expect([read.status, read.body.stored]).toEqual([201, 2]);
      // Without the reading, refused; a reading whose reference is two days ahead, refused too.
      const alone = await request(server)
        .post('/api/recovery/events?source=future.jsonl')
        .set('content-type', 'text/plain')
        .send(ahead);
      expect([alone.status, alone.body.error.message]).toEqual([
        400,
        expect.stringMatching(
          /^future\.jsonl:1: its time \S+ is more than 1 day after it was received/,
        ),
      ]);
      const badReading = JSON.stringify({
        time: now,
        machine: 'web-03',
        event: 'clock',
        reference: now + 48 * hour,
      });
      const bad = await request(server)
        .post('/api/recovery/events?source=future.jsonl')
        .set('content-type', 'text/plain')
        .send(badReading);
      expect([bad.status, bad.body.error.message]).toEqual([
        400,
        expect.stringMatching(
          /^future\.jsonl:1: the clock reading's 'reference' \S+ is more than 1 day after it was received .*: a reading is never taken in the future$/,
        ),
      ]);
      // Moved by a reading into the future: refused, naming the reading.
      const moved = await request(server)
        .post('/api/recovery/events?source=future.jsonl')
        .set('content-type', 'text/plain')
        .send(
          [
            JSON.stringify({
              time: now - 50 * hour,
              machine: 'web-04',
              event: 'clock',
              reference: now,
            }),
            JSON.stringify({
              time: now - hour,
              machine: 'web-04',
              service: 'web',
            }),
          ].join('\n'),
        );
      expect([moved.status, moved.body.error.message]).toEqual([
        400,
        expect.stringMatching(
          /^future\.jsonl:2: its time \S+ \(machine time\) is \S+ once moved by \+2\.1 days, the offset of web-04's clock from its reading at line 1: more than 1 day after/,
        ),
      ]);
      await knex('recovery_events')
        .where('source', 'api:future.jsonl')
        .delete();
    });

    it('refuses a name with a lone UTF-16 surrogate with a 400 naming line and field, as the CLI does, rather than store it as U+FFFD; lenient skips it', async () => {
      const body = [
        JSON.stringify({
          time: 1_700_000_000_000,
          machine: 'shop-01',
          service: 'shop',
        }),
        // As a JSON export writes half a surrogate pair: the escape "\ud800".
        JSON.stringify({
          time: 1_700_000_060_000,
          machine: 'shop-01',
          service: 'shop\ud800',
        }),
      ].join('\n');
      expect(body).toContain('"shop\\ud800"');
      const refused = await request(server)
        .post('/api/recovery/events?source=names.jsonl')
        .set('content-type', 'text/plain')
        .send(body);
      expect(refused.status).toBe(400);
      expect(refused.body.error.message).toBe(
        `names.jsonl:2: 'service' contains a lone UTF-16 surrogate (\\ud800 at character 5 of "shop\\ud800"): UTF-8 has no form for it, so it would be stored and shown as U+FFFD and match no catalog name; a name cut inside a character?`,
      );
      const lenient = await request(server)
        .post('/api/recovery/events?source=names.jsonl&lenient=true')
        .set('content-type', 'text/plain')
        .send(body);
      expect(lenient.body).toMatchObject({
        received: 1,
        stored: 1,
        skipped: 1,
      });
      const rows = await knex('recovery_events')
        .where('source', 'api:names.jsonl')
        .select('service');
      expect(rows.map(r => r.service)).toEqual(['shop']);
      await knex('recovery_events').where('source', 'api:names.jsonl').delete();
    });

    it('refuses input the API does not document with a 400 naming the field and what it got, rather than guess', async () => {
      const cases: Array<[request.Test, string]> = [
        // Only an absent mode is the default test recovery.
        [
          request(server)
            .post('/api/recovery/runs')
            .send({ entityRef: 'component:default/shop', mode: null }),
          'mode must be "test" or "failover", got null',
        ],
        [
          request(server)
            .post('/api/recovery/runs')
            .send({ entityRef: 'component:default/shop', mode: ['test'] }),
          'mode must be "test" or "failover", got an array (["test"])',
        ],
        [
          request(server)
            .post('/api/recovery/runs')
            .send({ entityRef: 'component:default/shop', mode: 1 }),
          'mode must be "test" or "failover", got a number (1)',
        ],
        [
          request(server)
            .post('/api/recovery/runs')
            .send({
              entityRef: 'component:default/shop',
              options: { reverseBootorder: true },
            }),
          'options: unknown "reverseBootorder"; the only option is reverseBootOrder',
        ],
        // Not an object: no entityRef, and for the analysis no sweep of every system.
        [
          request(server).post('/api/recovery/analysis').send([]),
          'Request body must be a JSON object, got an array ([])',
        ],
        [
          request(server)
            .post('/api/recovery/runs')
            .send([{ entityRef: 'component:default/shop' }]),
          'Request body must be a JSON object, got an array',
        ],
        // Arrays whose Number() is an integer all the same.
        [
          request(server).get(
            '/api/recovery/captures?machineRef=resource:default/shop-01&limit[]=5',
          ),
          'Query parameter limit must be given once, an integer from 1 to 500',
        ],
        [
          request(server).get('/api/recovery/runs?limit=5&limit=6'),
          'Query parameter limit must be given once, an integer from 1 to 500',
        ],
        [
          request(server)
            .post('/api/recovery/events?lenient=yes')
            .send('{"time": 1, "machine": "m", "service": "s"}'),
          'Query parameter lenient must be true, false, 1 or 0 when given, got "yes"',
        ],
        // A misspelt query parameter would otherwise be ignored: every run, not the entity's.
        [
          request(server).get(
            '/api/recovery/runs?entity=component:default/shop',
          ),
          'Unknown query parameter "entity" for GET /api/recovery/runs; it takes entityRef, active, limit, cursor',
        ],
        [
          request(server).get(
            '/api/recovery/readiness/component/default/shop?fresh=1',
          ),
          'Unknown query parameter "fresh" for GET /api/recovery/readiness/component/default/shop; it takes none',
        ],
        [
          request(server).get('/api/recovery/readiness?include=plans'),
          'Query parameter include must be "plan" when given, got "plans"',
        ],
        [
          request(server).get(
            '/api/recovery/readiness?include=plan&include=plan',
          ),
          'Query parameter include must be "plan" when given, got an array',
        ],
        [
          request(server)
            .post('/api/recovery/events?formats=jsonl')
            .send('{"time": 1, "machine": "m", "service": "s"}'),
          'Unknown query parameter "formats" for POST /api/recovery/events; it takes format, source, lenient',
        ],
        // A field of the wrong type is named with what it got, not said to be missing.
        [
          request(server).post('/api/recovery/runs').send({ entityRef: 1 }),
          'entityRef must be a string, e.g. "component:default/web", got a number (1)',
        ],
        [
          request(server)
            .post('/api/recovery/captures')
            .send({ entityRef: ['component:default/shop'] }),
          'entityRef must be a string, e.g. "component:default/web", got an array (["component:default/shop"])',
        ],
        [
          request(server)
            .post('/api/recovery/analysis')
            .send({ entityRef: true }),
          'entityRef must be a string, e.g. "system:default/shop", got a boolean (true)',
        ],
        // null options are no object, as a null mode is no mode: not a run without options.
        [
          request(server)
            .post('/api/recovery/runs')
            .send({ entityRef: 'component:default/web', options: null }),
          'options must be an object, got null',
        ],
        [
          request(server)
            .post('/api/recovery/runs')
            .send({ entityRef: 'component:default/web', options: 'fast' }),
          'options must be an object, got "fast"',
        ],
        // Given twice is not missing, nor a format named "jsonl,docker".
        [
          request(server).get(
            '/api/recovery/captures?machineRef=resource:default/shop-01&machineRef=resource:default/shop-01',
          ),
          'Query parameter machineRef must be given once, e.g. resource:default/web-01, got an array',
        ],
        [
          request(server)
            .post('/api/recovery/events?format=jsonl&format=docker')
            .send('{"time": 1, "machine": "m", "service": "s"}'),
          'format must be one of jsonl, journald, docker, got an array (["jsonl","docker"])',
        ],
        // As in names: a line break would garble each message naming the source.
        [
          request(server)
            .post('/api/recovery/events?source=a%0Ab')
            .send('{"time": 1700000000000, "machine": "m", "service": "s"}'),
          'Query parameter source must not contain control characters, got "a\\nb"',
        ],
        // Decimal digits only: Number() reads these as integers too.
        ...['0x10', '1e1', '%205', '5.0'].flatMap(limit => [
          [
            request(server).get(`/api/recovery/runs?limit=${limit}`),
            'Query parameter limit must be given once, an integer from 1 to 500',
          ] as [request.Test, string],
          [
            request(server).get(`/api/recovery/readiness?limit=${limit}`),
            'Query parameter limit must be given once, an integer from 1 to 500',
          ] as [request.Test, string],
        ]),
      ];
      for (const [req, message] of cases) {
        const res = await req;
        expect({
          status: res.status,
          message: res.body.error?.message,
        }).toEqual({ status: 400, message: expect.stringContaining(message) });
      }

      // A ref longer than the catalog's default limits allow is refused without echoing it.
      const long = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: `component:default/${'a'.repeat(200_000)}` });
      expect({
        status: long.status,
        message: long.body.error?.message,
      }).toEqual({
        status: 400,
        message: expect.stringMatching(
          /^entityRef: Entity reference "component:default\/a+… is 200018 characters long, longer than the catalog's default limits allow/,
        ),
      });
      expect(long.body.error.message.length).toBeLessThan(300);

      // lenient=1 is lenient, lenient=0 strict, as true and false.
      const body = [
        '{"time": 1700000200000, "machine": "lenient-01", "service": "s"}',
        'not json',
      ].join('\n');
      const lenient = await request(server)
        .post('/api/recovery/events?lenient=1')
        .send(body);
      expect({ status: lenient.status, skipped: lenient.body.skipped }).toEqual(
        { status: 201, skipped: 1 },
      );
      const strict = await request(server)
        .post('/api/recovery/events?lenient=0')
        .send(body);
      expect({
        status: strict.status,
        message: strict.body.error?.message,
      }).toEqual({
        status: 400,
        message: expect.stringContaining('request body:2: invalid JSON'),
      });

      // A machine not in the catalog: 404, as documented.
      const unknown = await request(server).get(
        '/api/recovery/captures?machineRef=resource:default/nowhere-01',
      );
      expect({
        status: unknown.status,
        message: unknown.body.error?.message,
      }).toEqual({
        status: 404,
        message: 'Entity resource:default/nowhere-01 not found in the catalog',
      });
    });

    it('takes options.reverseBootOrder only as a boolean; false is the default, no test hook', async () => {
      const run = (options: object) =>
        request(server)
          .post('/api/recovery/runs')
          .send({ entityRef: 'component:default/web', options });
      const sent: Array<[unknown, string]> = [
        ['false', '"false"'],
        ['true', '"true"'],
        [0, 'a number (0)'],
        [1, 'a number (1)'],
        [null, 'null'],
        [{}, 'an object ({})'],
      ];
      for (const [value, got] of sent) {
        const res = await run({ reverseBootOrder: value });
        expect({
          value,
          status: res.status,
          message: res.body.error?.message,
        }).toEqual({
          value,
          status: 400,
          message: `options.reverseBootOrder must be a boolean, got ${got}`,
        });
      }
      // Test hooks are off here: false gets past them to the plan (web needs no machines).
      const asDefault = await run({ reverseBootOrder: false });
      expect({
        status: asDefault.status,
        message: asDefault.body.error?.message,
      }).toEqual({
        status: 400,
        message: expect.stringContaining(
          'component:default/web needs no machines',
        ),
      });
      expect(
        (await run({ reverseBootOrder: true })).body.error?.message,
      ).toContain('are test hooks');
    });
  },
);

/** A site where a system users may not see holds a service they see, and one they do not. */
const SECRET_SYSTEM = 'system:default/secret-sys';
const machineOf = (name: string, services: string[]): Entity => ({
  apiVersion: 'backstage.io/v1alpha1',
  kind: 'Resource',
  metadata: {
    name,
    namespace: 'default',
    annotations: {
      'recovery.backstage-recovery.io/engine': 'primary',
      'recovery.backstage-recovery.io/container': name,
    },
  },
  spec: { type: 'machine' },
  relations: services.map(targetRef => ({ type: 'dependencyOf', targetRef })),
});
/** Runs on shop-01 and names a dependency the catalog does not hold (not in GET /readiness: no machine names it). */
const ORDERS = 'component:default/orders';
const siteEntities: Entity[] = [
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'orders', namespace: 'default' },
    spec: { type: 'service' },
    relations: [
      { type: 'dependsOn', targetRef: 'resource:default/shop-01' },
      { type: 'dependsOn', targetRef: 'component:default/ledger' },
    ],
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'Component',
    metadata: { name: 'shop', namespace: 'default' },
    spec: { type: 'service', system: 'store' },
    relations: [
      { type: 'dependsOn', targetRef: 'resource:default/shop-01' },
      { type: 'partOf', targetRef: 'system:default/store' },
    ],
  },
  secretService,
  machineOf('shop-01', ['component:default/shop', HIDDEN]),
  machineOf('vault-01', [HIDDEN]),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'store', namespace: 'default' },
    spec: {},
    relations: [{ type: 'hasPart', targetRef: 'component:default/shop' }],
  },
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'secret-sys', namespace: 'default' },
    spec: {},
    relations: [
      { type: 'hasPart', targetRef: 'component:default/shop' },
      { type: 'hasPart', targetRef: HIDDEN },
    ],
  },
];

describe.each(databases.eachSupportedId())(
  'what the catalog hides from a user, in readiness and runs, on %p',
  databaseId => {
    let knex: Knex;
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    const asPlugin = mockCredentials.service.header();
    const SECRET = 'VAULT_TOKEN=s3cr3t';

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      const restricted = catalogHidingFromUsers(siteEntities, [
        HIDDEN,
        SECRET_SYSTEM,
      ]);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({ hypervisorHosts: [new FakeHost({})] }),
          createServiceFactory({
            service: catalogServiceRef,
            deps: {},
            factory: () => restricted,
          }),
          mockServices.database.factory({ knex }),
        ],
      }));
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      await captureStore.insertCapture({
        id: 'cap-shop-01',
        machineRef: 'resource:default/shop-01',
        engine: 'primary',
        container: 'shop-01',
        imageId: 'sha256:1',
        sizeBytes: 1,
        checksum: 'sha256:1',
        artifact: '/captures/shop-01.tar',
        runtime: {
          hostname: 'shop-01',
          networks: [{ name: 'prod', aliases: [] }],
          env: [],
          exposedPorts: [],
          labels: {},
        },
        adaptations: [],
        durationMs: 1,
        createdAt: new Date().toISOString(),
      });
      // The store's analysis warns about shop and the secret service, which is outside shop's plan.
      await new EventStore(knex).insertAnalysis({
        id: 'store-analysis',
        scope: 'system:default/store',
        events: 6,
        createdAt: new Date().toISOString(),
        result: {
          services: [
            { service: 'shop', machines: ['shop-01'], initializations: 3 },
            { service: 'secret', machines: ['vault-01'], initializations: 3 },
          ],
          dependencies: [],
          serviceOrder: ['secret', 'shop'],
          machineOrder: ['vault-01', 'shop-01'],
          waves: [['vault-01', 'shop-01']],
          machineDependencies: [],
          rebootsFollowed: [],
          cycles: [],
          machineCycles: [],
          correlation: { services: [], matrix: [] },
          warnings: [
            'shop started 30 s after secret in every boot: too soon to tell',
          ],
          skipped: 0,
          at: 0,
          entityRefs: { shop: 'component:default/shop', secret: HIDDEN },
          machineRefs: {
            'shop-01': 'resource:default/shop-01',
            'vault-01': 'resource:default/vault-01',
          },
        } as any,
      });
    });

    afterEach(async () => {
      await knex('recovery_runs').delete();
    });

    const shopWarning =
      'shop started 30 s after secret in every boot: too soon to tell';
    const leftOutForUser =
      'left out as the catalog does not show them to you: 1 warning about parts outside this plan';

    it('shows a user a run of a system the catalog hides only as far as readiness judges by it, as GET /runs/{id} hides it', async () => {
      // The hidden system's run covers shop's plan (shop-01 under shop's probes); a console tail tells secrets.
      const plan = {
        entityRef: SECRET_SYSTEM,
        waves: [['resource:default/vault-01'], ['resource:default/shop-01']],
        machines: [
          {
            machineRef: 'resource:default/vault-01',
            wave: 0,
            services: [HIDDEN],
            waitsFor: [],
            probes: [],
          },
          {
            machineRef: 'resource:default/shop-01',
            wave: 1,
            services: ['component:default/shop', HIDDEN],
            waitsFor: ['resource:default/vault-01'],
            probes: [],
          },
        ],
      };
      await runStore.insertRun(
        {
          id: 'sysrun',
          entityRef: SECRET_SYSTEM,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'fake',
          plan,
          options: {},
          machines: plan.machines.map(({ machineRef, wave }) => ({
            machineRef,
            wave,
          })),
        },
        new Date(Date.now() - 5_000),
      );
      await runStore.updateRun('sysrun', { status: 'running' });
      await runStore.updateRunMachine('sysrun', 'resource:default/vault-01', {
        phase: 'ready',
        logTail: SECRET,
      });
      await runStore.updateRun('sysrun', {
        status: 'succeeded',
        finishedAt: new Date().toISOString(),
        rtoSeconds: 3,
      });

      expect(
        (await request(server).get('/api/recovery/runs/sysrun')).status,
      ).toBe(404);
      const one = await request(server).get(
        '/api/recovery/readiness/component/default/shop',
      );
      const list = await request(server).get('/api/recovery/readiness');
      expect(
        list.body.items.map((r: { entityRef: string }) => r.entityRef).sort(),
      ).toEqual(['component:default/shop', 'system:default/store']);
      for (const readiness of [one.body, ...list.body.items]) {
        expect(readiness.status, JSON.stringify(readiness.reasons)).toBe(
          'ready',
        );
        expect(readiness.lastRun).toEqual({
          mode: 'test',
          status: 'succeeded',
          createdAt: expect.any(String),
          finishedAt: expect.any(String),
          rtoSeconds: 3,
        });
      }
      for (const text of [
        JSON.stringify(one.body),
        JSON.stringify(list.body),
      ]) {
        for (const hidden of [
          SECRET_SYSTEM,
          'sysrun',
          SECRET,
          'vault-01',
          HIDDEN,
        ])
          expect(text).not.toContain(hidden);
      }

      // The plugin itself sees the whole run.
      const full = await request(server)
        .get('/api/recovery/readiness/component/default/shop')
        .set('authorization', asPlugin);
      expect(full.body.lastRun).toMatchObject({
        id: 'sysrun',
        entityRef: SECRET_SYSTEM,
        plan: { entityRef: SECRET_SYSTEM },
      });
    });

    it('leaves out of the plan in readiness the analysis warnings GET /plan leaves out for the caller', async () => {
      const plan = await request(server).get(
        '/api/recovery/plan/component/default/shop',
      );
      expect(plan.body.analysis.warnings).toEqual([leftOutForUser]);
      const one = await request(server).get(
        '/api/recovery/readiness/component/default/shop',
      );
      const list = await request(server).get(
        '/api/recovery/readiness?include=plan',
      );
      for (const readiness of [one.body, ...list.body.items])
        expect(readiness.plan.analysis.warnings).toEqual([leftOutForUser]);
      const full = await request(server)
        .get('/api/recovery/readiness/component/default/shop')
        .set('authorization', asPlugin);
      expect(full.body.plan.analysis.warnings).toEqual([shopWarning]);
    });

    it('lists each plan in the overview as its machine count, in full only when asked for, and each capture as its id and time', async () => {
      const one = await request(server).get(
        '/api/recovery/readiness/component/default/shop',
      );
      const [list, planned] = await Promise.all(
        ['', '?include=plan'].map(q =>
          request(server).get(`/api/recovery/readiness${q}`),
        ),
      );
      // Ages aside: a second may pass between two answers.
      const shop = (res: typeof list) => {
        const item = res.body.items.find(
          (r: { entityRef: string }) =>
            r.entityRef === 'component:default/shop',
        );
        return {
          ...item,
          captures: item.captures.map(
            ({ ageSeconds, ...capture }: any) => capture,
          ),
        };
      };
      expect(shop(list)).not.toHaveProperty('plan');
      expect(shop(list).machineCount).toBe(one.body.plan.machines.length);
      expect(one.body.captures.length).toBeGreaterThan(0);
      expect(shop(list).captures).toEqual(
        one.body.captures.map(({ machineRef, latest }: any) => ({
          machineRef,
          latest: latest && { id: latest.id, createdAt: latest.createdAt },
        })),
      );
      expect(shop(planned)).toEqual({ ...shop(list), plan: one.body.plan });
    });

    it("gives each reader of a run its plan's warnings as GET /plan gives them to that reader", async () => {
      const started = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: 'component:default/shop' });
      expect(started.status).toBe(202);
      expect(started.body.plan.analysis.warnings).toEqual([leftOutForUser]);
      await vi.waitFor(
        async () =>
          expect((await runStore.getRun(started.body.id))!.status).toBe(
            'succeeded',
          ),
        { timeout: 10_000, interval: 20 },
      );
      // Kept as the plugin sees it: the plugin itself reads the warning that names the secret service.
      const forPlugin = await request(server)
        .get(`/api/recovery/runs/${started.body.id}`)
        .set('authorization', asPlugin);
      expect(forPlugin.body.plan.analysis.warnings).toEqual([shopWarning]);
      for (const res of [
        await request(server).get(`/api/recovery/runs/${started.body.id}`),
        await request(server).get('/api/recovery/runs'),
        await request(server).get(
          '/api/recovery/runs?entityRef=component:default/shop',
        ),
        await request(server).get(
          '/api/recovery/readiness/component/default/shop',
        ),
      ]) {
        expect(res.status).toBe(200);
        const run = res.body.items?.[0] ?? res.body.lastRun ?? res.body;
        expect(run.id).toBe(started.body.id);
        expect(run.plan.analysis.warnings).toEqual([leftOutForUser]);
      }
    });

    it('reads a run kept with every warning of its analysis (before runs were read this way) as any other; once that analysis is gone, without them', async () => {
      const secretWarning =
        'secret on vault-01: a clock reading contradicts another';
      const kept = (id: string, analysisId: string, at: number) =>
        runStore.insertRun(
          {
            id,
            entityRef: 'component:default/shop',
            mode: 'test',
            trigger: 'schedule',
            hypervisorHost: 'fake',
            plan: {
              entityRef: 'component:default/shop',
              analysis: {
                id: analysisId,
                createdAt: new Date().toISOString(),
                warnings: [shopWarning, secretWarning],
              },
              waves: [['resource:default/shop-01']],
              machines: [
                {
                  machineRef: 'resource:default/shop-01',
                  wave: 0,
                  services: ['component:default/shop'],
                  waitsFor: [],
                  probes: [],
                },
              ],
            },
            options: {},
            machines: [{ machineRef: 'resource:default/shop-01', wave: 0 }],
          },
          new Date(Date.now() - at),
        );
      await kept('kept-before', 'store-analysis', 5_000);
      await kept('kept-pruned', 'pruned-analysis', 10_000);
      for (const id of ['kept-before', 'kept-pruned']) {
        await runStore.updateRun(id, { status: 'running' });
        await runStore.updateRun(id, {
          status: 'succeeded',
          finishedAt: new Date().toISOString(),
          rtoSeconds: 2,
        });
      }
      const elsewhere =
        '1 warning of the analysis about parts of the system outside this plan: see its analysis';
      const warningsOf = async (id: string, authorization?: string) => {
        const req = request(server).get(`/api/recovery/runs/${id}`);
        return (
          await (authorization ? req.set('authorization', authorization) : req)
        ).body.plan.analysis.warnings;
      };
      expect(await warningsOf('kept-before')).toEqual([
        elsewhere,
        leftOutForUser,
      ]);
      expect(await warningsOf('kept-before', asPlugin)).toEqual([
        shopWarning,
        elsewhere,
      ]);
      // Readiness judges shop by its newest run: read the same way.
      const readiness = await request(server).get(
        '/api/recovery/readiness/component/default/shop',
      );
      expect(readiness.body.lastRun).toMatchObject({
        id: 'kept-before',
        plan: { analysis: { warnings: [elsewhere, leftOutForUser] } },
      });
      const gone = [
        '2 warnings of the analysis left out: it is no longer kept, so the parts of the system they name cannot be checked against what the catalog shows you',
      ];
      expect(await warningsOf('kept-pruned')).toEqual(gone);
      expect(await warningsOf('kept-pruned', asPlugin)).toEqual(gone);
      const listed = await request(server).get('/api/recovery/runs');
      expect(JSON.stringify(listed.body)).not.toContain('secret');
    });

    it('reads a new run by the names its warnings mention, kept with it and shown to no one, once its analysis is pruned', async () => {
      const started = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: 'component:default/shop' });
      expect(started.status).toBe(202);
      expect(started.body.plan.analysis).not.toHaveProperty('names');
      await vi.waitFor(
        async () =>
          expect((await runStore.getRun(started.body.id))!.status).toBe(
            'succeeded',
          ),
        { timeout: 10_000, interval: 20 },
      );
      const admitted = (await runStore.getRun(started.body.id))!;
      expect(admitted.plan.analysis!.names).toEqual([
        ['shop', 'component:default/shop'],
        ['secret', HIDDEN],
      ]);
      // The same run of an analysis pruned since (recovery.analysis.keepLast): nothing else tells the names.
      await runStore.insertRun(
        {
          id: 'of-pruned',
          entityRef: admitted.entityRef,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'fake',
          plan: {
            ...admitted.plan,
            analysis: { ...admitted.plan.analysis!, id: 'pruned-analysis' },
          },
          options: {},
          machines: admitted.machines.map(({ machineRef, wave }) => ({
            machineRef,
            wave,
          })),
        },
        new Date(),
      );
      await runStore.updateRun('of-pruned', { status: 'running' });
      await runStore.updateRun('of-pruned', {
        status: 'succeeded',
        finishedAt: new Date().toISOString(),
        rtoSeconds: 2,
      });
      const forPlugin = await request(server)
        .get('/api/recovery/runs/of-pruned')
        .set('authorization', asPlugin);
      expect(forPlugin.body.plan.analysis).toEqual({
        id: 'pruned-analysis',
        createdAt: expect.any(String),
        warnings: [shopWarning],
      });
      for (const res of [
        await request(server).get('/api/recovery/runs/of-pruned'),
        await request(server).get('/api/recovery/runs'),
        await request(server).get(
          '/api/recovery/runs?entityRef=component:default/shop',
        ),
        await request(server).get(
          '/api/recovery/readiness/component/default/shop',
        ),
      ]) {
        expect(res.status).toBe(200);
        const runs = res.body.items ?? [res.body.lastRun ?? res.body];
        expect(runs.map((run: { id: string }) => run.id)).toContain(
          'of-pruned',
        );
        for (const run of runs)
          expect(run.plan.analysis).toEqual({
            id: expect.any(String),
            createdAt: expect.any(String),
            warnings: [leftOutForUser],
          });
      }
    });

    it('refuses with 409 a run whose plan lacks a dependency the catalog declares but does not hold, unless the caller accepts it', async () => {
      const run = (body: object) =>
        request(server)
          .post('/api/recovery/runs')
          .send({ entityRef: ORDERS, ...body });
      const problem = `${ORDERS} dependsOn component:default/ledger, which is not in the catalog: a recovery plan cannot include it`;
      const refused = await run({});
      expect({
        status: refused.status,
        body: refused.body.error,
      }).toMatchObject({
        status: 409,
        body: {
          name: 'MissingDependenciesError',
          message: `${ORDERS} cannot be recovered as the catalog declares it: ${problem}. Fix the catalog, or start the run accepting missing dependencies (acceptMissingDependencies: true) to recover without them`,
          missing: [problem],
        },
      });
      for (const value of ['yes', 1, null]) {
        const res = await run({ acceptMissingDependencies: value });
        expect({
          value,
          status: res.status,
          message: res.body.error?.message,
        }).toEqual({
          value,
          status: 400,
          message: expect.stringContaining(
            'acceptMissingDependencies must be a boolean, got',
          ),
        });
      }
      const started = await run({ acceptMissingDependencies: true });
      expect(started.status).toBe(202);
      await vi.waitFor(
        async () =>
          expect((await runStore.getRun(started.body.id))!.status).toBe(
            'succeeded',
          ),
        { timeout: 10_000, interval: 20 },
      );
      const read = await request(server).get(
        `/api/recovery/runs/${started.body.id}`,
      );
      expect(read.body.steps).toContainEqual(
        expect.objectContaining({
          level: 'warning',
          message: `Catalog problem: ${problem}`,
        }),
      );
    });

    it('answers a start while a run the caller may not see holds the host with a 409 that names no run, as GET /runs?active=true lists none', async () => {
      await runStore.insertRun(
        {
          id: 'held',
          entityRef: SECRET_SYSTEM,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'fake',
          plan: { entityRef: SECRET_SYSTEM, waves: [], machines: [] },
          options: {},
          machines: [],
        },
        new Date(),
      );
      const refused = await request(server)
        .post('/api/recovery/runs')
        .send({ entityRef: 'component:default/shop' });
      expect(refused.status).toBe(409);
      expect(refused.body.error).toEqual({
        name: 'HypervisorHostBusyError',
        message: "Hypervisor host 'fake' is busy with another run",
        statusCode: 409,
      });
      expect(
        (await request(server).get('/api/recovery/runs?active=true')).body
          .items,
      ).toEqual([]);

      // The plugin itself (the nightly check) sees it, and is told which run to wait for.
      const named = await request(server)
        .post('/api/recovery/runs')
        .set('authorization', asPlugin)
        .send({ entityRef: 'component:default/shop' });
      expect(named.status).toBe(409);
      expect(named.body.error).toMatchObject({
        name: 'HypervisorHostBusyError',
        runId: 'held',
        entityRef: SECRET_SYSTEM,
      });
      expect(
        (
          await request(server)
            .get('/api/recovery/runs?active=true')
            .set('authorization', asPlugin)
        ).body.items.map((r: { id: string }) => r.id),
      ).toEqual(['held']);
    });
  },
);

/** An entity owned by a team (its ownedBy relation, which catalogConditions.isEntityOwner reads). */
const ownedBy = (entity: Entity, team: string): Entity => ({
  ...entity,
  relations: [
    ...(entity.relations ?? []),
    { type: 'ownedBy', targetRef: `group:default/${team}` },
  ],
});
const WEB = 'component:default/web';
const SITE = 'component:default/site';
/** Web's team owns web, site and the machine web-01; the data team owns db and its machine db-01; vault is hidden from users. */
const teamEntities: Entity[] = [
  ownedBy(
    componentEntity('web', [
      'resource:default/web-01',
      'component:default/db',
      'component:default/vault',
    ]),
    'team-web',
  ),
  ownedBy(componentEntity('site', ['resource:default/web-01']), 'team-web'),
  ownedBy(componentEntity('db', ['resource:default/db-01']), 'team-data'),
  ownedBy(
    componentEntity('vault', ['resource:default/vault-01']),
    'team-security',
  ),
  // Declares a dependency the catalog does not hold.
  ownedBy(
    componentEntity('billing', [
      'resource:default/db-01',
      'component:default/ledger',
    ]),
    'team-data',
  ),
  ownedBy(machineEntity('web-01'), 'team-web'),
  ownedBy(machineEntity('db-01'), 'team-data'),
  ownedBy(machineEntity('vault-01'), 'team-security'),
];
const teamCatalog = catalogHidingFromUsers(teamEntities, [
  'component:default/vault',
  'resource:default/vault-01',
]);

/** Granted every permission. */
const DR_LEAD = mockCredentials.user.header('user:default/dr-lead');
/** Granted every permission but failing over the machine db-01. */
const NEARLY = mockCredentials.user.header('user:default/nearly');
/** Of web's team, and of the data team: granted by ownership. */
const ALICE = mockCredentials.user.header('user:default/alice');
const BOB = mockCredentials.user.header('user:default/bob');
const TEAMS: Record<string, string> = {
  'user:default/alice': 'group:default/team-web',
  'user:default/bob': 'group:default/team-data',
};
/** Each authorize call the policy answered, as `permission@resourceRef` of each of its requests. */
const policyCalls: string[][] = [];
/**
 * The permission policy as the permission backend applies it: the DR lead is granted everything,
 * `nearly` everything but recovery.run.failover on db-01, the others recovery's permissions on
 * what their team owns: a conditional decision (catalogConditions.isEntityOwner) the catalog
 * resolves on each resourceRef against that entity's owners, denied where it holds no such entity.
 */
const ownershipPolicy = mockServices.permissions.mock({
  authorize: async (requests, { credentials }) => {
    policyCalls.push(
      requests.map(
        r =>
          `${r.permission.name}@${(r as { resourceRef?: string }).resourceRef}`,
      ),
    );
    const user = (credentials.principal as { userEntityRef: string })
      .userEntityRef;
    return Promise.all(
      requests.map(async r => {
        const resourceRef = (r as { resourceRef?: string }).resourceRef;
        if (user === 'user:default/dr-lead')
          return { result: AuthorizeResult.ALLOW };
        if (user === 'user:default/nearly') {
          const refused =
            r.permission.name === 'recovery.run.failover' &&
            resourceRef === 'resource:default/db-01';
          return {
            result: refused ? AuthorizeResult.DENY : AuthorizeResult.ALLOW,
          };
        }
        const entity = resourceRef
          ? await teamCatalog.getEntityByRef(resourceRef, {
              credentials: mockCredentials.service(),
            })
          : undefined;
        const owners =
          entity?.relations
            ?.filter(rel => rel.type === 'ownedBy')
            .map(rel => rel.targetRef) ?? [];
        return {
          result: owners.includes(TEAMS[user])
            ? AuthorizeResult.ALLOW
            : AuthorizeResult.DENY,
        };
      }),
    );
  },
});

describe.each(databases.eachSupportedId())(
  "a failover's permissions, on %p",
  databaseId => {
    let knex: Knex;
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          providersModule({ hypervisorHosts: [new FakeHost({})] }),
          createServiceFactory({
            service: catalogServiceRef,
            deps: {},
            factory: () => teamCatalog,
          }),
          ownershipPolicy.factory,
          mockServices.database.factory({ knex }),
        ],
      }));
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      for (const machine of ['web-01', 'db-01', 'vault-01'])
        await captureStore.insertCapture(storedCapture(machine));
    });

    afterEach(async () => {
      await knex('recovery_runs').delete();
    });

    const start = (entityRef: string, mode: 'test' | 'failover', as: string) =>
      request(server)
        .post('/api/recovery/runs')
        .set('authorization', as)
        .send({ entityRef, mode });
    const finished = (id: string) =>
      vi.waitFor(
        async () =>
          expect(['succeeded', 'failed']).toContain(
            (await runStore.getRun(id))!.status,
          ),
        { timeout: 10_000, interval: 20 },
      );
    /** Ends a failover's tenure on the host, so the next one may boot its machines again. */
    const released = async (id: string, as: string) => {
      await finished(id);
      expect(
        (
          await request(server)
            .post(`/api/recovery/runs/${id}/release`)
            .set('authorization', as)
        ).status,
      ).toBe(200);
    };
    const WHY =
      "A failover boots live copies of them on production's subnets and keeps them: it needs that permission on each machine and " +
      `service it boots, not only on ${WEB}. A test recovery (an isolated lab) needs recovery.run.create on ${WEB} alone`;

    it('asks the policy for both permissions on the entity, then, in one call, for recovery.run.failover on every machine and service the boot plan boots', async () => {
      const before = policyCalls.length;
      const started = await start(WEB, 'failover', DR_LEAD);
      expect(started.status).toBe(202);
      expect(policyCalls.slice(before)).toEqual([
        [`recovery.run.create@${WEB}`, `recovery.run.failover@${WEB}`],
        started.body.plan.machines.flatMap(
          (m: { machineRef: string; services: string[] }) =>
            [m.machineRef, ...m.services.filter(s => s !== WEB)].map(
              ref => `recovery.run.failover@${ref}`,
            ),
        ),
      ]);
      // All of the plan's machines and the services on them, the one users may not see included.
      expect(policyCalls[before + 1].sort()).toEqual(
        [
          'component:default/db',
          'component:default/vault',
          'resource:default/db-01',
          'resource:default/vault-01',
          'resource:default/web-01',
        ].map(ref => `recovery.run.failover@${ref}`),
      );
      await released(started.body.id, DR_LEAD);
    });

    it('refuses a failover whose plan boots a machine the caller may not fail over with a 403 naming it, and starts no run; a test recovery needs the entity alone', async () => {
      const refused = await start(WEB, 'failover', NEARLY);
      expect(refused.status).toBe(403);
      expect(refused.body.error).toMatchObject({
        name: 'NotAllowedError',
        message: `Missing permission recovery.run.failover on 1 entity of the boot plan of ${WEB}: resource:default/db-01. ${WHY}`,
      });
      expect(await runStore.listRuns({ entityRef: WEB })).toEqual([]);

      const test = await start(WEB, 'test', NEARLY);
      expect(test.status).toBe(202);
      await finished(test.body.id);
    });

    it('refuses a failover the caller may not boot before saying what its plan lacks: accepting that would only be refused again', async () => {
      const refused = await start(
        'component:default/billing',
        'failover',
        NEARLY,
      );
      expect({
        status: refused.status,
        name: refused.body.error.name,
        message: refused.body.error.message,
      }).toEqual({
        status: 403,
        name: 'NotAllowedError',
        message: expect.stringContaining(
          'Missing permission recovery.run.failover on 1 entity of the boot plan of component:default/billing: resource:default/db-01.',
        ),
      });
      const granted = await start(
        'component:default/billing',
        'failover',
        DR_LEAD,
      );
      expect({ status: granted.status, name: granted.body.error.name }).toEqual(
        { status: 409, name: 'MissingDependenciesError' },
      );
      expect(
        await runStore.listRuns({ entityRef: 'component:default/billing' }),
      ).toEqual([]);
    });

    it("grants a failover by ownership only where the team owns all it boots: not another team's database machine, whose name is given where the catalog shows it", async () => {
      // Site boots only web-01, its team's.
      const site = await start(SITE, 'failover', ALICE);
      expect(site.status).toBe(202);
      await released(site.body.id, ALICE);

      // Web's team owns web, not the database it runs on, nor the vault the catalog hides from them.
      const web = await start(WEB, 'failover', ALICE);
      expect(web.status).toBe(403);
      expect(web.body.error.message).toBe(
        `Missing permission recovery.run.failover on 4 entities of the boot plan of ${WEB}: resource:default/db-01, component:default/db, ` +
          `2 entities the catalog does not show you. ${WHY}`,
      );
      // The data team owns the database, not web: told about web alone.
      const notOwner = await start(WEB, 'failover', BOB);
      expect(notOwner.status).toBe(403);
      expect(notOwner.body.error.message).toBe(
        `Missing permission recovery.run.create and recovery.run.failover on ${WEB}`,
      );
      expect(await runStore.listRuns({ entityRef: WEB })).toEqual([]);

      // A test recovery is an isolated lab: the owners of web test it, database included.
      const test = await start(WEB, 'test', ALICE);
      expect(test.status).toBe(202);
      await finished(test.body.id);
    });

    /** A finished test recovery of `entityRef` on `tails`' machines, each console having printed its tail. */
    const finishedRun = async (
      id: string,
      entityRef: string,
      tails: Record<string, string>,
    ) => {
      const machineRefs = Object.keys(tails).map(m => `resource:default/${m}`);
      await runStore.insertRun(
        {
          id,
          entityRef,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'fake',
          plan: {
            entityRef,
            waves: [machineRefs],
            machines: machineRefs.map(machineRef => ({
              machineRef,
              wave: 0,
              services: [entityRef],
              waitsFor: [],
              probes: [],
            })),
          } as never,
          options: {},
          machines: machineRefs.map(machineRef => ({ machineRef, wave: 0 })),
        },
        new Date(Date.now() - 5_000),
      );
      await runStore.updateRun(id, { status: 'running' });
      for (const [machine, logTail] of Object.entries(tails))
        await runStore.updateRunMachine(id, `resource:default/${machine}`, {
          phase: 'ready',
          logTail,
        });
      await runStore.updateRun(id, {
        status: 'succeeded',
        finishedAt: new Date().toISOString(),
        rtoSeconds: 3,
      });
    };
    const SITE_TAIL = 'web-01 booting: DB_PASSWORD=hunter2';
    const DB_TAIL = 'db-01 booting: ready to accept connections';

    it("shows a run's console tails only to those granted recovery.run.logs.read on its machines, saying where one is withheld, in one policy call per answer", async () => {
      await finishedRun('site-run', SITE, { 'web-01': SITE_TAIL });
      await finishedRun('db-run', 'component:default/db', { 'db-01': DB_TAIL });
      const get = (path: string, as: string) =>
        request(server).get(`/api/recovery${path}`).set('authorization', as);
      const firstMachine = (run: { machines: object[] }) => run.machines[0];

      // Granted: the DR lead outright, site's team by owning it (a conditional decision).
      for (const as of [DR_LEAD, ALICE]) {
        const shown = await get('/runs/site-run', as);
        expect(shown.status).toBe(200);
        expect(firstMachine(shown.body)).toMatchObject({ logTail: SITE_TAIL });
        expect(firstMachine(shown.body)).not.toHaveProperty('logTailWithheld');
      }

      // The data team sees site and its run, not what its console printed.
      let before = policyCalls.length;
      const withheld = await get('/runs/site-run', BOB);
      expect(withheld.status).toBe(200);
      expect(firstMachine(withheld.body)).toMatchObject({
        machineRef: 'resource:default/web-01',
        phase: 'ready',
        logTailWithheld: true,
      });
      expect(JSON.stringify(withheld.body)).not.toContain('hunter2');
      expect(policyCalls.slice(before)).toEqual([
        ['recovery.run.logs.read@resource:default/web-01'],
      ]);

      // A list spans entities: one call for all their machines, each tail as its machine's grant says.
      before = policyCalls.length;
      const list = await get('/runs', BOB);
      expect(list.status).toBe(200);
      expect(policyCalls.slice(before)).toHaveLength(1);
      expect(policyCalls[before].sort()).toEqual([
        'recovery.run.logs.read@resource:default/db-01',
        'recovery.run.logs.read@resource:default/web-01',
      ]);
      const byId = new Map(
        list.body.items.map((r: { id: string; machines: object[] }) => [
          r.id,
          firstMachine(r),
        ]),
      );
      expect(byId.get('db-run')).toMatchObject({ logTail: DB_TAIL });
      expect(byId.get('site-run')).toMatchObject({ logTailWithheld: true });
      expect(JSON.stringify(list.body)).not.toContain('hunter2');

      // An entity's readiness carries its last run in full: its tails as GET /runs/:id has them.
      const readiness = await get('/readiness/component/default/site', BOB);
      expect(readiness.status).toBe(200);
      expect(readiness.body.lastRun.id).toBe('site-run');
      expect(firstMachine(readiness.body.lastRun)).toMatchObject({
        logTailWithheld: true,
      });
      expect(JSON.stringify(readiness.body)).not.toContain('hunter2');
      const granted = await get('/readiness/component/default/site', ALICE);
      expect(firstMachine(granted.body.lastRun)).toMatchObject({
        logTail: SITE_TAIL,
      });
    });

    it("decides each console tail on its machine, not on the run's entity: web's team reads web-01's console and not the data team's db-01", async () => {
      // A run of web boots web-01 (web's team's) and db-01 (the data team's database machine).
      await finishedRun('web-run', WEB, {
        'web-01': SITE_TAIL,
        'db-01': DB_TAIL,
      });
      const tails = async (as: string) => {
        const before = policyCalls.length;
        const answer = await request(server)
          .get('/api/recovery/runs/web-run')
          .set('authorization', as);
        expect(answer.status).toBe(200);
        // One call for all the run's machines.
        expect(policyCalls.slice(before).map(call => call.sort())).toEqual([
          [
            'recovery.run.logs.read@resource:default/db-01',
            'recovery.run.logs.read@resource:default/web-01',
          ],
        ]);
        return new Map(
          answer.body.machines.map((m: { machineRef: string }) => [
            m.machineRef.split('/')[1],
            m,
          ]),
        );
      };

      // Owning web (the run's entity) shows web-01's console, not db-01's.
      const byAlice = await tails(ALICE);
      expect(byAlice.get('web-01')).toMatchObject({ logTail: SITE_TAIL });
      expect(byAlice.get('web-01')).not.toHaveProperty('logTailWithheld');
      expect(byAlice.get('db-01')).toMatchObject({ logTailWithheld: true });
      expect(byAlice.get('db-01')).not.toHaveProperty('logTail');

      // The data team, not owning web, reads its own machine's console in web's run.
      const byBob = await tails(BOB);
      expect(byBob.get('db-01')).toMatchObject({ logTail: DB_TAIL });
      expect(byBob.get('web-01')).toMatchObject({ logTailWithheld: true });
      expect(JSON.stringify([...byBob.values()])).not.toContain('hunter2');
    });
  },
);

describe('recovery router errors', () => {
  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it("leaves error bodies to Backstage's error handler, which decides on stack traces", async () => {
    // In development an error handler of the router's own would show stack traces whatever
    // the backend's handler (here, the one the httpRouter service applies) says.
    vi.stubEnv('NODE_ENV', 'development');
    const runs = { getRun: async () => undefined } as unknown as RunService;
    const app = express();
    // Only what GET /runs/:id uses: a run not found is not looked up in the catalog.
    const options = {
      httpAuth: mockServices.httpAuth(),
      runs: new AuthorizedRunService(
        runs,
        new RecoveryAuthorizer(mockServices.permissions()),
        {} as never,
        {} as never,
      ),
    };
    app.use(await createRouter(options as unknown as RouterOptions));
    app.use(
      MiddlewareFactory.create({
        config: mockServices.rootConfig(),
        logger: mockServices.logger.mock(),
      }).error({
        showStackTraces: false,
      }),
    );

    const res = await request(app).get('/runs/nope');
    expect(res.status).toBe(404);
    expect(res.body.error).toEqual({
      name: 'NotFoundError',
      message: 'Run nope not found',
    });
  });

  /** A router that takes POST /events bodies up to 1024 bytes, with these permissions. */
  const eventsApp = async (permissions = mockServices.permissions()) => {
    const app = express();
    app.use(
      await createRouter({
        maxEventsRequestSize: '1024',
        httpAuth: mockServices.httpAuth(),
        authorizer: new RecoveryAuthorizer(permissions),
        auditor: mockServices.auditor.mock(),
      } as unknown as RouterOptions),
    );
    app.use(
      MiddlewareFactory.create({
        config: mockServices.rootConfig(),
        logger: mockServices.logger.mock(),
      }).error(),
    );
    return app;
  };

  it('names the size limit, and the setting, of a POST /events body over it', async () => {
    const res = await request(await eventsApp())
      .post('/events')
      .set('content-type', 'text/plain')
      .send('x'.repeat(2048));
    expect(res.status).toBe(413);
    expect(res.body.error.message).toBe(
      'Request body of 2048 bytes is larger than recovery.events.maxRequestSize (1024 bytes): push the log in smaller parts, or raise that setting',
    );
  });

  it('names the limit of a JSON body over it, as of a POST /events body', async () => {
    const app = await eventsApp();
    const body = JSON.stringify({ entityRef: 'x'.repeat(1024 * 1024) });
    const plain = await request(app)
      .post('/runs')
      .set('content-type', 'application/json')
      .send(body);
    expect({ status: plain.status, error: plain.body.error }).toEqual({
      status: 413,
      error: expect.objectContaining({
        name: 'PayloadTooLargeError',
        message: `Request body of ${body.length} bytes is too large: a JSON body is 1048576 bytes at most; check what is sent (a request of this API is a few fields)`,
        limit: 1048576,
      }),
    });
    const gzipped = await request(app)
      .post('/analysis')
      .set('content-type', 'application/json')
      .set('content-encoding', 'gzip')
      .serialize(sent => sent)
      .send(gzipSync(body) as unknown as object);
    expect({
      status: gzipped.status,
      message: gzipped.body.error?.message,
    }).toEqual({
      status: 413,
      message: expect.stringMatching(
        /^Request body( of \d+ bytes)? once decompressed is too large: a JSON body is 1048576 bytes at most/,
      ),
    });
  });

  it('tells a caller without recovery.events.create so, whatever the size of its body', async () => {
    const denied = {
      authorize: async () => [{ result: AuthorizeResult.DENY }],
    } as unknown as PermissionsService;
    const res = await request(await eventsApp(denied))
      .post('/events')
      .set('content-type', 'text/plain')
      .send('x'.repeat(2048));
    expect(res.status).toBe(403);
    expect(res.body.error.message).toBe(
      'Missing permission recovery.events.create',
    );
  });
});
