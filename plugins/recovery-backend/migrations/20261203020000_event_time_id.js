// @ts-check

/**
 * Events are read in (time, id) order, a page after the last (time, id) read. An index on time
 * alone gives PostgreSQL no bound for that: each page rescanned the table from its start. The
 * composite index bounds every page and serves whatever used the time-only one (time leads), so
 * that one goes.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_events', table => {
    table.index(['time', 'id'], 'recovery_events_time_id_idx');
  });
  await knex.schema.alterTable('recovery_events', table => {
    table.dropIndex(['time'], 'recovery_events_time_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_events', table => {
    table.index(['time'], 'recovery_events_time_idx');
  });
  await knex.schema.alterTable('recovery_events', table => {
    table.dropIndex(['time', 'id'], 'recovery_events_time_id_idx');
  });
};
