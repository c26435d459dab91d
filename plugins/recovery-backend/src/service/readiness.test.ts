import type {
  Capture,
  RecoveryRun,
} from '@backstage-recovery/plugin-recovery-common';
import {
  assessReadiness,
  byRisk,
  hiddenRun,
  ReadinessInput,
} from './readiness';

const plan = {
  entityRef: 'component:default/web',
  waves: [['resource:default/data-01'], ['resource:default/web-01']],
  machines: [
    {
      machineRef: 'resource:default/data-01',
      wave: 0,
      services: [],
      waitsFor: [],
      probes: [],
    },
    {
      machineRef: 'resource:default/web-01',
      wave: 1,
      services: [],
      waitsFor: ['resource:default/data-01'],
      probes: [],
    },
  ],
};
const capture = (machineRef: string, ageSeconds: number) => ({
  machineRef,
  ageSeconds,
  latest: {
    id: 'c',
    machineRef,
    engine: 'primary',
    container: 'x',
    imageId: 'i',
    sizeBytes: 1,
    checksum: 'c',
    createdAt: '',
    durationMs: 1,
    adaptations: [],
  },
});
const run = (
  status: RecoveryRun['status'],
  rtoSeconds?: number,
  message?: string,
) =>
  ({
    id: 'r',
    status,
    rtoSeconds,
    error: message ? { message } : undefined,
  }) as RecoveryRun;

const base: ReadinessInput = {
  entityRef: 'component:default/web',
  ownMachines: ['resource:default/web-01'],
  problems: [],
  objectives: { rpoSeconds: 3600, rtoSeconds: 300 },
  plan,
  captures: [
    capture('resource:default/data-01', 60),
    capture('resource:default/web-01', 60),
  ],
  lastRun: run('succeeded', 120),
  lastRunAgeSeconds: 3600,
  maxTestAgeSeconds: 7 * 86_400,
};

