/**
 * What the nightly check records of a night per entity, for the entity's page: its run started,
 * covered by another's, left out, or refused and why; each as soon as it is known, then the night
 * whole at its end.
 */
import {
  mockCredentials,
  mockServices,
  TestDatabases,
} from '@backstage/backend-test-utils';
import type { Entity } from '@backstage/catalog-model';
import {
  HOST_BUSY_ERROR_NAME,
  KEPT_FAILOVER_ERROR_NAME,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
  type NightlyCheckRecord,
  type ReadinessSummary,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  RecoveryTaskError,
  type RecoveryTasksApi,
} from '@backstage-recovery/plugin-recovery-node';
import request from 'supertest';
import { NightlyCheckStore } from '../../recovery-backend/src/database/NightlyCheckStore';
import { migrate } from '../../recovery-backend/src/database/migrations';
import {
  componentEntity,
  machineEntity,
} from '../../recovery-backend/src/testing/entities';
import { nightlyCheck, nightlyOptOuts, nightlyRecorder } from './nightlyCheck';
import { finishTask } from './tasks';
import { startSchedulerBackend } from './testing/schedulerBackend';

const SHOP = 'system:default/shop';
const [A, B, C, D, E] = ['a', 'b', 'c', 'd', 'e'].map(
  n => `component:default/${n}`,
);
const machine = (entityRef: string) =>
  `${entityRef
    .replace('component:', 'resource:')
    .replace('system:default/shop', 'resource:default/shop')}-01`;
const [A01, B01] = [machine(A), machine(B)];
const NIGHTLY = 'recovery.backstage-recovery.io/nightly-check';

/** Readiness as `GET /readiness?include=plan` lists it: `machines` in one wave; none for no plan. */
const readinessOf = (
  entityRef: string,
  machines?: string[],
  options: { uncaptured?: string[]; services?: Record<string, string[]> } = {},
): ReadinessSummary => ({
  entityRef,
  status: machines ? 'unknown' : 'not-recoverable',
  reasons: machines
    ? []
    : [
        'Dependency cycle: component:default/loop -> component:default/hoop -> component:default/loop',
      ],
  problems: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 900 },
  plan: machines && {
    entityRef,
    waves: [machines],
    machines: machines.map(machineRef => ({
      machineRef,
      wave: 1,
      services: options.services?.[machineRef] ?? [entityRef],
      waitsFor: [],
      probes: [],
    })),
  },
  captures: (machines ?? []).map(machineRef => ({
    machineRef,
    ...(!options.uncaptured?.includes(machineRef) && {
      latest: { id: `c-${machineRef}`, createdAt: '2026-12-05T02:00:00.000Z' },
      ageSeconds: 600,
    }),
  })),
});

const FAILOVER =
  'failover f1 of component:default/bank (succeeded at 2026-12-04T10:00:00.000Z)';
const REMEDY =
  'release failover f1 (recovery release f1, or POST /runs/f1/release), or else remove what it kept there by hand';
const besideFailover = () =>
  new RecoveryTaskError(
    `POST /runs failed with 409: kept failover`,
    409,
    KEPT_FAILOVER_ERROR_NAME,
    {
      name: KEPT_FAILOVER_ERROR_NAME,
      failover: FAILOVER,
      host: 'recovery',
      keeps: '2 containers and 1 network',
      holding: "production's subnet 10.3.0.0/24",
      remedy: REMEDY,
      runId: 'f1',
      entityRef: 'component:default/bank',
    },
  );
