// @ts-check

/**
 * Initialization events (collected continuously or pushed) and dependency analyses.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_events', table => {
    table.comment('Initialization events from the machines’ logs');
    table.bigIncrements('id');
    table.string('machine').notNullable();
    table.string('service').notNullable();
    table.string('type').notNullable().comment('start, failure or clock');
    table
      .bigInteger('time')
      .notNullable()
      .comment('epoch ms on the machine clock');
    table
      .bigInteger('reference')
      .comment('clock events: reference clock, epoch ms');
    table
      .string('source')
      .notNullable()
      .comment('event source id or API caller');
    table.timestamp('received_at', { useTz: true }).notNullable();
    // The same event pushed twice or streamed again after a reconnect is kept once.
    table.unique(['machine', 'service', 'type', 'time'], {
      indexName: 'recovery_events_identity_uq',
    });
    table.index(['time'], 'recovery_events_time_idx');
  });

  await knex.schema.createTable('recovery_analyses', table => {
    table.comment('Results of the dependency analysis, per system');
    table.string('id').primary();
    table.string('scope').notNullable().comment('the system analysed');
    table.integer('events').notNullable();
    table.text('result').notNullable().comment('JSON: the analysis result');
    table.timestamp('created_at', { useTz: true }).notNullable();
    table.index(['scope', 'created_at'], 'recovery_analyses_scope_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_analyses');
  await knex.schema.dropTable('recovery_events');
};
