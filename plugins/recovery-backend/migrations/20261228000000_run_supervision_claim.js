// @ts-check

/**
 * Which backend replica runs a pass of supervision over a succeeded failover, and since when, by
 * the database's clock: every replica hears a kept machine stop, and only the one whose claim
 * holds starts it again. A claim older than its bound is taken over (its replica may have crashed).
 * Null while no pass runs.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table
      .string('supervision_claim')
      .nullable()
      .comment(
        "the pass of supervision under way over a succeeded failover: its replica's token",
      );
    table
      .timestamp('supervision_claimed_at', { useTz: true })
      .nullable()
      .comment(
        'when that pass claimed (or last renewed) the failover, by the database clock',
      );
  });
};

/**
 * Dropped in place, on SQLite too (3.35 and later): knex would rebuild the table there, and dropping
 * the old recovery_runs deletes every run's machines and steps by their ON DELETE CASCADE.
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  for (const column of ['supervision_claimed_at', 'supervision_claim'])
    await knex.raw('alter table ?? drop column ??', ['recovery_runs', column]);
};
