import { createServiceFactory } from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  startTestBackend,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { catalogServiceRef } from '@backstage/plugin-catalog-node';
import type {
  NightlyCheckEntityOutcome,
  NightlyCheckRecord,
} from '@backstage-recovery/plugin-recovery-common';
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
import { tasksModule } from '../testing/tasksModule';
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
/** The plugin itself, as its nightly check sees readiness. */
const NIGHTLY = mockCredentials.service.header({
  onBehalfOf: mockCredentials.service('plugin:recovery'),
  targetPluginId: 'recovery',
});
const CHECKED_AT = '2026-11-05T02:30:00.000Z';
/** A night after those the first test records: the tests share a database, and an older night is refused. */
const LATER = '2026-11-07T02:30:00.000Z';
const KEPT: NightlyCheckEntityOutcome = {
  entityRef: WEB,
  outcome: 'refused',
  reason: 'kept-failover',
  runId: 'f1',
  runEntityRef: WEB,
  message:
    'refused: failover f1 of component:default/web keeps 2 containers on recovery; release failover f1 (recovery release f1)',
};
const COVERED: NightlyCheckEntityOutcome = {
  entityRef: SHOP,
  outcome: 'covered',
  runId: 'r-ops',
  runEntityRef: OPS,
  message: `run r-ops of ${OPS} succeeded in 42 s`,
};

