import type { BackstageCredentials } from '@backstage/backend-plugin-api';
import {
  mockCredentials,
  mockServices,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import { NotFoundError } from '@backstage/errors';
import {
  failedMachine,
  INTERRUPTED_PREFIX,
  type BootPlan,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import type { Knex } from 'knex';
import { CaptureStore } from '../database/CaptureStore';
import { migrate } from '../database/migrations';
import { ReadinessHistoryStore } from '../database/ReadinessHistoryStore';
import { RunStore } from '../database/RunStore';
import { CatalogGraphLoader } from '../plan/catalogGraph';
import type { RecoveryGraph } from '@backstage-recovery/plugin-recovery-node';
import { catalogHidingFromUsers } from '../testing/catalog';
import {
  componentEntity,
  machineEntity,
  storedCapture,
} from '../testing/entities';
import { PlanService } from './PlanService';
import { ReadinessService } from './ReadinessService';

const graph = (rootRef: string): RecoveryGraph => ({
  rootRef,
  roots: [rootRef],
  services: new Map([
    [rootRef, { ref: rootRef, machines: [], dependsOn: [], probes: [] }],
  ]),
  machines: new Map(),
  problems: [],
  missing: [],
  objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
});

/** A PlanService that plans every entity as `graph` and `plan` say. */
const planning = (g: RecoveryGraph, plan: BootPlan) =>
  ({ plan: async () => ({ graph: g, plan }) }) as unknown as PlanService;

const emptyPlans = {
  // Plans no catalog: nothing to ask once.
  withMemo() {
    return emptyPlans;
  },
  async plan(entityRef: string) {
    if (entityRef === 'component:default/broken') {
      throw new NotFoundError(
        'Entity system:default/gone not found in the catalog',
      );
    }
    if (entityRef === 'component:default/outage')
      throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
    return {
      graph: graph(entityRef),
      plan: { entityRef, waves: [], machines: [] },
    };
  },
} as unknown as PlanService;

const noCaptures = {
  latestCaptures: async () => new Map(),
  captureFailures: async () => new Map(),
  capturesKeptElsewhere: async () => new Map(),
} as unknown as CaptureStore;

const noRuns = {
  lastFinishedRun: async () => undefined,
  lastFinishedRuns: async (queries: unknown[]) => queries.map(() => undefined),
  lastFailedRuns: async (queries: unknown[]) => queries.map(() => undefined),
  degradedFailovers: async () => [],
} as unknown as ReadinessHistoryStore;

/** A caller's view of a catalog that holds `entityRefs` and shows them all. */
const seesAll = (...entityRefs: string[]) => ({
  visibleTo: async (refs: string[]) => refs,
  recoverableEntities: async () => entityRefs,
});
const user = mockCredentials.user();

describe('ReadinessService.readinessOf', () => {
  it('fails, saying why, when the store or catalog fails, rather than blame an entity', async () => {
    const service = new ReadinessService(
      noCaptures,
      noRuns,
      emptyPlans,
      seesAll('component:default/a', 'component:default/outage'),
      { rpoSeconds: 86_400, rtoSeconds: 3_600 },
      7 * 86_400,
    );
    await expect(
      service.readinessOf(
        ['component:default/a', 'component:default/outage'],
        user,
      ),
    ).rejects.toThrow('connect ECONNREFUSED 127.0.0.1:5432');
  });

  it('assesses many entities, each once, in risk order whatever the order they finish in', async () => {
    const refs = Array.from(
      { length: 30 },
      (_, i) => `component:default/e${String(i).padStart(2, '0')}`,
    );
    const seen: string[] = [];
    const slow = {
      withMemo: () => slow,
      async plan(entityRef: string) {
        seen.push(entityRef);
        await new Promise(resolve =>
          setTimeout(resolve, 30 - refs.indexOf(entityRef)),
        );
        return emptyPlans.plan(entityRef);
      },
    } as unknown as PlanService;
    const service = new ReadinessService(
      noCaptures,
      noRuns,
      slow,
      seesAll(...refs),
      { rpoSeconds: 86_400, rtoSeconds: 3_600 },
      7 * 86_400,
    );
    const items = await service.readinessOf(refs, user);
    expect(items.map(i => i.entityRef)).toEqual(refs);
    expect(seen.sort()).toEqual(refs);
  });

  it('keeps the other entities when one cannot be assessed', async () => {
    const service = new ReadinessService(
      noCaptures,
      noRuns,
      emptyPlans,
      seesAll(
        'component:default/a',
        'component:default/broken',
        'component:default/b',
      ),
      { rpoSeconds: 86_400, rtoSeconds: 3_600 },
      7 * 86_400,
    );
    const items = await service.readinessOf(
      [
        'component:default/a',
        'component:default/broken',
        'component:default/b',
      ],
      user,
    );
    expect(items.map(i => i.entityRef)).toEqual([
      'component:default/broken',
      'component:default/a',
      'component:default/b',
    ]);
    expect(items[0]).toMatchObject({
      status: 'not-recoverable',
      reasons: ['Entity system:default/gone not found in the catalog'],
      captures: [],
      objectives: { rpoSeconds: 86_400, rtoSeconds: 3_600 },
    });
    expect(items[1].status).not.toBe('not-recoverable');
  });
});

describe('ReadinessService.readinessOf over the catalog', () => {
  it('asks the catalog once per entity for a whole overview, and again for the next', async () => {
    const catalog = catalogHidingFromUsers(entities, [site]);
    // What plans read, as the plugin: the overview of a user.
    const asked: string[] = [];
    const counting = new Proxy(catalog, {
      get: (target, key) =>
        key === 'getEntitiesByRefs'
          ? async (
              request: { entityRefs: string[] },
              options: { credentials: { principal: unknown } },
            ) => {
              if (
                (options.credentials.principal as { type: string }).type !==
                'user'
              )
                asked.push(...request.entityRefs);
              return target.getEntitiesByRefs(request, options as never);
            }
          : Reflect.get(target, key),
    });
    const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
    const graphs = new CatalogGraphLoader(
      counting,
      mockServices.auth(),
      objectives,
    );
    const service = new ReadinessService(
      noCaptures,
      noRuns,
      new PlanService(graphs),
      graphs,
      objectives,
      7 * 86_400,
    );
    // The system's plan and those of its parts walk the same machines and services.
    const everyRef = [
      c('database'),
      c('dns'),
      c('web'),
      m('db-01'),
      m('dns-01'),
      m('web-01'),
      site,
    ].sort();
    for (let overview = 0; overview < 2; overview++) {
      asked.length = 0;
      const items = await service.readinessOf(
        [site, c('dns'), c('web'), c('database')],
        user,
      );
      expect(
        Object.fromEntries(items.map(r => [r.entityRef, r.machineCount])),
      ).toEqual({
        [site]: 3,
        [c('dns')]: 1,
        [c('web')]: 2,
        [c('database')]: 1,
      });
      expect(asked.sort()).toEqual(everyRef);
    }
  });
});

describe('ReadinessService.readiness', () => {
  it("asks the store for the last run by the entity's own machines first, the machines it shares after", async () => {
    // web runs on web-01 and needs the database on db-01, which every run of the site boots.
    const web = 'component:default/web';
    const [db01, web01] = ['resource:default/db-01', 'resource:default/web-01'];
    const planned = planning(
      {
        ...graph(web),
        services: new Map([
          [
            web,
            {
              ref: web,
              machines: [web01],
              dependsOn: ['component:default/database'],
              probes: [],
            },
          ],
          [
            'component:default/database',
            {
              ref: 'component:default/database',
              machines: [db01],
              dependsOn: [],
              probes: [],
            },
          ],
        ]),
      },
      {
        entityRef: web,
        waves: [[db01], [web01]],
        machines: [
          {
            machineRef: db01,
            wave: 0,
            services: ['component:default/database'],
            waitsFor: [],
            probes: [],
          },
          {
            machineRef: web01,
            wave: 1,
            services: [web],
            waitsFor: [db01],
            probes: [],
          },
        ],
      },
    );
    const asked: unknown[] = [];
    const failures: unknown[] = [];
    const recording = {
      lastFinishedRun: async (query: { machineRefs: string[] }) => {
        asked.push(query);
        return undefined;
      },
      lastFailedRuns: async (
        queries: Array<{ machineRefs: string[]; after?: unknown }>,
      ) => {
        failures.push(
          ...queries.map(({ machineRefs, after }) => ({ machineRefs, after })),
        );
        return queries.map(() => undefined);
      },
      degradedFailovers: async () => [],
    } as unknown as ReadinessHistoryStore;
    const service = new ReadinessService(
      noCaptures,
      recording,
      planned,
      seesAll(web),
      { rpoSeconds: 86_400, rtoSeconds: 3_600 },
      7 * 86_400,
    );
    await service.readiness(web, user);
    // None found: then web's own last run and the last that booted its own machine (its
    // system's, say), to tell whether its plan changed since.
    expect(asked).toEqual([
      { machineRefs: [web01, db01] },
      { entityRef: web },
      { machineRefs: [web01] },
    ]);
    // And a failure on any machine of its plan, since no run in particular.
    expect(failures).toEqual([
      { machineRefs: [db01, web01], after: undefined },
    ]);
  });

  it('places a system by its machine parts too, those none of its services runs on among them', async () => {
    // shop's parts: api on app-01, and the machine bastion-01, which no service uses.
    const shop = 'system:default/shop';
    const api = 'component:default/api';
    const [app01, bastion01] = [
      'resource:default/app-01',
      'resource:default/bastion-01',
    ];
    const planned = planning(
      {
        ...graph(shop),
        roots: [api, bastion01],
        services: new Map([
          [api, { ref: api, machines: [app01], dependsOn: [], probes: [] }],
        ]),
        machines: new Map([
          [app01, { ref: app01 }],
          [bastion01, { ref: bastion01 }],
        ]),
      },
      {
        entityRef: shop,
        waves: [[bastion01], [app01]],
        machines: [
          {
            machineRef: bastion01,
            wave: 0,
            services: [],
            waitsFor: [],
            probes: [],
          },
          {
            machineRef: app01,
            wave: 1,
            services: [api],
            waitsFor: [bastion01],
            probes: [],
          },
        ],
      },
    );
    const service = new ReadinessService(
      noCaptures,
      noRuns,
      planned,
      seesAll(shop),
      { rpoSeconds: 86_400, rtoSeconds: 3_600 },
      7 * 86_400,
    );
    const readiness = await service.readiness(shop, user);
    expect(readiness.position).toEqual({
      wave: 1,
      machines: [bastion01, app01],
      waitsFor: [],
    });
  });
});

const c = (name: string) => `component:default/${name}`;
const m = (name: string) => `resource:default/${name}`;
const site = 'system:default/demo-site';

// The demo's shape: a system whose parts run on their own machines, web needing the database.
const entities: Entity[] = [
  ...['db-01', 'dns-01', 'web-01'].map(machineEntity),
  componentEntity('database', [m('db-01')]),
  componentEntity('dns', [m('dns-01')]),
  componentEntity('web', [m('web-01'), c('database')]),
  {
    apiVersion: 'backstage.io/v1alpha1',
    kind: 'System',
    metadata: { name: 'demo-site', namespace: 'default' },
    spec: {},
    relations: ['database', 'dns', 'web'].map(n => ({
      type: 'hasPart',
      targetRef: c(n),
    })),
  },
];

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'ReadinessService on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    let plans: PlanService;
    let service: ReadinessService;
    let clock = Date.parse('2026-11-24T00:00:00Z');
    let knex: Knex;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
      const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
      // Users may not see the system; its parts they do.
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(entities, [site]),
        mockServices.auth(),
        objectives,
      );
      plans = new PlanService(graphs);
      service = new ReadinessService(
        captureStore,
        runHistory,
        plans,
        graphs,
        objectives,
        7 * 86_400,
      );
      for (const machine of ['db-01', 'dns-01', 'web-01'])
        await captureStore.insertCapture(storedCapture(machine));
    });

    /** Runs the entity's current plan to the end, as the run driver records it. */
    async function run(
      id: string,
      entityRef: string,
      outcome: Pick<RecoveryRun, 'status' | 'rtoSeconds' | 'error'>,
    ) {
      const plan = (await plans.plan(entityRef)).plan!;
      await runStore.insertRun(
        {
          id,
          entityRef,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          machines: plan.machines.map(pm => ({
            machineRef: pm.machineRef,
            wave: pm.wave,
          })),
        },
        new Date((clock += 3_600_000)),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, outcome);
    }

    // Whoever sees every entity (a service, such as the plugin itself).
    const everything = mockCredentials.service();
    const status = async (ref: string) => {
      const r = await service.readiness(ref, everything);
      return {
        status: r.status,
        lastRun: r.lastRun && 'id' in r.lastRun ? r.lastRun.id : undefined,
        reasons: r.reasons,
      };
    };

    it("takes the last run that recovered all of an entity's plan, whichever entity it was for", async () => {
      // web's run boots the database's machine too, under the database's probes: it counts for
      // the database, not for the system, whose dns machine it never booted.
      await run('web-ok', c('web'), { status: 'succeeded', rtoSeconds: 60 });
      expect(await status(c('web'))).toMatchObject({
        status: 'ready',
        lastRun: 'web-ok',
      });
      expect(await status(c('database'))).toMatchObject({
        status: 'ready',
        lastRun: 'web-ok',
      });
      expect(await status(c('dns'))).toMatchObject({
        status: 'unknown',
        reasons: ['Never test-recovered'],
      });
      expect(await status(site)).toMatchObject({
        status: 'unknown',
        reasons: ['Never test-recovered'],
      });

      // The system's run tests every part; its measured RTO is theirs.
      await run('site-ok', site, { status: 'succeeded', rtoSeconds: 400 });
      for (const ref of [site, c('database'), c('dns'), c('web')]) {
        const r = await service.readiness(ref, everything);
        expect(r).toMatchObject({
          status: 'at-risk',
          lastRun: { id: 'site-ok', entityRef: site },
        });
        expect(r.reasons).toEqual([
          'Last measured RTO 7 min exceeds the objective of 5 min',
        ]);
      }

      // A failed run of web: web is not recoverable; so is the system, whose plan it did not cover
      // but boots web-01 as web's did; the database's machine was not what failed.
      await run('web-failed', c('web'), {
        status: 'failed',
        error: {
          machineRef: m('web-01'),
          probe: 'tcp:80',
          message: 'probe tcp:80 did not pass',
        },
      });
      expect(await status(c('web'))).toMatchObject({
        status: 'not-recoverable',
        lastRun: 'web-failed',
      });
      expect(await status(site)).toMatchObject({
        status: 'not-recoverable',
        lastRun: 'site-ok',
      });
      expect(await status(c('database'))).toMatchObject({
        status: 'at-risk',
        lastRun: 'site-ok',
      });

      // A failed system run on the database's machine fails everything that needs it, not dns.
      await run('site-failed', site, {
        status: 'failed',
        error: {
          machineRef: m('db-01'),
          message: 'probe tcp:5432 did not pass',
        },
      });
      expect(await status(c('database'))).toMatchObject({
        status: 'not-recoverable',
        lastRun: 'site-failed',
      });
      expect(await status(c('web'))).toMatchObject({
        status: 'not-recoverable',
        lastRun: 'site-failed',
      });
      expect(await status(c('dns'))).toMatchObject({
        status: 'at-risk',
        lastRun: 'site-ok',
      });

      // The overview says the same, most at risk first.
      const overview = await service.readinessOf(
        [site, c('dns'), c('web'), c('database')],
        everything,
      );
      expect(
        overview.map(r => [
          r.entityRef,
          r.status,
          r.lastRun && 'id' in r.lastRun ? r.lastRun.id : undefined,
        ]),
      ).toEqual([
        [c('database'), 'not-recoverable', 'site-failed'],
        [site, 'not-recoverable', 'site-failed'],
        [c('web'), 'not-recoverable', 'site-failed'],
        [c('dns'), 'at-risk', 'site-ok'],
      ]);
    });
    it('shows a run of an entity the catalog hides from the caller only as far as readiness judges by it', async () => {
      // The system's run covers its parts' plans; a user sees the parts, not the system.
      await run('site-secret', site, { status: 'succeeded', rtoSeconds: 400 });
      const seen = await service.readiness(c('web'), user);
      expect(seen.status).toBe('at-risk');
      expect(seen.reasons).toEqual([
        'Last measured RTO 7 min exceeds the objective of 5 min',
      ]);
      expect(seen.lastRun).toEqual({
        mode: 'test',
        status: 'succeeded',
        createdAt: expect.any(String),
        rtoSeconds: 400,
      });
      // The plugin itself sees the whole run.
      expect(
        (await service.readiness(c('web'), everything)).lastRun,
      ).toMatchObject({
        id: 'site-secret',
        entityRef: site,
        plan: { entityRef: site },
      });

      // A failure: the machine it failed at (in the caller's plan), not its message, console tails or other machines.
      const secret = 'VAULT_TOKEN=s3cr3t';
      await run('site-failed-secret', site, { status: 'running' });
      await runStore.updateRunMachine('site-failed-secret', m('dns-01'), {
        phase: 'failed',
        logTail: secret,
      });
      await runStore.updateRun('site-failed-secret', {
        status: 'failed',
        error: {
          machineRef: m('db-01'),
          probe: 'tcp:5432',
          message: `probe tcp:5432 did not pass (the lab could not use production's addresses: ${m('dns-01')}: ${secret})`,
        },
      });
      const failed = await service.readiness(c('web'), user);
      const hiddenFailure = `${m('db-01')} failed (in a run of an entity the catalog does not show you: its details are left out)`;
      expect(failed).toMatchObject({
        status: 'not-recoverable',
        reasons: [`Last test recovery failed: ${hiddenFailure}`],
      });
      expect(failed.lastRun).toEqual({
        mode: 'test',
        status: 'failed',
        createdAt: expect.any(String),
        error: { machineRef: m('db-01'), message: hiddenFailure },
      });

      // The overview the same (dns's machine was not what failed: the success still counts for it),
      // and nothing of either run beyond that anywhere.
      // The overview lists each as a summary: the machine it failed at, no more.
      const overview = await service.readinessOf(
        [c('dns'), c('web'), c('database')],
        user,
      );
      const failedSummary = {
        mode: 'test',
        status: 'failed',
        createdAt: failed.lastRun!.createdAt,
        failedAt: m('db-01'),
      };
      expect(overview.map(r => [r.entityRef, r.lastRun])).toEqual([
        [c('database'), failedSummary],
        [c('web'), failedSummary],
        [c('dns'), seen.lastRun],
      ]);
      for (const answer of [failed, ...overview]) {
        const text = JSON.stringify(answer.lastRun);
        for (const hidden of [
          site,
          'site-failed-secret',
          secret,
          'tcp:5432',
          m('dns-01'),
        ])
          expect(text).not.toContain(hidden);
      }
    });

    it("tells an entity's owners (ownRunsOnly) its own runs in full, and of another entity's only the machine it failed at", async () => {
      // The last run of each is still the system's failed one, its message naming a secret.
      const secret = 'VAULT_TOKEN=s3cr3t';
      const told = await service.readinessOf([site, c('web')], everything, {
        ownRunsOnly: true,
      });
      const of = (ref: string) => told.find(r => r.entityRef === ref)!;
      // The notifier sees every entity; web's owners may not see the system.
      expect(of(site).reasons[0]).toContain(secret);
      expect(of(site).lastRun).toMatchObject({
        id: 'site-failed-secret',
        entityRef: site,
      });
      expect(of(c('web'))).toMatchObject({
        status: 'not-recoverable',
        reasons: [
          `Last test recovery failed: ${m('db-01')} failed, in a run of another entity (its details on this entity's Recovery tab, to those the catalog shows that entity)`,
        ],
      });
      const text = JSON.stringify(of(c('web')));
      for (const hidden of [
        site,
        'site-failed-secret',
        secret,
        'tcp:5432',
        m('dns-01'),
      ])
        expect(text).not.toContain(hidden);
    });

    it("lists in the overview what each entity's readiness says, asking the store a few times for all of them", async () => {
      // The runs of the tests before: passed ones, failed ones, of a system users may not see.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
      try {
        const refs = [site, c('dns'), c('web'), c('database')];
        for (const who of [everything, mockCredentials.user()]) {
          const statements: string[] = [];
          const listen = (q: { sql: string }) => statements.push(q.sql);
          knex.on('query', listen);
          let overview: Awaited<ReturnType<ReadinessService['readinessOf']>>;
          try {
            overview = await service.readinessOf(refs, who);
          } finally {
            knex.off('query', listen);
          }
          // The latest captures, a page of runs, their machines, two rounds of candidates, the found
          // runs' details; a page of the runs failed since, two rounds of candidates, their details.
          expect(statements.length).toBeLessThanOrEqual(12);
          const planned = await service.readinessOf(refs, who, {
            includePlan: true,
          });
          expect(overview.map(r => r.entityRef)).toEqual(
            planned.map(r => r.entityRef),
          );
          for (const [k, item] of overview.entries()) {
            const { plan, lastRun, captures, ...one } = await service.readiness(
              item.entityRef,
              who,
            );
            const summary = lastRun && {
              ...('id' in lastRun
                ? { id: lastRun.id, entityRef: lastRun.entityRef }
                : {}),
              mode: lastRun.mode,
              status: lastRun.status,
              createdAt: lastRun.createdAt,
              startedAt: lastRun.startedAt,
              finishedAt: lastRun.finishedAt,
              rtoSeconds: lastRun.rtoSeconds,
              failedAt:
                'id' in lastRun
                  ? failedMachine(lastRun)
                  : lastRun.error?.machineRef,
            };
            expect(item).toEqual({
              ...one,
              machineCount: plan!.machines.length,
              captures: captures.map(({ latest, ...rest }) => ({
                ...rest,
                latest: latest && {
                  id: latest.id,
                  createdAt: latest.createdAt,
                },
              })),
              lastRun: summary,
            });
            expect(item).not.toHaveProperty('plan');
            expect(planned[k]).toEqual({ ...item, plan });
          }
        }
      } finally {
        vi.useRealTimers();
      }
    });
  },
);

