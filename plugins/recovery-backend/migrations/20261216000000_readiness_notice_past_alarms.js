// @ts-check

/**
 * Earlier alarms an entity was in (a JSON array: scope, title, when sent and when this entity was
 * told its end, and whom it went to) when it was lost again, in a new alarm, before they were
 * resolved: each is resolved, naming it and reaching its owners, once every entity it named has
 * been told its end. Null for none.
 *
 * When a loss was first seen (`loss_seen`), while its alarm could not be sent (the notifications
 * backend refusing it), and when the alarm sent later says it was (`alarm_lost`): notices count
 * the outage from it, not from when the alarm went out. Null for an alarm sent before: from when
 * it was sent, as they did.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.text('past_alarms').nullable();
    table.dateTime('loss_seen', { useTz: true }).nullable();
    table.dateTime('alarm_lost', { useTz: true }).nullable();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.dropColumn('past_alarms');
    table.dropColumn('loss_seen');
    table.dropColumn('alarm_lost');
  });
};
