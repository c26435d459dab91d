// @ts-check

/**
 * Failed runs newest first without sorting them: readiness walks the runs that failed since each
 * entity's last covering run (ReadinessHistoryStore.lastFailedRuns), the overview's entities all at once.
 * Without it SQLite finds them by status and sorts every failed run, reading each row, plan and
 * all, at every readiness read.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table.index(
      ['status', 'created_at', 'id'],
      'recovery_runs_status_created_idx',
    );
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table.dropIndex(
      ['status', 'created_at', 'id'],
      'recovery_runs_status_created_idx',
    );
  });
};
