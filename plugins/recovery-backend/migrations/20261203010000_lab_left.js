// @ts-check

/**
 * Whether a finished run's lab is still on its hypervisor host (its teardown failed): such labs
 * are removed before the next run on that host and by the cleanup task, not forgotten.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table
      .boolean('lab_left')
      .notNullable()
      .defaultTo(false)
      .comment('its teardown failed: the lab is still on the host');
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
    'lab_left',
  ]);
};
