import { mockServices } from '@backstage/backend-test-utils';
import {
  HOST_BUSY_ERROR_NAME,
  MACHINES_NOT_CAPTURED_ERROR_NAME,
  type ReadinessSummary,
  type RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  RecoveryTaskError,
  type RecoveryTasksApi,
} from '@backstage-recovery/plugin-recovery-node';
import { recordingLogger } from '../../recovery-backend/src/testing/logger';
import { runsOnNoMachine } from '../../recovery-backend/src/service/readiness';
import {
  finishNightlyCheck,
  nightlyCheck,
  nightlySummary,
  nightlyTargets,
  runNightlyCheck,
} from './nightlyCheck';
import {
  analyseSystems,
  captureMachines,
  finishTask,
  oldestCapturedFirst,
} from './tasks';

// What the backend answers while the hypervisor host runs another lab.
const hostBusy = () =>
  new RecoveryTaskError(
    'POST /runs failed with 409: host busy',
    409,
    HOST_BUSY_ERROR_NAME,
  );

const run = (
  id: string,
  entityRef: string,
  status: RecoveryRun['status'],
  extra: Partial<RecoveryRun> = {},
): RecoveryRun => ({
  id,
  entityRef,
  status,
  mode: 'test',
  trigger: 'schedule',
  hypervisorHost: 'recovery',
  createdAt: '2026-11-21T02:00:00.000Z',
  plan: { entityRef, waves: [], machines: [] },
  machines: [],
  steps: [],
  ...extra,
});

/**
 * Readiness of an entity as `GET /readiness?include=plan` lists it, whose plan boots `waves`
 * (undefined: no plan could be made), putting `services` on each machine (a machine not listed
 * runs just the entity).
 */
/** What readiness says of a service on no machine. */
const DOCS_ON_NO_MACHINE = runsOnNoMachine('component:default/docs');

const readinessOf = (
  entityRef: string,
  waves?: string[][],
  services: Record<string, string[]> = {},
  uncaptured: string[] = [],
): ReadinessSummary => ({
  entityRef,
  status: 'unknown',
  reasons: [],
  problems: [],
  objectives: { rpoSeconds: 86_400, rtoSeconds: 900 },
  machineCount: waves?.flat().length,
  plan: waves && {
    entityRef,
    waves,
    machines: waves.flatMap((wave, i) =>
      wave.map(machineRef => ({
        machineRef,
        wave: i + 1,
        services: services[machineRef] ?? [entityRef],
        waitsFor: [],
        probes: [],
      })),
    ),
  },
  // Every machine of the plan captured, but those `uncaptured`.
  captures: (waves ?? []).flat().map(machineRef => ({
    machineRef,
    ...(!uncaptured.includes(machineRef) && {
      latest: { id: `c-${machineRef}`, createdAt: '2026-11-21T02:00:00.000Z' },
      ageSeconds: 600,
    }),
  })),
});

const refs = (targets: ReturnType<typeof nightlyTargets>) =>
  targets.map(t => t.entityRef);

