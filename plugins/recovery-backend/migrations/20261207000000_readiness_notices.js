// @ts-check

/**
 * The readiness status each entity's owners were last told of (or that needed no notice): a
 * notification goes out when an entity's status crosses into or out of not-recoverable, once,
 * however many sweeps see it there, and by whichever replica runs the sweep.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_readiness_notices', table => {
    table.string('entity_ref', 255).primary();
    table.string('status', 32).notNullable();
    // When the entity was first seen with this status.
    table.dateTime('since', { useTz: true }).notNullable();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_readiness_notices');
};
