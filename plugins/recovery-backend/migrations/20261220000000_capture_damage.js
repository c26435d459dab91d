// @ts-check

/**
 * A capture found damaged (its stored content no longer matches its checksums: a layer file
 * overwritten, an archive cut short or gone): when it was found so, and why, in the host's words.
 * Kept, so that `GET /captures` shows it and nothing restores it again: a run's choice of capture
 * passes over it to the machine's next older intact one, and readiness puts the entities it serves
 * at risk while it is the machine's latest. Null for a capture not found damaged.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table
      .timestamp('damaged_at', { useTz: true })
      .nullable()
      .comment('when the capture was found damaged; null: not found so');
    table
      .text('damaged_reason')
      .nullable()
      .comment('why it is damaged, as its verification said');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table.dropColumn('damaged_at');
    table.dropColumn('damaged_reason');
  });
};
