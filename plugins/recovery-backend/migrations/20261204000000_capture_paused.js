// @ts-check

/**
 * How long a capture paused production for its consistent copy: what a capture costs the
 * primary. Null for captures stored before it was recorded.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table
      .integer('paused_ms')
      .nullable()
      .comment('how long production was paused for the copy (0: not paused)');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table.dropColumn('paused_ms');
  });
};