describe.each(databases.eachSupportedId())(
  'the nightly check recorded (in-process) and readiness on %s',
  databaseId => {
    let knex: Knex;
    let server: Awaited<ReturnType<typeof startTestBackend>>['server'];
    const catalog = catalogHidingFromUsers(entities, [OPS]);
    const nightly = tasksModule();

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      ({ server } = await startTestBackend({
        features: [
          recoveryPlugin,
          nightly.module,
          createServiceFactory({
            service: catalogServiceRef,
            deps: {},
            factory: () => catalog,
          }),
          mockServices.database.factory({ knex }),
        ],
      }));
    });

    /** Records a night as the scheduler module does, through the plugin's tasks API. */
    const record = (night: NightlyCheckRecord) =>
      nightly.tasks().recordNightlyCheck(night);
    const readiness = async (path: string, as = USER) =>
      (
        await request(server)
          .get(`/api/recovery/readiness${path}`)
          .set('authorization', as)
      ).body;

    it("records a night from the plugin's own nightly check only, and readiness gives each entity its outcome as the caller may see it", async () => {
      const night: NightlyCheckRecord = {
        checkedAt: '2026-11-05T03:30:00+01:00',
        outcomes: [KEPT, COVERED],
      };
      // No one records a night over HTTP: the route is gone with the scheduler's HTTP calls.
      const posted = await request(server)
        .post('/api/recovery/nightly-check')
        .set('authorization', USER)
        .send(night);
      expect(posted.status).toBe(404);
      expect(await readiness('/component/default/web')).not.toHaveProperty(
        'nightlyCheck',
      );

      await record(night);
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
      await record({
        checkedAt: '2026-11-06T02:30:00Z',
        outcomes: [
          { entityRef: WEB, outcome: 'excluded', message: 'left out' },
        ],
      });
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: '2026-11-06T02:30:00.000Z',
        outcome: 'excluded',
        message: 'left out',
      });
      expect(await readiness('/component/default/shop')).not.toHaveProperty(
        'nightlyCheck',
      );
    });

    it('says the hypervisor host was unreachable, without the run that found it, where that run is of an entity the catalog hides from the caller', async () => {
      const unreachable: Omit<NightlyCheckEntityOutcome, 'entityRef'> = {
        outcome: 'refused',
        reason: 'host-unreachable',
        runId: 'r-ops',
        runEntityRef: OPS,
        message: `not checked: hypervisor host recovery unreachable from 02:41:07 UTC; run r-ops of ${OPS} failed there, and no run was asked of it after (hypervisor host recovery cannot be reached: connect ECONNREFUSED)`,
      };
      await record({
        checkedAt: LATER,
        outcomes: [{ entityRef: WEB, ...unreachable }],
      });
      expect((await readiness('/component/default/web')).nightlyCheck).toEqual({
        checkedAt: LATER,
        outcome: 'refused',
        reason: 'host-unreachable',
        message:
          'not checked: the hypervisor host could not be reached, as a run of an entity the catalog does not show you found',
      });
      expect(
        (await readiness('/component/default/web', NIGHTLY)).nightlyCheck,
      ).toEqual({ checkedAt: LATER, ...unreachable });
    });

    it('hides the words of an outcome that name an entity the catalog hides from the caller, though its run is one they see', async () => {
      // Web's run held the host while the ops system's run, which was to cover it, waited.
      const held: Omit<NightlyCheckEntityOutcome, 'entityRef'> = {
        outcome: 'refused',
        reason: 'host-busy',
        runId: 'r-web',
        runEntityRef: WEB,
        message: `not checked: the run of ${OPS}, which was to cover it, waited for the host until the check's time ran out`,
      };
      await record({
        checkedAt: LATER,
        outcomes: [{ entityRef: WEB, ...held }],
      });
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
      const service = (nights?: NightlyCheckStore) =>
        new ReadinessService(
          captureStore,
          runHistory,
          new PlanService(graphs),
          graphs,
          objectives,
          7 * 86_400,
          undefined,
          nights,
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
      const nights = new NightlyCheckStore(knex);
      await nights.record({
        checkedAt: LATER,
        outcomes: [
          { entityRef: WEB, outcome: 'excluded', message: 'left out' },
        ],
      });
      const without = await statementsOf(service(), [WEB]);
      expect(await statementsOf(service(nights), [WEB])).toBe(without + 1);
      expect(await statementsOf(service(nights), [WEB, SHOP, OPS])).toBe(
        (await statementsOf(service(), [WEB, SHOP, OPS])) + 1,
      );
      // Not for the owners' notices, which quote only the reasons.
      const statements: string[] = [];
      const listen = (q: { sql: string }) => statements.push(q.sql);
      knex.on('query', listen);
      try {
        const [item] = await service(nights).readinessOf(
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
      await record({ checkedAt: lastNight, outcomes: [KEPT, COVERED] });
      const started: NightlyCheckEntityOutcome = {
        entityRef: WEB,
        outcome: 'started',
        runId: 'r-web',
        runEntityRef: WEB,
        message: 'run r-web started',
      };
      expect(
        (await readiness('/component/default/web', NIGHTLY)).nightlyCheck,
      ).toMatchObject({ checkedAt: lastNight, outcome: 'refused' });

      // Web's run started: its page says tonight's; the shop's, not reached yet, last night's.
      await record({
        checkedAt: tonight,
        outcomes: [started],
        partial: true,
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
      await record({
        checkedAt: tonight,
        outcomes: [{ ...started, message: 'run r-web succeeded in 12 s' }],
        partial: false,
      });
      await expect(
        record({
          checkedAt: tonight,
          outcomes: [started],
          partial: true,
        }),
      ).rejects.toMatchObject({ statusCode: 409, name: 'ConflictError' });
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
      // Each readiness exchange as openapi.yaml describes it.
      const contract = await ApiContract.load(
        resolve(__dirname, '../schema/openapi.yaml'),
      );
      const checkedReadiness = async (path: string, as = USER) => {
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
      await record({ checkedAt: lastNight, outcomes: [KEPT, COVERED] });
      const started: NightlyCheckEntityOutcome = {
        entityRef: WEB,
        outcome: 'started',
        runId: 'r-web',
        runEntityRef: WEB,
        message: 'run r-web started; readiness counts it once it ends',
      };
      // Opened with how many it checks, then web's run started; then killed (no end recorded).
      await record({
        checkedAt: killed,
        outcomes: [],
        partial: true,
        entities: 2,
      });
      await record({
        checkedAt: killed,
        outcomes: [started],
        partial: true,
        entities: 2,
      });
      // The next night opens, nothing reached yet.
      await record({
        checkedAt: next,
        outcomes: [],
        partial: true,
        entities: 2,
      });
      const { entityRef: _web, ...run } = started;
      const newer = {
        checkedAt: next,
        state: 'under-way',
        heardAt: expect.any(String),
        checked: 0,
        entities: 2,
      };
      expect(
        (await checkedReadiness('/component/default/web')).nightlyCheck,
      ).toEqual({
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
        (await checkedReadiness('/component/default/shop', NIGHTLY))
          .nightlyCheck,
      ).toEqual({ checkedAt: lastNight, ...covered, newer });
      const items: Array<{ entityRef: string; nightlyCheck?: unknown }> = (
        await checkedReadiness('')
      ).items;
      for (const item of items)
        expect(item.nightlyCheck).toEqual(
          (await checkedReadiness(`/${item.entityRef.replace(':', '/')}`))
            .nightlyCheck,
        );
    });
  },
);
