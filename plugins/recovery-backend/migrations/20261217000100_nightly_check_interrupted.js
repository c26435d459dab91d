// @ts-check

/**
 * A night's check killed before its end (its backend SIGKILLed or restarted) records no end: its
 * outcomes so far would stand as those of a night under way, forever. So the night row says when
 * the check was last heard from (`heard_at`: each record, and a heartbeat while it waits) and how
 * many entities it set out to check (`entities`): one not heard from for a while is shown as
 * interrupted. When a newer night begins, an older one never ended is closed: its outcome rows
 * keep that it was interrupted, when, and how many of how many entities it had checked, as the
 * next night replaces them one by one.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_nightly_check_night', table => {
    table
      .timestamp('heard_at', { useTz: true })
      .nullable()
      .comment('when the check of that night was last heard from');
    table
      .integer('entities')
      .nullable()
      .comment('how many entities the check of that night set out to check');
  });
  // The only time known of a night recorded before: when it began.
  await knex('recovery_nightly_check_night').update({
    heard_at: knex.ref('checked_at'),
  });
  await knex.schema.alterTable('recovery_nightly_checks', table => {
    table
      .timestamp('interrupted_at', { useTz: true })
      .nullable()
      .comment('the check of that night was interrupted, last heard from then');
    table
      .integer('night_checked')
      .nullable()
      .comment('entities the interrupted night had checked');
    table
      .integer('night_entities')
      .nullable()
      .comment('entities it set out to check');
  });
};

/**
 * Dropped in place, on SQLite too (3.35 and later), as the other migrations drop theirs.
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  for (const [table, column] of [
    ['recovery_nightly_check_night', 'heard_at'],
    ['recovery_nightly_check_night', 'entities'],
    ['recovery_nightly_checks', 'interrupted_at'],
    ['recovery_nightly_checks', 'night_checked'],
    ['recovery_nightly_checks', 'night_entities'],
  ]) {
    await knex.raw('alter table ?? drop column ??', [table, column]);
  }
};
