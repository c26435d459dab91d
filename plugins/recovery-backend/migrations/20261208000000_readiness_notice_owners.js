// @ts-check

/**
 * Who was told an entity is not recoverable: its owners then (a JSON array of refs). An entity
 * deleted from the catalog no longer resolves to its owners, yet their notice must be closed.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.text('owners').nullable();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.dropColumn('owners');
  });
};
