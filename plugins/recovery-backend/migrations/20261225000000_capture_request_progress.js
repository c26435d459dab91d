// @ts-check

/**
 * A capture request says how far the capture under way is: the last progress line its source said
 * (a large volume archived while production is paused, an image saved), so a caller polling it sees
 * a long copy move rather than a silent wait. Cleared as each machine's capture ends.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_capture_requests', table => {
    table
      .text('progress')
      .nullable()
      .comment(
        "JSON: the capture under way's last progress line (machineRef, message, at); null: none",
      );
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_capture_requests', table => {
    table.dropColumn('progress');
  });
};