describe('nightly check targets', () => {
  it('cover every recoverable entity with as few runs as that takes, largest plans first', () => {
    const shop = {
      'resource:default/db-01': ['component:default/db'],
      'resource:default/web-01': ['component:default/web'],
      'resource:default/api-01': ['component:default/api'],
    };
    const items = [
      readinessOf(
        'component:default/web',
        [['resource:default/db-01'], ['resource:default/web-01']],
        shop,
      ),
      readinessOf('component:default/db', [['resource:default/db-01']], shop),
      readinessOf(
        'system:default/shop',
        [
          ['resource:default/db-01'],
          ['resource:default/web-01', 'resource:default/api-01'],
        ],
        shop,
      ),
      // Not in the shop: needs a run of its own.
      readinessOf(
        'component:default/billing',
        [['resource:default/db-01'], ['resource:default/billing-01']],
        {
          'resource:default/db-01': ['component:default/db'],
          'resource:default/billing-01': ['component:default/billing'],
        },
      ),
      // Opted out, so the reports service still needs its own.
      readinessOf(
        'system:default/back-office',
        [['resource:default/reports-01'], ['resource:default/ledger-01']],
        {
          'resource:default/reports-01': ['component:default/reports'],
          'resource:default/ledger-01': ['component:default/ledger'],
        },
      ),
      readinessOf('component:default/reports', [
        ['resource:default/reports-01'],
      ]),
      // Nothing to boot, or no plan (a dependency cycle): no run would succeed.
      readinessOf('component:default/docs', []),
      readinessOf('component:default/loop'),
    ];
    expect(
      refs(nightlyTargets(items, new Set(['system:default/back-office']))),
    ).toEqual([
      'system:default/shop',
      'component:default/billing',
      'component:default/reports',
    ]);
    // Any order in, the same targets out.
    expect(
      refs(
        nightlyTargets(
          [...items].reverse(),
          new Set(['system:default/back-office']),
        ),
      ),
    ).toEqual(
      refs(nightlyTargets(items, new Set(['system:default/back-office']))),
    );
  });

  it('run an entity whose machines lie in a chosen plan that boots them without its services', () => {
    // billing-db shares db-01 with the shop but is no part of it: the shop's run boots db-01
    // gated by orders-db's probes only, which readiness does not count for billing-db.
    const items = [
      readinessOf(
        'system:default/shop',
        [['resource:default/db-01'], ['resource:default/web-01']],
        {
          'resource:default/db-01': ['component:default/orders-db'],
          'resource:default/web-01': ['component:default/shop-web'],
        },
      ),
      readinessOf('component:default/billing-db', [['resource:default/db-01']]),
      readinessOf('component:default/orders-db', [['resource:default/db-01']]),
    ];
    expect(refs(nightlyTargets(items, new Set()))).toEqual([
      'system:default/shop',
      'component:default/billing-db',
    ]);
  });

  it('choose, among plans of the same machines, the one with more services first', () => {
    // The system's plan covers the component's; the component's does not cover the system's.
    const items = [
      readinessOf('system:default/pair', [['resource:default/db-01']], {
        'resource:default/db-01': [
          'component:default/a',
          'component:default/b',
        ],
      }),
      readinessOf('component:default/a', [['resource:default/db-01']]),
    ];
    expect(refs(nightlyTargets(items, new Set()))).toEqual([
      'system:default/pair',
    ]);
    expect(refs(nightlyTargets([...items].reverse(), new Set()))).toEqual([
      'system:default/pair',
    ]);
  });
});