/** The demo's shape as a messy catalog has it: `change` applied to a copy of each entity. */
const messy = (change: (e: Entity) => Entity = e => e): Entity[] =>
  entities.map(e => change(structuredClone(e)));
const annotated =
  (ref: string, annotations: Record<string, string>) => (e: Entity) =>
    `${e.kind.toLowerCase()}:default/${e.metadata.name}` === ref
      ? {
          ...e,
          metadata: {
            ...e.metadata,
            annotations: { ...e.metadata.annotations, ...annotations },
          },
        }
      : e;
const A = 'recovery.backstage-recovery.io/';

describe.each(databases.eachSupportedId())(
  'ReadinessService over a messy catalog on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
    const everything = mockCredentials.service();
    /** A readiness service over `catalog`, on the one store. */
    const over = (catalog: Entity[], engines?: string[]) => {
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(catalog, []),
        mockServices.auth(),
        objectives,
      );
      const plans = new PlanService(graphs);
      return {
        plans,
        service: new ReadinessService(
          captureStore,
          runHistory,
          plans,
          graphs,
          objectives,
          7 * 86_400,
          engines && (() => engines),
        ),
      };
    };
    const capture = (
      machineRef: string,
      createdAt: Date,
      id = `cap-${machineRef}-${createdAt.getTime()}`,
    ) =>
      captureStore.insertCapture({
        ...storedCapture(machineRef.split('/')[1]),
        id,
        createdAt: createdAt.toISOString(),
      });
    /** Runs `entityRef`'s plan as `plans` makes it, to success, finished an hour ago. */
    const succeeded = async (
      plans: PlanService,
      id: string,
      entityRef: string,
    ) => {
      const plan = (await plans.plan(entityRef)).plan!;
      await runStore.insertRun(
        {
          id,
          entityRef,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          machines: plan.machines.map(pm => ({
            machineRef: pm.machineRef,
            wave: pm.wave,
          })),
        },
        new Date(Date.now() - 3_600_000),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, { status: 'succeeded', rtoSeconds: 60 });
    };

    beforeAll(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
      for (const name of ['db-01', 'dns-01', 'web-01', 'cache-01'])
        await capture(m(name), new Date(Date.now() - 60_000));
      const { plans } = over(messy());
      await succeeded(plans, 'site-ok', site);
    });

    it("puts what one service's unparsable probes or objectives leave out at risk, not every plan that holds it out of reach", async () => {
      const catalog = messy(
        annotated(c('database'), {
          [`${A}probes`]: 'https:5432',
          [`${A}rto`]: '1H',
        }),
      );
      const { service } = over(catalog);
      const overview = await service.readinessOf(
        [site, c('dns'), c('web'), c('database')],
        everything,
      );
      const probe = `${c('database')}: probe "https:5432" in ${A}probes is not valid (there are no https probes: tcp:5432 checks that the port answers); expected tcp:PORT or http:PORT/PATH, separated by commas`;
      const rto = `${c('database')}: ${A}rto "1H" is not a duration: units are lower case (1h); until it is mended, the site's default of 5 min applies`;
      expect(overview.map(r => [r.entityRef, r.status, r.reasons])).toEqual([
        [c('database'), 'at-risk', [rto, probe]],
        [site, 'at-risk', [probe]],
        [c('web'), 'at-risk', [probe]],
        [c('dns'), 'ready', []],
      ]);
      // Where the page looks: the problems, naming the entity and the annotation.
      expect((await service.readiness(c('web'), everything)).problems).toEqual([
        { entityRef: c('database'), annotation: `${A}probes`, message: probe },
      ]);
    });

    it('names a machine whose engine annotation is no configured primary engine, on every plan that holds it, and only those: at risk, as its last capture still restores', async () => {
      const catalog = messy(
        annotated(m('db-01'), { [`${A}engine`]: 'Primary' }),
      );
      const { service } = over(catalog, ['primary', 'staging']);
      const problem = {
        entityRef: m('db-01'),
        annotation: `${A}engine`,
        message: `Machine ${m('db-01')}: ${A}engine "Primary" is no configured primary engine (configured: primary, staging), so it is not captured: set it to one of them`,
      };
      const overview = await service.readinessOf(
        [site, c('dns'), c('web'), c('database')],
        everything,
      );
      expect(overview.map(r => [r.entityRef, r.status, r.problems])).toEqual([
        [c('database'), 'at-risk', [problem]],
        [site, 'at-risk', [problem]],
        [c('web'), 'at-risk', [problem]],
        [c('dns'), 'ready', []],
      ]);
      expect((await service.readiness(c('web'), everything)).reasons).toEqual([
        problem.message,
      ]);
    });

    it("says so when an entity's plan grew since its last test recovery, rather than that it was never tested", async () => {
      // web's own run, then web comes to need a cache on a machine of its own.
      const before = over(messy());
      await succeeded(before.plans, 'web-before-cache', c('web'));
      const catalog = [
        ...messy(e =>
          e.metadata.name === 'web'
            ? {
                ...e,
                relations: [
                  ...e.relations!,
                  { type: 'dependsOn', targetRef: c('cache') },
                ],
              }
            : e,
        ),
        machineEntity('cache-01'),
        componentEntity('cache', [m('cache-01')]),
      ];
      const { service } = over(catalog);
      // Finished just now (the run's finish is stamped as it is recorded).
      const grown = expect.stringMatching(
        new RegExp(
          `^Its boot plan changed since its last test recovery \\(\\d+ s ago\\), which did not boot ${m('cache-01')}: none has recovered the plan it has now$`,
        ),
      );
      const web = await service.readiness(c('web'), everything);
      expect(web).toMatchObject({ status: 'at-risk', reasons: [grown] });
      expect(web.lastRun).toBeUndefined();
      // The overview the same; the database's plan the runs still recover; the cache was never tested.
      const overview = await service.readinessOf(
        [c('web'), c('database'), c('cache')],
        everything,
      );
      expect(overview.map(r => [r.entityRef, r.status, r.reasons])).toEqual([
        [c('web'), 'at-risk', [grown]],
        [c('cache'), 'unknown', ['Never test-recovered']],
        [c('database'), 'ready', []],
      ]);
    });

    it('does not take a capture dated ahead of the clock for a fresh one', async () => {
      const { service } = over(messy());
      await capture(
        m('dns-01'),
        new Date(Date.now() + 2 * 3_600_000),
        'cap-from-the-future',
      );
      const dns = await service.readiness(c('dns'), everything);
      expect(dns).toMatchObject({
        status: 'at-risk',
        reasons: [
          `Last capture of ${m('dns-01')} is dated 2 h ahead of the backend's clock: one of their clocks is wrong, so its age against the RPO cannot be told`,
        ],
      });
      expect(dns.captures).toEqual([
        {
          machineRef: m('dns-01'),
          latest: expect.objectContaining({ id: 'cap-from-the-future' }),
          ageSeconds: 0,
        },
      ]);
    });
  },
);

