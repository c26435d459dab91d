// @ts-check

/**
 * The users told an entity is not recoverable (a JSON array of user refs), as the notifications
 * plugin resolved its owners then: a group removed from the catalog since resolves to no one, yet
 * its former members' notice must be closed. Null for an alarm told before they were kept: its
 * closing notice goes to the owners kept with it, as it did.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.text('users').nullable();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.dropColumn('users');
  });
};