describe('scheduled tasks', () => {
  it('runs the nightly check entity by entity, waiting for each run to end', async () => {
    const calls: string[] = [];
    const polls = new Map<string, RecoveryRun[]>([
      [
        'r1',
        [
          run('r1', 'component:default/web', 'running'),
          run('r1', 'component:default/web', 'succeeded', { rtoSeconds: 12 }),
        ],
      ],
      [
        'r2',
        [
          run('r2', 'system:default/shop', 'failed', {
            error: { message: 'web-01 failed: probe tcp:80' },
          }),
        ],
      ],
    ]);
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [],
      startRun: async entityRef => {
        calls.push(`start ${entityRef}`);
        if (entityRef === 'component:default/broken')
          throw new Error('POST /runs failed with 400: no machines');
        return run(
          entityRef.endsWith('web') ? 'r1' : 'r2',
          entityRef,
          'pending',
        );
      },
      getRun: async id => {
        calls.push(`get ${id}`);
        return polls.get(id)!.shift()!;
      },
    };
    const report = await runNightlyCheck(
      api,
      [
        'component:default/web',
        'system:default/shop',
        'component:default/broken',
      ],
      mockServices.logger.mock(),
      { pollIntervalMs: 1 },
    );
    expect(calls).toEqual([
      'start component:default/web',
      'get r1',
      'get r1',
      'start system:default/shop',
      'get r2',
      'start component:default/broken',
    ]);
    expect(report).toEqual({
      runs: [
        'component:default/web: run r1 succeeded in 12 s',
        'system:default/shop: run r2 failed',
        'component:default/broken: no run (its failure is below)',
      ],
      started: 2,
      succeeded: ['component:default/web'],
      failed: [
        {
          entityRef: 'system:default/shop',
          message: 'web-01 failed: probe tcp:80',
        },
        {
          entityRef: 'component:default/broken',
          message: 'POST /runs failed with 400: no machines',
        },
      ],
      // What the entities' pages will say of the night.
      outcomes: [
        {
          entityRef: 'component:default/web',
          outcome: 'started',
          runId: 'r1',
          runEntityRef: 'component:default/web',
          message: 'run r1 succeeded in 12 s',
        },
        {
          entityRef: 'system:default/shop',
          outcome: 'started',
          runId: 'r2',
          runEntityRef: 'system:default/shop',
          message: 'run r2 failed: web-01 failed: probe tcp:80',
        },
        {
          entityRef: 'component:default/broken',
          outcome: 'refused',
          reason: 'error',
          message: 'POST /runs failed with 400: no machines',
        },
      ],
    });
  });

  it('waits for a busy host (409) and through transient poll errors instead of failing at once', async () => {
    const calls: string[] = [];
    let busy = 2;
    const polls: Array<RecoveryRun | Error> = [
      new RecoveryTaskError('GET /runs/r1 failed with 503: unavailable', 503),
      new TypeError('fetch failed'),
      run('r1', 'component:default/web', 'running'),
      run('r1', 'component:default/web', 'succeeded', { rtoSeconds: 3 }),
    ];
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [],
      startRun: async entityRef => {
        calls.push(`start ${entityRef}`);
        if (busy-- > 0) throw hostBusy();
        return run('r1', entityRef, 'pending');
      },
      getRun: async id => {
        calls.push(`get ${id}`);
        const next = polls.shift()!;
        if (next instanceof Error) throw next;
        return next;
      },
    };
    const report = await runNightlyCheck(
      api,
      ['component:default/web'],
      mockServices.logger.mock(),
      {
        pollIntervalMs: 1,
        deadline: Date.now() + 60_000,
      },
    );
    expect(calls).toEqual([
      'start component:default/web',
      'start component:default/web',
      'start component:default/web',
      'get r1',
      'get r1',
      'get r1',
      'get r1',
    ]);
    expect(report).toMatchObject({
      succeeded: ['component:default/web'],
      failed: [],
    });
  });

  it('fails with the reason once the time budget runs out, and at once on a permanent poll error', async () => {
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [],
      startRun: async entityRef => {
        if (entityRef.endsWith('busy')) throw hostBusy();
        return run(
          entityRef.endsWith('slow') ? 'slow' : 'gone',
          entityRef,
          'pending',
        );
      },
      getRun: async id => {
        if (id === 'gone')
          throw new RecoveryTaskError(
            'GET /runs/gone failed with 404: Run gone not found',
            404,
          );
        return run(id, 'component:default/slow', 'running');
      },
    };
    const logger = mockServices.logger.mock();
    const first = await runNightlyCheck(
      api,
      [
        'component:default/gone',
        'component:default/busy',
        'component:default/late',
      ],
      logger,
      { pollIntervalMs: 5, deadline: Date.now() + 100 },
    );
    expect(first).toMatchObject({
      succeeded: [],
      failed: [
        {
          entityRef: 'component:default/gone',
          message: 'GET /runs/gone failed with 404: Run gone not found',
        },
        {
          entityRef: 'component:default/busy',
          message: expect.stringMatching(
            /^not started: the hypervisor host was still busy after \d+ attempts when the task's time budget ran out \(POST \/runs failed with 409: host busy\)$/,
          ),
        },
        {
          entityRef: 'component:default/late',
          message: "not started: the task's time budget ran out",
        },
      ],
    });
    const second = await runNightlyCheck(
      api,
      ['component:default/slow'],
      logger,
      {
        pollIntervalMs: 5,
        deadline: Date.now() + 50,
      },
    );
    expect(second.failed).toEqual([
      {
        entityRef: 'component:default/slow',
        message:
          "run slow was still running when the task's time budget ran out; it goes on, and readiness counts it once it ends",
      },
    ]);
  });

  it('fails an entity never captured at once, not waiting for it as for a busy host', async () => {
    const calls: string[] = [];
    let busy = 1;
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [],
      startRun: async entityRef => {
        calls.push(`start ${entityRef}`);
        if (entityRef.endsWith('uncaptured')) {
          // Also a 409, but no wait will capture the machine.
          throw new RecoveryTaskError(
            'POST /runs failed with 409: No capture of resource:default/mail-01 yet: capture first (POST /captures)',
            409,
            MACHINES_NOT_CAPTURED_ERROR_NAME,
          );
        }
        if (busy-- > 0) throw hostBusy();
        return run('r1', entityRef, 'pending');
      },
      getRun: async id => {
        calls.push(`get ${id}`);
        return run(id, 'component:default/web', 'succeeded', { rtoSeconds: 3 });
      },
    };
    const report = await runNightlyCheck(
      api,
      ['component:default/uncaptured', 'component:default/web'],
      mockServices.logger.mock(),
      { pollIntervalMs: 5, deadline: Date.now() + 2_000 },
    );
    expect(calls).toEqual([
      'start component:default/uncaptured',
      'start component:default/web',
      'start component:default/web',
      'get r1',
    ]);
    expect(report).toMatchObject({
      succeeded: ['component:default/web'],
      failed: [
        {
          entityRef: 'component:default/uncaptured',
          message:
            'POST /runs failed with 409: No capture of resource:default/mail-01 yet: capture first (POST /captures)',
        },
      ],
    });
  });

  it('fails the nightly check for an entity that has no boot plan, or no machine in it, saying why, and runs the others', async () => {
    const started: string[] = [];
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async () => [],
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [
        readinessOf('component:default/web', [['resource:default/web-01']]),
        {
          ...readinessOf('component:default/loop'),
          status: 'not-recoverable',
          reasons: [
            'Dependency cycle: component:default/loop -> component:default/hoop -> component:default/loop',
          ],
        },
        // Opted out: not checked, whatever its state.
        {
          ...readinessOf('component:default/legacy'),
          status: 'not-recoverable',
          reasons: ['Dependency cycle'],
        },
        // Opted out, though nothing says where it runs: not checked either.
        readinessOf('component:default/legacy-docs', []),
        // Nothing says where it runs: no run can recover it, which the check must say.
        {
          ...readinessOf('component:default/docs', []),
          reasons: [DOCS_ON_NO_MACHINE],
        },
      ],
      startRun: async entityRef => {
        started.push(entityRef);
        return run('r1', entityRef, 'pending');
      },
      getRun: async id =>
        run(id, 'component:default/web', 'succeeded', { rtoSeconds: 4 }),
    };
    const logger = mockServices.logger.mock();
    const report = await nightlyCheck(
      api,
      {
        optedOut: new Set([
          'component:default/legacy',
          'component:default/legacy-docs',
        ]),
        unread: [],
      },
      logger,
      { pollIntervalMs: 1 },
    );
    expect(started).toEqual(['component:default/web']);
    expect(report).toMatchObject({
      succeeded: ['component:default/web'],
      failed: [
        {
          entityRef: 'component:default/loop',
          message:
            'no boot plan, so no test recovery: Dependency cycle: component:default/loop -> component:default/hoop -> component:default/loop',
        },
        {
          entityRef: 'component:default/docs',
          message: `no machine in its boot plan, so no test recovery: ${DOCS_ON_NO_MACHINE}`,
        },
      ],
    });
    // Its own outcome, in readiness's words; the opted out one stays out.
    expect(
      report.outcomes.filter(
        o => o.outcome === 'refused' || o.outcome === 'excluded',
      ),
    ).toEqual([
      expect.objectContaining({
        entityRef: 'component:default/legacy',
        outcome: 'excluded',
      }),
      expect.objectContaining({
        entityRef: 'component:default/legacy-docs',
        outcome: 'excluded',
      }),
      expect.objectContaining({
        entityRef: 'component:default/loop',
        reason: 'no-plan',
      }),
      {
        entityRef: 'component:default/docs',
        outcome: 'refused',
        reason: 'no-machine',
        message: `no machine in its boot plan, so no test recovery: ${DOCS_ON_NO_MACHINE}`,
      },
    ]);
    // Counted apart from the refused and the failed.
    expect(nightlySummary(report).split('\n')[0]).toBe(
      'Nightly readiness check: 3 entities checked by 1 run: 1 recovered, 2 not (1 refused: no run; 1 not checked: no machine)',
    );
    // Entities that did not recover are what the check finds, not its own failure: said at warn,
    // each named with why, and the task ends as done.
    vi.mocked(logger.warn).mockClear();
    finishNightlyCheck(report, logger);
    expect(logger.error).not.toHaveBeenCalled();
    expect(logger.info).not.toHaveBeenCalledWith(
      expect.stringMatching(/^Nightly readiness check/),
    );
    expect(logger.warn).toHaveBeenCalledTimes(1);
    const [warned] = vi.mocked(logger.warn).mock.calls[0];
    expect(warned.startsWith(nightlySummary(report))).toBe(true);
    expect(warned).toMatch(
      /\n {2}component:default\/loop: no boot plan, so no test recovery: Dependency cycle/,
    );
  });

  it('ends a nightly check where every entity recovered with its summary at info', () => {
    const logger = mockServices.logger.mock();
    const report = {
      succeeded: ['component:default/web'],
      failed: [],
      runs: ['component:default/web: run r1 succeeded in 4 s'],
      started: 1,
      outcomes: [],
    };
    finishNightlyCheck(report, logger);
    expect(logger.info).toHaveBeenCalledWith(
      'Nightly readiness check: 1 entity checked by 1 run: 1 recovered\n  component:default/web: run r1 succeeded in 4 s',
    );
    expect(logger.warn).not.toHaveBeenCalled();
    expect(logger.error).not.toHaveBeenCalled();
  });

  it('captures every machine and reports the ones that failed', async () => {
    const api: RecoveryTasksApi = {
      latestCapture: async () => undefined,
      capture: async ref => {
        if (ref.endsWith('bad'))
          throw new Error('No capture source for primary engine x');
        return [];
      },
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [],
      startRun: async () => {
        throw new Error('unused');
      },
      getRun: async () => {
        throw new Error('unused');
      },
    };
    const report = await captureMachines(
      api,
      ['resource:default/a', 'resource:default/bad'],
      mockServices.logger.mock(),
    );
    expect(report).toEqual({
      succeeded: ['resource:default/a'],
      failed: [
        {
          entityRef: 'resource:default/bad',
          message: 'No capture source for primary engine x',
        },
      ],
    });
  });

  it('reports and logs what a capture rejected with that is no Error, as it said it', async () => {
    const api: Pick<RecoveryTasksApi, 'capture'> = {
      // A library may reject with a bare string.
      capture: () => Promise.reject('socket hang up'),
    };
    const logger = recordingLogger();
    const report = await captureMachines(api, ['resource:default/a'], logger);
    expect(report.failed).toEqual([
      { entityRef: 'resource:default/a', message: 'socket hang up' },
    ]);
    expect(logger.lines).toEqual([
      expect.objectContaining({
        level: 'error',
        message: 'Capture 1/1: failed',
        fields: { machineRef: 'resource:default/a' },
        error: expect.objectContaining({ message: 'socket hang up' }),
      }),
    ]);
  });

  it('leaves a machine another capture is taking (a 409) to it, not failed, and goes on with the next', async () => {
    const api = {
      latestCapture: async () => undefined,
      capture: async (ref: string) => {
        if (ref.endsWith('busy'))
          throw Object.assign(
            new Error(
              'capture of resource:default/busy refused: it is being captured since 2026-12-05T10:00:00.000Z',
            ),
            { statusCode: 409 },
          );
        if (ref.endsWith('bad'))
          throw Object.assign(new Error('engine said no'), { statusCode: 500 });
        return [];
      },
      analyzeSystems: async () => ({ analysed: [], skipped: [], failed: [] }),
      recordNightlyCheck: async () => {},
      listReadiness: async () => [],
      startRun: async () => {
        throw new Error('unused');
      },
      getRun: async () => {
        throw new Error('unused');
      },
    };
    const logger = recordingLogger();
    const report = await captureMachines(
      api,
      ['resource:default/busy', 'resource:default/a', 'resource:default/bad'],
      logger,
    );
    expect(report).toEqual({
      succeeded: ['resource:default/a'],
      failed: [
        { entityRef: 'resource:default/bad', message: 'engine said no' },
      ],
      beingCaptured: ['resource:default/busy'],
    });
    // Each machine named in the line's fields, the error as the line's error.
    expect(logger.lines).toEqual([
      {
        level: 'info',
        message: 'Capture 1/3: left to the capture of it under way',
        fields: { machineRef: 'resource:default/busy' },
        error: expect.objectContaining({
          message: expect.stringMatching(
            /^capture of resource:default\/busy refused: it is being captured since/,
          ),
        }),
      },
      {
        level: 'info',
        message: 'Capture 2/3: captured (0 bytes in 0 ms)',
        fields: { machineRef: 'resource:default/a' },
      },
      {
        level: 'error',
        message: 'Capture 3/3: failed',
        fields: { machineRef: 'resource:default/bad' },
        error: expect.objectContaining({ message: 'engine said no' }),
      },
    ]);
  });

  it('captures machines never captured first, then the oldest capture first, so a timeout cuts off a different machine each time', async () => {
    const latest: Record<string, string | undefined> = {
      'resource:default/a': '2026-11-21T03:00:00.000Z',
      'resource:default/b': '2026-11-21T01:00:00.000Z',
      'resource:default/c': undefined,
      'resource:default/d': '2026-11-21T02:00:00.000Z',
    };
    const api = {
      latestCapture: async (ref: string) => {
        if (ref === 'resource:default/e')
          throw new Error('GET /captures failed with 500');
        return latest[ref] ? { createdAt: latest[ref]! } : undefined;
      },
    };
    await expect(
      oldestCapturedFirst(api, [...Object.keys(latest), 'resource:default/e']),
    ).resolves.toEqual([
      'resource:default/c',
      'resource:default/e',
      'resource:default/b',
      'resource:default/d',
      'resource:default/a',
    ]);
  });

  it("names the machines the task's timeout left uncaptured, and the one it cut short", async () => {
    const controller = new AbortController();
    const api = {
      capture: async (ref: string, options?: { signal?: AbortSignal }) => {
        if (ref.endsWith('/a')) return [];
        // The timeout runs out while b is being captured.
        controller.abort();
        options?.signal?.throwIfAborted();
        return [];
      },
    } as unknown as RecoveryTasksApi;
    const machineRefs = [
      'resource:default/a',
      'resource:default/b',
      'resource:default/c',
      'resource:default/d',
    ];
    const report = await captureMachines(
      api,
      machineRefs,
      mockServices.logger.mock(),
      controller.signal,
    );
    expect(report).toEqual({
      succeeded: ['resource:default/a'],
      failed: [
        {
          entityRef: 'resource:default/b',
          message:
            "the task's timeout ran out while it was being captured (the backend goes on with it until its own deadline, recovery.captures.timeout)",
        },
        {
          entityRef: 'resource:default/c',
          message: "not captured: the task's timeout ran out first",
        },
        {
          entityRef: 'resource:default/d',
          message: "not captured: the task's timeout ran out first",
        },
      ],
    });
  });

  it('analyses every system: one with no initialization events yet is skipped and counted, not a failure; others fail the task', async () => {
    const logger = mockServices.logger.mock();
    const sweep = (failed: Array<{ entityRef: string; message: string }>) => ({
      analyzeSystems: async () => ({
        analysed: ['system:default/shop'],
        skipped: ['system:default/new'],
        failed,
      }),
    });
    await analyseSystems(sweep([]), logger);
    // One line, the task's summary, names the skipped system (the backend does not log it too).
    expect(vi.mocked(logger.info).mock.calls).toEqual([
      [
        'Dependency analysis: 1 systems analysed, 1 skipped (no initialization events of their services yet: system:default/new), 0 failed',
      ],
    ]);
    await expect(
      analyseSystems(
        sweep([
          { entityRef: 'system:default/bank', message: 'database unreachable' },
        ]),
        logger,
      ),
    ).rejects.toThrow(
      'Dependency analysis: 1 systems analysed, 1 skipped (no initialization events of their services yet: system:default/new), 1 failed\n  system:default/bank: database unreachable',
    );
  });

  it('ends a task as failed, naming each failure, when anything in it failed; else logs its summary', () => {
    const logger = mockServices.logger.mock();
    finishTask('Scheduled capture: 2 captured, 0 failed', [], logger);
    expect(logger.info).toHaveBeenCalledWith(
      'Scheduled capture: 2 captured, 0 failed',
    );
    expect(() =>
      finishTask(
        'Scheduled capture: 1 captured, 2 failed',
        [
          {
            entityRef: 'resource:default/bad',
            message: 'No capture source for primary engine x',
          },
          {
            entityRef: 'resource:default/worse',
            message: 'engine unreachable',
          },
        ],
        logger,
      ),
    ).toThrow(
      'Scheduled capture: 1 captured, 2 failed\n  resource:default/bad: No capture source for primary engine x\n  resource:default/worse: engine unreachable',
    );
    expect(logger.info).toHaveBeenCalledTimes(1);
  });
});
