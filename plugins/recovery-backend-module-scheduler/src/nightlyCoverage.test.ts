import { mockServices } from '@backstage/backend-test-utils';
import type {
  ReadinessSummary,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  HOST_BUSY_ERROR_NAME,
  KEPT_FAILOVER_ERROR_NAME,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
} from '@backstage-recovery/plugin-recovery-common';
import {
  RecoveryTaskError,
  type RecoveryTasksApi,
} from '@backstage-recovery/plugin-recovery-node';
import {
  finishNightlyCheck,
  nightlyCheck,
  nightlyOptOuts,
  nightlySummary,
  nightlyTargets,
  runNightlyCheck,
} from './nightlyCheck';

// A system of two services, each on its own machine.
const A01 = 'resource:default/a-01';
const B01 = 'resource:default/b-01';
const SHOP = 'system:default/shop';
const A = 'component:default/a';
const B = 'component:default/b';
const C01 = 'resource:default/c-01';
const C = 'component:default/c';
const services: Record<string, string[]> = {
  [A01]: [A],
  [B01]: [B],
  [C01]: [C],
};

const readinessOf = (
  entityRef: string,
  machineRefs: string[],
  uncaptured: string[] = [],
): ReadinessSummary => ({
  entityRef,
  status: 'unknown',
  reasons: [],
  problems: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 900 },
  machineCount: machineRefs.length,
  plan: {
    entityRef,
    waves: [machineRefs],
    machines: machineRefs.map(machineRef => ({
      machineRef,
      wave: 1,
      services: services[machineRef],
      waitsFor: [],
      probes: [],
    })),
  },
  captures: machineRefs.map(machineRef => ({
    machineRef,
    ...(!uncaptured.includes(machineRef) && {
      latest: { id: `c-${machineRef}`, createdAt: '2026-11-21T02:00:00.000Z' },
      ageSeconds: 600,
    }),
  })),
});

const shopItems = (uncaptured: string[] = []) => [
  readinessOf(SHOP, [A01, B01], uncaptured),
  readinessOf(A, [A01], uncaptured),
  readinessOf(B, [B01], uncaptured),
];

const finished = (
  id: string,
  entityRef: string,
  machineRefs: string[],
  extra: Partial<RecoveryRun>,
): RecoveryRun => ({
  id,
  entityRef,
  status: 'succeeded',
  mode: 'test',
  trigger: 'schedule',
  hypervisorHost: 'recovery',
  createdAt: '2026-11-21T02:30:00.000Z',
  plan: readinessOf(entityRef, machineRefs).plan!,
  machines: [],
  steps: [],
  ...extra,
});

const noCapture = (machineRef: string) =>
  new RecoveryTaskError(
    `POST /runs failed with 409: No capture of ${machineRef} yet: capture first (POST /captures)`,
    409,
    MACHINES_NOT_CAPTURED_ERROR_NAME,
  );

// What the backend answers a test recovery whose plan needs production's subnet 10.1.0.0/24
// while failover f1 of a keeps a-01 on it.
const FAILOVER =
  'failover f1 of component:default/a (succeeded at 2026-11-20T10:00:00.000Z)';
const REMEDY =
  "this test recovery's isolated lab cannot have those subnets beside them, so it would not emulate production. " +
  'Once production no longer needs them, release failover f1 (recovery release f1, or POST /runs/f1/release), ' +
  'or else remove what it kept there by hand (everything labelled recovery.backstage-recovery.io/run-id=f1), and start the run again; ' +
  'or recover onto another hypervisor host';
const besideFailover = (entityRef: string) =>
  new RecoveryTaskError(
    `POST /runs failed with 409: ${entityRef} cannot be test-recovered on recovery now: ${FAILOVER} keeps 2 containers and 1 network there, ` +
      `serving production with production's subnet 10.1.0.0/24; ${REMEDY}`,
    409,
    KEPT_FAILOVER_ERROR_NAME,
    {
      name: KEPT_FAILOVER_ERROR_NAME,
      failover: FAILOVER,
      host: 'recovery',
      keeps: '2 containers and 1 network',
      holding: "production's subnet 10.1.0.0/24",
      remedy: REMEDY,
      runId: 'f1',
      entityRef: 'component:default/a',
    },
  );
