import { createServiceFactory } from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import type { Knex } from 'knex';
import { resolve } from 'path';
import request from 'supertest';
import { NightlyCheckStore } from '../database/NightlyCheckStore';
import { CaptureStore } from '../database/CaptureStore';
import { ReadinessHistoryStore } from '../database/ReadinessHistoryStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import { recoveryPlugin } from '../plugin';
import { ApiContract } from '../testing/apiContract';
import { catalogHidingFromUsers } from '../testing/catalog';
import { componentEntity, machineEntity } from '../testing/entities';
import { PlanService } from './PlanService';
import { ReadinessService } from './ReadinessService';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const WEB = 'component:default/web';
const SHOP = 'component:default/shop';
/** A system users may not see, whose run covers the shop. */
const OPS = 'system:default/ops';
const machineOf = (name: string, service: string): Entity => ({
  ...machineEntity(name),
  relations: [{ type: 'dependencyOf', targetRef: service }],
});
const entities: Entity[] = [
  componentEntity('web', ['resource:default/web-01']),
  machineOf('web-01', WEB),
  {
    ...componentEntity('shop', ['resource:default/shop-01']),
    relations: [
      { type: 'dependsOn', targetRef: 'resource:default/shop-01' },
      { type: 'partOf', targetRef: OPS },
    ],
  },
  machineOf('shop-01', SHOP),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'ops', namespace: 'default' },
    spec: {},
    relations: [{ type: 'hasPart', targetRef: SHOP }],
  },
];

const USER = mockCredentials.user.header();
/** The scheduler module, calling with the plugin's own credentials. */
const NIGHTLY = mockCredentials.service.header({
  onBehalfOf: mockCredentials.service('plugin:recovery'),
  targetPluginId: 'recovery',
});
const CHECKED_AT = '2026-11-05T02:30:00.000Z';
/** A night after those the first test records: the tests share a database, and an older night is refused. */
const LATER = '2026-11-07T02:30:00.000Z';
const KEPT = {
  entityRef: WEB,
  outcome: 'refused',
  reason: 'kept-failover',
  runId: 'f1',
  runEntityRef: WEB,
  message:
    'refused: failover f1 of component:default/web keeps 2 containers on recovery; release failover f1 (recovery release f1)',
};
const COVERED = {
  entityRef: SHOP,
  outcome: 'covered',
  runId: 'r-ops',
  runEntityRef: OPS,
  message: `run r-ops of ${OPS} succeeded in 42 s`,
};

