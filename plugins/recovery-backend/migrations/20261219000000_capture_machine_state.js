// @ts-check

/**
 * The machine's state when it was captured (JSON, CapturedMachineState): running, exited with its
 * code and since when, restarting, paused by someone else, its health check's verdict and last
 * failing output. A capture of a machine that was not serving is kept (its disk is the best copy
 * there is), but readiness puts what it serves at risk until one is taken while it runs and is not
 * unhealthy, and a run restoring it says so. Null for captures stored before it was recorded.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table
      .text('machine_state')
      .nullable()
      .comment('the machine state when captured (JSON); null: not recorded');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table.dropColumn('machine_state');
  });
};
