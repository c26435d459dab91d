import { TestDatabases } from '@backstage/backend-test-utils';
import { failedMachine } from '@backstage-recovery/plugin-recovery-common';
import { migrate, migrationsDirectory } from './migrations';
import { ReadinessHistoryStore } from './ReadinessHistoryStore';
import { RunStore } from './RunStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())(
  'recovery migrations on %s',
  databaseId => {
    it('migrate up, all the way down and up again, with the lookup and paging indexes and the lab-left flag in place', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const indexes = async () =>
        databaseId === 'SQLITE_3'
          ? (
              await knex.raw(
                `select name from sqlite_master where type = 'index'`,
              )
            ).map((r: { name: string }) => r.name)
          : (
              await knex.raw(`select indexname as name from pg_indexes`)
            ).rows.map((r: { name: string }) => r.name);
      expect(await indexes()).toEqual(
        expect.arrayContaining([
          'recovery_run_machines_machine_idx',
          'recovery_events_source_time_idx',
          'recovery_events_time_id_idx',
          'recovery_runs_created_idx',
          'recovery_runs_status_created_idx',
        ]),
      );
      // The (time, id) index leads with time: the time-only one it replaced is gone.
      expect(await indexes()).not.toContain('recovery_events_time_idx');

      const directory = migrationsDirectory;
      await knex.migrate.rollback({ directory }, true);
      expect(await knex.schema.hasTable('recovery_runs')).toBe(false);
      expect(await knex.schema.hasTable('recovery_events')).toBe(false);
      expect(await knex.schema.hasTable('recovery_readiness_notices')).toBe(
        false,
      );
      await migrate(knex);
      expect(await knex.schema.hasTable('recovery_readiness_notices')).toBe(
        true,
      );
      expect(await indexes()).toEqual(
        expect.arrayContaining([
          'recovery_events_source_time_idx',
          'recovery_events_time_id_idx',
        ]),
      );
      expect(await knex.schema.hasColumn('recovery_runs', 'lab_left')).toBe(
        true,
      );
    });

    it('fills in, for runs stored before, the engine and container of the capture each machine restored where it is still kept, and goes back down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const directory = migrationsDirectory;
      const name = '20261211000000_run_machine_captured_from.js';
      await knex.migrate.down({ directory, name });
      expect(
        await knex.schema.hasColumn(
          'recovery_run_machines',
          'capture_container',
        ),
      ).toBe(false);
      // A run stored before: one machine's capture still kept, another's pruned, a third with none named.
      const at = new Date('2026-11-20T00:00:00.000Z');
      await knex('recovery_captures').insert({
        id: 'kept',
        machine_ref: 'resource:default/a',
        engine: 'primary',
        container: 'a-1',
        image_id: 'sha256:1',
        size_bytes: 1,
        checksum: 'sha256:1',
        artifact: '/captures/kept.tar',
        runtime: '{}',
        adaptations: '[]',
        duration_ms: 1,
        created_at: at,
      });
      await knex('recovery_runs').insert({
        id: 'old',
        entity_ref: 'component:default/a',
        mode: 'test',
        status: 'succeeded',
        trigger: 'user',
        hypervisor_host: 'h',
        plan: '{"entityRef":"component:default/a","waves":[],"machines":[]}',
        created_at: at,
      });
      await knex('recovery_run_machines').insert([
        {
          run_id: 'old',
          machine_ref: 'resource:default/a',
          wave: 0,
          phase: 'ready',
          capture_id: 'kept',
        },
        {
          run_id: 'old',
          machine_ref: 'resource:default/b',
          wave: 0,
          phase: 'ready',
          capture_id: 'pruned',
        },
        {
          run_id: 'old',
          machine_ref: 'resource:default/c',
          wave: 0,
          phase: 'ready',
          capture_id: null,
        },
      ]);
      await knex.migrate.up({ directory, name });
      const machines = (await new RunStore(knex).getRun('old'))!.machines;
      expect(machines.map(m => [m.machineRef, m.capturedFrom])).toEqual([
        ['resource:default/a', { engine: 'primary', container: 'a-1' }],
        ['resource:default/b', undefined],
        ['resource:default/c', undefined],
      ]);
      await knex.migrate.down({ directory, name });
      expect(
        await knex.schema.hasColumn('recovery_run_machines', 'capture_engine'),
      ).toBe(false);
      // The run's machines outlive the columns (SQLite rebuilds the table to drop them).
      expect(
        Number(
          (
            await knex('recovery_run_machines')
              .where({ run_id: 'old' })
              .count({ n: '*' })
          )[0].n,
        ),
      ).toBe(3);
    });

    it("keeps every run's machines and steps through each migration's down since runs had them", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const directory = migrationsDirectory;
      await knex('recovery_runs').insert({
        id: 'r',
        entity_ref: 'component:default/a',
        mode: 'test',
        status: 'succeeded',
        trigger: 'user',
        hypervisor_host: 'h',
        plan: '{"entityRef":"component:default/a","waves":[],"machines":[]}',
        created_at: new Date('2026-11-20T00:00:00.000Z'),
      });
      await knex('recovery_run_machines').insert({
        run_id: 'r',
        machine_ref: 'resource:default/a',
        wave: 0,
        phase: 'ready',
      });
      await knex('recovery_run_steps').insert({
        run_id: 'r',
        at: new Date('2026-11-20T00:00:01.000Z'),
        level: 'info',
        message: 'm',
      });
      const count = async (table: string) =>
        Number(
          (await knex(table).where({ run_id: 'r' }).count({ n: '*' }))[0].n,
        );
      // Down one at a time to the first migration after the one that made the tables: on SQLite a
      // recovery_runs rebuilt to drop a column would take its children with it (ON DELETE CASCADE).
      for (;;) {
        const [done] = (await knex.migrate.list({ directory })) as [
          Array<{ name: string } | string>,
        ];
        const last = done
          .map(m => (typeof m === 'string' ? m : m.name))
          .sort()
          .at(-1);
        if (!last || last.startsWith('20261121000000_init')) break;
        await knex.migrate.down({ directory });
        expect({
          down: last,
          machines: await count('recovery_run_machines'),
          steps: await count('recovery_run_steps'),
        }).toEqual({
          down: last,
          machines: 1,
          steps: 1,
        });
      }
    });

    it('gives the runs stored before as failed with an "Interrupted: " error the status interrupted, and takes it back going down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const directory = migrationsDirectory;
      const name = '20261224000000_run_interrupted.js';
      await knex.migrate.down({ directory, name });
      const at = new Date('2026-11-20T00:00:00.000Z');
      const runs: Array<[string, string, object | null, object | null]> = [
        // id, status, error, outcome (kept ahead of the teardown of a run still active); oldest first
        [
          'probe',
          'failed',
          {
            machineRef: 'resource:default/a',
            message: 'probe tcp:80 did not pass',
          },
          null,
        ],
        // Its words mention an interruption, not as the backend starts an interrupted run's.
        [
          'mention',
          'failed',
          { message: 'resource:default/a failed: Interrupted: by a signal' },
          null,
        ],
        ['ok', 'succeeded', null, null],
        [
          'mid-teardown',
          'running',
          null,
          {
            status: 'failed',
            error: { message: 'Interrupted: the backend is shutting down' },
            unfinishedReason: 'Interrupted: the backend is shutting down',
          },
        ],
        [
          'failing-teardown',
          'running',
          null,
          { status: 'failed', error: { message: 'probe tcp:80 did not pass' } },
        ],
        [
          'shut',
          'failed',
          { message: 'Interrupted: the backend is shutting down' },
          null,
        ],
        [
          'preempted',
          'failed',
          { message: 'Interrupted: preempted by failover f' },
          null,
        ],
      ];
      await knex('recovery_runs').insert(
        runs.map(([id, status, error, outcome], i) => ({
          id,
          entity_ref: 'component:default/a',
          mode: 'test',
          status,
          trigger: 'user',
          hypervisor_host: 'h',
          plan: '{"entityRef":"component:default/a","waves":[],"machines":[]}',
          error: error && JSON.stringify(error),
          outcome: outcome && JSON.stringify(outcome),
          created_at: new Date(at.getTime() + i * 60_000),
        })),
      );
      const stored = async (): Promise<Record<string, unknown[]>> =>
        Object.fromEntries(
          (
            await knex('recovery_runs')
              .whereIn(
                'id',
                runs.map(([id]) => id),
              )
              .select('id', 'status', 'error', 'outcome')
          ).map(r => [
            r.id,
            [
              r.status,
              r.error && JSON.parse(r.error).message,
              r.outcome && JSON.parse(r.outcome).status,
            ],
          ]),
        );
      const before = await stored();

      await knex.migrate.up({ directory, name });
      expect(await stored()).toEqual({
        ...before,
        shut: [
          'interrupted',
          'Interrupted: the backend is shutting down',
          null,
        ],
        preempted: [
          'interrupted',
          'Interrupted: preempted by failover f',
          null,
        ],
        'mid-teardown': ['running', null, 'interrupted'],
      });
      // Readiness finds them by their status now: neither counts, the newest two.
      const history = new ReadinessHistoryStore(knex);
      expect(
        (await history.lastFinishedRun({ entityRef: 'component:default/a' }))
          ?.id,
      ).toBe('ok');
      // One the backend ends interrupted from now on, in words that may not start so.
      await knex('recovery_runs')
        .where({ id: 'mid-teardown' })
        .update({ status: 'interrupted', error: '{"message":"cut off"}' });

      await knex.migrate.down({ directory, name });
      expect(await stored()).toEqual({
        ...before,
        'mid-teardown': ['failed', 'Interrupted: cut off', 'failed'],
      });
      // And up again, as it was.
      await knex.migrate.up({ directory, name });
      expect(
        Object.fromEntries(
          Object.entries(await stored()).map(([id, [status]]) => [id, status]),
        ),
      ).toEqual({
        shut: 'interrupted',
        preempted: 'interrupted',
        probe: 'failed',
        mention: 'failed',
        ok: 'succeeded',
        'mid-teardown': 'interrupted',
        'failing-teardown': 'running',
      });
    });

    it('gives the machines of interrupted runs stored before as failed with an "Interrupted: " message the phase interrupted, and takes it back going down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const directory = migrationsDirectory;
      const name = '20261226000000_run_machine_interrupted.js';
      await knex.migrate.down({ directory, name });
      const at = new Date('2026-11-20T00:00:00.000Z');
      const shutdown = 'Interrupted: the backend is shutting down';
      // id, status, its machines: ref, phase, message
      const runs: Array<[string, string, Array<[string, string, string?]>]> = [
        [
          'shut',
          'interrupted',
          [
            ['resource:default/a', 'ready'],
            ['resource:default/b', 'failed', shutdown],
            ['resource:default/c', 'skipped'],
          ],
        ],
        // Failed on its own before the backend shut down.
        [
          'own',
          'interrupted',
          [['resource:default/a', 'failed', 'probe tcp:80 did not pass']],
        ],
        // A failed run's machine in words that merely start so (a host's own).
        [
          'words',
          'failed',
          [
            [
              'resource:default/a',
              'failed',
              'Interrupted: the engine restarted the lab',
            ],
          ],
        ],
        // Not the backend's words: they start with a capital.
        [
          'lower',
          'interrupted',
          [['resource:default/a', 'failed', 'interrupted: by a signal']],
        ],
      ];
      await knex('recovery_runs').insert(
        runs.map(([id, status], i) => ({
          id,
          entity_ref: 'component:default/a',
          mode: 'test',
          status,
          trigger: 'user',
          hypervisor_host: 'h',
          plan: '{"entityRef":"component:default/a","waves":[],"machines":[]}',
          created_at: new Date(at.getTime() + i * 60_000),
        })),
      );
      await knex('recovery_run_machines').insert(
        runs.flatMap(([id, , machines]) =>
          machines.map(([machineRef, phase, message], wave) => ({
            run_id: id,
            machine_ref: machineRef,
            wave,
            phase,
            message: message ?? null,
          })),
        ),
      );
      // Each run's machines in wave order, as stored: [phase, message].
      const read = async () => {
        const machines = Object.fromEntries(
          runs.map(([id]) => [id, [] as Array<[string, string | null]>]),
        );
        for (const m of await knex('recovery_run_machines')
          .whereIn(
            'run_id',
            runs.map(([id]) => id),
          )
          .orderBy(['run_id', 'wave']))
          machines[m.run_id].push([m.phase, m.message]);
        return machines;
      };
      const before = await read();

      await knex.migrate.up({ directory, name });
      expect(await read()).toEqual({
        ...before,
        shut: [
          ['ready', null],
          ['interrupted', shutdown],
          ['skipped', null],
        ],
      });
      // Read as the backend now writes a run it interrupts: the machine cut off blames no one.
      const shut = (await new RunStore(knex).getRun('shut'))!;
      expect(shut.machines.map(m => [m.phase, m.message])).toEqual([
        ['ready', undefined],
        ['interrupted', shutdown],
        ['skipped', undefined],
      ]);
      expect(failedMachine(shut)).toBeUndefined();

      // Going down, each gets the words the earlier backend tells an interrupted machine by.
      await knex('recovery_run_machines')
        .where({ run_id: 'shut', machine_ref: 'resource:default/c' })
        .update({ phase: 'interrupted', message: 'cut off' });
      await knex('recovery_run_machines')
        .where({ run_id: 'shut', machine_ref: 'resource:default/a' })
        .update({ phase: 'interrupted' });
      await knex.migrate.down({ directory, name });
      expect(await read()).toEqual({
        ...before,
        shut: [
          ['failed', 'Interrupted: the run was interrupted'],
          ['failed', shutdown],
          ['failed', 'Interrupted: cut off'],
        ],
      });
      // And up again.
      await knex.migrate.up({ directory, name });
      expect((await read()).shut.map(([phase]) => phase)).toEqual([
        'interrupted',
        'interrupted',
        'interrupted',
      ]);
      expect((await read()).own).toEqual(before.own);
    });

    it('keeps whether a run booted in reverse in a column of its own, filled in from the options of runs stored before, and drops it going down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const directory = migrationsDirectory;
      const name = '20261226000100_run_reverse_boot_order.js';
      await knex.migrate.down({ directory, name });
      expect(
        await knex.schema.hasColumn('recovery_runs', 'reverse_boot_order'),
      ).toBe(false);
      const at = new Date('2026-11-20T00:00:00.000Z');
      // id, options as stored (RunStore wrote JSON.stringify(options)); oldest first
      const runs: Array<[string, string | null]> = [
        ['plain', '{}'],
        ['none', null],
        ['forward', '{"reverseBootOrder":false}'],
        ['spaced', '{ "reverseBootOrder": true }'],
        ['garbled', '{"reverseBootOrder":tru'],
        ['reversed', '{"reverseBootOrder":true}'],
      ];
      await knex('recovery_runs').insert(
        runs.map(([id, options], i) => ({
          id,
          entity_ref: 'component:default/a',
          mode: 'test',
          status: 'succeeded',
          trigger: 'user',
          hypervisor_host: 'h',
          plan: '{"entityRef":"component:default/a","waves":[],"machines":[]}',
          options,
          created_at: new Date(at.getTime() + i * 60_000),
        })),
      );

      await knex.migrate.up({ directory, name });
      const flags = Object.fromEntries(
        (await knex('recovery_runs').select('id', 'reverse_boot_order')).map(
          r => [r.id, Boolean(r.reverse_boot_order)],
        ),
      );
      expect(flags).toEqual({
        plain: false,
        none: false,
        forward: false,
        spaced: true,
        garbled: false,
        reversed: true,
      });
      // Readiness reads it: the newest run that counts is the one before the reversed ones.
      const history = new ReadinessHistoryStore(knex);
      expect(
        (await history.lastFinishedRun({ entityRef: 'component:default/a' }))
          ?.id,
      ).toBe('garbled');

      await knex.migrate.down({ directory, name });
      expect(
        await knex.schema.hasColumn('recovery_runs', 'reverse_boot_order'),
      ).toBe(false);
      // The options keep what they said.
      expect(
        Object.fromEntries(
          (await knex('recovery_runs').select('id', 'options')).map(r => [
            r.id,
            r.options,
          ]),
        ),
      ).toEqual(Object.fromEntries(runs));
    });

    it("keeps a run's RTO as a double on PostgreSQL (knex's float is its 4-byte real), and back as before", async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const rtoType = async () =>
        databaseId === 'SQLITE_3'
          ? (
              await knex.raw(
                `select type from pragma_table_info('recovery_runs') where name = 'rto_seconds'`,
              )
            )[0].type
          : (
              await knex.raw(
                `select data_type as type from information_schema.columns where table_name = 'recovery_runs' and column_name = 'rto_seconds'`,
              )
            ).rows[0].type;
      // SQLite stores any float as an 8-byte REAL: its column stays as declared.
      expect(await rtoType()).toBe(
        databaseId === 'SQLITE_3' ? 'float' : 'double precision',
      );
      await knex.migrate.down({
        directory: migrationsDirectory,
        name: '20261205000000_rto_double.js',
      });
      expect(await rtoType()).toBe(
        databaseId === 'SQLITE_3' ? 'float' : 'real',
      );
    });

    it('indexes the lookups that run often (labs left, finished failovers, a night’s outcomes, a machine’s events by time), partial on PostgreSQL, and drops them going down', async () => {
      const knex = await databases.init(databaseId);
      await migrate(knex);
      const definitions = async (): Promise<Record<string, string>> => {
        const rows: Array<{ name: string; definition: string | null }> =
          databaseId === 'SQLITE_3'
            ? await knex.raw(
                `select name, sql as definition from sqlite_master where type = 'index'`,
              )
            : (
                await knex.raw(
                  `select indexname as name, indexdef as definition from pg_indexes`,
                )
              ).rows;
        return Object.fromEntries(
          rows.map(r => [r.name, (r.definition ?? '').replace(/["`]/g, '')]),
        );
      };
      const added = {
        recovery_runs_lab_left_idx: 'recovery_runs',
        recovery_runs_failover_idx: 'recovery_runs',
        recovery_nightly_checks_checked_idx: 'recovery_nightly_checks',
        recovery_events_machine_time_idx: 'recovery_events',
      };
      const up = await definitions();
      for (const [name, table] of Object.entries(added))
        expect(up[name]).toMatch(new RegExp(` on (public\\.)?${table} `, 'i'));
      expect(up.recovery_nightly_checks_checked_idx).toMatch(/\(checked_at\)/);
      expect(up.recovery_events_machine_time_idx).toMatch(/\(machine, time\)/);
      if (databaseId === 'POSTGRES_15') {
        // Only the few rows each finds: runs whose lab is left, failovers.
        expect(up.recovery_runs_lab_left_idx).toMatch(
          /\(created_at, id\) WHERE lab_left$/,
        );
        expect(up.recovery_runs_failover_idx).toMatch(
          /\(hypervisor_host, created_at, id\) WHERE \(\(mode\)::text = 'failover'::text\)$/,
        );
      } else {
        expect(up.recovery_runs_lab_left_idx).toMatch(
          /\(lab_left, created_at, id\)$/,
        );
        expect(up.recovery_runs_failover_idx).toMatch(
          /\(mode, hypervisor_host, created_at, id\)$/,
        );
      }

      await knex.migrate.down({
        directory: migrationsDirectory,
        name: '20261223000000_frequent_lookup_indexes.js',
      });
      const down = await definitions();
      for (const name of Object.keys(added)) expect(down[name]).toBeUndefined();
      // The indexes before it stay.
      expect(Object.keys(down)).toEqual(
        expect.arrayContaining([
          'recovery_runs_created_idx',
          'recovery_events_identity_uq',
        ]),
      );
    });
  },
);
