// @ts-check

/**
 * A run's measured RTO as a double: knex's `float` is PostgreSQL's `real` (float4), about 7
 * significant digits, so 123456.789 s read back as 123456.79. SQLite stores both as an 8-byte
 * REAL already: its table is left as it is (altering a column there rebuilds the table).
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  if (knex.client.dialect !== 'postgresql') return;
  await knex.schema.alterTable('recovery_runs', table => {
    table.double('rto_seconds').alter();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  if (knex.client.dialect !== 'postgresql') return;
  await knex.schema.alterTable('recovery_runs', table => {
    table.float('rto_seconds').alter();
  });
};
