import { TestDatabases } from '@backstage/backend-test-utils';
import type { BootPlan } from '@backstage-recovery/plugin-recovery-common';
import type { Knex } from 'knex';
import { RecoveryStore, StoredCapture } from './RecoveryStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

const plan: BootPlan = {
  entityRef: 'component:default/web',
  waves: [['resource:default/infra-01'], ['resource:default/web-01']],
  machines: [],
};

const capture = (
  id: string,
  machineRef: string,
  createdAt: string,
): StoredCapture => ({
  id,
  machineRef,
  engine: 'primary',
  container: machineRef.split('/')[1],
  imageId: `sha256:${id}`,
  sizeBytes: 5_000_000_000,
  checksum: `sha256:${id}`,
  artifact: `/captures/${id}.tar`,
  runtime: {
    hostname: 'web-01',
    networks: [
      {
        name: 'prod',
        subnet: '172.29.10.0/24',
        ipv4Address: '172.29.10.30',
        aliases: ['web'],
      },
    ],
    env: [],
    exposedPorts: ['80/tcp'],
    labels: {},
  },
  adaptations: ['dropped host port binding 8080->80/tcp'],
  durationMs: 1234,
  pausedMs: 321,
  createdAt,
});

describe.each(databases.eachSupportedId())(
  'RecoveryStore on %p',
  databaseId => {
    let store: RecoveryStore;
    let knex: Knex;

    beforeAll(async () => {
      knex = await databases.init(databaseId);
      await RecoveryStore.migrate(knex);
      store = new RecoveryStore(knex);
    });

    it("keeps a machine's last failed capture, the newest of those since its last capture, until one succeeds", async () => {
      const ref = 'resource:default/failing-01';
      const failure = (failedAt: string, message: string) => ({
        machineRef: ref,
        engine: 'primary',
        container: 'failing-01',
        failedAt,
        message,
      });
      await store.insertCapture(
        capture('f-0', ref, '2026-12-06T00:00:00.000Z'),
      );
      await store.recordCaptureFailure(
        failure(
          '2026-12-06T01:00:00.000Z',
          'no container "failing-01" on engine primary',
        ),
      );
      await store.recordCaptureFailure(
        failure('2026-12-06T02:00:00.000Z', 'engine unreachable'),
      );
      // An older one, from another replica told late: the newer stays.
      await store.recordCaptureFailure(
        failure('2026-12-06T01:30:00.000Z', 'older'),
      );
      // One started before the last capture that succeeded is no news.
      await store.recordCaptureFailure({
        ...failure('2026-12-05T23:00:00.000Z', 'before'),
        machineRef: 'resource:default/other-01',
      });
      await store.insertCapture(
        capture('o-1', 'resource:default/other-01', '2026-12-06T00:00:00.000Z'),
      );
      await store.recordCaptureFailure({
        ...failure('2026-12-05T23:30:00.000Z', 'before it too'),
        machineRef: 'resource:default/other-01',
      });
      expect(
        await store.captureFailures([ref, 'resource:default/other-01']),
      ).toEqual(
        new Map([
          [ref, failure('2026-12-06T02:00:00.000Z', 'engine unreachable')],
        ]),
      );
      // A capture started before the failure does not clear it; one started after does.
      await store.insertCapture(
        capture('f-1', ref, '2026-12-06T01:59:00.000Z'),
      );
      expect((await store.captureFailures([ref])).size).toBe(1);
      await store.insertCapture(
        capture('f-2', ref, '2026-12-06T02:10:00.000Z'),
      );
      expect(await store.captureFailures([ref])).toEqual(new Map());
    });

    const admission = (
      id: string,
      machineRef: string,
      hypervisorHost: string,
    ) => ({
      id,
      entityRef: 'component:default/admit',
      mode: 'test' as const,
      trigger: 'user' as const,
      hypervisorHost,
      plan: {
        entityRef: 'component:default/admit',
        waves: [[machineRef]],
        machines: [],
      },
      options: {},
      machines: [{ machineRef, wave: 0 }],
    });

    /** A scheduled test run of `id`'s own entity that booted `machineRefs`, created at `at`, ended with `status` (running: not ended). */
    const finishRun = async (
      id: string,
      at: string,
      machineRefs: string[],
      status: 'succeeded' | 'failed' | 'running' = 'succeeded',
    ) => {
      await store.insertRun(
        {
          id,
          entityRef: `component:default/${id}`,
          mode: 'test',
          trigger: 'schedule',
          hypervisorHost: 'recovery',
          plan,
          options: {},
          machines: machineRefs.map((machineRef, wave) => ({
            machineRef,
            wave,
          })),
        },
        new Date(at),
      );
      await store.updateRun(id, { status: 'running' });
      if (status !== 'running')
        await store.updateRun(id, {
          status,
          rtoSeconds: status === 'succeeded' ? 30 : undefined,
        });
    };

    it('admits a run with the newest capture of each machine, chosen as it is admitted', async () => {
      const m = 'resource:default/admit-01';
      await store.insertCapture(capture('a1', m, '2026-11-01T00:00:00.000Z'));
      await store.insertCapture(capture('a2', m, '2026-11-02T00:00:00.000Z'));
      const admitted = await store.admitRun(
        admission('run-admit', m, 'admit-host'),
        new Date('2026-11-02T01:00:00.000Z'),
      );
      expect('captures' in admitted && admitted.captures.get(m)!.id).toBe('a2');
      expect(
        (await store.getRun('run-admit'))!.machines.map(x => x.captureId),
      ).toEqual(['a2']);
      // The host is held: the next one is told by whom.
      const refused = await store.admitRun(
        admission('run-admit-2', m, 'admit-host'),
        new Date('2026-11-02T01:00:01.000Z'),
      );
      expect('busyWith' in refused && refused.busyWith.id).toBe('run-admit');
      await expect(
        store.admitRun(
          admission(
            'run-uncaptured',
            'resource:default/never-01',
            'other-host',
          ),
          new Date(),
        ),
      ).rejects.toThrow(
        'No capture of resource:default/never-01 yet: capture first (POST /captures)',
      );
      await store.updateRun('run-admit', {
        status: 'succeeded',
        finishedAt: '2026-11-02T03:00:00.000Z',
      });
    });

    it('records with each machine of a run the engine and container of the capture chosen for it, kept once that capture is pruned', async () => {
      const m = 'resource:default/replaced-01';
      await store.insertCapture({
        ...capture('rp1', m, '2026-11-03T00:00:00.000Z'),
        container: 'replaced-01-a',
      });
      await store.admitRun(
        admission('run-replaced', m, 'replaced-host'),
        new Date('2026-11-03T01:00:00.000Z'),
      );
      await store.updateRun('run-replaced', {
        status: 'succeeded',
        finishedAt: '2026-11-03T02:00:00.000Z',
      });
      // The machine replaced, and captured again: retention keeps the new capture alone.
      await store.insertCapture({
        ...capture('rp2', m, '2026-11-04T00:00:00.000Z'),
        engine: 'staging',
        container: 'replaced-01-b',
      });
      expect((await store.pruneCaptures(m, 1)).map(c => c.id)).toEqual(['rp1']);
      const restored = {
        machineRef: m,
        captureId: 'rp1',
        capturedFrom: { engine: 'primary', container: 'replaced-01-a' },
      };
      expect((await store.getRun('run-replaced'))!.machines).toEqual([
        expect.objectContaining(restored),
      ]);
      // Every read of runs with their details says so: the readiness overview's among them.
      const [last] = await store.lastFinishedRuns([
        {
          entityRef: 'component:default/admit',
          accept: r => r.id === 'run-replaced',
        },
      ]);
      expect(last!.machines).toEqual([expect.objectContaining(restored)]);
      // A run stored without it (before it was kept) says nothing of it.
      await finishRun('run-unrecorded', '2026-11-04T01:00:00.000Z', [m]);
      expect(
        (await store.getRun('run-unrecorded'))!.machines[0],
      ).not.toHaveProperty('capturedFrom');
    });

    it('a capture pruned while a run is admitted is not the one it restores: admission waits and takes the newer one', async () => {
      if (knex.client.dialect !== 'postgresql') return; // SQLite runs one writing transaction at a time.
      const m = 'resource:default/race-01';
      await store.insertCapture(capture('r1', m, '2026-11-01T00:00:00.000Z'));
      // A capture being taken: r2 recorded, and the pruning that follows it has locked and deleted
      // r1, neither committed yet. Admission still sees r1 as the newest, and waits on it.
      const pruning = await knex.transaction();
      let admitting: ReturnType<RecoveryStore['admitRun']> | undefined;
      try {
        await new RecoveryStore(pruning).insertCapture(
          capture('r2', m, '2026-11-02T00:00:00.000Z'),
        );
        await pruning('recovery_captures')
          .where({ id: 'r1' })
          .forUpdate()
          .select('id');
        await pruning('recovery_captures').where({ id: 'r1' }).delete();
        let settled = false;
        admitting = store
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
        (await store.getRun('run-race'))!.machines.map(x => x.captureId),
      ).toEqual(['r2']);
      await store.updateRun('run-race', {
        status: 'succeeded',
        finishedAt: '2026-11-02T03:00:00.000Z',
      });
    });

    it('refuses a run whose chosen capture is pruned under it on every choice, rather than admit it with one that is gone', async () => {
      if (knex.client.dialect !== 'postgresql') return; // SQLite runs one writing transaction at a time.
      const m = 'resource:default/churn-01';
      for (const day of [1, 2, 3, 4])
        await store.insertCapture(
          capture(`churn${day}`, m, `2026-11-0${day}T00:00:00.000Z`),
        );
      // Three captures being taken at once: each pruning has locked and deleted one capture, newest
      // first, none committed yet. Admission chooses churn4, waits on it, finds it gone; chooses
      // churn3, and so on: each pruning commits only once admission waits on it (its backend
      // blocked by that pruning's), so the races happen in this order, however fast either side is.
      const prunings: Array<{ tx: Knex.Transaction; pid: number }> = [];
      let admitting: ReturnType<RecoveryStore['admitRun']> | undefined;
      try {
        for (const id of ['churn4', 'churn3', 'churn2']) {
          const tx = await knex.transaction();
          const { rows } = await tx.raw('select pg_backend_pid() as pid');
          prunings.push({ tx, pid: rows[0].pid });
          await tx('recovery_captures').where({ id }).forUpdate().select('id');
          await tx('recovery_captures').where({ id }).delete();
        }
        admitting = store.admitRun(
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
        for (const { tx } of prunings)
          if (!tx.isCompleted()) await tx.rollback();
        await admitting?.catch(() => {});
      }
      expect(await store.getRun('run-churn')).toBeUndefined();
      // Tried again once the captures settle, it is admitted with the one left.
      const admitted = await store.admitRun(
        admission('run-churn', m, 'churn-host'),
        new Date(),
      );
      expect('captures' in admitted && admitted.captures.get(m)!.id).toBe(
        'churn1',
      );
      await store.updateRun('run-churn', {
        status: 'succeeded',
        finishedAt: '2026-11-05T00:00:00.000Z',
      });
    });

    it('admits a failover by preempting the test run holding its host, in the same transaction; never a failover, never for a test', async () => {
      const m = 'resource:default/preempt-01';
      await store.insertCapture(capture('pre1', m, '2026-11-01T00:00:00.000Z'));
      const failover = (id: string) => ({
        ...admission(id, m, 'preempt-host'),
        mode: 'failover' as const,
      });
      await store.admitRun(
        admission('pre-test', m, 'preempt-host'),
        new Date(),
      );
      await store.updateRunMachine('pre-test', m, { phase: 'verifying' });
      // A test does not preempt a test.
      const refused = await store.admitRun(
        admission('pre-test-2', m, 'preempt-host'),
        new Date(),
      );
      expect('busyWith' in refused && refused.busyWith.id).toBe('pre-test');

      const admitted = await store.admitRun(
        failover('pre-failover'),
        new Date(),
      );
      expect(
        'preempted' in admitted && admitted.preempted.map(r => r.id),
      ).toEqual(['pre-test']);
      const message = 'Interrupted: preempted by failover pre-failover';
      const test = (await store.getRun('pre-test'))!;
      expect(test).toMatchObject({ status: 'failed', error: { message } });
      expect(test.machines.map(r => [r.phase, r.message])).toEqual([
        ['failed', message],
      ]);
      expect(test.steps.map(r => [r.level, r.message])).toEqual([
        ['error', message],
      ]);
      // Its lab is left for the failover to remove before it builds its own.
      expect(await store.runsWithLabLeft('preempt-host')).toEqual([
        { id: 'pre-test', hypervisorHost: 'preempt-host' },
      ]);
      expect(
        (await store.activeRuns({ hypervisorHost: 'preempt-host' })).map(
          r => r.id,
        ),
      ).toEqual(['pre-failover']);

      // A failover holding the host is preempted by nothing.
      for (const next of [
        admission('pre-test-3', m, 'preempt-host'),
        failover('pre-failover-2'),
      ]) {
        const busy = await store.admitRun(next, new Date());
        expect('busyWith' in busy && busy.busyWith.id).toBe('pre-failover');
      }
      // Frees the host of the database the next tests share.
      await store.updateRun('pre-failover', {
        status: 'failed',
        error: { message: 'done' },
      });
    });

    // SQLite: one connection, so nothing finishes the run during the admission's transaction.
    it.skipIf(databaseId === 'SQLITE_3')(
      'preempts no test run its driver finished while the failover was being admitted (PostgreSQL: no lock keeps it active)',
      async () => {
        const m = 'resource:default/preempt-race-01';
        await store.insertCapture(
          capture('prr1', m, '2026-11-01T00:00:00.000Z'),
        );
        await store.admitRun(
          admission('race-test', m, 'preempt-race-host'),
          new Date(),
        );
        const activeRuns = RecoveryStore.prototype.activeRuns;
        const read = vi
          .spyOn(RecoveryStore.prototype, 'activeRuns')
          .mockImplementation(async function (this: RecoveryStore, filter) {
            const found = await activeRuns.call(this, filter);
            // Its driver records its success, on its own connection, right after the admission read it.
            if (filter.hypervisorHost === 'preempt-race-host')
              await store.updateRun('race-test', {
                status: 'succeeded',
                rtoSeconds: 12,
              });
            return found;
          });
        try {
          const admitted = await store.admitRun(
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
        const test = (await store.getRun('race-test'))!;
        expect(test).toMatchObject({
          status: 'succeeded',
          rtoSeconds: 12,
          steps: [],
        });
        expect(await store.runsWithLabLeft('preempt-race-host')).toEqual([]);
        await store.updateRun('race-failover', {
          status: 'failed',
          error: { message: 'done' },
        });
      },
    );

    it('keeps captures, finds the newest per machine and prunes old ones', async () => {
      const m = 'resource:default/web-01';
      const other = 'resource:default/infra-01';
      await store.insertCapture(capture('c1', m, '2026-11-01T00:00:00.000Z'));
      await store.insertCapture(capture('c2', m, '2026-11-02T00:00:00.000Z'));
      await store.insertCapture(capture('c3', m, '2026-11-03T00:00:00.000Z'));
      await store.insertCapture(
        capture('c4', other, '2026-11-01T12:00:00.000Z'),
      );

      const latest = await store.latestCaptures([
        m,
        other,
        'resource:default/none',
      ]);
      expect(latest.get(m)).toEqual(
        capture('c3', m, '2026-11-03T00:00:00.000Z'),
      );
      expect(latest.get(other)!.id).toBe('c4');
      expect(latest.has('resource:default/none')).toBe(false);

      const pruned = await store.pruneCaptures(m, 2);
      expect(pruned.map(c => c.id)).toEqual(['c1']);
      expect((await store.listCaptures(m)).map(c => c.id)).toEqual([
        'c3',
        'c2',
      ]);
    });

    it('keeps how long a capture paused production: 0 where it did not, absent where a source does not say', async () => {
      const m = 'resource:default/pause-01';
      const { pausedMs: _, ...unsaid } = capture(
        'u1',
        m,
        '2026-11-01T00:00:00.000Z',
      );
      await store.insertCapture(unsaid);
      await store.insertCapture({
        ...capture('z1', m, '2026-11-02T00:00:00.000Z'),
        pausedMs: 0,
      });
      const [notPaused, unknown] = await store.listCaptures(m);
      expect(notPaused.pausedMs).toBe(0);
      expect(unknown).toEqual(unsaid);
      expect('pausedMs' in unknown).toBe(false);
    });

    it("keeps the machine's state when captured, listed and as its latest; absent where a source does not say", async () => {
      const m = 'resource:default/state-01';
      const unhealthy = {
        status: 'running' as const,
        health: 'unhealthy' as const,
        failingStreak: 4,
        healthOutput: 'wget: server returned error: HTTP/1.1 503',
      };
      const exited = {
        status: 'exited' as const,
        exitCode: 137,
        oomKilled: true,
        since: '2026-11-01T23:59:00.123456789Z',
      };
      await store.insertCapture(capture('s1', m, '2026-11-01T00:00:00.000Z'));
      await store.insertCapture({
        ...capture('s2', m, '2026-11-02T00:00:00.000Z'),
        machineState: unhealthy,
      });
      await store.insertCapture({
        ...capture('s3', m, '2026-11-03T00:00:00.000Z'),
        machineState: exited,
      });
      const [third, second, first] = await store.listCaptures(m);
      expect(third.machineState).toEqual(exited);
      expect(second.machineState).toEqual(unhealthy);
      expect('machineState' in first).toBe(false);
      expect((await store.latestCaptures([m])).get(m)!.machineState).toEqual(
        exited,
      );
    });

    it('keeps a capture an active run restores when pruning, and prunes it once the run is over', async () => {
      const m = 'resource:default/prune-01';
      await store.insertCapture(capture('p1', m, '2026-11-01T00:00:00.000Z'));
      await store.insertCapture(capture('p2', m, '2026-11-02T00:00:00.000Z'));
      await store.insertRun(
        {
          id: 'run-prune',
          entityRef: 'component:default/prune',
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'prune-host',
          plan: {
            entityRef: 'component:default/prune',
            waves: [[m]],
            machines: [],
          },
          options: {},
          machines: [{ machineRef: m, wave: 0, captureId: 'p2' }],
        },
        new Date('2026-11-02T01:00:00.000Z'),
      );
      // Captures taken while the run restores p2.
      await store.insertCapture(capture('p3', m, '2026-11-02T02:00:00.000Z'));
      expect((await store.pruneCaptures(m, 1)).map(c => c.id)).toEqual(['p1']);
      expect((await store.listCaptures(m)).map(c => c.id)).toEqual([
        'p3',
        'p2',
      ]);
      await store.updateRun('run-prune', {
        status: 'succeeded',
        finishedAt: '2026-11-02T03:00:00.000Z',
      });
      expect((await store.pruneCaptures(m, 1)).map(c => c.id)).toEqual(['p2']);
      expect((await store.listCaptures(m)).map(c => c.id)).toEqual(['p3']);
    });

    it('persists a run, its machines and its timeline as they change', async () => {
      await store.insertRun(
        {
          id: 'run-1',
          entityRef: 'component:default/web',
          mode: 'test',
          trigger: 'user',
          createdBy: 'user:default/ada',
          hypervisorHost: 'recovery',
          plan,
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
      await store.updateRun('run-1', {
        status: 'running',
        startedAt: '2026-11-21T10:00:01.000Z',
      });
      await store.updateRunMachine('run-1', 'resource:default/infra-01', {
        phase: 'ready',
        restoreStartedAt: '2026-11-21T10:00:01.000Z',
        readyAt: '2026-11-21T10:00:09.500Z',
      });
      await store.updateRunMachine('run-1', 'resource:default/web-01', {
        phase: 'failed',
        message: 'probe tcp:80 did not pass',
        probe: 'tcp:80',
        logTail: 'waiting for database\n',
      });
      await store.appendStep('run-1', {
        at: '2026-11-21T10:00:01.000Z',
        level: 'info',
        message: 'first',
      });
      await store.appendStep('run-1', {
        at: '2026-11-21T10:00:20.000Z',
        machineRef: 'resource:default/web-01',
        level: 'error',
        message: 'second',
      });
      await store.updateRun('run-1', {
        status: 'failed',
        finishedAt: '2026-11-21T10:00:21.000Z',
        error: {
          machineRef: 'resource:default/web-01',
          probe: 'tcp:80',
          message: 'boom',
        },
      });

      const run = (await store.getRun('run-1'))!;
      expect(run).toMatchObject({
        id: 'run-1',
        status: 'failed',
        createdBy: 'user:default/ada',
        createdAt: '2026-11-21T10:00:00.000Z',
        startedAt: '2026-11-21T10:00:01.000Z',
        finishedAt: '2026-11-21T10:00:21.000Z',
        error: { probe: 'tcp:80', message: 'boom' },
        plan,
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
      expect(await store.getRun('nope')).toBeUndefined();
    });

    it('finds no run of an id no run can have (a NUL in it, which PostgreSQL refuses in text), rather than fail', async () => {
      await store.insertRun(
        {
          ...admission('nul-probe', 'resource:default/nul-01', 'nul-host'),
          machines: [],
        },
        new Date(),
      );
      try {
        expect(await store.getRun('nul-probe')).toMatchObject({
          id: 'nul-probe',
        });
        expect(await store.getRun('nul-probe\0')).toBeUndefined();
        expect(await store.getRun('\0')).toBeUndefined();
      } finally {
        await knex('recovery_runs').where({ id: 'nul-probe' }).delete();
      }
    });

    it('finds the last finished run per entity and stale active runs', async () => {
      const base = {
        mode: 'test' as const,
        trigger: 'schedule' as const,
        hypervisorHost: 'recovery',
        plan,
        options: {},
        machines: [],
      };
      await store.insertRun(
        { ...base, id: 'run-2', entityRef: 'component:default/web' },
        new Date('2026-11-21T11:00:00Z'),
      );
      await store.updateRun('run-2', { status: 'running' });
      await store.updateRun('run-2', { status: 'succeeded', rtoSeconds: 42.5 });
      await store.insertRun(
        { ...base, id: 'run-3', entityRef: 'component:default/web' },
        new Date('2026-11-21T12:00:00Z'),
      );

      expect(
        await store.lastFinishedRun({ entityRef: 'component:default/web' }),
      ).toMatchObject({ id: 'run-2', rtoSeconds: 42.5 });
      expect(
        await store.lastFinishedRun({ entityRef: 'component:default/x' }),
      ).toBeUndefined();

      expect(
        (await store.activeRuns({ hypervisorHost: 'recovery' })).map(r => r.id),
      ).toEqual(['run-3']);
      expect(await store.activeRuns({ staleForMs: 60_000 })).toEqual([]);
      expect(
        (await store.activeRuns({ staleForMs: -60_000 })).map(r => r.id),
      ).toEqual(['run-3']);
      expect(
        (
          await store.listRuns({ entityRef: 'component:default/web', limit: 2 })
        ).map(r => r.id),
      ).toEqual(['run-3', 'run-2']);
    });

    it('lists runs after a given one, newest first, the id breaking ties of one instant', async () => {
      const base = {
        mode: 'test' as const,
        trigger: 'user' as const,
        hypervisorHost: 'keyset',
        plan,
        options: {},
        machines: [],
      };
      const entityRef = 'component:default/keyset';
      const at = new Date('2026-11-22T12:00:00.123Z');
      for (const id of ['k-a', 'k-b', 'k-c'])
        await store.insertRun({ ...base, id, entityRef }, at);
      await store.insertRun(
        { ...base, id: 'k-old', entityRef },
        new Date(at.getTime() - 1),
      );
      await store.insertRun(
        { ...base, id: 'k-new', entityRef },
        new Date(at.getTime() + 1),
      );

      const ids = (runs: Array<{ id: string }>) => runs.map(r => r.id);
      const all = await store.listRuns({ entityRef });
      expect(ids(all)).toEqual(['k-new', 'k-c', 'k-b', 'k-a', 'k-old']);
      // Pages of two, each after the last run of the one before: every run once, in order.
      const read: string[] = [];
      let page = await store.listRuns({ entityRef, limit: 2 });
      while (page.length > 0) {
        read.push(...ids(page));
        page = await store.listRuns({
          entityRef,
          limit: 2,
          after: page.at(-1),
        });
      }
      expect(read).toEqual(ids(all));
      expect(
        ids(
          await store.listRuns({
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
        plan,
        options: {},
      };
      const machines = [{ machineRef: 'resource:default/web-01', wave: 0 }];
      await store.insertRun(
        {
          ...base,
          id: 'run-final',
          entityRef: 'component:default/final',
          machines,
        },
        new Date(),
      );
      expect(await store.updateRun('run-final', { status: 'running' })).toBe(
        true,
      );
      expect(await store.heartbeat('run-final')).toBe(true);
      expect(
        await store.updateRun('run-final', {
          status: 'failed',
          error: { message: 'stale heartbeat' },
        }),
      ).toBe(true);

      expect(
        await store.updateRun('run-final', {
          status: 'succeeded',
          rtoSeconds: 1,
        }),
      ).toBe(false);
      expect(await store.heartbeat('run-final')).toBe(false);
      await store.updateRunMachine('run-final', 'resource:default/web-01', {
        phase: 'ready',
      });
      const run = (await store.getRun('run-final'))!;
      expect(run).toMatchObject({
        status: 'failed',
        error: { message: 'stale heartbeat' },
      });
      expect(run.rtoSeconds).toBeUndefined();
      expect(run.machines[0].phase).toBe('waiting');
    });

    it("claims a stale run once, by the database's clock, failing it, settling its machines and recording its lab as left", async () => {
      const base = {
        mode: 'test' as const,
        trigger: 'user' as const,
        hypervisorHost: 'claims',
        plan,
        options: {},
      };
      const machines = [
        { machineRef: 'resource:default/infra-01', wave: 0 },
        { machineRef: 'resource:default/web-01', wave: 1 },
      ];
      // Admitted and beating by a replica whose clock is an hour behind: still fresh.
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() - 3_600_000 });
      try {
        await store.insertRun(
          {
            ...base,
            id: 'run-claim',
            entityRef: 'component:default/claim',
            machines,
          },
          new Date(),
        );
        await store.updateRun('run-claim', { status: 'running' });
        await store.updateRunMachine('run-claim', 'resource:default/infra-01', {
          phase: 'verifying',
        });
        expect(await store.heartbeat('run-claim')).toBe(true);
      } finally {
        vi.useRealTimers();
      }
      expect(await store.activeRuns({ staleForMs: 60_000 })).toEqual([]);
      const at = new Date('2026-11-24T00:00:00.000Z');
      const left = { labLeft: true };
      expect(
        await store.claimStaleRun(
          'run-claim',
          60_000,
          'Interrupted: gone',
          at,
          left,
        ),
      ).toBeUndefined();
      expect((await store.getRun('run-claim'))!.status).toBe('running');
      expect(await store.runsWithLabLeft('claims')).toEqual([]);

      // Stale (any heartbeat counts, here): of two claims only one wins.
      const claims = await Promise.all([
        store.claimStaleRun(
          'run-claim',
          -60_000,
          'Interrupted: gone',
          at,
          left,
        ),
        store.claimStaleRun(
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
      expect(await store.heartbeat('run-claim')).toBe(false);
      // The claim that frees the host records the lab it is about to tear down: a run admitted
      // there next finds it, whatever becomes of the claiming replica.
      expect(await store.runsWithLabLeft('claims')).toEqual([
        { id: 'run-claim', hypervisorHost: 'claims' },
      ]);
      await store.setFailedRunError('run-claim', {
        message: 'Interrupted: gone; removed 1 network',
      });
      const run = (await store.getRun('run-claim'))!;
      expect(run).toMatchObject({
        status: 'failed',
        finishedAt: at.toISOString(),
        error: { message: 'Interrupted: gone; removed 1 network' },
      });
      expect(run.machines.map(m => [m.phase, m.message])).toEqual([
        ['failed', 'Interrupted: gone'],
        ['skipped', undefined],
      ]);

      // A claim that keeps the lab (a failover's) leaves the flag as it was.
      await store.insertRun(
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
        await store.claimStaleRun(
          'run-kept',
          -60_000,
          'Interrupted: gone',
          at,
          { labLeft: false },
        ),
      ).toEqual({ outcome: undefined });
      expect((await store.getRun('run-kept'))!.status).toBe('failed');
      expect((await store.runsWithLabLeft('claims')).map(r => r.id)).toEqual([
        'run-claim',
      ]);

      // One that reached its result before its teardown: the claim finishes it so, and says so.
      await store.insertRun(
        {
          ...base,
          id: 'run-verified',
          entityRef: 'component:default/claim',
          machines,
        },
        new Date(),
      );
      await store.updateRun('run-verified', { status: 'running' });
      expect(
        await store.setRunOutcome('run-verified', {
          status: 'succeeded',
          rtoSeconds: 42,
        }),
      ).toBe(true);
      expect(
        await store.claimStaleRun(
          'run-verified',
          -60_000,
          'Interrupted: gone',
          at,
          left,
        ),
      ).toEqual({
        outcome: { status: 'succeeded', rtoSeconds: 42 },
      });
      expect(await store.getRun('run-verified')).toMatchObject({
        status: 'succeeded',
        rtoSeconds: 42,
      });
    });

    it('keeps a measured RTO to the millisecond and beyond, on every database', async () => {
      // PostgreSQL's real (float4) kept about 7 digits: 123456.789 read back as 123456.79.
      await store.insertRun(
        {
          id: 'run-rto',
          entityRef: 'component:default/rto',
          mode: 'test',
          trigger: 'user',
          hypervisorHost: 'rto',
          plan,
          options: {},
          machines: [],
        },
        new Date(),
      );
      await store.updateRun('run-rto', { status: 'running' });
      await store.updateRun('run-rto', {
        status: 'succeeded',
        rtoSeconds: 123456.789,
      });
      expect((await store.getRun('run-rto'))!.rtoSeconds).toBe(123456.789);
    });

    it('skips interrupted and reverse-boot-order runs when finding the last finished run', async () => {
      const entityRef = 'component:default/skips';
      const base = {
        entityRef,
        mode: 'test' as const,
        trigger: 'schedule' as const,
        hypervisorHost: 'recovery',
        plan,
        machines: [],
      };
      const finish = async (
        id: string,
        at: string,
        status: 'succeeded' | 'failed',
        options: { reverseBootOrder?: boolean },
        error?: { machineRef?: string; message: string },
      ) => {
        await store.insertRun({ ...base, id, options }, new Date(at));
        await store.updateRun(id, { status: 'running' });
        await store.updateRun(id, { status, error });
      };
      await finish(
        'skip-1',
        '2026-11-22T01:00:00Z',
        'failed',
        {},
        { message: 'resource:default/web-01 failed: probe tcp:80' },
      );
      expect((await store.lastFinishedRun({ entityRef }))?.id).toBe('skip-1');

      await finish('skip-2', '2026-11-22T02:00:00Z', 'succeeded', {
        reverseBootOrder: false,
      });
      await finish(
        'skip-3',
        '2026-11-22T03:00:00Z',
        'failed',
        { reverseBootOrder: true },
        { message: 'probe tcp:1 did not pass' },
      );
      await finish(
        'skip-4',
        '2026-11-22T04:00:00Z',
        'failed',
        {},
        {
          machineRef: 'resource:default/web-01',
          message: 'Interrupted: the backend is shutting down',
        },
      );
      await finish(
        'skip-5',
        '2026-11-22T05:00:00Z',
        'failed',
        {},
        {
          message:
            'Interrupted: the backend driving this run stopped; removed 1 container and 1 network',
        },
      );
      expect((await store.lastFinishedRun({ entityRef }))?.id).toBe('skip-2');
    });

    it('finds the last finished run that booted every machine given, whatever its entity', async () => {
      const [a, b, c] = ['cover-a', 'cover-b', 'cover-c'].map(
        n => `resource:default/${n}`,
      );
      await finishRun(
        'cover-1',
        '2026-11-23T01:00:00Z',
        [a, b, c],
        'succeeded',
      );
      await finishRun('cover-2', '2026-11-23T02:00:00Z', [a, b], 'failed');
      await finishRun('cover-3', '2026-11-23T03:00:00Z', [a], 'succeeded');

      expect(
        (await store.lastFinishedRun({ machineRefs: [a, b, c] }))?.id,
      ).toBe('cover-1');
      expect((await store.lastFinishedRun({ machineRefs: [b, a] }))?.id).toBe(
        'cover-2',
      );
      expect((await store.lastFinishedRun({ machineRefs: [a] }))?.id).toBe(
        'cover-3',
      );
      // Candidates the caller refuses are passed over, page after page, down to the last.
      const refused = new Set(['cover-3', 'cover-2']);
      const last = await store.lastFinishedRun(
        { machineRefs: [a] },
        run => !refused.has(run.id),
        1,
      );
      expect(last).toMatchObject({
        id: 'cover-1',
        entityRef: 'component:default/cover-1',
        rtoSeconds: 30,
      });
      expect(last!.machines.map(m => m.machineRef)).toEqual([a, b, c]);
      expect(
        await store.lastFinishedRun({ machineRefs: [a] }, () => false, 2),
      ).toBeUndefined();
      expect(
        await store.lastFinishedRun({
          machineRefs: [a, 'resource:default/elsewhere'],
        }),
      ).toBeUndefined();
    });

    it('walks past pages of runs that booted only the first machine, runs of the same instant included, and never takes an active run', async () => {
      const [own, shared] = ['walk-own', 'walk-shared'].map(
        n => `resource:default/${n}`,
      );
      await finishRun('walk-0', '2026-11-24T01:00:00Z', [shared, own]);
      // Seven runs of one instant, pages of 1, 4, 16: ties in time cross page boundaries (by id).
      const instant = '2026-11-24T02:00:00Z';
      for (const id of [
        'walk-1',
        'walk-2',
        'walk-4',
        'walk-5',
        'walk-6',
        'walk-7',
      ])
        await finishRun(id, instant, [own]);
      await finishRun('walk-3', instant, [own, shared]);
      await finishRun(
        'walk-8',
        '2026-11-24T03:00:00Z',
        [own, shared],
        'running',
      );

      const last = (accept?: (run: { id: string }) => boolean) =>
        store
          .lastFinishedRun({ machineRefs: [own, shared] }, accept, 1)
          .then(r => r?.id);
      expect(await last()).toBe('walk-3');
      expect(await last(run => run.id !== 'walk-3')).toBe('walk-0');
      expect(
        await store
          .lastFinishedRun({ machineRefs: [shared, own] }, undefined, 1)
          .then(r => r?.id),
      ).toBe('walk-3');
      expect(
        await store
          .lastFinishedRun({ machineRefs: [own] }, undefined, 1)
          .then(r => r?.id),
      ).toBe('walk-7');
    });

    it('finds for many queries at once the run lastFinishedRun finds for each, in a few statements', async () => {
      // A history of runs over six machines and three entities: every outcome, some active, some
      // that do not count, many of one instant, across pages of 7.
      let seed = 7;
      const random = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
      const machines = ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'].map(
        n => `resource:default/many-${n}`,
      );
      const entities = ['e0', 'e1', 'e2'].map(
        n => `component:default/many-${n}`,
      );
      for (let k = 0; k < 60; k++) {
        const id = `many-${String(k).padStart(2, '0')}`;
        const booted = machines.filter(() => random(2) === 0);
        const outcome = random(10);
        await store.insertRun(
          {
            id,
            entityRef: entities[random(3)],
            mode: 'test',
            trigger: 'schedule',
            hypervisorHost: 'recovery',
            plan: {
              ...plan,
              machines: booted.map((machineRef, wave) => ({
                machineRef,
                wave,
                services: [],
                waitsFor: [],
                probes: [],
              })),
            },
            options: outcome === 0 ? { reverseBootOrder: true } : {},
            machines: booted.map((machineRef, wave) => ({ machineRef, wave })),
          },
          new Date(
            Date.parse('2026-11-25T00:00:00Z') + Math.floor(k / 4) * 60_000,
          ),
        );
        await store.updateRun(id, { status: 'running' });
        if (outcome === 1) continue;
        if (outcome === 2)
          await store.updateRun(id, {
            status: 'failed',
            error: { message: 'Interrupted: the backend is shutting down' },
          });
        else if (outcome < 5)
          await store.updateRun(id, {
            status: 'failed',
            error: {
              machineRef: booted[0],
              message: 'probe tcp:80 did not pass',
            },
          });
        else await store.updateRun(id, { status: 'succeeded', rtoSeconds: k });
      }
      // Every pair of machines in both orders, each machine alone, one no run booted, each entity
      // without machines; some refusing the runs whose plan boots m5 (as coversPlan refuses some).
      const noM5 = (run: { plan: BootPlan }) =>
        !run.plan.machines.some(m => m.machineRef === machines[5]);
      const queries: Array<
        Parameters<RecoveryStore['lastFinishedRuns']>[0][number]
      > = [
        ...machines.flatMap(a =>
          machines.map(b => ({ machineRefs: a === b ? [a] : [a, b] })),
        ),
        ...machines.map(a => ({ machineRefs: [a, machines[2]], accept: noM5 })),
        { machineRefs: [machines[0], 'resource:default/many-never'] },
        ...entities.map(entityRef => ({ entityRef })),
        { entityRef: entities[1], accept: noM5 },
        {},
      ];
      const each = await Promise.all(
        queries.map(({ accept, ...query }) =>
          store.lastFinishedRun(query, accept),
        ),
      );
      expect(each.filter(run => run !== undefined).length).toBeGreaterThan(
        queries.length / 2,
      );
      expect(await store.lastFinishedRuns(queries, 7)).toEqual(each);

      const statements: string[] = [];
      const listen = (q: { sql: string }) => statements.push(q.sql);
      knex.on('query', listen);
      try {
        expect(await store.lastFinishedRuns(queries)).toEqual(each);
      } finally {
        knex.off('query', listen);
      }
      // One page of the history: its runs, their machines, the candidates a round at a time, the found runs' details.
      expect(statements.length).toBeLessThanOrEqual(8);
    });

    it('finds for many queries at once the newest failure on their machines since a given run, page after page, never an interrupted or reverse-order one', async () => {
      // Runs over four machines and three entities, four of an instant: failed on one of the machines
      // they booted, succeeded, still running, interrupted or booted in reverse (both stored naming
      // the machine they were on, as older backends did).
      let seed = 11;
      const random = (n: number) => (seed = (seed * 16807) % 2147483647) % n;
      const machines = ['m0', 'm1', 'm2', 'm3'].map(
        n => `resource:default/failing-${n}`,
      );
      const entities = ['e0', 'e1', 'e2'].map(
        n => `component:default/failing-${n}`,
      );
      const history: Array<{
        id: string;
        at: number;
        entityRef: string;
        counts: boolean;
        failedOn?: string;
      }> = [];
      for (let k = 0; k < 48; k++) {
        const id = `failing-${String(k).padStart(2, '0')}`;
        const booted = machines.filter(() => random(2) === 0);
        if (booted.length === 0) booted.push(machines[random(4)]);
        const [entityRef, outcome, at] = [
          entities[random(3)],
          random(6),
          Date.parse('2026-11-26T00:00:00Z') + Math.floor(k / 4) * 60_000,
        ];
        const failedOn = booted[random(booted.length)];
        await store.insertRun(
          {
            id,
            entityRef,
            mode: 'test',
            trigger: 'schedule',
            hypervisorHost: 'recovery',
            plan: {
              ...plan,
              machines: booted.map((machineRef, wave) => ({
                machineRef,
                wave,
                services: [],
                waitsFor: [],
                probes: [],
              })),
            },
            options: outcome === 0 ? { reverseBootOrder: true } : {},
            machines: booted.map((machineRef, wave) => ({ machineRef, wave })),
          },
          new Date(at),
        );
        await store.updateRun(id, { status: 'running' });
        if (outcome === 1) continue;
        if (outcome === 5)
          await store.updateRun(id, { status: 'succeeded', rtoSeconds: k });
        else {
          const message =
            outcome === 2
              ? 'Interrupted: the backend is shutting down'
              : 'probe tcp:80 did not pass';
          await store.updateRun(id, {
            status: 'failed',
            error: { machineRef: failedOn, message },
          });
          history.push({ id, at, entityRef, counts: outcome > 2, failedOn });
        }
      }
      const keyOf = (k: number) => ({
        id: `failing-${k}`,
        createdAt: new Date(
          Date.parse('2026-11-26T00:00:00Z') + Math.floor(k / 4) * 60_000,
        ).toISOString(),
      });
      const notE1 = (run: { entityRef: string }) =>
        run.entityRef !== entities[1];
      const queries: Array<
        Parameters<RecoveryStore['lastFailedRuns']>[0][number]
      > = [
        ...machines.map(m => ({ machineRefs: [m] })),
        ...machines.map((m, i) => ({
          machineRefs: [m, machines[(i + 1) % 4]],
          accept: notE1,
        })),
        // Since a run of an instant that others share (36 to 39): those of it with a greater id are newer.
        ...machines.map(m => ({ machineRefs: [m], after: keyOf(39) })),
        { machineRefs: [machines[3]], after: keyOf(37) },
        { machineRefs: machines, after: keyOf(47) },
        { machineRefs: ['resource:default/failing-never'] },
        { machineRefs: [] },
      ];
      // What each query must find, from the history as written.
      const expected = queries.map(
        ({ machineRefs, after, accept = () => true }) => {
          const since = (h: (typeof history)[number]) =>
            !after ||
            h.at > Date.parse(after.createdAt) ||
            (h.at === Date.parse(after.createdAt) && h.id > after.id);
          const found = history.filter(
            h =>
              h.counts &&
              machineRefs.includes(h.failedOn!) &&
              since(h) &&
              accept({ entityRef: h.entityRef } as never),
          );
          return found.sort((a, b) => b.at - a.at || (b.id > a.id ? 1 : -1))[0]
            ?.id;
        },
      );
      expect(expected.filter(id => id !== undefined).length).toBeGreaterThan(
        queries.length / 2,
      );
      // The history as seeded: m0 last failed in 39, m1 in 43, m2 in 29, m3 in 38 (of 39's instant).
      expect(expected.slice(8, 13)).toEqual([
        undefined,
        'failing-43',
        undefined,
        undefined,
        'failing-38',
      ]);
      for (const pageSize of [3, 500])
        expect(
          (await store.lastFailedRuns(queries, pageSize)).map(run => run?.id),
        ).toEqual(expected);
      const found = await store.lastFailedRuns(queries);
      expect(found[0]).toMatchObject({
        error: { machineRef: machines[0] },
        machines: expect.arrayContaining([
          expect.objectContaining({ machineRef: machines[0] }),
        ]),
      });

      const statements: string[] = [];
      const listen = (q: { sql: string }) => statements.push(q.sql);
      knex.on('query', listen);
      try {
        await store.lastFailedRuns(queries);
      } finally {
        knex.off('query', listen);
      }
      // One page of the failed runs, the candidates a round at a time, the found runs' details.
      expect(statements.length).toBeLessThanOrEqual(5);
    });

    it('takes one newest capture per machine among captures of one instant: the one listing puts first, admission restores and pruning keeps', async () => {
      // Two users capturing one machine at once: their captures share the millisecond.
      const m = 'resource:default/tie-01';
      const instant = '2026-11-26T00:00:00.123Z';
      await store.insertCapture(
        capture('tie-old', m, '2026-11-25T00:00:00.000Z'),
      );
      for (const id of ['tie-b', 'tie-d', 'tie-a', 'tie-c'])
        await store.insertCapture(capture(id, m, instant));

      const [first] = await store.listCaptures(m);
      expect(first.id).toBe('tie-d');
      const latest = await store.latestCaptures([m, m]);
      expect([...latest.keys()]).toEqual([m]);
      expect(latest.get(m)).toEqual(capture('tie-d', m, instant));
      const admitted = await store.admitRun(
        admission('run-tie', m, 'tie-host'),
        new Date('2026-11-26T01:00:00.000Z'),
      );
      expect('captures' in admitted && admitted.captures.get(m)!.id).toBe(
        'tie-d',
      );
      await store.updateRun('run-tie', {
        status: 'succeeded',
        finishedAt: '2026-11-26T02:00:00.000Z',
      });
      expect((await store.pruneCaptures(m, 1)).map(c => c.id).sort()).toEqual([
        'tie-a',
        'tie-b',
        'tie-c',
        'tie-old',
      ]);
      expect((await store.listCaptures(m)).map(c => c.id)).toEqual(['tie-d']);
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
      await store.insertCapture(
        withSubnet(
          capture('fo-a1', a, '2026-10-01T00:00:00.000Z'),
          '10.1.0.0/24',
        ),
      );
      await store.insertCapture(
        withSubnet(
          capture('fo-b1', b, '2026-10-01T00:00:00.000Z'),
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
        const admitted = await store.admitRun(
          {
            ...admission(id, machineRef, options.hypervisorHost ?? host),
            entityRef: `component:default/${id}`,
            mode: options.mode ?? 'failover',
          },
          new Date(at),
        );
        expect(admitted).toHaveProperty('captures');
        if (end) {
          await store.updateRun(id, { status: 'running' });
          await store.updateRun(id, { status: end, finishedAt: at });
        }
      };
      await failover('fo-old', '2026-10-02T00:00:00.000Z', a, 'failed');
      await failover('fo-new', '2026-10-03T00:00:00.000Z', b, 'succeeded');
      // Not listed: a test run, a failover on another host.
      await failover('fo-test', '2026-10-04T00:00:00.000Z', a, 'succeeded', {
        mode: 'test',
      });
      await failover(
        'fo-elsewhere',
        '2026-10-04T00:00:00.000Z',
        a,
        'succeeded',
        { hypervisorHost: 'other-host' },
      );
      // Retention took the capture fo-new restored: its machine's newest one says its networks.
      await store.insertCapture(
        withSubnet(
          capture('fo-b2', b, '2026-10-05T00:00:00.000Z'),
          '10.3.0.0/24',
        ),
      );
      await knex('recovery_captures').where({ id: 'fo-b1' }).delete();
      // Still running: it holds the host, admission says so; not listed among the finished.
      await failover('fo-running', '2026-10-06T00:00:00.000Z', a);

      expect(await store.finishedFailovers(host)).toEqual([
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
      expect(await store.finishedFailovers('no-such-host')).toEqual([]);
    });

    it('lists active runs oldest first, the id breaking ties of one instant, every time', async () => {
      const base = {
        entityRef: 'component:default/ties',
        mode: 'test' as const,
        trigger: 'user' as const,
        hypervisorHost: 'ties',
        plan,
        options: {},
        machines: [],
      };
      const instant = new Date('2026-11-26T12:00:00.456Z');
      for (const id of ['ties-b', 'ties-d', 'ties-a', 'ties-c'])
        await store.insertRun({ ...base, id }, instant);
      await store.insertRun(
        { ...base, id: 'ties-z' },
        new Date(instant.getTime() - 1),
      );
      const order = ['ties-z', 'ties-a', 'ties-b', 'ties-c', 'ties-d'];
      expect(
        (await store.activeRuns({ hypervisorHost: 'ties' })).map(r => r.id),
      ).toEqual(order);
      // The clean-up of orphaned runs claims them in that order too.
      const stale = (await store.activeRuns({ staleForMs: -60_000 })).map(
        r => r.id,
      );
      expect(stale.filter(id => id.startsWith('ties-'))).toEqual(order);
      for (const id of order)
        await store.updateRun(id, {
          status: 'failed',
          error: { message: 'done' },
        });
    });

    if (databaseId === 'SQLITE_3') {
      it('reads the newest runs in order along an index, not by sorting the whole history', async () => {
        const statements: Array<{ sql: string; bindings: Knex.RawBinding[] }> =
          [];
        const listen = (q: { sql: string; bindings: Knex.RawBinding[] }) =>
          statements.push(q);
        knex.on('query', listen);
        try {
          await store.lastFinishedRun({
            machineRefs: [
              'resource:default/walk-own',
              'resource:default/walk-shared',
            ],
          });
          await store.listRuns({ limit: 5 });
          // The failed runs since a run, and since none.
          await store.lastFailedRuns([
            {
              machineRefs: ['resource:default/walk-own'],
              after: { id: 'walk-0', createdAt: '2026-11-24T01:00:00Z' },
            },
          ]);
          await store.lastFailedRuns([
            { machineRefs: ['resource:default/walk-own'] },
          ]);
        } finally {
          knex.off('query', listen);
        }
        const reads = statements.filter(
          q =>
            /from `recovery_runs`/.test(q.sql) &&
            /order by .*`created_at` desc/.test(q.sql) &&
            !/`id` in/.test(q.sql),
        );
        expect(reads).toHaveLength(4);
        for (const { sql, bindings } of reads) {
          const plan = (
            await knex.raw(`explain query plan ${sql}`, bindings)
          ).map((r: { detail: string }) => r.detail);
          expect(plan).not.toContainEqual(
            expect.stringContaining('TEMP B-TREE FOR ORDER BY'),
          );
        }
      });
    }
  },
);