const REFUSED = `refused: ${FAILOVER} keeps 2 containers and 1 network on recovery, serving production with production's subnet 10.1.0.0/24`;

/** A recovery API whose runs end as `outcome` says, on the first poll. */
function apiOf(
  items: ReadinessSummary[],
  outcome: (entityRef: string, attempt: number) => Partial<RecoveryRun> | Error,
): { api: RecoveryTasksApi; started: string[] } {
  const started: string[] = [];
  const runs = new Map<string, RecoveryRun>();
  const api: RecoveryTasksApi = {
    latestCapture: async () => undefined,
    capture: async () => [],
    analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
    recordNightlyCheck: async () => {},
    listReadiness: async () => items,
    startRun: async entityRef => {
      started.push(entityRef);
      const attempt = started.filter(s => s === entityRef).length;
      const end = outcome(entityRef, attempt);
      if (end instanceof Error) throw end;
      const machineRefs = items
        .find(i => i.entityRef === entityRef)!
        .plan!.waves.flat();
      const id = `r${started.length}`;
      runs.set(id, finished(id, entityRef, machineRefs, end));
      return { ...runs.get(id)!, status: 'pending' };
    },
    getRun: async id => runs.get(id)!,
  };
  return { api, started };
}

describe('nightly check coverage', () => {
  it('does not let a plan with a machine never captured cover others: they get their own runs', async () => {
    const items = shopItems([B01]);
    expect(nightlyTargets(items, new Set()).map(t => t.entityRef)).toEqual([
      SHOP,
      A,
      B,
    ]);
    const { api, started } = apiOf(items, entityRef =>
      entityRef === A ? { rtoSeconds: 5 } : noCapture(B01),
    );
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1 },
    );
    expect(started).toEqual([SHOP, A, B]);
    expect(report.succeeded).toEqual([A]);
    // Only what really misses a capture fails.
    expect(report.failed).toEqual([
      {
        entityRef: SHOP,
        message: expect.stringContaining(`No capture of ${B01} yet`),
      },
      {
        entityRef: B,
        message: expect.stringContaining(`No capture of ${B01} yet`),
      },
    ]);
    // Refused, never run: said apart from recoveries that failed.
    expect(nightlySummary(report).split('\n')[0]).toBe(
      'Nightly readiness check: 3 entities checked by 1 run: 1 recovered, 2 not (2 refused: no run)',
    );
  });

  it('still covers the others with a plan whose machines were all captured', async () => {
    const items = shopItems();
    expect(nightlyTargets(items, new Set())).toEqual([
      {
        entityRef: SHOP,
        plan: items[0].plan,
        covers: [
          { entityRef: A, plan: items[1].plan },
          { entityRef: B, plan: items[2].plan },
        ],
        uncaptured: [],
      },
    ]);
    const { api, started } = apiOf(items, () => ({ rtoSeconds: 7 }));
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1 },
    );
    expect(started).toEqual([SHOP]);
    // The system's run counts for its services too: they were checked, and recovered.
    expect(report).toMatchObject({ succeeded: [SHOP, A, B], failed: [] });
    expect(nightlySummary(report)).toBe(
      `Nightly readiness check: 3 entities checked by 1 run: 3 recovered\n  ${SHOP}: run r1 succeeded in 7 s, covering ${A}, ${B}`,
    );
  });

  it('after a run failed on one machine, runs those it covered whose plans do not hold that machine', async () => {
    const items = shopItems();
    const failedOnB = {
      status: 'failed' as const,
      error: {
        machineRef: B01,
        probe: 'tcp:80',
        message: `${B01} failed: probe tcp:80`,
      },
    };
    const { api, started } = apiOf(items, entityRef =>
      entityRef === SHOP ? failedOnB : { rtoSeconds: 4 },
    );
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1 },
    );
    // a's plan does not hold b-01: the system's failure says nothing about it, so it gets its own
    // run; b's does, and readiness counts the failure against it.
    expect(started).toEqual([SHOP, A]);
    expect(report.succeeded).toEqual([A]);
    expect(report.failed).toEqual([
      { entityRef: SHOP, message: `${B01} failed: probe tcp:80` },
      {
        entityRef: B,
        message: `run r1 of ${SHOP} failed on ${B01}, which its plan holds: ${B01} failed: probe tcp:80`,
      },
    ]);
    expect(nightlySummary(report)).toBe(
      [
        'Nightly readiness check: 3 entities checked by 2 runs: 1 recovered, 2 not (2 in a run that failed)',
        `  ${SHOP}: run r1 failed on ${B01}, covering ${B}`,
        `  ${A}: run r2 succeeded in 4 s (its own: run r1 of ${SHOP} failed on ${B01}, outside its plan)`,
      ].join('\n'),
    );
  });

  it('after a run failed as a whole (no room on the host for all it boots), runs on their own those it covered', async () => {
    const items = shopItems();
    const noRoom = {
      status: 'failed' as const,
      error: {
        message:
          'hypervisor host recovery has 11.5 MiB free for captures of 2.0 GiB',
      },
    };
    const { api, started } = apiOf(items, entityRef =>
      entityRef === SHOP ? noRoom : { rtoSeconds: 4 },
    );
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1 },
    );
    // The host's room for the system's plan says nothing of a part's, which readiness judges by
    // a run of its own: each gets one. The system's failure stays its own.
    expect(started).toEqual([SHOP, A, B]);
    expect(report.succeeded).toEqual([A, B]);
    expect(report.failed).toEqual([
      { entityRef: SHOP, message: noRoom.error.message },
    ]);
    expect(nightlySummary(report)).toContain(
      `  ${A}: run r2 succeeded in 4 s (its own: run r1 of ${SHOP} failed as a whole, on no machine of its plan)`,
    );
  });

  it('runs on their own those a run was to cover when it could not start', async () => {
    const items = shopItems();
    // Captured when readiness was read, pruned by the time the run asked for it.
    const { api, started } = apiOf(items, entityRef =>
      entityRef === SHOP
        ? noCapture(B01)
        : entityRef === B
          ? noCapture(B01)
          : {},
    );
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1 },
    );
    expect(started).toEqual([SHOP, A, B]);
    expect(report.succeeded).toEqual([A]);
    expect(report.failed.map(f => f.entityRef)).toEqual([SHOP, B]);
  });

  it('starts again a run a failover interrupted, which counts for no one, once the host is free', async () => {
    const items = shopItems();
    const interrupted = {
      status: 'interrupted' as const,
      error: {
        message: 'Interrupted: preempted by failover f1 of system:default/bank',
      },
    };
    const { api, started } = apiOf(items, (_entityRef, attempt) => {
      if (attempt === 1) return interrupted;
      if (attempt === 2)
        return new RecoveryTaskError(
          'POST /runs failed with 409: busy',
          409,
          HOST_BUSY_ERROR_NAME,
        );
      return { rtoSeconds: 9 };
    });
    // What the shop's page says as the night goes: not its interrupted run's start while the host is busy.
    const said: string[] = [];
    api.recordNightlyCheck = async night =>
      void said.push(
        ...night.outcomes
          .filter(o => o.entityRef === SHOP)
          .map(o => `${night.partial ? 'so far' : 'whole'}: ${o.message}`),
      );
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1, deadline: Date.now() + 60_000 },
    );
    expect(said).toEqual([
      'so far: run r1 started; readiness counts it once it ends',
      'so far: run r1 interrupted: preempted by failover f1 of system:default/bank; it counts for no one, so it is started again',
      'so far: run r3 started; readiness counts it once it ends',
      'whole: run r3 succeeded in 9 s',
    ]);
    expect(started).toEqual([SHOP, SHOP, SHOP]);
    expect(report).toMatchObject({ succeeded: [SHOP, A, B], failed: [] });
    expect(nightlySummary(report)).toBe(
      [
        'Nightly readiness check: 3 entities checked by 2 runs: 3 recovered',
        `  ${SHOP}: run r1 interrupted, started again`,
        `  ${SHOP}: run r3 succeeded in 9 s, covering ${A}, ${B}`,
      ].join('\n'),
    );
  });

  it('counts an entity whose run was interrupted twice as not checked, apart from a failed recovery, and a failure in such words as a failure', async () => {
    const items = shopItems();
    const shutdown = 'Interrupted: the backend is shutting down';
    const { api, started } = apiOf(items, () => ({
      status: 'interrupted',
      error: { message: shutdown },
    }));
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1, deadline: Date.now() + 60_000 },
    );
    // The shop's run, started again once; then never its parts' own runs: it was to cover them.
    expect(started).toEqual([SHOP, SHOP]);
    expect(report.succeeded).toEqual([]);
    expect(report.interrupted).toEqual([SHOP, A, B]);
    expect(report.failed.map(f => f.entityRef)).toEqual([SHOP, A, B]);
    // Why, without the backend's "Interrupted: " prefix.
    expect(report.failed[0]).toEqual({
      entityRef: SHOP,
      message:
        'interrupted: the backend is shutting down (its second run; an interrupted run counts for no one)',
    });
    expect(nightlySummary(report)).toBe(
      [
        'Nightly readiness check: 3 entities checked by 2 runs: 0 recovered, 3 not (3 not checked: their run was interrupted)',
        `  ${SHOP}: run r1 interrupted, started again`,
        `  ${SHOP}: run r2 interrupted again`,
      ].join('\n'),
    );

    // Only the status says interrupted: a failure in such words (a host's own) is a failure,
    // never started again.
    const message = 'Interrupted: by its host';
    const failing = apiOf(items, () => ({
      status: 'failed',
      error: { message },
    }));
    const failed = await nightlyCheck(
      failing.api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1, deadline: Date.now() + 60_000 },
    );
    expect(failing.started.filter(ref => ref === SHOP)).toEqual([SHOP]);
    expect(failed.interrupted).toBeUndefined();
    expect(failed.failed).toContainEqual({ entityRef: SHOP, message });
    expect(nightlySummary(failed)).not.toContain('not checked');
  });

  it('starts no run again that someone cancelled, and says it, and those it was to cover, not checked as cancelled by them', async () => {
    const items = shopItems();
    const DR = 'user:default/dr';
    const { api, started } = apiOf(items, () => ({
      status: 'interrupted',
      error: {
        message: `Interrupted: cancelled by ${DR} at 2026-11-21T02:40:00.000Z`,
        cancelledBy: DR,
      },
    }));
    const pages = new Map<string, string>();
    api.recordNightlyCheck = async night => {
      for (const o of night.outcomes) pages.set(o.entityRef, o.message);
    };
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 1, deadline: Date.now() + 60_000 },
    );
    expect(started).toEqual([SHOP]);
    expect(report.succeeded).toEqual([]);
    const covered = `not checked: run r1 of ${SHOP}, which was to cover it, was cancelled by ${DR}`;
    expect(report.failed).toEqual([
      {
        entityRef: SHOP,
        message: `cancelled by ${DR} (not started again; a cancelled run counts for no one)`,
      },
      { entityRef: A, message: covered },
      { entityRef: B, message: covered },
    ]);
    // Each page says who cancelled it.
    expect(Object.fromEntries(pages)).toEqual({
      [SHOP]: `run r1 cancelled by ${DR} (not started again; a cancelled run counts for no one)`,
      [A]: covered,
      [B]: covered,
    });
    expect(nightlySummary(report)).toBe(
      [
        'Nightly readiness check: 3 entities checked by 1 run: 0 recovered, 3 not (3 not checked: their run was interrupted)',
        `  ${SHOP}: run r1 cancelled by ${DR}`,
      ].join('\n'),
    );
  });

  it('says once what a failover kept on the host refuses, and starts no run it would refuse for certain', async () => {
    // Failover f1 of a keeps a-01 on the host, on production's subnet of a-01: the backend
    // refuses every test recovery whose plan holds a-01 (b-01 and c-01 lie on other subnets).
    const OPS = 'system:default/shop-ops';
    const items = [
      ...shopItems(),
      readinessOf(OPS, [A01, B01]),
      readinessOf(C, [C01]),
    ];
    const holdsA01 = (entityRef: string) =>
      items
        .find(i => i.entityRef === entityRef)!
        .plan!.waves.flat()
        .includes(A01);
    const { api, started } = apiOf(items, entityRef =>
      holdsA01(entityRef) ? besideFailover(entityRef) : { rtoSeconds: 3 },
    );
    const logger = mockServices.logger.mock();
    const report = await nightlyCheck(api, nightlyOptOuts([]), logger, {
      pollIntervalMs: 1,
    });
    // The shop's run is refused; shop-ops, which it was to cover, holds every machine of the
    // shop's plan, so it would be refused too: not started. a and b, on a part of it, are asked:
    // only a is refused.
    expect(started).toEqual([SHOP, C, A, B]);
    expect(report.succeeded).toEqual([C, B]);
    expect(report.failed).toEqual([
      { entityRef: SHOP, message: REFUSED },
      {
        entityRef: OPS,
        message: `not started: its plan holds every machine of ${SHOP}'s, whose run was refused: ${FAILOVER} keeps 2 containers and 1 network on recovery, serving production on subnets they need`,
      },
      { entityRef: A, message: REFUSED },
    ]);
    expect(nightlySummary(report)).toBe(
      [
        'Nightly readiness check: 5 entities checked by 2 runs: 2 recovered, 3 not (3 refused: no run)',
        `  ${C}: run r2 succeeded in 3 s`,
        `  ${B}: run r4 succeeded in 3 s (its own: the run of ${OPS} could not start)`,
        `  no run for 3 entities beside ${FAILOVER}, which keeps 2 containers and 1 network on recovery (${SHOP}, ${OPS}, ${A}): ${REMEDY}`,
      ].join('\n'),
    );
    // The check's log says how to free the host once: in the summary it ends with, not before.
    const logged = () =>
      [logger.error, logger.warn, logger.info].flatMap(f =>
        vi.mocked(f).mock.calls.map((c: unknown[]) => String(c[0])),
      );
    expect(logged().filter(l => l.includes('release failover f1'))).toEqual([]);
    expect(
      logged().filter(
        l => l.startsWith('Nightly check') && l.includes(REFUSED),
      ),
    ).toHaveLength(2);
    finishNightlyCheck(report, logger);
    const summary = String(vi.mocked(logger.warn).mock.calls.at(-1)?.[0]);
    expect(summary.split('release failover f1').length - 1).toBe(1);
  });

  it('after a kept failover refused a plan, starts none that holds all its machines, and asks for one that holds none of them', async () => {
    // The refusal of a (a-01 on the failover's subnet) says nothing about b; the system's plan
    // holds a-01, so it needs that subnet too.
    const items = shopItems();
    const { api, started } = apiOf(items, entityRef =>
      entityRef === B ? { rtoSeconds: 2 } : besideFailover(entityRef),
    );
    const report = await runNightlyCheck(
      api,
      [
        { entityRef: A, plan: items[1].plan, covers: [] },
        { entityRef: B, plan: items[2].plan, covers: [] },
        { entityRef: SHOP, plan: items[0].plan, covers: [] },
      ],
      mockServices.logger.mock(),
      {
        pollIntervalMs: 1,
      },
    );
    expect(started).toEqual([A, B]);
    expect(report.succeeded).toEqual([B]);
    expect(report.failed).toEqual([
      { entityRef: A, message: REFUSED },
      {
        entityRef: SHOP,
        message: `not started: its plan holds every machine of ${A}'s, whose run was refused: ${FAILOVER} keeps 2 containers and 1 network on recovery, serving production on subnets they need`,
      },
    ]);
  });

  it("names the entities a run was to cover when the task's time budget ran out during it", async () => {
    const items = shopItems();
    const { api } = apiOf(items, () => ({ status: 'running' }));
    const report = await nightlyCheck(
      api,
      nightlyOptOuts([]),
      mockServices.logger.mock(),
      { pollIntervalMs: 5, deadline: Date.now() + 40 },
    );
    expect(report.succeeded).toEqual([]);
    expect(report.failed).toEqual([
      {
        entityRef: SHOP,
        message:
          "run r1 was still running when the task's time budget ran out; it goes on, and readiness counts it once it ends",
      },
      {
        entityRef: A,
        message: `not checked: run r1 of ${SHOP}, which was to cover it, was still running when the task's time budget ran out`,
      },
      {
        entityRef: B,
        message: `not checked: run r1 of ${SHOP}, which was to cover it, was still running when the task's time budget ran out`,
      },
    ]);
    // On their pages, covered by that run, as readiness counts it once it ends: in words that say so.
    const covered = {
      outcome: 'covered',
      runId: 'r1',
      runEntityRef: SHOP,
      message: `run r1 of ${SHOP}, covering it, was still running when the task's time budget ran out; it goes on, and readiness counts it for this entity once it ends`,
    };
    expect(report.outcomes.filter(o => o.entityRef !== SHOP)).toEqual([
      { entityRef: A, ...covered },
      { entityRef: B, ...covered },
    ]);
  });

  it('reports what was and was not checked when the task is stopped mid-run, rather than throwing it all away', async () => {
    const items = [
      ...shopItems(),
      readinessOf('component:default/c', ['resource:default/c-01']),
    ];
    const controller = new AbortController();
    const { api } = apiOf(items, () => ({ status: 'running' }));
    const getRun = api.getRun;
    api.getRun = async (id, options) => {
      // The scheduler aborts at the task's timeout, here while the system's run is polled.
      controller.abort();
      options?.signal?.throwIfAborted();
      return getRun(id, options);
    };
    const logger = mockServices.logger.mock();
    const report = await nightlyCheck(api, nightlyOptOuts([]), logger, {
      pollIntervalMs: 1,
      signal: controller.signal,
    });
    const stopped =
      'the task was stopped (its timeout ran out, or the backend shut down)';
    expect(report.succeeded).toEqual([]);
    expect(report.failed).toEqual([
      {
        entityRef: SHOP,
        message: `${stopped} while waiting for run r1; it goes on, and readiness counts it once it ends`,
      },
      {
        entityRef: A,
        message: `not checked: run r1 of ${SHOP}, which was to cover it, was not waited for: ${stopped}`,
      },
      {
        entityRef: B,
        message: `not checked: run r1 of ${SHOP}, which was to cover it, was not waited for: ${stopped}`,
      },
      { entityRef: 'component:default/c', message: `not checked: ${stopped}` },
    ]);
    const covered = {
      outcome: 'covered',
      runId: 'r1',
      runEntityRef: SHOP,
      message: `run r1 of ${SHOP}, covering it, was not waited for (${stopped}); it goes on, and readiness counts it for this entity once it ends`,
    };
    expect(
      report.outcomes.filter(o => o.entityRef === A || o.entityRef === B),
    ).toEqual([
      { entityRef: A, ...covered },
      { entityRef: B, ...covered },
    ]);
  });
});
