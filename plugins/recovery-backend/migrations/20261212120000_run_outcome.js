// @ts-check

/**
 * The result a test recovery reached (succeeded, or failed and why, with its measured RTO) kept
 * with the run before its lab is torn down: the run is recorded finished only once its lab is gone,
 * so a backend stopped during the teardown leaves it active, and the backend that claims it as
 * orphaned finishes it with that result, not as interrupted. A recovery it verified, or a failure
 * it found, is not lost to a kill in its last second. Null until then, and for runs stored before.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table
      .text('outcome')
      .nullable()
      .comment(
        'JSON: the result the run reached before its teardown, for a backend that claims it mid-teardown',
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
  await knex.raw('alter table ?? drop column ??', ['recovery_runs', 'outcome']);
};
