// @ts-check

/**
 * How the backend keeps a succeeded failover's machines running (RunSupervision, as JSON): how
 * often it started them again after its host stopped them, and whether one it could not bring back
 * leaves the failover degraded. Null until supervision first started one.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table
      .text('supervision')
      .nullable()
      .comment(
        "a succeeded failover's supervision: restarts, and degraded while a machine cannot be brought back (JSON)",
      );
  });
};

/**
 * Dropped in place, on SQLite too (3.35 and later): knex would rebuild the table there, and dropping
 * the old recovery_runs deletes every run's machines and steps by their ON DELETE CASCADE.
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  await knex.raw('alter table ?? drop column ??', [
    'recovery_runs',
    'supervision',
  ]);
};
