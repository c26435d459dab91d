// @ts-check

/**
 * Indexes for two lookups that otherwise scan whole tables as history grows: readiness finds
 * the runs that booted an entity's machines, and each event source resumes from the newest
 * event it stored.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_run_machines', table => {
    table.index(['machine_ref', 'run_id'], 'recovery_run_machines_machine_idx');
  });
  await knex.schema.alterTable('recovery_events', table => {
    table.index(['source', 'time'], 'recovery_events_source_time_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_events', table => {
    table.dropIndex(['source', 'time'], 'recovery_events_source_time_idx');
  });
  await knex.schema.alterTable('recovery_run_machines', table => {
    table.dropIndex(
      ['machine_ref', 'run_id'],
      'recovery_run_machines_machine_idx',
    );
  });
};