describe.each(databases.eachSupportedId())(
  'POST /nightly-check and readiness on %s',
  databaseId => {
    let knex: Knex;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    const catalog = catalogHidingFromUsers(entities, [OPS]);

    beforeAll(async () => {
      knex = await databases.init(databaseId);
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
    });

    const record = (body: unknown, as = NIGHTLY) =>
      request(server)
        .post('/api/recovery/nightly-check')
        .set('authorization', as)
        .send(body as object);
    const readiness = async (path: string, as = USER) =>
      (
        await request(server)
          .get(`/api/recovery/readiness${path}`)
          .set('authorization', as)
      ).body;

    it("records a night from the plugin's own nightly check only, and readiness gives each entity its outcome as the caller may see it", async () => {
      const night = {
        checkedAt: '2026-11-05T03:30:00+01:00',
        outcomes: [KEPT, COVERED],
      };
      // A user, or another service, may not say what the check did: not even with recovery permissions.
      for (const as of [USER, mockCredentials.service.header()]) {
        const refused = await record(night, as);
        expect({
          status: refused.status,
          error: refused.body.error?.name,
        }).toEqual({ status: 403, error: 'NotAllowedError' });
      }
      // Refused before the body is read: no one else's body over the limit is held.
      expect(
        (
          await record(
            {
              checkedAt: CHECKED_AT,
              outcomes: [],
              pad: 'x'.repeat(11 * 1024 * 1024),
            },
            USER,
          )
        ).status,
      ).toBe(403);
      expect(await readiness('/component/default/web')).not.toHaveProperty(
        'nightlyCheck',
      );

      const recorded = await record(night);
      expect({ status: recorded.status, body: recorded.body }).toEqual({
        status: 201,
        body: { checkedAt: CHECKED_AT, recorded: 2 },
      });
      const { entityRef: _web, ...kept } = KEPT;
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: CHECKED_AT,
        ...kept,
      });
      // The shop's covering run is of a system the catalog hides from users: neither it nor its words are shown.
      expect((await readiness('/component/default/shop')).nightlyCheck).toEqual(
        {
          checkedAt: CHECKED_AT,
          outcome: 'covered',
          message:
            'covered by a run of an entity the catalog does not show you',
        },
      );
      const { entityRef: _shop, ...covered } = COVERED;
      expect(
        (await readiness('/component/default/shop', NIGHTLY)).nightlyCheck,
      ).toEqual({ checkedAt: CHECKED_AT, ...covered });
      // The overview as each entity's own readiness.
      const items: Array<{ entityRef: string; nightlyCheck?: unknown }> = (
        await readiness('')
      ).items;
      for (const item of items)
        expect(item.nightlyCheck).toEqual(
          (await readiness(`/${item.entityRef.replace(':', '/')}`))
            .nightlyCheck,
        );
      expect(
        items
          .filter(i => i.nightlyCheck)
          .map(i => i.entityRef)
          .sort(),
      ).toEqual([SHOP, WEB]);

      // The next night replaces it whole: the shop was not checked then.
      expect(
        (
          await record({
            checkedAt: '2026-11-06T02:30:00Z',
            outcomes: [
              { entityRef: 'Web', outcome: 'excluded', message: 'left out' },
            ],
          })
        ).status,
      ).toBe(201);
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: '2026-11-06T02:30:00.000Z',
        outcome: 'excluded',
        message: 'left out',
      });
      expect(await readiness('/component/default/shop')).not.toHaveProperty(
        'nightlyCheck',
      );
    });

    it('refuses a night it cannot record as it is, naming what was wrong, and keeps the last', async () => {
      const ok = { entityRef: WEB, outcome: 'excluded', message: 'left out' };
      const cases: Array<[unknown, string]> = [
        [[], 'Request body must be a JSON object, got an array ([])'],
        [
          { checkedAt: CHECKED_AT, outcomes: [], extra: 1 },
          'Request body: unknown "extra"; the fields are checkedAt, outcomes, partial, entities',
        ],
        ...(
          [
            [-1, 'a number (-1)'],
            [1.5, 'a number (1.5)'],
            ['40', '"40"'],
            [10_000_001, 'a number (10000001)'],
          ] as const
        ).map(([entities, got]): [unknown, string] => [
          { checkedAt: CHECKED_AT, outcomes: [], partial: true, entities },
          `entities must be how many entities the night's check sets out to check, an integer from 0 to 10000000; got ${got}`,
        ]),
        [
          { checkedAt: CHECKED_AT, outcomes: [], partial: 'yes' },
          'partial must be true (the outcomes known so far of a night under way) or false (the night whole); got "yes"',
        ],
        [
          { outcomes: [] },
          "checkedAt must be an ISO 8601 time with its zone, when the night's check began; got nothing",
        ],
        [
          { checkedAt: '2026-11-05T02:30:00', outcomes: [] },
          'checkedAt must be an ISO 8601 time with its zone, when the night\'s check began; got "2026-11-05T02:30:00"',
        ],
        [
          { checkedAt: '2999-01-01T00:00:00Z', outcomes: [] },
          expect.stringMatching(
            /^checkedAt 2999-01-01T00:00:00Z is ahead of the backend's clock/,
          ),
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: {} },
          'outcomes must be an array, one outcome an entity; got an object ({})',
        ],
        [
          {
            checkedAt: CHECKED_AT,
            outcomes: [ok, { ...ok, entityRef: 'web' }],
          },
          'outcomes[1].entityRef: component:default/web has an outcome already (outcomes[0]): one an entity',
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, entityRef: 'a:b:c' }] },
          expect.stringMatching(/^outcomes\[0\]\.entityRef: /),
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, status: 'ok' }] },
          'outcomes[0]: unknown "status"; the fields are entityRef, outcome, reason, runId, runEntityRef, message',
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, outcome: 'skipped' }] },
          'outcomes[0].outcome must be one of started, covered, excluded, refused, got "skipped"',
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, outcome: 'refused' }] },
          'outcomes[0].reason must be one of uncaptured, kept-failover, host-busy, no-plan, out-of-time, error for a refused outcome, got nothing',
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, reason: 'error' }] },
          'outcomes[0].reason is for a refused outcome only, not excluded',
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, outcome: 'covered' }] },
          'outcomes[0].runId is required for a covered outcome',
        ],
        [
          {
            checkedAt: CHECKED_AT,
            outcomes: [{ ...ok, outcome: 'covered', runId: 'r1' }],
          },
          'outcomes[0].runEntityRef is required for a covered outcome: whose run covered it',
        ],
        [
          {
            checkedAt: CHECKED_AT,
            outcomes: [{ ...ok, runId: 'r'.repeat(256), runEntityRef: WEB }],
          },
          expect.stringMatching(
            /^outcomes\[0\]\.runId must be a string of 1 to 255 characters without NUL, got "r+…$/,
          ),
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, message: '' }] },
          'outcomes[0].message must be a string of 1 to 2000 characters without NUL, got ""',
        ],
        [
          { checkedAt: CHECKED_AT, outcomes: [{ ...ok, message: 'a\u0000b' }] },
          expect.stringMatching(
            /^outcomes\[0\]\.message must be a string of 1 to 2000 characters without NUL/,
          ),
        ],
        [
          {
            checkedAt: CHECKED_AT,
            outcomes: [{ entityRef: WEB, outcome: 'excluded' }],
          },
          `outcomes[0].message is required: what the check did about ${WEB}, in its words`,
        ],
      ];
      expect((await record({ checkedAt: LATER, outcomes: [ok] })).status).toBe(
        201,
      );
      for (const [body, message] of cases) {
        const refused = await record(body);
        expect({
          body,
          status: refused.status,
          error: refused.body.error,
        }).toEqual({
          body,
          status: 400,
          error: { name: 'InputError', message },
        });
      }
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: LATER,
        ...{ outcome: 'excluded', message: 'left out' },
      });
    });

    it('hides the words of an outcome that name an entity the catalog hides from the caller, though its run is one they see', async () => {
      // Web's run held the host while the ops system's run, which was to cover it, waited.
      const held = {
        outcome: 'refused',
        reason: 'host-busy',
        runId: 'r-web',
        runEntityRef: WEB,
        message: `not checked: the run of ${OPS}, which was to cover it, waited for the host until the check's time ran out`,
      };
      expect(
        (
          await record({
            checkedAt: LATER,
            outcomes: [{ entityRef: WEB, ...held }],
          })
        ).status,
      ).toBe(201);
      const seen = (await readiness('/component/default/web')).nightlyCheck;
      expect(seen).toEqual({
        checkedAt: LATER,
        outcome: 'refused',
        reason: 'host-busy',
        message: expect.stringContaining(
          'an entity the catalog does not show you',
        ),
      });
      expect(JSON.stringify(seen)).not.toContain('ops');
      expect(JSON.stringify((await readiness('')).items)).not.toContain(OPS);
      expect(
        (await readiness('/component/default/web', NIGHTLY)).nightlyCheck,
      ).toEqual({ checkedAt: LATER, ...held });
    });

    it("asks the store one statement more for every entity's outcome in the overview, however many entities", async () => {
      const objectives = { rpoSeconds: 86_400, rtoSeconds: 3_600 };
      const graphs = new CatalogGraphLoader(
        catalog,
        mockServices.auth(),
        objectives,
      );
      const captureStore = new CaptureStore(knex);
      const runHistory = new ReadinessHistoryStore(knex);
      const service = (nightly?: NightlyCheckStore) =>
        new ReadinessService(
          captureStore,
          runHistory,
          new PlanService(graphs),
          graphs,
          objectives,
          7 * 86_400,
          undefined,
          nightly,
        );
      const statementsOf = async (
        readinessService: ReadinessService,
        refs: string[],
      ) => {
        const statements: string[] = [];
        const listen = (q: { sql: string }) => statements.push(q.sql);
        knex.on('query', listen);
        try {
          await readinessService.readinessOf(refs, mockCredentials.user());
        } finally {
          knex.off('query', listen);
        }
        return statements.length;
      };
      const nightly = new NightlyCheckStore(knex);
      await nightly.record({
        checkedAt: LATER,
        outcomes: [
          { entityRef: WEB, outcome: 'excluded', message: 'left out' },
        ],
      });
      const without = await statementsOf(service(), [WEB]);
      expect(await statementsOf(service(nightly), [WEB])).toBe(without + 1);
      expect(await statementsOf(service(nightly), [WEB, SHOP, OPS])).toBe(
        (await statementsOf(service(), [WEB, SHOP, OPS])) + 1,
      );
      // Not for the owners' notices, which quote only the reasons.
      const statements: string[] = [];
      const listen = (q: { sql: string }) => statements.push(q.sql);
      knex.on('query', listen);
      try {
        const [item] = await service(nightly).readinessOf(
          [WEB],
          mockCredentials.service(),
          { ownRunsOnly: true },
        );
        expect(item).not.toHaveProperty('nightlyCheck');
      } finally {
        knex.off('query', listen);
      }
      expect(statements.length).toBe(without);
    });
    it("records a night as it goes, from the plugin's own nightly check only: tonight's outcome for each entity reached, last night's for the others", async () => {
      // Nights after those the tests above record: an older one is refused.
      const [lastNight, tonight] = [
        '2026-11-08T02:30:00.000Z',
        '2026-11-09T02:30:00.000Z',
      ];
      expect(
        (await record({ checkedAt: lastNight, outcomes: [KEPT, COVERED] }))
          .status,
      ).toBe(201);
      const started = {
        entityRef: WEB,
        outcome: 'started',
        runId: 'r-web',
        runEntityRef: WEB,
        message: 'run r-web started',
      };
      // No one else may record a night under way either, nor with the plugin's permissions.
      for (const as of [USER, mockCredentials.service.header()]) {
        const refused = await record(
          { checkedAt: tonight, outcomes: [started], partial: true },
          as,
        );
        expect({
          status: refused.status,
          error: refused.body.error?.name,
        }).toEqual({ status: 403, error: 'NotAllowedError' });
      }
      expect(
        (await readiness('/component/default/web', NIGHTLY)).nightlyCheck,
      ).toMatchObject({ checkedAt: lastNight, outcome: 'refused' });

      // Web's run started: its page says tonight's; the shop's, not reached yet, last night's.
      const soFar = await record({
        checkedAt: tonight,
        outcomes: [started],
        partial: true,
      });
      expect({ status: soFar.status, body: soFar.body }).toEqual({
        status: 201,
        body: { checkedAt: tonight, recorded: 1 },
      });
      const { entityRef: _web, ...run } = started;
      const { entityRef: _shop, ...covered } = COVERED;
      const underWay = {
        checkedAt: tonight,
        state: 'under-way',
        heardAt: expect.any(String),
        checked: 1,
      };
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: tonight,
        ...run,
        night: underWay,
      });
      expect(
        (await readiness('/component/default/shop', NIGHTLY)).nightlyCheck,
      ).toEqual({ checkedAt: lastNight, ...covered, newer: underWay });
      const items: Array<{
        entityRef: string;
        nightlyCheck?: { checkedAt: string };
      }> = (await readiness('')).items;
      expect(
        Object.fromEntries(
          items
            .filter(i => i.nightlyCheck)
            .map(i => [i.entityRef, i.nightlyCheck!.checkedAt]),
        ),
      ).toEqual({ [WEB]: tonight, [SHOP]: lastNight });

      // The night ends, whole: the shop, not checked tonight, keeps nothing; outcomes so far sent late are refused.
      expect(
        (
          await record({
            checkedAt: tonight,
            outcomes: [{ ...started, message: 'run r-web succeeded in 12 s' }],
            partial: false,
          })
        ).status,
      ).toBe(201);
      const late = await record({
        checkedAt: tonight,
        outcomes: [started],
        partial: true,
      });
      expect({ status: late.status, error: late.body.error?.name }).toEqual({
        status: 409,
        error: 'ConflictError',
      });
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: tonight,
        ...run,
        message: 'run r-web succeeded in 12 s',
      });
      expect(
        await readiness('/component/default/shop', NIGHTLY),
      ).not.toHaveProperty('nightlyCheck');
    });

    it('says, on the page of each entity a killed night reached, that it was interrupted, and how far it got, once the next night begins', async () => {
      // Each exchange as openapi.yaml describes it.
      const contract = await ApiContract.load(
        resolve(__dirname, '../schema/openapi.yaml'),
      );
      const record = async (body: object) => {
        const res = await request(server)
          .post('/api/recovery/nightly-check')
          .set('authorization', NIGHTLY)
          .send(body);
        contract.check(
          {
            method: 'post',
            url: '/nightly-check',
            body,
            contentType: 'application/json',
          },
          res,
        );
        return res;
      };
      const readiness = async (path: string, as = USER) => {
        const res = await request(server)
          .get(`/api/recovery/readiness${path}`)
          .set('authorization', as);
        contract.check({ method: 'get', url: `/readiness${path}` }, res);
        return res.body;
      };
      // Nights after those the tests above record: an older one is refused.
      const [lastNight, killed, next] = [
        '2026-11-10T02:30:00.000Z',
        '2026-11-11T02:30:00.000Z',
        '2026-11-12T02:30:00.000Z',
      ];
      expect(
        (await record({ checkedAt: lastNight, outcomes: [KEPT, COVERED] }))
          .status,
      ).toBe(201);
      const started = {
        entityRef: WEB,
        outcome: 'started',
        runId: 'r-web',
        runEntityRef: WEB,
        message: 'run r-web started; readiness counts it once it ends',
      };
      // Opened with how many it checks, then web's run started; then killed (no end recorded).
      expect(
        (
          await record({
            checkedAt: killed,
            outcomes: [],
            partial: true,
            entities: 2,
          })
        ).status,
      ).toBe(201);
      expect(
        (
          await record({
            checkedAt: killed,
            outcomes: [started],
            partial: true,
            entities: 2,
          })
        ).status,
      ).toBe(201);
      // The next night opens, nothing reached yet.
      expect(
        (
          await record({
            checkedAt: next,
            outcomes: [],
            partial: true,
            entities: 2,
          })
        ).status,
      ).toBe(201);
      const { entityRef: _web, ...run } = started;
      const newer = {
        checkedAt: next,
        state: 'under-way',
        heardAt: expect.any(String),
        checked: 0,
        entities: 2,
      };
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: killed,
        ...run,
        night: {
          checkedAt: killed,
          state: 'interrupted',
          heardAt: expect.any(String),
          checked: 1,
          entities: 2,
        },
        newer,
      });
      // Not reached by the killed night: the last whole night's, dated then.
      const { entityRef: _shop, ...covered } = COVERED;
      expect(
        (await readiness('/component/default/shop', NIGHTLY)).nightlyCheck,
      ).toEqual({ checkedAt: lastNight, ...covered, newer });
      const items: Array<{ entityRef: string; nightlyCheck?: unknown }> = (
        await readiness('')
      ).items;
      for (const item of items)
        expect(item.nightlyCheck).toEqual(
          (await readiness(`/${item.entityRef.replace(':', '/')}`))
            .nightlyCheck,
        );
    });
  },
);