describe.each(databases.eachSupportedId())(
  'ReadinessService after the catalog changed since the last run on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
    const everything = mockCredentials.service();
    /** A readiness service over `catalog`, which hides `hidden` from users, on the one store. */
    const over = (catalog: Entity[], hidden: string[] = []) => {
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(catalog, hidden),
        mockServices.auth(),
        objectives,
      );
      const plans = new PlanService(graphs);
      return {
        plans,
        service: new ReadinessService(
          captureStore,
          runHistory,
          plans,
          graphs,
          objectives,
          7 * 86_400,
          () => ['primary'],
        ),
      };
    };
    const capture = (
      machineRef: string,
      container = machineRef.split('/')[1],
    ) =>
      captureStore.insertCapture({
        ...storedCapture(machineRef.split('/')[1]),
        id: `cap-${machineRef}-${container}`,
        container,
        createdAt: new Date(Date.now() - 60_000).toISOString(),
      });
    let created = Date.now() - 2 * 3_600_000;
    /** Runs `entityRef`'s plan as `plans` makes it to `outcome`, finished an hour ago. */
    const run = async (
      plans: PlanService,
      id: string,
      entityRef: string,
      outcome: Pick<RecoveryRun, 'status' | 'rtoSeconds' | 'error'>,
      mode: RecoveryRun['mode'] = 'test',
    ) => {
      const plan = (await plans.plan(entityRef)).plan!;
      await runStore.insertRun(
        {
          id,
          entityRef,
          mode,
          trigger: 'user',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          machines: plan.machines.map(pm => ({
            machineRef: pm.machineRef,
            wave: pm.wave,
          })),
        },
        new Date((created += 60_000)),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, {
        ...outcome,
        finishedAt: new Date(Date.now() - 3_600_000).toISOString(),
      });
    };
    const verdicts = async (service: ReadinessService, who = everything) =>
      (
        await service.readinessOf(
          [site, c('dns'), c('web'), c('database')],
          who,
        )
      ).map(r => [r.entityRef, r.status, r.reasons]);

    beforeAll(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
      for (const name of ['db-01', 'dns-01', 'web-01', 'cache-01'])
        await capture(m(name));
      // The nightly check's way: the system's run covers its parts, which have none of their own.
      await run(over(messy()).plans, 'site-ok', site, {
        status: 'succeeded',
        rtoSeconds: 60,
      });
    });

    it('does not count a run that never ran a probe added since, and says which, naming the run as the caller may see it', async () => {
      const { service } = over(
        messy(annotated(c('database'), { [`${A}probes`]: 'tcp:5432' })),
      );
      const since = (which: string) =>
        `Its boot plan changed since ${which} (60 min ago), which did not run probe tcp:5432 on ${m('db-01')}: none has recovered the plan it has now`;
      const bySite = since(`its last test recovery, run site-ok of ${site}`);
      expect(await verdicts(service)).toEqual([
        [c('database'), 'at-risk', [bySite]],
        [site, 'at-risk', [since('its last test recovery')]],
        [c('web'), 'at-risk', [bySite]],
        [c('dns'), 'ready', []],
      ]);
      expect((await service.readiness(c('web'), everything)).reasons).toEqual([
        bySite,
      ]);
      // A user the catalog does not show the system: the run is not named.
      const hidden = over(
        messy(annotated(c('database'), { [`${A}probes`]: 'tcp:5432' })),
        [site],
      ).service;
      const unnamed = since(
        'its last test recovery, in a run of another entity',
      );
      expect(
        (await hidden.readiness(c('web'), mockCredentials.user())).reasons,
      ).toEqual([unnamed]);
      expect(
        (await hidden.readinessOf([c('web')], mockCredentials.user()))[0]
          .reasons,
      ).toEqual([unnamed]);
      // Nor to its owners, as the notices quote it.
      expect(
        (
          await service.readinessOf([c('web')], everything, {
            ownRunsOnly: true,
          })
        )[0].reasons,
      ).toEqual([unnamed]);
      // A probe of the machine's own, the same.
      const machineProbe = over(
        messy(annotated(m('db-01'), { [`${A}probes`]: 'tcp:5432' })),
      ).service;
      expect(
        await machineProbe.readiness(c('database'), everything),
      ).toMatchObject({ status: 'at-risk', reasons: [bySite] });
    });

    it("names the run that recovered a part's plan before it grew, rather than that it was never tested", async () => {
      const { service } = over([
        ...messy(e =>
          e.metadata.name === 'web'
            ? {
                ...e,
                relations: [
                  ...e.relations!,
                  { type: 'dependsOn', targetRef: c('cache') },
                ],
              }
            : e,
        ),
        machineEntity('cache-01'),
        componentEntity('cache', [m('cache-01')]),
      ]);
      expect(await service.readiness(c('web'), everything)).toMatchObject({
        status: 'at-risk',
        reasons: [
          `Its boot plan changed since its last test recovery, run site-ok of ${site} (60 min ago), which did not boot ${m('cache-01')}: none has recovered the plan it has now`,
        ],
      });
    });

    it('judges a machine recovered on its own by the runs that booted it', async () => {
      const { service } = over(messy());
      expect(await service.readiness(m('web-01'), everything)).toMatchObject({
        status: 'ready',
        reasons: [],
        lastRun: { id: 'site-ok' },
      });
    });

    it('puts a machine whose container the catalog changed since its last capture at risk', async () => {
      const { service } = over(
        messy(annotated(m('web-01'), { [`${A}container`]: 'web-01-b' })),
      );
      const replaced = `Last capture of ${m('web-01')} is of container web-01 on engine primary, but the catalog now names web-01-b on primary: it has not been captured since, so a recovery would restore that earlier container`;
      expect(await verdicts(service)).toEqual([
        [site, 'at-risk', [replaced]],
        [c('web'), 'at-risk', [replaced]],
        [c('database'), 'ready', []],
        [c('dns'), 'ready', []],
      ]);
    });

    it('puts a part whose last run failed on its machine at risk, not out of reach, once its plan boots a new dependency before that machine', async () => {
      await run(over(messy()).plans, 'web-failed', c('web'), {
        status: 'failed',
        error: {
          machineRef: m('web-01'),
          probe: 'tcp:80',
          message: 'probe tcp:80 did not pass',
        },
      });
      const { service } = over([
        ...messy(e =>
          e.metadata.name === 'web'
            ? {
                ...e,
                relations: [
                  ...e.relations!,
                  { type: 'dependsOn', targetRef: c('cache') },
                ],
              }
            : e,
        ),
        machineEntity('cache-01'),
        componentEntity('cache', [m('cache-01')]),
      ]);
      // web-01 failed without the cache the plan now boots first: that lack may have been the failure.
      const grown = `Its boot plan changed since its last test recovery (60 min ago), which did not boot ${m('cache-01')} and failed on ${m('web-01')}, which the plan now boots after ${m('cache-01')}: none has recovered the plan it has now`;
      expect(await service.readiness(c('web'), everything)).toMatchObject({
        status: 'at-risk',
        reasons: [grown],
      });
      expect(
        (await service.readinessOf([c('web')], everything))[0],
      ).toMatchObject({ status: 'at-risk', reasons: [grown] });
    });

    it('counts a failover that recovered the plan as a test recovery would, and never a run interrupted since', async () => {
      const { plans, service } = over(messy());
      await run(
        plans,
        'site-failover',
        site,
        { status: 'succeeded', rtoSeconds: 90 },
        'failover',
      );
      // Then a test recovery of web, preempted by the next failover, which is still running.
      const admit = async (
        id: string,
        entityRef: string,
        mode: RecoveryRun['mode'],
      ) => {
        const plan = (await plans.plan(entityRef)).plan!;
        const machines = plan.machines.map(pm => ({
          machineRef: pm.machineRef,
          wave: pm.wave,
        }));
        return runStore.admitRun(
          {
            id,
            entityRef,
            mode,
            trigger: 'user',
            hypervisorHost: 'recovery',
            plan,
            options: {},
            machines,
          },
          new Date((created += 60_000)),
        );
      };
      await admit('web-preempted', c('web'), 'test');
      await runStore.updateRun('web-preempted', { status: 'running' });
      const admitted = await admit('site-failover-2', site, 'failover');
      expect(
        'preempted' in admitted && admitted.preempted.map(r => r.id),
      ).toEqual(['web-preempted']);
      expect((await runStore.getRun('web-preempted'))!.status).toBe(
        'interrupted',
      );
      for (const ref of [c('web'), c('database'), site]) {
        expect(await service.readiness(ref, everything)).toMatchObject({
          status: 'ready',
          reasons: [],
          lastRun: { id: 'site-failover', mode: 'failover' },
        });
      }
    });

    it('puts an entity whose kept failover runs degraded at risk, naming the failover, what is down and what to do, until it is not', async () => {
      const { plans, service } = over(messy());
      await run(
        plans,
        'site-degraded',
        site,
        { status: 'succeeded', rtoSeconds: 90 },
        'failover',
      );
      const supervision = {
        restarts: 1,
        lastRestartAt: '2026-03-01T10:00:00.000Z',
      };
      await runStore.setSupervision('site-degraded', {
        ...supervision,
        degraded: {
          since: '2026-03-01T10:00:00.000Z',
          machineRef: m('db-01'),
          message: 'stopped with exit code 3',
          notStarted: [m('web-01')],
        },
        retry: { nextAt: '2026-03-01T10:02:00.000Z', delaySeconds: 120 },
      });
      const why = `${m('db-01')} stopped on recovery and could not be brought back (stopped with exit code 3), and ${m('web-01')} left stopped as it waits for it; it is tried again at 2026-03-01T10:02:00.000Z. Look at why they do not come back on recovery (the run's timeline, the machine's log) and start them there, or release the failover once production runs on its primary machines again`;
      const reason = `Failover site-degraded runs degraded (down since 2026-03-01T10:00:00.000Z): ${why}`;
      const degraded = {
        status: 'at-risk',
        reasons: [reason],
        reasonRuns: [
          { reason: 0, run: { id: 'site-degraded', entityRef: site } },
        ],
      };
      expect(await service.readiness(site, everything)).toMatchObject(degraded);
      expect((await service.readinessOf([site], everything))[0]).toMatchObject(
        degraded,
      );
      // Its host told no stop time: the time is when the supervision noticed it down, said so.
      const stored = (await runStore.getRun('site-degraded'))!.supervision!;
      await runStore.setSupervision('site-degraded', {
        ...stored,
        degraded: { ...stored.degraded!, sinceIs: 'noticed' },
      });
      expect((await service.readiness(site, everything)).reasons).toEqual([
        `Failover site-degraded runs degraded (noticed down at 2026-03-01T10:00:00.000Z): ${why}`,
      ]);

      // Every machine running again (or the failover released): ready again.
      await runStore.setSupervision('site-degraded', supervision);
      expect(await service.readiness(site, everything)).toMatchObject({
        status: 'ready',
        reasons: [],
      });
    });

    it('counts a machine a degraded failover left running without network (its namespace shared with the one down) as down, for the failover and its parts', async () => {
      const { plans, service } = over(messy());
      await run(
        plans,
        'site-cut-off',
        site,
        { status: 'succeeded', rtoSeconds: 90 },
        'failover',
      );
      const since = '2026-03-01T10:00:00.000Z';
      const supervision = { restarts: 1, lastRestartAt: since };
      // web-01 runs in db-01's network namespace: db-01 down, web-01 runs on without network.
      await runStore.setSupervision('site-cut-off', {
        ...supervision,
        degraded: {
          since,
          machineRef: m('db-01'),
          message: 'stopped with exit code 3',
          withoutNetwork: [{ machineRef: m('web-01'), of: m('db-01'), since }],
        },
      });
      const cutOff = `${m('web-01')} running without network since ${since}, its namespace's owner ${m('db-01')} stopped`;
      expect(await service.readiness(site, everything)).toMatchObject({
        status: 'at-risk',
        reasons: [
          `Failover site-cut-off runs degraded (down since ${since}): ${m('db-01')} stopped on recovery and could not be brought back (stopped with exit code 3); ${cutOff}. Look at why they do not come back on recovery (the run's timeline, the machine's log) and start them there, or release the failover once production runs on its primary machines again`,
        ],
      });
      expect(await service.readiness(c('web'), everything)).toMatchObject({
        status: 'at-risk',
        reasons: [
          `Its machines ${m('db-01')}, ${m('web-01')} are down in failover site-cut-off of ${site} (down since ${since}): ${m('db-01')} could not be brought back on recovery (stopped with exit code 3); ${cutOff}. Production runs on that failover: look at its timeline, or ask the owners of ${site}`,
        ],
      });
      // db-01 restarted by hand (it runs) while an earlier machine is down: not said stopped.
      await runStore.setSupervision('site-cut-off', {
        ...supervision,
        degraded: {
          since,
          machineRef: m('dns-01'),
          message: 'stopped with exit code 3',
          withoutNetwork: [
            {
              machineRef: m('web-01'),
              of: m('db-01'),
              since,
              ownerRestarted: true,
            },
          ],
        },
      });
      expect((await service.readiness(c('web'), everything)).reasons).toEqual([
        `Its machine ${m('web-01')} is down in failover site-cut-off of ${site} (down since ${since}): ${m('web-01')} running without network since ${since}, its namespace's owner ${m('db-01')} was restarted outside supervision. Production runs on that failover: look at its timeline, or ask the owners of ${site}`,
      ]);
      await runStore.setSupervision('site-cut-off', supervision);
      expect(await service.readiness(c('web'), everything)).toMatchObject({
        status: 'ready',
        reasons: [],
      });
    });

    it("puts the services whose plan holds a machine down in a system's degraded failover at risk, naming the failover as the caller may see it", async () => {
      const { plans, service } = over(messy());
      await run(
        plans,
        'site-parts-down',
        site,
        { status: 'succeeded', rtoSeconds: 90 },
        'failover',
      );
      const supervision = {
        restarts: 1,
        lastRestartAt: '2026-03-01T10:00:00.000Z',
      };
      await runStore.setSupervision('site-parts-down', {
        ...supervision,
        degraded: {
          since: '2026-03-01T10:00:00.000Z',
          machineRef: m('db-01'),
          message: 'stopped with exit code 3',
          notStarted: [m('web-01')],
        },
        retry: { nextAt: '2026-03-01T10:02:00.000Z', delaySeconds: 120 },
      });
      // Worded for each part, the run the failover.
      const since = '2026-03-01T10:00:00.000Z';
      const retry = '; the supervision tries again at 2026-03-01T10:02:00.000Z';
      const failedDb = `${m('db-01')} could not be brought back on recovery (stopped with exit code 3)`;
      const named = `. Production runs on that failover: look at its timeline, or ask the owners of ${site}`;
      const partReasons = {
        [c('database')]:
          `Its machine ${m('db-01')} is down in failover site-parts-down of ${site} (down since ${since}): ${failedDb}${retry}${named}`,
        [c('web')]:
          `Its machines ${m('db-01')}, ${m('web-01')} are down in failover site-parts-down of ${site} (down since ${since}): ${failedDb}; ${m('web-01')} is left stopped as it waits for ${m('db-01')}${retry}${named}`,
      };
      const aboutFailover = [
        { reason: 0, run: { id: 'site-parts-down', entityRef: site } },
      ];
      for (const [ref, reason] of Object.entries(partReasons)) {
        const part = {
          status: 'at-risk',
          reasons: [reason],
          reasonRuns: aboutFailover,
        };
        expect(await service.readiness(ref, everything)).toMatchObject(part);
        expect((await service.readinessOf([ref], everything))[0]).toMatchObject(
          part,
        );
      }
      // Its host told no stop time: the time is when the supervision noticed it down, said so.
      const stored = (await runStore.getRun('site-parts-down'))!.supervision!;
      await runStore.setSupervision('site-parts-down', {
        ...stored,
        degraded: { ...stored.degraded!, sinceIs: 'noticed' },
      });
      expect(
        (await service.readiness(c('database'), everything)).reasons,
      ).toEqual([
        `Its machine ${m('db-01')} is down in failover site-parts-down of ${site} (noticed down at ${since}): ${failedDb}${retry}${named}`,
      ]);
      await runStore.setSupervision('site-parts-down', stored);
      // A part none of whose machines is down: untouched.
      expect(await service.readiness(c('dns'), everything)).toMatchObject({
        status: 'ready',
        reasons: [],
      });
      // A user the catalog does not show the system, and the owners the notices tell: neither the
      // failover nor its details (the host, the machine's message) are named; no run is given.
      const unnamed = `Its machines ${m('db-01')}, ${m('web-01')} are down in a failover of another entity (down since ${since}): ${m('db-01')} could not be brought back; ${m('web-01')} is left stopped as it waits for ${m('db-01')}${retry}. Production runs on that failover`;
      const hidden = over(messy(), [site]).service;
      for (const seen of [
        await hidden.readiness(c('web'), user),
        (await hidden.readinessOf([c('web')], user))[0],
        (
          await service.readinessOf([c('web')], everything, {
            ownRunsOnly: true,
          })
        )[0],
      ]) {
        expect(seen).toMatchObject({ status: 'at-risk', reasons: [unnamed] });
        expect(seen.reasonRuns).toEqual([{ reason: 0 }]);
      }

      // Every machine running again (or the failover released): ready again.
      await runStore.setSupervision('site-parts-down', supervision);
      for (const ref of [c('web'), c('database')])
        expect(await service.readiness(ref, everything)).toMatchObject({
          status: 'ready',
          reasons: [],
        });
    });
  },
);