const NO_CAPTURE = `No capture of ${machine(D)} yet: capture first (POST /captures)`;
/** A record as the fake API logs it: partial or whole, and each entity's outcome. */
const said = ({ partial, outcomes }: NightlyCheckRecord) =>
  `record ${partial ? 'so far' : 'whole'}: ${outcomes.map(o => `${o.entityRef.replace(/^\w+:default\//, '')} ${o.outcome}`).join(', ')}`;
const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

/** What a logger warned: each line's message, and its error's. */
const warnings = (logger: ReturnType<typeof mockServices.logger.mock>) =>
  vi
    .mocked(logger.warn)
    .mock.calls.map(([message, error]: unknown[]) => [
      message,
      (error as Error).message,
    ]);

describe('nightly check outcomes', () => {
  const items = [
    // The shop's run covers a and b.
    readinessOf(SHOP, [A01, B01], { services: { [A01]: [A], [B01]: [B] } }),
    readinessOf(A, [A01]),
    readinessOf(B, [B01]),
    // Beside a failover kept on the host.
    readinessOf(C, [machine(C)]),
    // Never captured.
    readinessOf(D, [machine(D)], { uncaptured: [machine(D)] }),
    // The host busy with another run until the budget runs out.
    readinessOf(E, [machine(E)]),
    readinessOf('component:default/legacy', [
      machine('component:default/legacy'),
    ]),
    readinessOf('component:default/loop'),
  ];
  const optOuts = nightlyOptOuts([
    {
      ...componentEntity('legacy', []),
      metadata: {
        name: 'legacy',
        namespace: 'default',
        annotations: { [NIGHTLY]: 'false' },
      },
    },
  ]);

  const apiOf = (record: RecoveryTasksApi['recordNightlyCheck']) => {
    const calls: string[] = [];
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      listReadiness: async () => items,
      startRun: async entityRef => {
        calls.push(`start ${entityRef}`);
        if (entityRef === C) throw besideFailover();
        if (entityRef === D)
          throw new RecoveryTaskError(
            `POST /runs failed with 409: ${NO_CAPTURE}`,
            409,
            MACHINES_NOT_CAPTURED_ERROR_NAME,
            {
              name: MACHINES_NOT_CAPTURED_ERROR_NAME,
              message: NO_CAPTURE,
              neverCaptured: [machine(D)],
            },
          );
        if (entityRef === E) {
          throw new RecoveryTaskError(
            'POST /runs failed with 409: busy',
            409,
            HOST_BUSY_ERROR_NAME,
            {
              name: HOST_BUSY_ERROR_NAME,
              runId: 'r-bank',
              entityRef: 'system:default/bank',
            },
          );
        }
        return { id: 'r1', entityRef, status: 'pending' } as RecoveryRun;
      },
      getRun: async id =>
        ({
          ...(items[0].plan && { plan: items[0].plan }),
          id,
          entityRef: SHOP,
          status: 'succeeded',
          rtoSeconds: 42,
          machines: [],
          steps: [],
        }) as unknown as RecoveryRun,
      recordNightlyCheck: async (night, options) => {
        calls.push(said(night));
        await record(night, options);
      },
    };
    return { api, calls };
  };

  it('records what it did about each entity as soon as it knows it, each run once started, then the night whole', async () => {
    const recorded: NightlyCheckRecord[] = [];
    const { api, calls } = apiOf(async night => void recorded.push(night));
    const before = new Date().toISOString();
    const report = await nightlyCheck(
      api,
      optOuts,
      mockServices.logger.mock(),
      { pollIntervalMs: 5, deadline: Date.now() + 300 },
    );
    expect(calls).toEqual([
      // Known before any run.
      'record so far: legacy excluded, loop refused',
      `start ${SHOP}`,
      'record so far: shop started',
      // Its end, with whom it covered; each refusal as it came, before the next start.
      'record so far: shop started, a covered, b covered',
      `start ${C}`,
      'record so far: c refused',
      `start ${D}`,
      'record so far: d refused',
      ...calls.slice(8, -1).map(() => `start ${E}`),
      'record whole: legacy excluded, loop refused, shop started, a covered, b covered, c refused, d refused, e refused',
    ]);
    // One night: each record dated when it began.
    const { checkedAt } = recorded[0];
    expect(checkedAt >= before && checkedAt <= new Date().toISOString()).toBe(
      true,
    );
    expect(new Set(recorded.map(r => r.checkedAt))).toEqual(
      new Set([checkedAt]),
    );
    // The shop's words once its run started, then once it ended.
    expect(recorded[1].outcomes).toEqual([
      {
        entityRef: SHOP,
        outcome: 'started',
        runId: 'r1',
        runEntityRef: SHOP,
        message: 'run r1 started; readiness counts it once it ends',
      },
    ]);
    const { outcomes } = recorded[recorded.length - 1];
    expect(recorded[2].outcomes).toEqual(outcomes.slice(2, 5));
    const shopRun = { runId: 'r1', runEntityRef: SHOP };
    expect(outcomes).toEqual([
      {
        entityRef: 'component:default/legacy',
        outcome: 'excluded',
        message: `left out: its ${NIGHTLY} annotation is 'false'`,
      },
      {
        entityRef: 'component:default/loop',
        outcome: 'refused',
        reason: 'no-plan',
        message:
          'no boot plan, so no test recovery: Dependency cycle: component:default/loop -> component:default/hoop -> component:default/loop',
      },
      {
        entityRef: SHOP,
        outcome: 'started',
        ...shopRun,
        message: 'run r1 succeeded in 42 s',
      },
      {
        entityRef: A,
        outcome: 'covered',
        ...shopRun,
        message: `run r1 of ${SHOP} succeeded in 42 s`,
      },
      {
        entityRef: B,
        outcome: 'covered',
        ...shopRun,
        message: `run r1 of ${SHOP} succeeded in 42 s`,
      },
      {
        entityRef: C,
        outcome: 'refused',
        reason: 'kept-failover',
        runId: 'f1',
        runEntityRef: 'component:default/bank',
        message: `refused: ${FAILOVER} keeps 2 containers and 1 network on recovery, serving production with production's subnet 10.3.0.0/24; ${REMEDY}`,
      },
      {
        entityRef: D,
        outcome: 'refused',
        reason: 'uncaptured',
        message: `POST /runs failed with 409: ${NO_CAPTURE}`,
      },
      {
        entityRef: E,
        outcome: 'refused',
        reason: 'host-busy',
        runId: 'r-bank',
        runEntityRef: 'system:default/bank',
        message: expect.stringMatching(
          /^not started: the hypervisor host was still busy after \d+ attempts when the task's time budget ran out/,
        ),
      },
    ]);
    expect(report.outcomes).toEqual(outcomes);
  });

  it('logs a failure to record them, once while the night goes on and once at its end, and fails nothing for it', async () => {
    const { api, calls } = apiOf(async () => {
      throw new RecoveryTaskError(
        'POST /nightly-check failed with 503: database unreachable',
        503,
      );
    });
    const logger = mockServices.logger.mock();
    // Only what the night itself found fails the task: here, none of it.
    const quiet = nightlyOptOuts([]);
    api.listReadiness = async () => items.slice(0, 3);
    const report = await nightlyCheck(api, quiet, logger, {
      pollIntervalMs: 1,
    });
    // The night opens at once; what could not be recorded is sent again with the next.
    expect(calls).toEqual([
      'record so far: ',
      `start ${SHOP}`,
      'record so far: shop started',
      'record whole: shop started, a covered, b covered',
    ]);
    expect(report).toMatchObject({ succeeded: [SHOP, A, B], failed: [] });
    expect(warnings(logger)).toEqual([
      [
        "Nightly check: could not record its outcomes so far, so the pages of the entities it reached still show the last night's until it records them",
        'POST /nightly-check failed with 503: database unreachable',
      ],
      [
        'Nightly check: could not record its outcomes for 3 entities, so their pages still show the last outcomes recorded',
        'POST /nightly-check failed with 503: database unreachable',
      ],
    ]);
    expect(() =>
      finishTask('Nightly readiness check', report.failed, logger),
    ).not.toThrow();
  });

  it.each(databases.eachSupportedId())(
    "puts tonight's outcome on an entity's page once the check reached it, keeps last night's until then, and ends with the night whole (%s)",
    async databaseId => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const store = new NightlyCheckStore(knex);
      const GONE = 'component:default/gone';
      const lastNight = '2026-12-04T02:30:00.000Z';
      await store.record({
        checkedAt: lastNight,
        outcomes: [SHOP, A, B, C, D, E, GONE].map(entityRef => ({
          entityRef,
          outcome: 'refused' as const,
          reason: 'error' as const,
          message: 'last night',
        })),
      });
      /** Each entity's page, as the night goes: tonight's outcome, or `last night`. */
      const pages = async () =>
        Object.fromEntries(
          [...(await store.outcomes())].map(([ref, o]) => [
            ref.replace(/^\w+:default\//, ''),
            o.checkedAt === lastNight ? 'last night' : o.outcome,
          ]),
        );
      const seen: Record<string, Record<string, string>> = {};
      const { api } = apiOf(night => store.record(night));
      const { startRun, getRun } = api;
      api.startRun = async (entityRef, options) => {
        seen[`before ${entityRef}`] ??= await pages();
        return startRun(entityRef, options);
      };
      api.getRun = async (id, options) => {
        seen["during the shop's run"] ??= await pages();
        return getRun(id, options);
      };
      await nightlyCheck(api, optOuts, mockServices.logger.mock(), {
        pollIntervalMs: 5,
        deadline: Date.now() + 300,
      });
      expect(seen).toEqual({
        [`before ${SHOP}`]: {
          legacy: 'excluded',
          loop: 'refused',
          shop: 'last night',
          a: 'last night',
          b: 'last night',
          c: 'last night',
          d: 'last night',
          e: 'last night',
          gone: 'last night',
        },
        "during the shop's run": {
          legacy: 'excluded',
          loop: 'refused',
          shop: 'started',
          a: 'last night',
          b: 'last night',
          c: 'last night',
          d: 'last night',
          e: 'last night',
          gone: 'last night',
        },
        [`before ${C}`]: {
          legacy: 'excluded',
          loop: 'refused',
          shop: 'started',
          a: 'covered',
          b: 'covered',
          c: 'last night',
          d: 'last night',
          e: 'last night',
          gone: 'last night',
        },
        [`before ${D}`]: {
          legacy: 'excluded',
          loop: 'refused',
          shop: 'started',
          a: 'covered',
          b: 'covered',
          c: 'refused',
          d: 'last night',
          e: 'last night',
          gone: 'last night',
        },
        [`before ${E}`]: {
          legacy: 'excluded',
          loop: 'refused',
          shop: 'started',
          a: 'covered',
          b: 'covered',
          c: 'refused',
          d: 'refused',
          e: 'last night',
          gone: 'last night',
        },
      });
      // The night whole: the entity gone from the catalog keeps no outcome; the shop's run its last words.
      expect(await pages()).toEqual({
        legacy: 'excluded',
        loop: 'refused',
        shop: 'started',
        a: 'covered',
        b: 'covered',
        c: 'refused',
        d: 'refused',
        e: 'refused',
      });
      expect((await store.outcomeOf(SHOP))?.message).toBe(
        'run r1 succeeded in 42 s',
      );
    },
  );

  it('records outcomes so far once each, sends again those it could not record, and none once a newer night is recorded', async () => {
    const sent: string[] = [];
    const answers: Array<Error | undefined> = [
      new RecoveryTaskError(
        'POST /nightly-check failed with 503: database unreachable',
        503,
      ),
      undefined,
      undefined,
    ];
    const conflict = new RecoveryTaskError(
      'POST /nightly-check failed with 409: The nightly check of 2026-12-06T02:30:00.000Z is recorded',
      409,
      'ConflictError',
    );
    const logger = mockServices.logger.mock();
    const record = nightlyRecorder(
      {
        recordNightlyCheck: async night => {
          sent.push(said(night));
          const answer = answers.length > 0 ? answers.shift() : conflict;
          if (answer) throw answer;
        },
      },
      '2026-12-05T02:30:00.000Z',
      logger,
    );
    const excluded = (entityRef: string, message = 'left out') => ({
      entityRef,
      outcome: 'excluded' as const,
      message,
    });
    await record([excluded(A), excluded(B)]);
    // Not recorded: sent again, each entity's last word once.
    await record([excluded(B, 'again'), excluded(C)]);
    await record([]);
    await record([excluded(D)]);
    // A newer night is recorded: this one's outcomes would be refused, so none are sent.
    await record([excluded(E)]);
    await record([excluded(A)]);
    expect(sent).toEqual([
      'record so far: a excluded, b excluded',
      'record so far: a excluded, b excluded, c excluded',
      'record so far: d excluded',
      'record so far: e excluded',
    ]);
    expect(warnings(logger)).toEqual([
      [
        "Nightly check: could not record its outcomes so far, so the pages of the entities it reached still show the last night's until it records them",
        'POST /nightly-check failed with 503: database unreachable',
      ],
      [
        "Nightly check: a newer night's outcomes are recorded, so this one's are not",
        'POST /nightly-check failed with 409: The nightly check of 2026-12-06T02:30:00.000Z is recorded',
      ],
    ]);
  });

  it('opens the night at once, saying how many entities it checks, then says it is still there once a heartbeat passed with nothing new', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t0 = Date.parse('2026-12-05T02:30:00.000Z');
      vi.setSystemTime(t0);
      const sent: string[] = [];
      let answer: Error | undefined;
      const record = nightlyRecorder(
        {
          recordNightlyCheck: async night => {
            sent.push(`${said(night)} (${night.entities} entities)`);
            if (answer) throw answer;
          },
        },
        '2026-12-05T02:30:00.000Z',
        mockServices.logger.mock(),
        undefined,
        { entities: 8, heartbeatMs: 60_000 },
      );
      await record([]);
      // Nothing new, within the minute: nothing sent.
      await record([]);
      vi.setSystemTime(t0 + 59_999);
      await record([]);
      vi.setSystemTime(t0 + 60_000);
      await record([]);
      // An outcome goes at once; its record fails, and is sent again with the next heartbeat, not at every call.
      answer = new RecoveryTaskError(
        'POST /nightly-check failed with 503: database unreachable',
        503,
      );
      await record([
        { entityRef: A, outcome: 'excluded', message: 'left out' },
      ]);
      answer = undefined;
      vi.setSystemTime(t0 + 119_999);
      await record([]);
      vi.setSystemTime(t0 + 120_000);
      await record([]);
      expect(sent).toEqual([
        'record so far:  (8 entities)',
        'record so far:  (8 entities)',
        'record so far: a excluded (8 entities)',
        'record so far: a excluded (8 entities)',
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it.each(databases.eachSupportedId())(
    'keeps a night under way through a long run, shows it interrupted once the check is killed, how far it got and when, and the next night closes it (%s)',
    async databaseId => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      // Silent for a second: interrupted. The check says it is there every 50 ms while it waits.
      const store = new NightlyCheckStore(knex, { silenceMs: 1_000 });
      const lastNight = '2026-12-04T02:30:00.000Z';
      await store.record({
        checkedAt: lastNight,
        outcomes: [SHOP, A, B, C, D, E].map(entityRef => ({
          entityRef,
          outcome: 'excluded' as const,
          message: 'last night',
        })),
      });
      /** Each entity's page: its outcome's night (`last night`, or its state), and a newer night's that has not reached it. */
      const pages = async () =>
        Object.fromEntries(
          [...(await store.outcomes())].map(([ref, o]) => [
            ref.replace(/^\w+:default\//, ''),
            [
              o.checkedAt === lastNight
                ? 'last night'
                : `${o.outcome}, ${o.night?.state ?? 'whole'} ${o.night ? `${o.night.checked} of ${o.night.entities}` : ''}`.trim(),
              o.newer && `newer ${o.newer.state}`,
            ]
              .filter(Boolean)
              .join('; '),
          ]),
        );
      let killed = false;
      const { api } = apiOf(async night => {
        // Killed: nothing it sends arrives any more.
        if (!killed) await store.record(night);
      });
      const { startRun, getRun } = api;
      const stop = new AbortController();
      let runEnds = 0;
      let during: Record<string, string> | undefined;
      let killedAt = '';
      api.startRun = async (entityRef, options) => {
        if (entityRef === SHOP) runEnds = Date.now() + 2_000;
        if (entityRef === C) {
          // SIGKILL, just before its second run: its first long over.
          killed = true;
          killedAt = new Date().toISOString();
          await new Promise((_, reject) =>
            options?.signal?.addEventListener('abort', () =>
              reject(options.signal!.reason),
            ),
          );
        }
        return startRun(entityRef, options);
      };
      api.getRun = async (id, options) => {
        if (Date.now() < runEnds) {
          // Past the silence since the run started: still under way, by its heartbeats.
          if (Date.now() > runEnds - 600) during ??= await pages();
          return { id, entityRef: SHOP, status: 'running' } as RecoveryRun;
        }
        return getRun(id, options);
      };
      const first = nightlyCheck(api, optOuts, mockServices.logger.mock(), {
        pollIntervalMs: 20,
        heartbeatMs: 50,
        deadline: Date.now() + 60_000,
        signal: stop.signal,
      });
      await vi.waitFor(() => expect(killed).toBe(true), { timeout: 10_000 });
      expect(during).toEqual({
        legacy: 'excluded, under-way 3 of 8',
        loop: 'refused, under-way 3 of 8',
        shop: 'started, under-way 3 of 8',
        a: 'last night; newer under-way',
        b: 'last night; newer under-way',
        c: 'last night; newer under-way',
        d: 'last night; newer under-way',
        e: 'last night; newer under-way',
      });
      // Silent since: interrupted, when last heard from, 5 of 8 checked; those it did not reach keep last night's, saying so.
      await vi.waitFor(
        async () =>
          expect((await store.outcomeOf(SHOP))?.night?.state).toBe(
            'interrupted',
          ),
        { timeout: 5_000 },
      );
      const interrupted = {
        legacy: 'excluded, interrupted 5 of 8',
        loop: 'refused, interrupted 5 of 8',
        shop: 'started, interrupted 5 of 8',
        a: 'covered, interrupted 5 of 8',
        b: 'covered, interrupted 5 of 8',
      };
      const unreached = {
        c: 'last night; newer interrupted',
        d: 'last night; newer interrupted',
        e: 'last night; newer interrupted',
      };
      expect(await pages()).toEqual({ ...interrupted, ...unreached });
      const { heardAt } = (await store.outcomeOf(SHOP))!.night!;
      expect(heardAt <= killedAt).toBe(true);
      stop.abort();
      await first;

      // The next night: as it begins, the killed one is closed, its pages saying so still.
      killed = false;
      api.startRun = startRun;
      api.getRun = getRun;
      let closed: Record<string, string> | undefined;
      api.startRun = async (entityRef, options) => {
        closed ??= await pages();
        return startRun(entityRef, options);
      };
      await nightlyCheck(api, optOuts, mockServices.logger.mock(), {
        pollIntervalMs: 5,
        deadline: Date.now() + 300,
      });
      expect(closed).toEqual({
        legacy: 'excluded, under-way 2 of 8',
        loop: 'refused, under-way 2 of 8',
        ...Object.fromEntries(
          ['shop', 'a', 'b'].map(name => [
            name,
            `${interrupted[name as 'a']}; newer under-way`,
          ]),
        ),
        ...Object.fromEntries(
          ['c', 'd', 'e'].map(name => [name, 'last night; newer under-way']),
        ),
      });
      expect((await store.outcomeOf(SHOP))?.night).toBeUndefined();
      expect(
        Object.values(await pages()).every(page => page.endsWith(', whole')),
      ).toBe(true);
    },
  );

  it("the scheduled task records them in the backend, and each entity's readiness says what the night did about it", async () => {
    const web = componentEntity('web', ['resource:default/web-01']);
    const legacy = componentEntity('legacy', ['resource:default/legacy-01']);
    const entities: Entity[] = [
      web,
      {
        ...legacy,
        metadata: { ...legacy.metadata, annotations: { [NIGHTLY]: 'false' } },
      },
      ...['web', 'legacy'].map(name => ({
        ...machineEntity(`${name}-01`),
        relations: [
          { type: 'dependencyOf', targetRef: `component:default/${name}` },
        ],
      })),
    ];
    const { server, task, logger } = await startSchedulerBackend({ entities });
    // No hypervisor host is registered: web's run is refused, which the check's summary says at
    // warn; the check itself went through, so its task does not fail.
    await task('recovery-nightly-check').fn(new AbortController().signal);
    expect(String(vi.mocked(logger.warn).mock.calls.at(-1)?.[0])).toMatch(
      /No hypervisor host is registered/,
    );
    expect(logger.warn).not.toHaveBeenCalledWith(
      expect.stringContaining('could not record'),
    );
    const readiness = async (name: string) =>
      (
        await request(server)
          .get(`/api/recovery/readiness/component/default/${name}`)
          .set('authorization', mockCredentials.user.header())
      ).body;
    expect((await readiness('web')).nightlyCheck).toEqual({
      checkedAt: expect.any(String),
      outcome: 'refused',
      reason: 'error',
      // The service's own words, in-process: no HTTP status before them.
      message: expect.stringContaining('No hypervisor host is registered'),
    });
    expect((await readiness('legacy')).nightlyCheck).toMatchObject({
      outcome: 'excluded',
    });
    const list = await request(server)
      .get('/api/recovery/readiness')
      .set('authorization', mockCredentials.user.header());
    expect(
      Object.fromEntries(
        list.body.items.map((r: ReadinessSummary) => [
          r.entityRef,
          r.nightlyCheck?.outcome,
        ]),
      ),
    ).toEqual({
      'component:default/web': 'refused',
      'component:default/legacy': 'excluded',
    });
  });

  it('says of a service nothing places on a machine that it was not checked, in readiness words, unless it opted out', async () => {
    const part = (name: string, dependsOn: string[]): Entity => ({
      ...componentEntity(name, dependsOn),
      spec: { type: 'service', system: 'shop' },
      relations: [
        ...dependsOn.map(targetRef => ({ type: 'dependsOn', targetRef })),
        { type: 'partOf', targetRef: SHOP },
      ],
    });
    const archive = part('archive', []);
    const entities: Entity[] = [
      {
        apiVersion: 'backstage.io/v1alpha1',
        kind: 'System',
        metadata: { name: 'shop', namespace: 'default' },
        spec: {},
        relations: ['web', 'docs', 'gone', 'archive'].map(p => ({
          type: 'hasPart',
          targetRef: `component:default/${p}`,
        })),
      },
      part('web', ['resource:default/web-01']),
      {
        ...machineEntity('web-01'),
        relations: [
          { type: 'dependencyOf', targetRef: 'component:default/web' },
        ],
      },
      // On no machine at all.
      part('docs', []),
      // Its machine left the catalog.
      part('gone', ['resource:default/gone-01']),
      // On no machine, but opted out: it stays out.
      {
        ...archive,
        metadata: { ...archive.metadata, annotations: { [NIGHTLY]: 'false' } },
      },
    ];
    const { server, task, logger } = await startSchedulerBackend({ entities });
    await task('recovery-nightly-check').fn(new AbortController().signal);
    const failure = String(vi.mocked(logger.warn).mock.calls.at(-1)?.[0]);
    // Counted apart from the runs refused (no hypervisor host is registered).
    expect(failure.split('\n')[0]).toMatch(/; 2 not checked: no machine\)$/);
    const readiness = async (name: string): Promise<ReadinessSummary> =>
      (
        await request(server)
          .get(`/api/recovery/readiness/component/default/${name}`)
          .set('authorization', mockCredentials.user.header())
      ).body;
    for (const name of ['docs', 'gone']) {
      const { reasons, nightlyCheck: outcome } = await readiness(name);
      expect(reasons.length).toBeGreaterThan(0);
      expect(outcome).toEqual({
        checkedAt: expect.any(String),
        outcome: 'refused',
        reason: 'no-machine',
        message: `no machine in its boot plan, so no test recovery: ${reasons.join('; ')}`,
      });
      expect(failure).toContain(
        `  component:default/${name}: ${outcome!.message}`,
      );
    }
    expect((await readiness('archive')).nightlyCheck).toMatchObject({
      outcome: 'excluded',
    });
  });
});
