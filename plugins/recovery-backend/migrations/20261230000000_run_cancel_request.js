// @ts-check

/**
 * Who asked to cancel an active test run, and when (JSON `{"by": ..., "at": ...}`): recorded by
 * whichever replica took the request, read by the one driving the run at its next heartbeat.
 * Null where no one asked.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table
      .text('cancel_request')
      .nullable()
      .comment(
        'who asked to cancel the run and when, as JSON {by, at}; null: no one',
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
    'cancel_request',
  ]);
};
