// @ts-check

/**
 * When the night recorded in recovery_nightly_checks began, in one row: a night with no outcomes
 * leaves none there to date it, and a record updates (locks) this row before it replaces them, so
 * that an older night sent late, or two sent at once, cannot put an older word over a newer one.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_nightly_check_night', table => {
    table.comment(
      'When the nightly check recorded in recovery_nightly_checks began: one row',
    );
    table.integer('id').primary();
    table.timestamp('checked_at', { useTz: true }).notNullable();
  });
  // The night already recorded, if any: its outcomes' time.
  const recorded = await knex('recovery_nightly_checks')
    .max({ at: 'checked_at' })
    .first();
  if (recorded?.at)
    await knex('recovery_nightly_check_night').insert({
      id: 1,
      checked_at: recorded.at,
    });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_nightly_check_night');
};
