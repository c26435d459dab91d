// @ts-check

/**
 * The alarm that told owners an entity is not recoverable: the `scope` it was sent in (each alarm
 * its own, so that the notifications page shows when it was sent rather than when the entity's
 * first notice was: the notifications backend keeps a scope's first `created`), its title and when
 * it was sent, to resolve it in place once every entity it named has been told it is recoverable
 * again or gone; and when this entity was told so (`alarm_closed`), while the alarm waits for the
 * others. Null on a not-recoverable status nobody was told of (an entity first seen so: no change
 * to tell), and once the alarm is resolved.
 *
 * An alarm told before, which went out in the entity's one scope, is filled in as it was sent:
 * that scope, that title, sent when the entity became not recoverable.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.text('alarm_scope').nullable();
    table.text('alarm_title').nullable();
    table.dateTime('alarm_sent', { useTz: true }).nullable();
    table.dateTime('alarm_closed', { useTz: true }).nullable();
  });
  await knex('recovery_readiness_notices')
    .where('status', 'not-recoverable')
    .update({
      alarm_scope: knex.raw(`'recovery-readiness:' || entity_ref`),
      alarm_title: knex.raw(`entity_ref || ' is not recoverable'`),
      alarm_sent: knex.ref('since'),
    });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_readiness_notices', table => {
    table.dropColumn('alarm_scope');
    table.dropColumn('alarm_title');
    table.dropColumn('alarm_sent');
    table.dropColumn('alarm_closed');
  });
};