describe.each(databases.eachSupportedId())(
  'ReadinessService weighing a failure since the last covering run on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    let knex: Knex;
    const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
    const everything = mockCredentials.service();
    // web is gated on web-01 by its health check; api, of no system, runs there too, behind a probe of its own.
    const catalog = [
      ...messy(annotated(c('web'), { [`${A}probes`]: 'http:80/healthz' })),
      annotated(c('api'), { [`${A}probes`]: 'tcp:8080' })(
        componentEntity('api', [m('web-01')]),
      ),
    ];
    /** A readiness service over the catalog, which hides `hidden` from users, on the one store. */
    const over = (hidden: string[] = []) => {
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(catalog, hidden),
        mockServices.auth(),
        objectives,
      );
      const plans = new PlanService(graphs);
      return {
        plans,
        service: new ReadinessService(
          captureStore,
          runHistory,
          plans,
          graphs,
          objectives,
          7 * 86_400,
          () => ['primary'],
        ),
      };
    };
    let created = Date.now() - 2 * 3_600_000;
    /** Runs `entityRef`'s current plan to `outcome`, a minute after the run before, finished an hour ago. */
    const run = async (
      id: string,
      entityRef: string,
      outcome: Pick<RecoveryRun, 'status' | 'rtoSeconds' | 'error'>,
      options = {},
    ) => {
      const plan = (await over().plans.plan(entityRef)).plan!;
      await runStore.insertRun(
        {
          id,
          entityRef,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'recovery',
          plan,
          options,
          machines: plan.machines.map(pm => ({
            machineRef: pm.machineRef,
            wave: pm.wave,
          })),
        },
        new Date((created += 60_000)),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, {
        ...outcome,
        finishedAt: new Date(Date.now() - 3_600_000).toISOString(),
      });
    };
    const failedOnWeb01 = (
      probe: string,
      message = `probe ${probe} did not pass`,
    ) => ({
      status: 'failed' as const,
      error: { machineRef: m('web-01'), probe, message },
    });
    const refs = [site, c('dns'), c('web'), c('database'), c('api')];
    /** Each entity's verdict by readiness, and the overview's, which must say the same. */
    const verdicts = async (
      who: BackstageCredentials = everything,
      service = over().service,
    ) => {
      const alone = await Promise.all(
        refs.map(async ref => [
          ref,
          ...pick(await service.readiness(ref, who)),
        ]),
      );
      const overview = await service.readinessOf(refs, who);
      expect(
        Object.fromEntries(overview.map(r => [r.entityRef, pick(r)])),
      ).toEqual(Object.fromEntries(alone.map(([ref, ...v]) => [ref, v])));
      return Object.fromEntries(
        alone.map(([ref, status, reasons]) => [ref, [status, reasons]]),
      );
    };
    const pick = (r: { status: string; reasons: string[] }) =>
      [r.status, r.reasons] as const;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
      for (const name of ['db-01', 'dns-01', 'web-01']) {
        await captureStore.insertCapture({
          ...storedCapture(name),
          createdAt: new Date(Date.now() - 60_000).toISOString(),
        });
      }
      // Yesterday's way: the system's run covers its parts; api has one of its own.
      await run('site-ok', site, { status: 'succeeded', rtoSeconds: 60 });
      await run('api-ok', c('api'), { status: 'succeeded', rtoSeconds: 60 });
    });

    it('counts neither an interrupted run nor a reverse-order test run that failed on a machine of the plan', async () => {
      // Naming the machine it was on when it stopped (as older backends did): its status says interrupted.
      await run('web-interrupted', c('web'), {
        ...failedOnWeb01(
          'http:80/healthz',
          `${INTERRUPTED_PREFIX}the backend is shutting down`,
        ),
        status: 'interrupted',
      });
      await run('web-reversed', c('web'), failedOnWeb01('http:80/healthz'), {
        reverseBootOrder: true,
      });
      const ready = ['ready', []];
      expect(await verdicts()).toEqual({
        [site]: ready,
        [c('dns')]: ready,
        [c('web')]: ready,
        [c('database')]: ready,
        [c('api')]: ready,
      });
    });

    it("does not count a failure on a machine gated by another service's probe the plan does not have", async () => {
      await run('api-failed', c('api'), failedOnWeb01('tcp:8080'));
      const ready = ['ready', []];
      expect(await verdicts()).toEqual({
        [site]: ready,
        [c('dns')]: ready,
        [c('web')]: ready,
        [c('database')]: ready,
        [c('api')]: [
          'not-recoverable',
          ['Last test recovery failed: probe tcp:8080 did not pass'],
        ],
      });
    });

    it("makes a system not recoverable when a part's run fails since on its machine, as the system's plan gates it there, naming that run as the caller may see it", async () => {
      await run('web-failed', c('web'), failedOnWeb01('http:80/healthz'));
      const since = (
        which: string,
        message = 'probe http:80/healthz did not pass',
      ) =>
        `A test recovery after the last that recovered its plan failed on ${m('web-01')}, gated there by nothing its plan does not gate it by${which}: ${message}`;
      const ready = ['ready', []];
      expect(await verdicts()).toEqual({
        // Its last covering run is still yesterday's success.
        [site]: [
          'not-recoverable',
          [since(` (run web-failed of ${c('web')})`)],
        ],
        [c('web')]: [
          'not-recoverable',
          ['Last test recovery failed: probe http:80/healthz did not pass'],
        ],
        // Their plans do not hold web-01.
        [c('dns')]: ready,
        [c('database')]: ready,
        // web's run gated web-01 by web's probe, which api's plan does not.
        [c('api')]: [
          'not-recoverable',
          ['Last test recovery failed: probe tcp:8080 did not pass'],
        ],
      });
      expect(
        (await over().service.readiness(site, everything)).lastRun,
      ).toMatchObject({ id: 'site-ok' });
      // A user the catalog does not show web: the run is not named, nor its message.
      const hidden = since(
        '',
        `${m('web-01')} failed (in a run of an entity the catalog does not show you: its details are left out)`,
      );
      expect(
        (await verdicts(mockCredentials.user(), over([c('web')]).service))[
          site
        ],
      ).toEqual(['not-recoverable', [hidden]]);
      // Nor to the system's owners, as the notices quote it.
      const told = await over().service.readinessOf([site], everything, {
        ownRunsOnly: true,
      });
      expect(told[0].reasons).toEqual([
        since(
          '',
          `${m('web-01')} failed, in a run of another entity (its details on this entity's Recovery tab, to those the catalog shows that entity)`,
        ),
      ]);
    });

    it('asks the store as many times for an overview of many entities as for a few', async () => {
      const { service } = over();
      const statementsOf = async (entityRefs: string[]) => {
        const statements: string[] = [];
        const listen = (q: { sql: string }) => statements.push(q.sql);
        knex.on('query', listen);
        try {
          await service.readinessOf(entityRefs, everything);
        } finally {
          knex.off('query', listen);
        }
        return statements.length;
      };
      // The system's failure since is found; the database's newest candidate (web's failed run, which
      // booted db-01) refused for another.
      const few = await statementsOf([site, c('database')]);
      // The latest captures, and the failed captures since; the last runs (a page, its machines, two
      // rounds of candidates, their details); the failures since (a page, the newest candidates,
      // their details); the failovers kept degraded (none here: no details read).
      expect(few).toBe(13);
      expect(
        await statementsOf([...refs, m('db-01'), m('dns-01'), m('web-01')]),
      ).toBe(few);
    });

    it('is recoverable again once a newer run recovers the plan', async () => {
      await run('site-ok-again', site, { status: 'succeeded', rtoSeconds: 60 });
      const ready = ['ready', []];
      expect(await verdicts()).toEqual({
        [site]: ready,
        [c('dns')]: ready,
        [c('web')]: ready,
        [c('database')]: ready,
        [c('api')]: [
          'not-recoverable',
          ['Last test recovery failed: probe tcp:8080 did not pass'],
        ],
      });
    });
  },
);

