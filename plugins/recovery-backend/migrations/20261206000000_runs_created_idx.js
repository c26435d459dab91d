// @ts-check

/**
 * Runs newest first without sorting the history: readiness walks the runs that booted an
 * entity's machine from the newest (one walk per entity on the overview), and `GET /runs` lists
 * the newest runs of any entity. Without it SQLite sorts every run, plan and all, each time.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table.index(['created_at', 'id'], 'recovery_runs_created_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table.dropIndex(['created_at', 'id'], 'recovery_runs_created_idx');
  });
};
