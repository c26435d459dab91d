import { TestDatabases } from '@backstage/backend-test-utils';
import { RecoveryStore } from './RecoveryStore';

const databases = TestDatabases.create({ ids: ['SQLITE_3', 'POSTGRES_15'] });

describe.each(databases.eachSupportedId())('recovery migrations on %s', databaseId => {
  it('migrate up, all the way down and up again, with the lookup and paging indexes and the lab-left flag in place', async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    const indexes = async () =>
      databaseId === 'SQLITE_3'
        ? (await knex.raw(`select name from sqlite_master where type = 'index'`)).map((r: { name: string }) => r.name)
        : (await knex.raw(`select indexname as name from pg_indexes`)).rows.map((r: { name: string }) => r.name);
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

    const directory = RecoveryStore.migrationsDirectory;
    await knex.migrate.rollback({ directory }, true);
    expect(await knex.schema.hasTable('recovery_runs')).toBe(false);
    expect(await knex.schema.hasTable('recovery_events')).toBe(false);
    expect(await knex.schema.hasTable('recovery_readiness_notices')).toBe(false);
    await RecoveryStore.migrate(knex);
    expect(await knex.schema.hasTable('recovery_readiness_notices')).toBe(true);
    expect(await indexes()).toEqual(
      expect.arrayContaining(['recovery_events_source_time_idx', 'recovery_events_time_id_idx']),
    );
    expect(await knex.schema.hasColumn('recovery_runs', 'lab_left')).toBe(true);
  });

  it("keeps a run's RTO as a double on PostgreSQL (knex's float is its 4-byte real), and back as before", async () => {
    const knex = await databases.init(databaseId);
    await RecoveryStore.migrate(knex);
    const rtoType = async () =>
      databaseId === 'SQLITE_3'
        ? (await knex.raw(`select type from pragma_table_info('recovery_runs') where name = 'rto_seconds'`))[0].type
        : (await knex.raw(`select data_type as type from information_schema.columns where table_name = 'recovery_runs' and column_name = 'rto_seconds'`)).rows[0].type;
    // SQLite stores any float as an 8-byte REAL: its column stays as declared.
    expect(await rtoType()).toBe(databaseId === 'SQLITE_3' ? 'float' : 'double precision');
    await knex.migrate.down({ directory: RecoveryStore.migrationsDirectory, name: '20261205000000_rto_double.js' });
    expect(await rtoType()).toBe(databaseId === 'SQLITE_3' ? 'float' : 'real');
  });
});