describe('assessReadiness', () => {
  it('is ready with fresh captures and a test recovery within the RTO', () => {
    const r = assessReadiness(base);
    expect(r.status).toBe('ready');
    expect(r.reasons).toEqual([]);
    expect(r.position).toEqual({
      wave: 1,
      machines: ['resource:default/web-01'],
      waitsFor: ['resource:default/data-01'],
    });
  });

  it('is at risk when a capture is older than the RPO or the RTO was exceeded', () => {
    expect(
      assessReadiness({
        ...base,
        captures: [
          capture('resource:default/data-01', 7200),
          capture('resource:default/web-01', 5),
        ],
      }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        'Last capture of resource:default/data-01 is 2 h old, over the RPO of 60 min',
      ],
    });
    expect(
      assessReadiness({ ...base, lastRun: run('succeeded', 400) }).reasons,
    ).toEqual(['Last measured RTO 7 min exceeds the objective of 5 min']);
  });

  it('is at risk, naming the machine, when its last capture failed, until one succeeds', () => {
    const at = (createdAt: string) => ({
      ...capture('resource:default/web-01', 60),
      latest: { ...capture('resource:default/web-01', 60).latest, createdAt },
    });
    const gone = {
      failedAt: '2026-12-06T01:00:00.000Z',
      message:
        'machine resource:default/web-01: no container "web-01" on engine primary',
    };
    const failures = new Map([['resource:default/web-01', gone]]);
    const captures = [
      capture('resource:default/data-01', 60),
      at('2026-12-06T00:00:00.000Z'),
    ];
    expect(
      assessReadiness({ ...base, captures, captureFailures: failures }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        `Last capture of resource:default/web-01 failed at 2026-12-06T01:00:00.000Z: ${gone.message}; none has succeeded since, so a recovery would restore its capture of 2026-12-06T00:00:00.000Z`,
      ],
    });
    // A capture that succeeded after it: ready again.
    expect(
      assessReadiness({
        ...base,
        captures: [captures[0], at('2026-12-06T01:00:05.000Z')],
        captureFailures: failures,
      }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    // Never captured: not recoverable, and why its capture failed said with it.
    expect(
      assessReadiness({
        ...base,
        captures: [captures[0], { machineRef: 'resource:default/web-01' }],
        captureFailures: failures,
      }).reasons,
    ).toEqual([
      `resource:default/web-01 has never been captured (its capture at 2026-12-06T01:00:00.000Z failed: ${gone.message})`,
    ]);
  });

  it('is at risk, naming the machine, its state and the time, when its latest capture holds a machine that was not serving', () => {
    const taken = (
      machineState?: Capture['machineState'],
      createdAt = '2026-12-06T01:00:00.000Z',
    ) => ({
      ...capture('resource:default/web-01', 60),
      latest: {
        ...capture('resource:default/web-01', 60).latest,
        createdAt,
        ...(machineState && { machineState }),
      },
    });
    const data = capture('resource:default/data-01', 60);
    const exited = {
      status: 'exited' as const,
      exitCode: 137,
      since: '2026-12-06T00:59:00Z',
    };
    expect(
      assessReadiness({ ...base, captures: [data, taken(exited)] }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        'resource:default/web-01 was exited (code 137, since 2026-12-06T00:59:00Z) when captured at 2026-12-06T01:00:00.000Z: the capture holds a machine that was not serving; a recovery would restore it so, until a capture of it is taken while it runs and is not unhealthy',
      ],
    });
    // Running, but its health check failing: its last output not said (it may carry secrets;
    // GET /captures answers it to those who may read the machine's console).
    const unhealthy = {
      status: 'running' as const,
      health: 'unhealthy' as const,
      failingStreak: 3,
      healthOutput: "wget: can't connect to remote host: Connection refused",
    };
    expect(
      assessReadiness({ ...base, captures: [data, taken(unhealthy)] }).reasons,
    ).toEqual([
      'resource:default/web-01 was running but unhealthy (3 failing health checks in a row) when captured at 2026-12-06T01:00:00.000Z: the capture holds a machine that was not serving; a recovery would restore it so, until a capture of it is taken while it runs and is not unhealthy',
    ]);
    for (const state of [
      { status: 'restarting' as const, exitCode: 1 },
      { status: 'paused' as const },
      { status: 'created' as const },
    ]) {
      expect(
        assessReadiness({ ...base, captures: [data, taken(state)] }).status,
      ).toBe('at-risk');
    }
    // Captured since while it runs (healthy, without a health check, or one not decided yet), or a
    // capture from before states were recorded: ready.
    for (const state of [
      { status: 'running' as const, health: 'healthy' as const },
      { status: 'running' as const },
      { status: 'running' as const, health: 'starting' as const },
      undefined,
    ]) {
      expect(
        assessReadiness({
          ...base,
          captures: [data, taken(state, '2026-12-06T02:00:00.000Z')],
        }),
      ).toMatchObject({ status: 'ready', reasons: [] });
    }
  });

  it("counts a job's capture that exited with code 0 as done, and suggests the job annotation for one the catalog does not say is a job", () => {
    const exitedZero = {
      ...capture('resource:default/data-01', 60),
      latest: {
        ...capture('resource:default/data-01', 60).latest,
        createdAt: '2026-12-06T01:00:00.000Z',
        machineState: {
          status: 'exited' as const,
          exitCode: 0,
          since: '2026-12-06T00:59:00Z',
        },
      },
    };
    const web = capture('resource:default/web-01', 60);
    expect(
      assessReadiness({ ...base, captures: [exitedZero, web] }).reasons,
    ).toEqual([
      "resource:default/data-01 was exited (code 0, since 2026-12-06T00:59:00Z) when captured at 2026-12-06T01:00:00.000Z: the capture holds a machine that was not serving; a recovery would restore it so, until a capture of it is taken while it runs and is not unhealthy; if resource:default/data-01 is a job that runs to completion (an init, a migration), annotate its Resource with recovery.backstage-recovery.io/job: 'true' and a run counts it ready once it exits with code 0",
    ]);
    const jobPlan = {
      ...plan,
      machines: plan.machines.map(m =>
        m.machineRef === 'resource:default/data-01' ? { ...m, job: true } : m,
      ),
    };
    expect(
      assessReadiness({ ...base, plan: jobPlan, captures: [exitedZero, web] }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    // A job that failed when captured is no job done.
    const failed = {
      ...exitedZero,
      latest: {
        ...exitedZero.latest,
        machineState: { ...exitedZero.latest.machineState, exitCode: 1 },
      },
    };
    expect(
      assessReadiness({ ...base, plan: jobPlan, captures: [failed, web] })
        .status,
    ).toBe('at-risk');
  });

  it('never words an amount over its objective as the objective itself', () => {
    // Hourly captures against an RPO of an hour, one 20 s late; a recovery 10 s over its 5 min.
    expect(
      assessReadiness({
        ...base,
        captures: [
          capture('resource:default/data-01', 3620),
          capture('resource:default/web-01', 5),
        ],
      }).reasons,
    ).toEqual([
      'Last capture of resource:default/data-01 is 60 min + 20 s old, over the RPO of 60 min',
    ]);
    expect(
      assessReadiness({ ...base, lastRun: run('succeeded', 310) }).reasons,
    ).toEqual([
      'Last measured RTO 5 min + 10 s exceeds the objective of 5 min',
    ]);
    expect(
      assessReadiness({ ...base, lastRunAgeSeconds: 7 * 86_400 + 600 }).reasons,
    ).toEqual([
      'Last test recovery is 7 d + 10 min old, over the 7 d within which one must have succeeded',
    ]);
  });

  it('is at risk while its plan waits on a learned dependency of low confidence, naming it and its samples', () => {
    const learnedPlan = {
      ...plan,
      machines: [
        { ...plan.machines[0], services: ['component:default/db'] },
        {
          ...plan.machines[1],
          services: ['component:default/web', 'component:default/cache'],
        },
      ],
    };
    const learned = (
      service: string,
      dependsOn: string,
      samples: number,
      confidence: 'high' | 'low',
    ) => ({ service, dependsOn, score: 0.82, samples, confidence });
    // Of high confidence, or between services of one machine (it orders no wave): nothing to say.
    expect(
      assessReadiness({
        ...base,
        plan: {
          ...learnedPlan,
          inferred: [
            learned('component:default/web', 'component:default/db', 9, 'high'),
            learned(
              'component:default/web',
              'component:default/cache',
              1,
              'low',
            ),
          ],
        },
      }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    const r = assessReadiness({
      ...base,
      plan: {
        ...learnedPlan,
        inferred: [
          learned('component:default/web', 'component:default/db', 1, 'low'),
        ],
      },
    });
    expect(r.status).toBe('at-risk');
    expect(r.reasons).toEqual([
      // In the words of a run's timeline (lowConfidenceWarning).
      'The boot plan waits on component:default/web → component:default/db (score 0.82, 1 boot, low confidence): a learned dependency of low confidence (seen in fewer boots than the analysis trusts) may be wrong; declare it in spec.dependsOn if it is real, or let more boots confirm or drop it',
    ]);
  });

  it('is at risk when the last test recovery is older than the age it vouches for', () => {
    expect(
      assessReadiness({ ...base, lastRunAgeSeconds: 8 * 86_400 }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        'Last test recovery is 8 d old, over the 7 d within which one must have succeeded',
      ],
    });
    expect(
      assessReadiness({ ...base, lastRunAgeSeconds: 6 * 86_400 }).status,
    ).toBe('ready');
    // Exactly the age it vouches for is not older than it.
    expect(
      assessReadiness({ ...base, lastRunAgeSeconds: 7 * 86_400 }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    expect(
      assessReadiness({ ...base, lastRunAgeSeconds: 7 * 86_400 + 1 }).status,
    ).toBe('at-risk');
  });

  it('names a failover as one, where it counts as a test recovery would', () => {
    const failover = (status: RecoveryRun['status'], message?: string) =>
      ({ ...run(status, 120, message), mode: 'failover' }) as RecoveryRun;
    expect(
      assessReadiness({ ...base, lastRun: failover('succeeded') }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    expect(
      assessReadiness({
        ...base,
        lastRun: failover('failed', 'web-01 failed: probe http:80/'),
      }).reasons,
    ).toEqual(['Last failover failed: web-01 failed: probe http:80/']);
    expect(
      assessReadiness({
        ...base,
        lastRun: failover('succeeded'),
        lastRunAgeSeconds: 8 * 86_400,
      }).reasons,
    ).toEqual([
      'Last failover is 8 d old, over the 7 d within which one must have succeeded',
    ]);
  });

  it('does not take a capture of the container a machine was before for one of the machine it is now', () => {
    const now = new Map([
      ['resource:default/data-01', { engine: 'primary', container: 'x' }],
      ['resource:default/web-01', { engine: 'primary', container: 'web-01-b' }],
    ]);
    expect(assessReadiness({ ...base, locators: now })).toMatchObject({
      status: 'at-risk',
      reasons: [
        'Last capture of resource:default/web-01 is of container x on engine primary, but the catalog now names web-01-b on primary: it has not been captured since, so a recovery would restore that earlier container',
      ],
    });
    // An engine no capture source serves: its problem says why the last capture is what restores.
    const unserved = {
      entityRef: 'resource:default/web-01',
      annotation: 'recovery.backstage-recovery.io/engine',
      message:
        'Machine web-01: engine "Primary" is no configured primary engine',
    };
    const moved = new Map([
      ...now,
      ['resource:default/web-01', { engine: 'Primary', container: 'x' }],
    ]);
    expect(
      assessReadiness({ ...base, locators: moved, captureProblems: [unserved] })
        .reasons,
    ).toEqual([unserved.message]);
  });

  it('does not let the last run vouch for a machine it restored from the container the machine was before', () => {
    // web-01 was replaced by web-01-b, captured since: its capture is fresh, the run's is not of it.
    const now = new Map([
      ['resource:default/data-01', { engine: 'primary', container: 'x' }],
      ['resource:default/web-01', { engine: 'primary', container: 'web-01-b' }],
    ]);
    const recaptured = {
      ...base.captures[1],
      latest: { ...base.captures[1].latest!, container: 'web-01-b' },
    };
    const input = {
      ...base,
      locators: now,
      captures: [base.captures[0], recaptured],
    };
    const restored = (webContainer: string | undefined) => [
      {
        machineRef: 'resource:default/data-01',
        capturedFrom: { engine: 'primary', container: 'x' },
      },
      {
        machineRef: 'resource:default/web-01',
        capturedFrom:
          webContainer === undefined
            ? undefined
            : { engine: 'primary', container: webContainer },
      },
    ];
    const replaced =
      'Last test recovery restored resource:default/web-01 from a capture of container x on engine primary, but the catalog now names web-01-b on primary: it does not vouch for the machine as it is now, until a run restores that container';
    expect(
      assessReadiness({ ...input, lastRunRestored: restored('x') }),
    ).toMatchObject({ status: 'at-risk', reasons: [replaced] });
    // Also where the caller may not see the run's entity: the verdict rests on the run in full.
    expect(
      assessReadiness({
        ...input,
        lastRun: hiddenRun(run('succeeded', 120)),
        lastRunRestored: restored('x'),
      }).reasons,
    ).toEqual([replaced]);
    // Moved to another engine, the same.
    const moved = new Map([
      ...now,
      ['resource:default/web-01', { engine: 'staging', container: 'x' }],
    ]);
    const movedCapture = {
      ...recaptured,
      latest: { ...recaptured.latest, engine: 'staging', container: 'x' },
    };
    expect(
      assessReadiness({
        ...input,
        locators: moved,
        captures: [base.captures[0], movedCapture],
        lastRunRestored: restored('x'),
      }).reasons,
    ).toEqual([
      'Last test recovery restored resource:default/web-01 from a capture of container x on engine primary, but the catalog now names x on staging: it does not vouch for the machine as it is now, until a run restores that container',
    ]);
    // A newer run that restored the container named now vouches again.
    expect(
      assessReadiness({ ...input, lastRunRestored: restored('web-01-b') }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    // A run recorded before runs kept what they restored: judged as before.
    expect(
      assessReadiness({ ...input, lastRunRestored: restored(undefined) }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    expect(
      assessReadiness({ ...input, lastRunRestored: undefined }),
    ).toMatchObject({ status: 'ready', reasons: [] });
    // A machine no capture source serves: its problem says why its last capture is what restores.
    const unserved = {
      entityRef: 'resource:default/web-01',
      annotation: 'recovery.backstage-recovery.io/engine',
      message:
        'Machine web-01: engine "Primary" is no configured primary engine',
    };
    const typo = new Map([
      ...now,
      ['resource:default/web-01', { engine: 'Primary', container: 'x' }],
    ]);
    expect(
      assessReadiness({
        ...base,
        locators: typo,
        captureProblems: [unserved],
        lastRunRestored: restored('x'),
      }).reasons,
    ).toEqual([unserved.message]);
    // A failed last run is out of reach already: no more said of what it restored.
    expect(
      assessReadiness({
        ...input,
        lastRun: run('failed', undefined, 'web-01 failed'),
        lastRunRestored: restored('x'),
      }).reasons,
    ).toEqual(['Last test recovery failed: web-01 failed']);
  });

  it('is not recoverable without a capture, after a failed test, or with a configuration problem', () => {
    expect(
      assessReadiness({
        ...base,
        captures: [{ machineRef: 'resource:default/web-01' }],
      }),
    ).toMatchObject({
      status: 'not-recoverable',
      reasons: ['resource:default/web-01 has never been captured'],
    });
    expect(
      assessReadiness({
        ...base,
        lastRun: run('failed', undefined, 'web-01 failed: probe http:80/'),
      }).reasons,
    ).toEqual(['Last test recovery failed: web-01 failed: probe http:80/']);
    expect(
      assessReadiness({
        ...base,
        plan: undefined,
        planError: 'Dependency cycle between services: a -> b -> a',
      }).status,
    ).toBe('not-recoverable');
  });

  it('is unknown when never tested, and sorts by risk', () => {
    const unknown = assessReadiness({
      ...base,
      entityRef: 'component:default/a',
      lastRun: undefined,
    });
    expect(unknown).toMatchObject({
      status: 'unknown',
      reasons: ['Never test-recovered'],
    });
    const ready = assessReadiness({
      ...base,
      entityRef: 'component:default/b',
    });
    const broken = assessReadiness({
      ...base,
      entityRef: 'component:default/c',
      captures: [{ machineRef: 'm' }],
    });
    expect([ready, unknown, broken].sort(byRisk).map(r => r.status)).toEqual([
      'not-recoverable',
      'unknown',
      'ready',
    ]);
  });

  it('judges only a succeeded last run as a success: one that reached no result leaves it unknown', () => {
    for (const status of ['interrupted', 'pending', 'running'] as const) {
      const r = assessReadiness({
        ...base,
        lastRun: run(status, 120, 'Interrupted: the backend is shutting down'),
      });
      expect(r).toMatchObject({
        status: 'unknown',
        reasons: [
          `Last test recovery reached no result (${status}): it tells nothing of whether the entity recovers`,
        ],
      });
    }
  });

  it('puts problems that leave the plan whole (a probe, an objective) at risk; one that stops a recovery blocks', () => {
    const P = 'recovery.backstage-recovery.io/';
    const probe = {
      entityRef: 'component:default/web',
      annotation: `${P}probes`,
      message: 'probe "https:443" is not valid',
    };
    const rpo = {
      entityRef: 'component:default/web',
      annotation: `${P}rpo`,
      message: 'rpo "1H" is not a duration',
    };
    const engine = {
      entityRef: 'resource:default/web-01',
      annotation: `${P}engine`,
      message: 'Machine web-01 has no engine annotation',
    };
    const missing = {
      entityRef: 'component:default/web',
      message:
        'web dependsOn component:default/gone, which is not in the catalog',
    };
    expect(assessReadiness({ ...base, problems: [probe, rpo] })).toMatchObject({
      status: 'at-risk',
      reasons: [probe.message, rpo.message],
      problems: [probe, rpo],
    });
    expect(
      assessReadiness({ ...base, problems: [probe, engine, missing] }),
    ).toMatchObject({
      status: 'not-recoverable',
      reasons: [engine.message, missing.message, probe.message],
    });
  });

  it('puts engine and container put on an entity that is no machine at risk: ignored there, they stop no recovery', () => {
    const P = 'recovery.backstage-recovery.io/';
    const misplaced = {
      entityRef: 'component:default/web',
      annotation: `${P}engine`,
      message:
        'component:default/web is a Component, not a machine: engine "primary" is ignored here',
    };
    const container = {
      entityRef: 'resource:default/web-01',
      annotation: `${P}container`,
      message: 'Machine web-01 has no container annotation',
    };
    expect(assessReadiness({ ...base, problems: [misplaced] })).toMatchObject({
      status: 'at-risk',
      reasons: [misplaced.message],
    });
    expect(
      assessReadiness({ ...base, problems: [misplaced, container] }),
    ).toMatchObject({
      status: 'not-recoverable',
      reasons: [container.message, misplaced.message],
    });
  });

  it('meets an objective it equals, and doubts ages dated ahead of its clock past a tolerance', () => {
    expect(
      assessReadiness({
        ...base,
        lastRun: run('succeeded', 300),
        captures: [
          capture('resource:default/data-01', 3600),
          capture('resource:default/web-01', -60),
        ],
      }),
    ).toMatchObject({
      status: 'ready',
      reasons: [],
      captures: [{ ageSeconds: 3600 }, { ageSeconds: 0 }],
    });
    expect(
      assessReadiness({
        ...base,
        captures: [
          capture('resource:default/data-01', -7200),
          capture('resource:default/web-01', 5),
        ],
        lastRunAgeSeconds: -3 * 86_400,
      }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        "Last capture of resource:default/data-01 is dated 2 h ahead of the backend's clock: one of their clocks is wrong, so its age against the RPO cannot be told",
        "Last test recovery is dated 3 d ahead of the backend's clock: one of their clocks is wrong, so how long it vouches for the entity cannot be told",
      ],
      captures: [{ ageSeconds: 0 }, { ageSeconds: 5 }],
    });
  });

  it("says what of its plan the entity's own last run did not recover, rather than that it was never tested", () => {
    const machine = (machineRef: string, services: string[]) => ({
      machineRef,
      wave: 0,
      services,
      waitsFor: [],
      probes: [],
    });
    const own = (
      machines: ReturnType<typeof machine>[],
      error?: RecoveryRun['error'],
    ) =>
      ({
        id: 'old',
        entityRef: 'component:default/web',
        mode: 'test',
        status: error ? 'failed' : 'succeeded',
        plan: { entityRef: 'component:default/web', waves: [], machines },
        error,
      }) as unknown as RecoveryRun;
    const now = {
      ...plan,
      machines: [
        machine('resource:default/data-01', ['component:default/db']),
        machine('resource:default/web-01', [
          'component:default/web',
          'component:default/api',
        ]),
      ],
    };
    const reasons = (r: RecoveryRun) =>
      assessReadiness({
        ...base,
        plan: now,
        lastRun: undefined,
        outgrownRun: { run: r, shown: r, ageSeconds: 7200 },
      });
    expect(
      reasons(
        own([machine('resource:default/web-01', ['component:default/web'])]),
      ),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        'Its boot plan changed since its last test recovery (2 h ago), which did not boot resource:default/data-01 and did not probe component:default/api on resource:default/web-01: none has recovered the plan it has now',
      ],
    });
    const gone = own(
      [...now.machines, machine('resource:default/old-01', [])],
      { machineRef: 'resource:default/old-01', message: 'old-01 failed' },
    );
    expect(reasons(gone).reasons).toEqual([
      'Its boot plan changed since its last test recovery (2 h ago), which failed on resource:default/old-01, which the plan no longer holds: none has recovered the plan it has now',
    ]);
    // A probe added since: the run never ran it.
    const probed = {
      ...now,
      machines: now.machines.map(m =>
        m.machineRef === 'resource:default/data-01'
          ? { ...m, probes: [{ kind: 'tcp' as const, port: 5432 }] }
          : m,
      ),
    };
    expect(
      assessReadiness({
        ...base,
        plan: probed,
        lastRun: undefined,
        outgrownRun: {
          run: own(now.machines),
          shown: own(now.machines),
          ageSeconds: 60,
        },
      }).reasons,
    ).toEqual([
      'Its boot plan changed since its last test recovery (60 s ago), which did not run probe tcp:5432 on resource:default/data-01: none has recovered the plan it has now',
    ]);
  });

  it('keeps an entity whose last run failed on a machine its plan holds not recoverable when its plan grows', () => {
    const machine = (machineRef: string, services: string[]) => ({
      machineRef,
      wave: 0,
      services,
      waitsFor: [],
      probes: [],
    });
    const web01 = machine('resource:default/web-01', ['component:default/web']);
    const grown = {
      ...plan,
      machines: [
        web01,
        machine('resource:default/cache-01', ['component:default/cache']),
      ],
    };
    const failed = {
      id: 'old',
      entityRef: 'component:default/web',
      mode: 'test',
      status: 'failed',
      plan: {
        entityRef: 'component:default/web',
        waves: [],
        machines: [web01],
      },
      error: {
        machineRef: 'resource:default/web-01',
        message: 'web-01 failed: probe http:80/ did not pass',
      },
    } as unknown as RecoveryRun;
    // Else adding the cache would read as the failure mended (and tell its owners so).
    expect(
      assessReadiness({
        ...base,
        plan: grown,
        lastRun: undefined,
        outgrownRun: { run: failed, shown: failed, ageSeconds: 600 },
      }),
    ).toMatchObject({
      status: 'not-recoverable',
      reasons: [
        'Last test recovery failed: web-01 failed: probe http:80/ did not pass',
        'Its boot plan changed since its last test recovery (10 min ago), which did not boot resource:default/cache-01: none has recovered the plan it has now',
      ],
    });
    // Another entity's run failed on web-01 by a probe of its own service there: nothing of web's.
    const api = machine('resource:default/web-01', [
      'component:default/api',
      'component:default/web',
    ]);
    const apiFailed = {
      ...failed,
      id: 'api-run',
      entityRef: 'component:default/api',
      plan: {
        entityRef: 'component:default/api',
        waves: [],
        machines: [{ ...api, probes: [{ kind: 'tcp', port: 8080 }] }],
      },
      error: {
        machineRef: 'resource:default/web-01',
        probe: 'tcp:8080',
        message: 'probe tcp:8080 did not pass',
      },
    } as unknown as RecoveryRun;
    expect(
      assessReadiness({
        ...base,
        plan: grown,
        lastRun: undefined,
        outgrownRun: { run: apiFailed, shown: apiFailed, ageSeconds: 600 },
      }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        'Its boot plan changed since its last test recovery, run api-run of component:default/api (10 min ago), which did not boot resource:default/cache-01 and failed on resource:default/web-01, gated there by more than the plan gates it by: none has recovered the plan it has now',
      ],
    });
    // Another entity's run that booted and probed all of this plan, then failed on a machine
    // outside it: the plan did not change, and the reason does not say it did.
    const webOnly = {
      ...plan,
      machines: [machine('resource:default/web-01', ['component:default/web'])],
    };
    const shopFailed = {
      ...failed,
      id: 'shop-run',
      entityRef: 'system:default/shop',
      plan: {
        entityRef: 'system:default/shop',
        waves: [],
        machines: [
          ...webOnly.machines,
          machine('resource:default/pay-01', ['component:default/pay']),
        ],
      },
      error: {
        machineRef: 'resource:default/pay-01',
        message: 'probe tcp:9000 did not pass',
      },
    } as unknown as RecoveryRun;
    expect(
      assessReadiness({
        ...base,
        plan: webOnly,
        lastRun: undefined,
        outgrownRun: { run: shopFailed, shown: shopFailed, ageSeconds: 600 },
      }),
    ).toMatchObject({
      status: 'at-risk',
      reasons: [
        'Its boot plan was recovered whole by its last test recovery, run shop-run of system:default/shop (10 min ago), which then failed on resource:default/pay-01, which the plan does not hold: no run that succeeded has recovered its plan since',
      ],
    });
  });

  it('puts an entity out of reach while a run since its last failed on a machine of its plan gated there as the plan gates it, naming that run as the caller may see it', () => {
    const machine = (machineRef: string, services: string[]) => ({
      machineRef,
      wave: 0,
      services,
      waitsFor: [],
      probes: [],
    });
    const shop = {
      ...plan,
      entityRef: 'system:default/shop',
      machines: [
        machine('resource:default/data-01', ['component:default/db']),
        machine('resource:default/web-01', ['component:default/web']),
      ],
    };
    const webFailed = {
      id: 'web-run',
      entityRef: 'component:default/web',
      mode: 'test',
      status: 'failed',
      plan: {
        entityRef: 'component:default/web',
        waves: [],
        machines: [
          machine('resource:default/web-01', ['component:default/web']),
        ],
      },
      error: {
        machineRef: 'resource:default/web-01',
        message: 'probe http:80/ did not pass',
      },
    } as unknown as RecoveryRun;
    const input = { ...base, entityRef: 'system:default/shop', plan: shop };
    const gated =
      'failed on resource:default/web-01, gated there by nothing its plan does not gate it by';
    // Its last covering run succeeded (the base's), within every objective.
    expect(
      assessReadiness({
        ...input,
        failedRun: { run: webFailed, shown: webFailed },
      }),
    ).toMatchObject({
      status: 'not-recoverable',
      reasons: [
        `A test recovery after the last that recovered its plan ${gated} (run web-run of component:default/web): probe http:80/ did not pass`,
      ],
    });
    // Hidden from the caller: not named, its message the hidden one.
    const hidden = hiddenRun(webFailed);
    expect(
      assessReadiness({
        ...input,
        failedRun: { run: webFailed, shown: hidden },
      }).reasons,
    ).toEqual([
      `A test recovery after the last that recovered its plan ${gated}: resource:default/web-01 failed (in a run of an entity the catalog does not show you: its details are left out)`,
    ]);
    // None covered its plan: never test-recovered, and out of reach all the same; a failover is a failover.
    const failover = { ...webFailed, mode: 'failover' } as RecoveryRun;
    expect(
      assessReadiness({
        ...input,
        lastRun: undefined,
        failedRun: { run: failover, shown: failover },
      }),
    ).toMatchObject({
      status: 'not-recoverable',
      reasons: [
        `A failover ${gated}, and none has recovered its plan since (run web-run of component:default/web): probe http:80/ did not pass`,
        'Never test-recovered',
      ],
    });
    // Its own run, and once only where it is the run its outgrown plan is told by.
    const own = {
      ...webFailed,
      entityRef: 'system:default/shop',
    } as RecoveryRun;
    expect(
      assessReadiness({ ...input, failedRun: { run: own, shown: own } })
        .reasons,
    ).toEqual([
      `A test recovery after the last that recovered its plan ${gated} (its run web-run): probe http:80/ did not pass`,
    ]);
    expect(
      assessReadiness({
        ...input,
        lastRun: undefined,
        outgrownRun: { run: own, shown: own, ageSeconds: 60 },
        failedRun: { run: own, shown: own },
      }).reasons,
    ).toEqual([
      'Last test recovery failed: probe http:80/ did not pass',
      'Its boot plan changed since its last test recovery (60 s ago), which did not boot resource:default/data-01: none has recovered the plan it has now',
    ]);
  });
});
