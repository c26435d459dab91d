// @ts-check

/**
 * The last failed capture of each machine, since its last capture that succeeded: readiness puts
 * its entities at risk naming it (the container gone, the engine refusing) rather than read the
 * last good capture as fresh until the RPO runs out. One row a machine, replaced by each failure
 * and deleted by the next capture that succeeds.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_capture_failures', table => {
    table
      .string('machine_ref')
      .primary()
      .comment('the machine entity whose capture failed');
    table
      .string('engine')
      .notNullable()
      .comment('the engine the capture was asked of');
    table
      .string('container')
      .notNullable()
      .comment('the container the capture was asked for');
    table
      .timestamp('failed_at', { useTz: true })
      .notNullable()
      .comment('when the failed capture started');
    table
      .text('message')
      .notNullable()
      .comment("why it failed, the error's own words");
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_capture_failures');
};
