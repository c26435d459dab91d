// @ts-check

/**
 * The warning a capture carries where its machine's restart policy restarted it over and over
 * since its previous capture (a crash loop the capture did not catch between two crashes); null
 * where it did not, or for captures before.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table
      .text('restart_warning')
      .nullable()
      .comment(
        'restarted by its policy over and over since the previous capture, in words; null: not so',
      );
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table.dropColumn('restart_warning');
  });
};
