// @ts-check

/**
 * A run to a chosen recovery point (POST /runs `recoveryPoint`): each machine restores its newest
 * capture taken at or before it, not its latest. The run keeps the point asked, and readiness
 * leaves such runs out: they prove that point boots, not the latest captures. Null on every run
 * stored before, which restored the latest.
 *
 * Each machine of a run keeps when the capture it restored was taken, recorded when the run chose
 * it (the capture may be pruned since). Runs recorded before are filled in from their capture where
 * it is still kept; the others stay null.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table
      .timestamp('recovery_point', { useTz: true })
      .nullable()
      .comment(
        'the time the run recovers to (its captures taken at or before it); null: the latest captures',
      );
  });
  await knex.schema.alterTable('recovery_run_machines', table => {
    table
      .timestamp('capture_created_at', { useTz: true })
      .nullable()
      .comment(
        'when the restored capture was taken, as recorded when the run chose it',
      );
  });
  // One statement on SQLite and PostgreSQL alike: a correlated subquery.
  await knex('recovery_run_machines')
    .whereNotNull('capture_id')
    .whereExists(
      knex('recovery_captures as c')
        .select(knex.raw('1'))
        .whereRaw('c.id = recovery_run_machines.capture_id'),
    )
    .update({
      capture_created_at: knex('recovery_captures as c')
        .select('c.created_at')
        .whereRaw('c.id = recovery_run_machines.capture_id'),
    });
};

/**
 * The columns dropped in place, on SQLite too (3.35 and later): knex would rebuild each table
 * there, and dropping the old recovery_runs deletes, by their foreign keys' ON DELETE CASCADE, every
 * run's machines and steps (the migration's transaction leaves foreign keys on).
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  await knex.raw('alter table ?? drop column ??', [
    'recovery_run_machines',
    'capture_created_at',
  ]);
  await knex.raw('alter table ?? drop column ??', [
    'recovery_runs',
    'recovery_point',
  ]);
};
