// @ts-check

/**
 * Whether the night recorded in recovery_nightly_check_night has ended: the nightly check records
 * each outcome as soon as it knows it (partial records, which replace those entities' rows only),
 * then the whole night once it ends (which replaces every row). A night recorded whole takes no
 * partial record of itself any more: one sent late cannot put an earlier word over its last.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_nightly_check_night', table => {
    // Every night recorded before this column was recorded whole.
    table
      .boolean('ended')
      .notNullable()
      .defaultTo(true)
      .comment('the check of that night ended and recorded every outcome');
  });
};

/**
 * Dropped in place, on SQLite too (3.35 and later), as the other migrations drop theirs.
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  await knex.raw('alter table ?? drop column ??', [
    'recovery_nightly_check_night',
    'ended',
  ]);
};