describe.each(databases.eachSupportedId())(
  'ReadinessService after a machine was replaced on %p',
  databaseId => {
    let captureStore: CaptureStore;
    let runStore: RunStore;
    let runHistory: ReadinessHistoryStore;
    let knex: Knex;
    const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
    const everything = mockCredentials.service();
    /** A readiness service over `catalog`, which hides `hidden` from users, on the one store. */
    const over = (catalog: Entity[], hidden: string[] = []) => {
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(catalog, hidden),
        mockServices.auth(),
        objectives,
      );
      const plans = new PlanService(graphs);
      return {
        plans,
        service: new ReadinessService(
          captureStore,
          runHistory,
          plans,
          graphs,
          objectives,
          7 * 86_400,
          () => ['primary'],
        ),
      };
    };
    /** The catalog once web-01 is another container. */
    const replacedBy = (container: string) =>
      messy(annotated(m('web-01'), { [`${A}container`]: container }));
    // Captures and runs a minute apart, the newest well before now.
    let created = Date.now() - 3 * 3_600_000;
    const capture = (machine: string, container = machine) =>
      captureStore.insertCapture({
        ...storedCapture(machine),
        id: `cap-${machine}-${container}`,
        container,
        createdAt: new Date((created += 60_000)).toISOString(),
      });
    const machinesOf = async (plans: PlanService, entityRef: string) => {
      const plan = (await plans.plan(entityRef)).plan!;
      return {
        plan,
        machines: plan.machines.map(pm => ({
          machineRef: pm.machineRef,
          wave: pm.wave,
        })),
      };
    };
    const succeed = async (id: string) => {
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, {
        status: 'succeeded',
        rtoSeconds: 60,
        finishedAt: new Date(created).toISOString(),
      });
    };
    /** A test recovery of `entityRef` as RunService admits one (each machine's newest capture chosen), to success. */
    const recovered = async (
      plans: PlanService,
      id: string,
      entityRef: string,
    ) => {
      const admission = await runStore.admitRun(
        {
          id,
          entityRef,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'recovery',
          options: {},
          ...(await machinesOf(plans, entityRef)),
        },
        new Date((created += 60_000)),
      );
      expect(admission).toHaveProperty('captures');
      await succeed(id);
    };
    const verdicts = async (
      service: ReadinessService,
      who: BackstageCredentials = everything,
    ) => {
      const refs = [site, c('dns'), c('web'), c('database')];
      const alone = await Promise.all(
        refs.map(async ref => {
          const { status, reasons } = await service.readiness(ref, who);
          return [ref, status, reasons] as const;
        }),
      );
      const overview = await service.readinessOf(refs, who);
      // The overview says what each entity's own readiness says.
      expect(
        Object.fromEntries(
          overview.map(r => [r.entityRef, [r.status, r.reasons]]),
        ),
      ).toEqual(Object.fromEntries(alone.map(([ref, ...v]) => [ref, v])));
      return Object.fromEntries(alone.map(([ref, ...v]) => [ref, v]));
    };
    const ready = ['ready', []];
    const restoredBefore = (before: string, now: string) =>
      `Last test recovery restored ${m('web-01')} from a capture of container ${before} on engine primary, but the catalog now names ${now} on primary: it does not vouch for the machine as it is now, until a run restores that container`;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await migrate(knex);
      captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      runHistory = new ReadinessHistoryStore(knex);
      for (const name of ['db-01', 'dns-01', 'web-01']) await capture(name);
      await recovered(over(messy()).plans, 'site-ok', site);
    });

    it('puts an entity at risk when a machine its last run restored was replaced and captured again, naming both containers', async () => {
      await capture('web-01', 'web-01-b');
      // Retention keeps the new capture alone: the run still knows what it restored.
      expect(
        (await captureStore.pruneCaptures(m('web-01'), 1)).map(p => p.id),
      ).toEqual(['cap-web-01-web-01']);
      const { service } = over(replacedBy('web-01-b'));
      const risk = ['at-risk', [restoredBefore('web-01', 'web-01-b')]];
      expect(await verdicts(service)).toEqual({
        [site]: risk,
        [c('web')]: risk,
        [c('database')]: ready,
        [c('dns')]: ready,
      });
      // So for a user the catalog does not show the system whose run it was: the reason names no run.
      const hidden = over(replacedBy('web-01-b'), [site]).service;
      expect(
        (await verdicts(hidden, mockCredentials.user()))[c('web')],
      ).toEqual(risk);
    });

    it('asks the store no more for it: what each machine restored comes with the run', async () => {
      const statementsOf = async (service: ReadinessService) => {
        const statements: string[] = [];
        const listen = (q: { sql: string }) => statements.push(q.sql);
        knex.on('query', listen);
        try {
          await service.readinessOf(
            [site, c('dns'), c('web'), c('database')],
            everything,
          );
        } finally {
          knex.off('query', listen);
        }
        return statements.length;
      };
      expect(await statementsOf(over(replacedBy('web-01-b')).service)).toBe(
        await statementsOf(over(messy()).service),
      );
    });

    it('is ready again once a newer run restores the container the catalog names now', async () => {
      const { plans, service } = over(replacedBy('web-01-b'));
      await recovered(plans, 'site-ok-b', site);
      expect(
        (await runStore.getRun('site-ok-b'))!.machines.find(
          x => x.machineRef === m('web-01'),
        ),
      ).toMatchObject({
        captureId: 'cap-web-01-web-01-b',
        capturedFrom: { engine: 'primary', container: 'web-01-b' },
      });
      expect(await verdicts(service)).toEqual({
        [site]: ready,
        [c('web')]: ready,
        [c('database')]: ready,
        [c('dns')]: ready,
      });
    });

    it('judges as before a run recorded before runs kept what they restored', async () => {
      // Replaced again and captured; then a run as stored before, with no container recorded.
      await capture('web-01', 'web-01-c');
      const { plans, service } = over(replacedBy('web-01-c'));
      await runStore.insertRun(
        {
          id: 'site-old-style',
          entityRef: site,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'recovery',
          options: {},
          ...(await machinesOf(plans, site)),
        },
        new Date((created += 60_000)),
      );
      await succeed('site-old-style');
      expect(
        (await runStore.getRun('site-old-style'))!.machines.every(
          x => x.capturedFrom === undefined,
        ),
      ).toBe(true);
      expect(await verdicts(service)).toEqual({
        [site]: ready,
        [c('web')]: ready,
        [c('database')]: ready,
        [c('dns')]: ready,
      });
    });
  },
);

