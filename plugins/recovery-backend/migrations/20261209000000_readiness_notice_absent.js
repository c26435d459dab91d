// @ts-check

/**
 * When the notifier first found a told entity missing from the catalog's list of recoverable
 * entities: its alarm is closed only if it is still missing at the next sweep, so that a list read
 * while the catalog was being rebuilt does not close alarms that are still true.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.dateTime('absent_since', { useTz: true }).nullable();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.dropColumn('absent_since');
  });
};
