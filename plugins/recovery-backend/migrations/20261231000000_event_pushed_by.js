// @ts-check

/**
 * Who pushed each event through the API (POST /events): the caller's user entity ref or service
 * subject, as the backend authenticated them, beside the `source` they named themselves. Pushed
 * events feed learned dependencies into every team's plans: a batch is traced to who sent it.
 * Null for events an event source collected.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_events', table => {
    table
      .text('pushed_by')
      .nullable()
      .comment(
        'the authenticated caller who pushed the event (user entity ref or service subject); null: collected',
      );
  });
};

/**
 * Dropped in place, on SQLite too (3.35 and later): knex would rebuild the table there.
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  await knex.raw('alter table ?? drop column ??', [
    'recovery_events',
    'pushed_by',
  ]);
};
