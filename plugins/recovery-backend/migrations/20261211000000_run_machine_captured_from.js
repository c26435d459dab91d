// @ts-check

/**
 * Where the capture each machine of a run restored was taken: its engine and container, recorded
 * when the run chose it. Retention prunes captures (keepLast), so `capture_id` alone may name a
 * capture that is gone; readiness needs to tell a run that restored the container a machine was
 * before it was replaced from one that restored the machine the catalog names now.
 *
 * Runs recorded before are filled in from their capture where it is still kept; the others stay
 * null (nothing else says which container they restored), and readiness judges them as before.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_run_machines', table => {
    table
      .string('capture_engine')
      .nullable()
      .comment(
        'engine of the restored capture, as recorded when the run chose it',
      );
    table
      .string('capture_container')
      .nullable()
      .comment(
        'container of the restored capture, as recorded when the run chose it',
      );
  });
  // One statement on SQLite and PostgreSQL alike: a correlated subquery per column.
  const of = (/** @type {string} */ column) =>
    knex('recovery_captures as c')
      .select(`c.${column}`)
      .whereRaw('c.id = recovery_run_machines.capture_id');
  await knex('recovery_run_machines')
    .whereNotNull('capture_id')
    .whereExists(
      knex('recovery_captures as c')
        .select(knex.raw('1'))
        .whereRaw('c.id = recovery_run_machines.capture_id'),
    )
    .update({
      capture_engine: of('engine'),
      capture_container: of('container'),
    });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_run_machines', table => {
    table.dropColumn('capture_engine');
    table.dropColumn('capture_container');
  });
};
