// @ts-check

/**
 * Indexes for lookups that run often and otherwise scan whole tables as history grows:
 *
 * - The runs whose lab is still on their host, read by the interrupted-runs task every 30 s and
 *   before each run builds its lab (RunStore.runsWithLabLeft): a handful among every run.
 * - The failovers finished on a host, read at each admission (RunStore.finishedFailovers and
 *   finishedFailoverIds): a handful among every run on that host.
 * - The outcome rows of one night (NightlyCheckStore): `GET /readiness/:entity` counts how many
 *   entities the night under way has reached, and a newer night marks those of one interrupted.
 * - A machine's events by time (EventStore.deleteEventsBefore, per machine, at each prune): the
 *   unique index leads with the machine but orders by service and type before time.
 *
 * On PostgreSQL the run indexes are partial, holding only the rows they find (knex binds the
 * queries' values, and PostgreSQL plans each statement with them, so it proves the predicate).
 * SQLite gets plain ones led by the flag and the mode, so that queries that filter on neither
 * cannot take them for the host or time alone.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  const partial = knex.client.dialect === 'postgresql';
  await knex.schema.alterTable('recovery_runs', table => {
    if (partial) {
      table.index(['created_at', 'id'], 'recovery_runs_lab_left_idx', {
        predicate: knex.whereRaw('lab_left'),
      });
      table.index(
        ['hypervisor_host', 'created_at', 'id'],
        'recovery_runs_failover_idx',
        { predicate: knex.whereRaw(`mode = 'failover'`) },
      );
    } else {
      table.index(
        ['lab_left', 'created_at', 'id'],
        'recovery_runs_lab_left_idx',
      );
      table.index(
        ['mode', 'hypervisor_host', 'created_at', 'id'],
        'recovery_runs_failover_idx',
      );
    }
  });
  await knex.schema.alterTable('recovery_nightly_checks', table => {
    table.index(['checked_at'], 'recovery_nightly_checks_checked_idx');
  });
  await knex.schema.alterTable('recovery_events', table => {
    table.index(['machine', 'time'], 'recovery_events_machine_time_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_events', table => {
    table.dropIndex(['machine', 'time'], 'recovery_events_machine_time_idx');
  });
  await knex.schema.alterTable('recovery_nightly_checks', table => {
    table.dropIndex(['checked_at'], 'recovery_nightly_checks_checked_idx');
  });
  await knex.schema.alterTable('recovery_runs', table => {
    table.dropIndex([], 'recovery_runs_failover_idx');
    table.dropIndex([], 'recovery_runs_lab_left_idx');
  });
};