describe.each(databases.eachSupportedId())(
  'ReadinessService after a run that failed as a whole on %p',
  databaseId => {
    let runStore: RunStore;
    let service: ReadinessService;
    let plans: PlanService;
    const everything = mockCredentials.service();
    let created = Date.now() - 2 * 3_600_000;
    /** Runs `entityRef`'s current plan to `outcome`, a minute after the run before. */
    const run = async (
      id: string,
      entityRef: string,
      outcome: Pick<RecoveryRun, 'status' | 'rtoSeconds' | 'error'>,
    ) => {
      const plan = (await plans.plan(entityRef)).plan!;
      await runStore.insertRun(
        {
          id,
          entityRef,
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          machines: plan.machines.map(pm => ({
            machineRef: pm.machineRef,
            wave: pm.wave,
          })),
        },
        new Date((created += 60_000)),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRun(id, {
        ...outcome,
        finishedAt: new Date(Date.now() - 3_600_000).toISOString(),
      });
    };
    // No machine to blame: the host's room for all the run boots, its engine gone mid-run.
    const noRoom = {
      status: 'failed' as const,
      error: {
        message:
          'hypervisor host recovery has 11.5 MiB free for captures of 2.0 GiB: make room there',
      },
    };
    const engineGone = {
      status: 'failed' as const,
      error: {
        message:
          'hypervisor host recovery stopped answering while resource:default/web-01 was booting: connect ENOENT /run/recovery.sock',
      },
    };
    const verdict = async (ref: string) => {
      const r = await service.readiness(ref, everything);
      return [
        r.status,
        r.lastRun && 'id' in r.lastRun ? r.lastRun.id : undefined,
        r.reasons,
      ];
    };

    beforeAll(async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const captureStore = new CaptureStore(knex);
      runStore = new RunStore(knex);
      const objectives = { rpoSeconds: 86_400, rtoSeconds: 300 };
      const graphs = new CatalogGraphLoader(
        catalogHidingFromUsers(entities, []),
        mockServices.auth(),
        objectives,
      );
      plans = new PlanService(graphs);
      service = new ReadinessService(
        captureStore,
        new ReadinessHistoryStore(knex),
        plans,
        graphs,
        objectives,
        7 * 86_400,
      );
      for (const name of ['db-01', 'dns-01', 'web-01']) {
        await captureStore.insertCapture({
          ...storedCapture(name),
          createdAt: new Date(Date.now() - 60_000).toISOString(),
        });
      }
    });

    it('counts it against its own entity alone: the plans inside its own may fit where it did not', async () => {
      await run('site-no-room', site, noRoom);
      expect(await verdict(site)).toEqual([
        'not-recoverable',
        'site-no-room',
        [`Last test recovery failed: ${noRoom.error.message}`],
      ]);
      // Its parts' plans are inside the system's: the host's room for it all says nothing of theirs.
      const partOf = `Its whole boot plan was in its last test recovery, run site-no-room of ${site} (60 min ago), which failed as a whole, on no machine: that tells nothing of its plan, and no run that succeeded has recovered it since`;
      for (const ref of [c('web'), c('database'), c('dns')])
        expect(await verdict(ref)).toEqual(['at-risk', undefined, [partOf]]);

      // web's own run recovers web and the database; the system's next fails as a whole again.
      await run('web-ok', c('web'), { status: 'succeeded', rtoSeconds: 60 });
      await run('site-engine-gone', site, engineGone);
      expect(await verdict(site)).toEqual([
        'not-recoverable',
        'site-engine-gone',
        [`Last test recovery failed: ${engineGone.error.message}`],
      ]);
      for (const ref of [c('web'), c('database')])
        expect(await verdict(ref)).toEqual(['ready', 'web-ok', []]);

      // web's own run failed as a whole: web's last run, not the database's.
      await run('web-no-room', c('web'), noRoom);
      expect(await verdict(c('web'))).toEqual([
        'not-recoverable',
        'web-no-room',
        [`Last test recovery failed: ${noRoom.error.message}`],
      ]);
      expect(await verdict(c('database'))).toEqual(['ready', 'web-ok', []]);
      // The overview says the same.
      const overview = await service.readinessOf(
        [site, c('web'), c('database'), c('dns')],
        everything,
      );
      expect(
        Object.fromEntries(overview.map(r => [r.entityRef, r.status])),
      ).toEqual({
        [site]: 'not-recoverable',
        [c('web')]: 'not-recoverable',
        [c('database')]: 'ready',
        [c('dns')]: 'at-risk',
      });
    });
  },
);
