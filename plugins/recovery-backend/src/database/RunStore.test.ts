import { TestDatabases } from '@backstage/backend-test-utils';
import type { Knex } from 'knex';
import {
  admission,
  finishRun,
  fullCaptureOf,
  webPlan,
} from '../testing/entities';
import { CaptureStore, StoredCapture } from './CaptureStore';
import { migrate } from './migrations';
import { ReadinessHistoryStore } from './ReadinessHistoryStore';
import { RunStore } from './RunStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())('RunStore on %p', databaseId => {
  let captureStore: CaptureStore;
  let runStore: RunStore;
  let runHistory: ReadinessHistoryStore;
  let knex: Knex;

  beforeAll(async () => {
    knex = await databases.init(databaseId);
    await migrate(knex);
    captureStore = new CaptureStore(knex);
    runStore = new RunStore(knex);
    runHistory = new ReadinessHistoryStore(knex);
  });

  it('admits a run with the newest capture of each machine, chosen as it is admitted', async () => {
    const m = 'resource:default/admit-01';
    await captureStore.insertCapture(
      fullCaptureOf('a1', m, '2026-11-01T00:00:00.000Z'),
    );
    await captureStore.insertCapture(
      fullCaptureOf('a2', m, '2026-11-02T00:00:00.000Z'),
    );
    const admitted = await runStore.admitRun(
      admission('run-admit', m, 'admit-host'),
      new Date('2026-11-02T01:00:00.000Z'),
    );
    expect('captures' in admitted && admitted.captures.get(m)!.id).toBe('a2');
    expect(
      (await runStore.getRun('run-admit'))!.machines.map(x => x.captureId),
    ).toEqual(['a2']);
    // The host is held: the next one is told by whom.
    const refused = await runStore.admitRun(
      admission('run-admit-2', m, 'admit-host'),
      new Date('2026-11-02T01:00:01.000Z'),
    );
    expect('busyWith' in refused && refused.busyWith.id).toBe('run-admit');
    await expect(
      runStore.admitRun(
        admission('run-uncaptured', 'resource:default/never-01', 'other-host'),
        new Date(),
      ),
    ).rejects.toThrow(
      'No capture of resource:default/never-01 yet: capture first (POST /captures)',
    );
    await runStore.updateRun('run-admit', {
      status: 'succeeded',
      finishedAt: '2026-11-02T03:00:00.000Z',
    });
  });

  it('records with each machine of a run the engine and container of the capture chosen for it, kept once that capture is pruned', async () => {
    const m = 'resource:default/replaced-01';
    await captureStore.insertCapture({
      ...fullCaptureOf('rp1', m, '2026-11-03T00:00:00.000Z'),
      container: 'replaced-01-a',
    });
    await runStore.admitRun(
      admission('run-replaced', m, 'replaced-host'),
      new Date('2026-11-03T01:00:00.000Z'),
    );
    await runStore.updateRun('run-replaced', {
      status: 'succeeded',
      finishedAt: '2026-11-03T02:00:00.000Z',
    });
    // The machine replaced, and captured again: retention keeps the new capture alone.
    await captureStore.insertCapture({
      ...fullCaptureOf('rp2', m, '2026-11-04T00:00:00.000Z'),
      engine: 'staging',
      container: 'replaced-01-b',
    });
    expect((await captureStore.pruneCaptures(m, 1)).map(c => c.id)).toEqual([
      'rp1',
    ]);
    const restored = {
      machineRef: m,
      captureId: 'rp1',
      capturedFrom: { engine: 'primary', container: 'replaced-01-a' },
    };
    expect((await runStore.getRun('run-replaced'))!.machines).toEqual([
      expect.objectContaining(restored),
    ]);
    // Every read of runs with their details says so: the readiness overview's among them.
    const [last] = await runHistory.lastFinishedRuns([
      {
        entityRef: 'component:default/admit',
        accept: r => r.id === 'run-replaced',
      },
    ]);
    expect(last!.machines).toEqual([expect.objectContaining(restored)]);
    // A run stored without it (before it was kept) says nothing of it.
    await finishRun(runStore, 'run-unrecorded', '2026-11-04T01:00:00.000Z', [
      m,
    ]);
    expect(
      (await runStore.getRun('run-unrecorded'))!.machines[0],
    ).not.toHaveProperty('capturedFrom');
  });

  it('a capture pruned while a run is admitted is not the one it restores: admission waits and takes the newer one', async () => {
    if (knex.client.dialect !== 'postgresql') return; // SQLite runs one writing transaction at a time.
    const m = 'resource:default/race-01';
    await captureStore.insertCapture(
      fullCaptureOf('r1', m, '2026-11-01T00:00:00.000Z'),
    );
    // A capture being taken: r2 recorded, and the pruning that follows it has locked and deleted
    // r1, neither committed yet. Admission still sees r1 as the newest, and waits on it.
    const pruning = await knex.transaction();
    let admitting: ReturnType<RunStore['admitRun']> | undefined;
    try {
      await new CaptureStore(pruning).insertCapture(
        fullCaptureOf('r2', m, '2026-11-02T00:00:00.000Z'),
      );
      await pruning('recovery_captures')
        .where({ id: 'r1' })
        .forUpdate()
        .select('id');
      await pruning('recovery_captures').where({ id: 'r1' }).delete();
      let settled = false;
      admitting = runStore
        .admitRun(admission('run-race', m, 'race-host'), new Date())
        .finally(() => {
          settled = true;
        });
      await new Promise(resolve => setTimeout(resolve, 300));
      expect(settled).toBe(false);
      await pruning.commit();
    } finally {
      // A failed check must not leave the transaction open (the test database could not be dropped).
      if (!pruning.isCompleted()) await pruning.rollback();
      await admitting?.catch(() => {});
    }
    const admitted = await admitting!;
    expect('captures' in admitted && admitted.captures.get(m)!.id).toBe('r2');
    expect(
      (await runStore.getRun('run-race'))!.machines.map(x => x.captureId),
    ).toEqual(['r2']);
    await runStore.updateRun('run-race', {
      status: 'succeeded',
      finishedAt: '2026-11-02T03:00:00.000Z',
    });
  });

  it('refuses a run whose chosen capture is pruned under it on every choice, rather than admit it with one that is gone', async () => {
    if (knex.client.dialect !== 'postgresql') return; // SQLite runs one writing transaction at a time.
    const m = 'resource:default/churn-01';
    for (const day of [1, 2, 3, 4])
      await captureStore.insertCapture(
        fullCaptureOf(`churn${day}`, m, `2026-11-0${day}T00:00:00.000Z`),
      );
    // Three captures being taken at once: each pruning has locked and deleted one capture, newest
    // first, none committed yet. Admission chooses churn4, waits on it, finds it gone; chooses
    // churn3, and so on: each pruning commits only once admission waits on it (its backend
    // blocked by that pruning's), so the races happen in this order, however fast either side is.
    const prunings: Array<{ tx: Knex.Transaction; pid: number }> = [];
    let admitting: ReturnType<RunStore['admitRun']> | undefined;
    try {
      for (const id of ['churn4', 'churn3', 'churn2']) {
        const tx = await knex.transaction();
        const { rows } = await tx.raw('select pg_backend_pid() as pid');
        prunings.push({ tx, pid: rows[0].pid });
        await tx('recovery_captures').where({ id }).forUpdate().select('id');
        await tx('recovery_captures').where({ id }).delete();
      }
      admitting = runStore.admitRun(
        admission('run-churn', m, 'churn-host'),
        new Date(),
      );
      admitting.catch(() => {});
      for (const { tx, pid } of prunings) {
        await vi.waitFor(
          async () => {
            const { rows } = await knex.raw(
              'select count(*)::int as n from pg_stat_activity where ? = any(pg_blocking_pids(pid))',
              [pid],
            );
            expect(rows[0].n).toBe(1);
          },
          { timeout: 10_000, interval: 10 },
        );
        await tx.commit();
      }
      await expect(admitting).rejects.toThrow(
        'The capture chosen for resource:default/churn-01 was pruned while the run was admitted, 3 times in a row (captures taken meanwhile): try again',
      );
    } finally {
      // A failed check must not leave transactions open (the test database could not be dropped).
      for (const { tx } of prunings) if (!tx.isCompleted()) await tx.rollback();
      await admitting?.catch(() => {});
    }
    expect(await runStore.getRun('run-churn')).toBeUndefined();
    // Tried again once the captures settle, it is admitted with the one left.
    const admitted = await runStore.admitRun(
      admission('run-churn', m, 'churn-host'),
      new Date(),
    );
    expect('captures' in admitted && admitted.captures.get(m)!.id).toBe(
      'churn1',
    );
    await runStore.updateRun('run-churn', {
      status: 'succeeded',
      finishedAt: '2026-11-05T00:00:00.000Z',
    });
  });

  it('admits a failover by preempting the test run holding its host, in the same transaction; never a failover, never for a test', async () => {
    const m = 'resource:default/preempt-01';
    await captureStore.insertCapture(
      fullCaptureOf('pre1', m, '2026-11-01T00:00:00.000Z'),
    );
    const failover = (id: string) => ({
      ...admission(id, m, 'preempt-host'),
      mode: 'failover' as const,
    });
    await runStore.admitRun(
      admission('pre-test', m, 'preempt-host'),
      new Date(),
    );
    await runStore.updateRunMachine('pre-test', m, { phase: 'verifying' });
    // A test does not preempt a test.
    const refused = await runStore.admitRun(
      admission('pre-test-2', m, 'preempt-host'),
      new Date(),
    );
    expect('busyWith' in refused && refused.busyWith.id).toBe('pre-test');

    const admitted = await runStore.admitRun(
      failover('pre-failover'),
      new Date(),
    );
    expect(
      'preempted' in admitted && admitted.preempted.map(r => r.id),
    ).toEqual(['pre-test']);
    const message = 'Interrupted: preempted by failover pre-failover';
    const test = (await runStore.getRun('pre-test'))!;
    expect(test).toMatchObject({ status: 'interrupted', error: { message } });
    expect(test.machines.map(r => [r.phase, r.message])).toEqual([
      ['interrupted', message],
    ]);
    expect(test.steps.map(r => [r.level, r.message])).toEqual([
      ['error', message],
    ]);
    // Its lab is left for the failover to remove before it builds its own.
    expect(await runStore.runsWithLabLeft('preempt-host')).toEqual([
      { id: 'pre-test', hypervisorHost: 'preempt-host' },
    ]);
    expect(
      (await runStore.activeRuns({ hypervisorHost: 'preempt-host' })).map(
        r => r.id,
      ),
    ).toEqual(['pre-failover']);

    // A failover holding the host is preempted by nothing.
    for (const next of [
      admission('pre-test-3', m, 'preempt-host'),
      failover('pre-failover-2'),
    ]) {
      const busy = await runStore.admitRun(next, new Date());
      expect('busyWith' in busy && busy.busyWith.id).toBe('pre-failover');
    }
    // Frees the host of the database the next tests share.
    await runStore.updateRun('pre-failover', {
      status: 'failed',
      error: { message: 'done' },
    });
  });

  // SQLite: one connection, so nothing finishes the run during the admission's transaction.
  it.skipIf(databaseId === 'SQLITE_3')(
    'preempts no test run its driver finished while the failover was being admitted (PostgreSQL: no lock keeps it active)',
    async () => {
      const m = 'resource:default/preempt-race-01';
      await captureStore.insertCapture(
        fullCaptureOf('prr1', m, '2026-11-01T00:00:00.000Z'),
      );
      await runStore.admitRun(
        admission('race-test', m, 'preempt-race-host'),
        new Date(),
      );
      const activeRuns = RunStore.prototype.activeRuns;
      const read = vi
        .spyOn(RunStore.prototype, 'activeRuns')
        .mockImplementation(async function activeThenFinished(
          this: RunStore,
          filter,
        ) {
          const found = await activeRuns.call(this, filter);
          // Its driver records its success, on its own connection, right after the admission read it.
          if (filter.hypervisorHost === 'preempt-race-host')
            await runStore.updateRun('race-test', {
              status: 'succeeded',
              rtoSeconds: 12,
            });
          return found;
        });
      try {
        const admitted = await runStore.admitRun(
          {
            ...admission('race-failover', m, 'preempt-race-host'),
            mode: 'failover',
          },
          new Date(),
        );
        expect('preempted' in admitted && admitted.preempted).toEqual([]);
      } finally {
        read.mockRestore();
      }
      const test = (await runStore.getRun('race-test'))!;
      expect(test).toMatchObject({
        status: 'succeeded',
        rtoSeconds: 12,
        steps: [],
      });
      expect(await runStore.runsWithLabLeft('preempt-race-host')).toEqual([]);
      await runStore.updateRun('race-failover', {
        status: 'failed',
        error: { message: 'done' },
      });
    },
  );

  it('persists a run, its machines and its timeline as they change', async () => {
    await runStore.insertRun(
      {
        id: 'run-1',
        entityRef: 'component:default/web',
        mode: 'test',
        trigger: 'user',
        createdBy: 'user:default/ada',
        hypervisorHost: 'recovery',
        plan: webPlan,
        options: { reverseBootOrder: true },
        machines: [
          {
            machineRef: 'resource:default/infra-01',
            wave: 0,
            captureId: 'c4',
          },
          { machineRef: 'resource:default/web-01', wave: 1, captureId: 'c3' },
        ],
      },
      new Date('2026-11-21T10:00:00.000Z'),
    );
    await runStore.updateRun('run-1', {
      status: 'running',
      startedAt: '2026-11-21T10:00:01.000Z',
    });
    await runStore.updateRunMachine('run-1', 'resource:default/infra-01', {
      phase: 'ready',
      restoreStartedAt: '2026-11-21T10:00:01.000Z',
      readyAt: '2026-11-21T10:00:09.500Z',
    });
    await runStore.updateRunMachine('run-1', 'resource:default/web-01', {
      phase: 'failed',
      message: 'probe tcp:80 did not pass',
      probe: 'tcp:80',
      logTail: 'waiting for database\n',
    });
    await runStore.appendStep('run-1', {
      at: '2026-11-21T10:00:01.000Z',
      level: 'info',
      message: 'first',
    });
    await runStore.appendStep('run-1', {
      at: '2026-11-21T10:00:20.000Z',
      machineRef: 'resource:default/web-01',
      level: 'error',
      message: 'second',
    });
    await runStore.updateRun('run-1', {
      status: 'failed',
      finishedAt: '2026-11-21T10:00:21.000Z',
      error: {
        machineRef: 'resource:default/web-01',
        probe: 'tcp:80',
        message: 'boom',
      },
    });

    const run = (await runStore.getRun('run-1'))!;
    expect(run).toMatchObject({
      id: 'run-1',
      status: 'failed',
      createdBy: 'user:default/ada',
      createdAt: '2026-11-21T10:00:00.000Z',
      startedAt: '2026-11-21T10:00:01.000Z',
      finishedAt: '2026-11-21T10:00:21.000Z',
      error: { probe: 'tcp:80', message: 'boom' },
      plan: webPlan,
    });
    expect(run.machines).toEqual([
      expect.objectContaining({
        machineRef: 'resource:default/infra-01',
        phase: 'ready',
        captureId: 'c4',
        readyAt: '2026-11-21T10:00:09.500Z',
      }),
      expect.objectContaining({
        machineRef: 'resource:default/web-01',
        phase: 'failed',
        probe: 'tcp:80',
        logTail: 'waiting for database\n',
      }),
    ]);
    expect(run.steps.map(s => s.message)).toEqual(['first', 'second']);
    expect(await runStore.getRun('nope')).toBeUndefined();
  });

  it('finds no run of an id no run can have (a NUL in it, which PostgreSQL refuses in text), rather than fail', async () => {
    await runStore.insertRun(
      {
        ...admission('nul-probe', 'resource:default/nul-01', 'nul-host'),
        machines: [],
      },
      new Date(),
    );
    try {
      expect(await runStore.getRun('nul-probe')).toMatchObject({
        id: 'nul-probe',
      });
      expect(await runStore.getRun('nul-probe\0')).toBeUndefined();
      expect(await runStore.getRun('\0')).toBeUndefined();
    } finally {
      await knex('recovery_runs').where({ id: 'nul-probe' }).delete();
    }
  });

  it('finds the last finished run per entity and stale active runs', async () => {
    const base = {
      mode: 'test' as const,
      trigger: 'schedule' as const,
      hypervisorHost: 'recovery',
      plan: webPlan,
      options: {},
      machines: [],
    };
    await runStore.insertRun(
      { ...base, id: 'run-2', entityRef: 'component:default/web' },
      new Date('2026-11-21T11:00:00Z'),
    );
    await runStore.updateRun('run-2', { status: 'running' });
    await runStore.updateRun('run-2', {
      status: 'succeeded',
      rtoSeconds: 42.5,
    });
    await runStore.insertRun(
      { ...base, id: 'run-3', entityRef: 'component:default/web' },
      new Date('2026-11-21T12:00:00Z'),
    );

    expect(
      await runHistory.lastFinishedRun({ entityRef: 'component:default/web' }),
    ).toMatchObject({ id: 'run-2', rtoSeconds: 42.5 });
    expect(
      await runHistory.lastFinishedRun({ entityRef: 'component:default/x' }),
    ).toBeUndefined();

    expect(
      (await runStore.activeRuns({ hypervisorHost: 'recovery' })).map(
        r => r.id,
      ),
    ).toEqual(['run-3']);
    expect(await runStore.activeRuns({ staleForMs: 60_000 })).toEqual([]);
    expect(
      (await runStore.activeRuns({ staleForMs: -60_000 })).map(r => r.id),
    ).toEqual(['run-3']);
    expect(
      (
        await runStore.listRuns({
          entityRef: 'component:default/web',
          limit: 2,
        })
      ).map(r => r.id),
    ).toEqual(['run-3', 'run-2']);
  });

  it('lists runs after a given one, newest first, the id breaking ties of one instant', async () => {
    const base = {
      mode: 'test' as const,
      trigger: 'user' as const,
      hypervisorHost: 'keyset',
      plan: webPlan,
      options: {},
      machines: [],
    };
    const entityRef = 'component:default/keyset';
    const at = new Date('2026-11-22T12:00:00.123Z');
    for (const id of ['k-a', 'k-b', 'k-c'])
      await runStore.insertRun({ ...base, id, entityRef }, at);
    await runStore.insertRun(
      { ...base, id: 'k-old', entityRef },
      new Date(at.getTime() - 1),
    );
    await runStore.insertRun(
      { ...base, id: 'k-new', entityRef },
      new Date(at.getTime() + 1),
    );

    const ids = (runs: Array<{ id: string }>) => runs.map(r => r.id);
    const all = await runStore.listRuns({ entityRef });
    expect(ids(all)).toEqual(['k-new', 'k-c', 'k-b', 'k-a', 'k-old']);
    // Pages of two, each after the last run of the one before: every run once, in order.
    const read: string[] = [];
    let page = await runStore.listRuns({ entityRef, limit: 2 });
    while (page.length > 0) {
      read.push(...ids(page));
      page = await runStore.listRuns({
        entityRef,
        limit: 2,
        after: page.at(-1),
      });
    }
    expect(read).toEqual(ids(all));
    expect(
      ids(
        await runStore.listRuns({
          entityRef,
          after: { id: 'k-b', createdAt: at.toISOString() },
        }),
      ),
    ).toEqual(['k-a', 'k-old']);
  });

  it('treats a finished run as final: later updates change nothing and say so', async () => {
    const base = {
      mode: 'test' as const,
      trigger: 'user' as const,
      hypervisorHost: 'recovery',
      plan: webPlan,
      options: {},
    };
    const machines = [{ machineRef: 'resource:default/web-01', wave: 0 }];
    await runStore.insertRun(
      {
        ...base,
        id: 'run-final',
        entityRef: 'component:default/final',
        machines,
      },
      new Date(),
    );
    expect(await runStore.updateRun('run-final', { status: 'running' })).toBe(
      true,
    );
    expect(await runStore.heartbeat('run-final')).toBe(true);
    expect(
      await runStore.updateRun('run-final', {
        status: 'failed',
        error: { message: 'stale heartbeat' },
      }),
    ).toBe(true);

    expect(
      await runStore.updateRun('run-final', {
        status: 'succeeded',
        rtoSeconds: 1,
      }),
    ).toBe(false);
    expect(await runStore.heartbeat('run-final')).toBe(false);
    await runStore.updateRunMachine('run-final', 'resource:default/web-01', {
      phase: 'ready',
    });
    const run = (await runStore.getRun('run-final'))!;
    expect(run).toMatchObject({
      status: 'failed',
      error: { message: 'stale heartbeat' },
    });
    expect(run.rtoSeconds).toBeUndefined();
    expect(run.machines[0].phase).toBe('waiting');
  });

  it("claims a stale run once, by the database's clock, ending it interrupted, settling its machines and recording its lab as left", async () => {
    const base = {
      mode: 'test' as const,
      trigger: 'user' as const,
      hypervisorHost: 'claims',
      plan: webPlan,
      options: {},
    };
    const machines = [
      { machineRef: 'resource:default/infra-01', wave: 0 },
      { machineRef: 'resource:default/web-01', wave: 1 },
    ];
    // Admitted and beating by a replica whose clock is an hour behind: still fresh.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 3_600_000 });
    try {
      await runStore.insertRun(
        {
          ...base,
          id: 'run-claim',
          entityRef: 'component:default/claim',
          machines,
        },
        new Date(),
      );
      await runStore.updateRun('run-claim', { status: 'running' });
      await runStore.updateRunMachine(
        'run-claim',
        'resource:default/infra-01',
        {
          phase: 'verifying',
        },
      );
      expect(await runStore.heartbeat('run-claim')).toBe(true);
    } finally {
      vi.useRealTimers();
    }
    expect(await runStore.activeRuns({ staleForMs: 60_000 })).toEqual([]);
    const at = new Date('2026-11-24T00:00:00.000Z');
    const left = { labLeft: true };
    expect(
      await runStore.claimStaleRun(
        'run-claim',
        60_000,
        'Interrupted: gone',
        at,
        left,
      ),
    ).toBeUndefined();
    expect((await runStore.getRun('run-claim'))!.status).toBe('running');
    expect(await runStore.runsWithLabLeft('claims')).toEqual([]);

    // Stale (any heartbeat counts, here): of two claims only one wins.
    const claims = await Promise.all([
      runStore.claimStaleRun(
        'run-claim',
        -60_000,
        'Interrupted: gone',
        at,
        left,
      ),
      runStore.claimStaleRun(
        'run-claim',
        -60_000,
        'Interrupted: gone',
        at,
        left,
      ),
    ]);
    expect(claims.map(c => c !== undefined).sort()).toEqual([false, true]);
    // No result reached before its teardown: nothing but the claim.
    expect(claims.find(c => c)).toEqual({ outcome: undefined });
    expect(await runStore.heartbeat('run-claim')).toBe(false);
    // The claim that frees the host records the lab it is about to tear down: a run admitted
    // there next finds it, whatever becomes of the claiming replica.
    expect(await runStore.runsWithLabLeft('claims')).toEqual([
      { id: 'run-claim', hypervisorHost: 'claims' },
    ]);
    await runStore.setFailedRunError('run-claim', {
      message: 'Interrupted: gone; removed 1 network',
    });
    const run = (await runStore.getRun('run-claim'))!;
    expect(run).toMatchObject({
      status: 'interrupted',
      finishedAt: at.toISOString(),
      error: { message: 'Interrupted: gone; removed 1 network' },
    });
    // The machine it was verifying was cut off with it, no failure of its own.
    expect(run.machines.map(m => [m.phase, m.message])).toEqual([
      ['interrupted', 'Interrupted: gone'],
      ['skipped', undefined],
    ]);

    // A claim that keeps the lab (a failover's) leaves the flag as it was.
    await runStore.insertRun(
      {
        ...base,
        id: 'run-kept',
        entityRef: 'component:default/claim',
        mode: 'failover',
        machines,
      },
      new Date(),
    );
    expect(
      await runStore.claimStaleRun(
        'run-kept',
        -60_000,
        'Interrupted: gone',
        at,
        { labLeft: false },
      ),
    ).toEqual({ outcome: undefined });
    expect((await runStore.getRun('run-kept'))!.status).toBe('interrupted');
    expect((await runStore.runsWithLabLeft('claims')).map(r => r.id)).toEqual([
      'run-claim',
    ]);

    // One that reached its result before its teardown: the claim finishes it so, and says so.
    await runStore.insertRun(
      {
        ...base,
        id: 'run-verified',
        entityRef: 'component:default/claim',
        machines,
      },
      new Date(),
    );
    await runStore.updateRun('run-verified', { status: 'running' });
    expect(
      await runStore.setRunOutcome('run-verified', {
        status: 'succeeded',
        rtoSeconds: 42,
      }),
    ).toBe(true);
    expect(
      await runStore.claimStaleRun(
        'run-verified',
        -60_000,
        'Interrupted: gone',
        at,
        left,
      ),
    ).toEqual({
      outcome: { status: 'succeeded', rtoSeconds: 42 },
    });
    expect(await runStore.getRun('run-verified')).toMatchObject({
      status: 'succeeded',
      rtoSeconds: 42,
    });

    // One that reached a failure, or an interruption, before its teardown: the machine still in
    // progress ends as the run did, in the words the driver kept for it.
    for (const [id, outcome, phase] of [
      [
        'run-failing',
        {
          status: 'failed',
          error: { message: 'lab network gone' },
          unfinishedReason: 'the run failed: lab network gone',
        },
        'failed',
      ],
      [
        'run-shut',
        {
          status: 'interrupted',
          error: { message: 'Interrupted: the backend is shutting down' },
          unfinishedReason: 'Interrupted: the backend is shutting down',
        },
        'interrupted',
      ],
    ] as const) {
      await runStore.insertRun(
        { ...base, id, entityRef: 'component:default/claim', machines },
        new Date(),
      );
      await runStore.updateRun(id, { status: 'running' });
      await runStore.updateRunMachine(id, 'resource:default/infra-01', {
        phase: 'restoring',
      });
      expect(await runStore.setRunOutcome(id, outcome)).toBe(true);
      await runStore.claimStaleRun(id, -60_000, 'Interrupted: gone', at, left);
      const ended = (await runStore.getRun(id))!;
      expect({
        status: ended.status,
        machines: ended.machines.map(m => [m.phase, m.message]),
      }).toEqual({
        status: outcome.status,
        machines: [
          [phase, outcome.unfinishedReason],
          ['skipped', undefined],
        ],
      });
    }
  });

  it('keeps a measured RTO to the millisecond and beyond, on every database', async () => {
    // PostgreSQL's real (float4) kept about 7 digits: 123456.789 read back as 123456.79.
    await runStore.insertRun(
      {
        id: 'run-rto',
        entityRef: 'component:default/rto',
        mode: 'test',
        trigger: 'user',
        hypervisorHost: 'rto',
        plan: webPlan,
        options: {},
        machines: [],
      },
      new Date(),
    );
    await runStore.updateRun('run-rto', { status: 'running' });
    await runStore.updateRun('run-rto', {
      status: 'succeeded',
      rtoSeconds: 123456.789,
    });
    expect((await runStore.getRun('run-rto'))!.rtoSeconds).toBe(123456.789);
  });

  it('lists the failovers that finished on a host, newest first, each machine with the networks of the capture it restored, or of its newest where that one was pruned', async () => {
    const host = 'failover-host';
    const a = 'resource:default/fo-a';
    const b = 'resource:default/fo-b';
    const withSubnet = (c: StoredCapture, subnet: string): StoredCapture => ({
      ...c,
      runtime: {
        ...c.runtime,
        networks: [{ name: 'prod', subnet, aliases: [] }],
      },
    });
    await captureStore.insertCapture(
      withSubnet(
        fullCaptureOf('fo-a1', a, '2026-10-01T00:00:00.000Z'),
        '10.1.0.0/24',
      ),
    );
    await captureStore.insertCapture(
      withSubnet(
        fullCaptureOf('fo-b1', b, '2026-10-01T00:00:00.000Z'),
        '10.2.0.0/24',
      ),
    );
    const failover = async (
      id: string,
      at: string,
      machineRef: string,
      end?: 'succeeded' | 'failed',
      options: { mode?: 'test'; hypervisorHost?: string } = {},
    ) => {
      const admitted = await runStore.admitRun(
        {
          ...admission(id, machineRef, options.hypervisorHost ?? host),
          entityRef: `component:default/${id}`,
          mode: options.mode ?? 'failover',
        },
        new Date(at),
      );
      expect(admitted).toHaveProperty('captures');
      if (end) {
        await runStore.updateRun(id, { status: 'running' });
        await runStore.updateRun(id, { status: end, finishedAt: at });
      }
    };
    await failover('fo-old', '2026-10-02T00:00:00.000Z', a, 'failed');
    await failover('fo-new', '2026-10-03T00:00:00.000Z', b, 'succeeded');
    // Not listed: a test run, a failover on another host.
    await failover('fo-test', '2026-10-04T00:00:00.000Z', a, 'succeeded', {
      mode: 'test',
    });
    await failover('fo-elsewhere', '2026-10-04T00:00:00.000Z', a, 'succeeded', {
      hypervisorHost: 'other-host',
    });
    // Retention took the capture fo-new restored: its machine's newest one says its networks.
    await captureStore.insertCapture(
      withSubnet(
        fullCaptureOf('fo-b2', b, '2026-10-05T00:00:00.000Z'),
        '10.3.0.0/24',
      ),
    );
    await knex('recovery_captures').where({ id: 'fo-b1' }).delete();
    // Still running: it holds the host, admission says so; not listed among the finished.
    await failover('fo-running', '2026-10-06T00:00:00.000Z', a);

    expect(await runStore.finishedFailovers(host)).toEqual([
      {
        id: 'fo-new',
        entityRef: 'component:default/fo-new',
        status: 'succeeded',
        finishedAt: '2026-10-03T00:00:00.000Z',
        machines: [
          {
            machineRef: b,
            networks: [{ name: 'prod', subnet: '10.3.0.0/24', aliases: [] }],
          },
        ],
      },
      {
        id: 'fo-old',
        entityRef: 'component:default/fo-old',
        status: 'failed',
        finishedAt: '2026-10-02T00:00:00.000Z',
        machines: [
          {
            machineRef: a,
            networks: [{ name: 'prod', subnet: '10.1.0.0/24', aliases: [] }],
          },
        ],
      },
    ]);
    expect(await runStore.finishedFailovers('no-such-host')).toEqual([]);
  });

  it('admits nothing, answering which, where a failover finished on the host since the check of what failovers keep there', async () => {
    const m = 'resource:default/kept-meanwhile-01';
    const host = 'kept-meanwhile-host';
    await captureStore.insertCapture(
      fullCaptureOf('km1', m, '2026-11-01T00:00:00.000Z'),
    );
    await runStore.admitRun(
      { ...admission('km-failover', m, host), mode: 'failover' },
      new Date(),
    );
    // Still active: it holds the host, whatever the check saw.
    const busy = await runStore.admitRun(
      admission('km-test', m, host),
      new Date(),
      { keptChecked: [] },
    );
    expect('busyWith' in busy && busy.busyWith.id).toBe('km-failover');
    await runStore.updateRun('km-failover', { status: 'running' });
    await runStore.updateRun('km-failover', {
      status: 'succeeded',
      finishedAt: '2026-11-02T00:00:00.000Z',
    });
    // Checked while it was active: look again.
    expect(
      await runStore.admitRun(admission('km-test', m, host), new Date(), {
        keptChecked: [],
      }),
    ).toEqual({ finishedMeanwhile: ['km-failover'] });
    expect(await runStore.getRun('km-test')).toBeUndefined();
    // Checked once finished: admitted.
    const admitted = await runStore.admitRun(
      admission('km-test', m, host),
      new Date(),
      { keptChecked: ['km-failover'] },
    );
    expect('captures' in admitted && admitted.captures.get(m)!.id).toBe('km1');
    // Frees the host of the database the next tests share.
    await runStore.updateRun('km-test', {
      status: 'failed',
      error: { message: 'done' },
    });
  });

  it('lists active runs oldest first, the id breaking ties of one instant, every time', async () => {
    const base = {
      entityRef: 'component:default/ties',
      mode: 'test' as const,
      trigger: 'user' as const,
      hypervisorHost: 'ties',
      plan: webPlan,
      options: {},
      machines: [],
    };
    const instant = new Date('2026-11-26T12:00:00.456Z');
    for (const id of ['ties-b', 'ties-d', 'ties-a', 'ties-c'])
      await runStore.insertRun({ ...base, id }, instant);
    await runStore.insertRun(
      { ...base, id: 'ties-z' },
      new Date(instant.getTime() - 1),
    );
    const order = ['ties-z', 'ties-a', 'ties-b', 'ties-c', 'ties-d'];
    expect(
      (await runStore.activeRuns({ hypervisorHost: 'ties' })).map(r => r.id),
    ).toEqual(order);
    // The clean-up of orphaned runs claims them in that order too.
    const stale = (await runStore.activeRuns({ staleForMs: -60_000 })).map(
      r => r.id,
    );
    expect(stale.filter(id => id.startsWith('ties-'))).toEqual(order);
    for (const id of order)
      await runStore.updateRun(id, {
        status: 'failed',
        error: { message: 'done' },
      });
  });
});
