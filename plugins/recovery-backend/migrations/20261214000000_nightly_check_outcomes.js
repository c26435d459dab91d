// @ts-check

/**
 * What the latest nightly check did about each entity it checks: started a test recovery, counted
 * it covered by another entity's run, left it out (its nightly-check annotation), or could not
 * run it and why. One row an entity, replaced each night: the entity's page says why last night's
 * check did not test it. The run it names is not a foreign key: runs are pruned apart from it.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_nightly_checks', table => {
    // No apostrophes in comments: knex writes them into PostgreSQL's statement unescaped.
    table.comment('The outcome of the latest nightly check, per entity');
    table.string('entity_ref', 255).primary();
    table
      .timestamp('checked_at', { useTz: true })
      .notNullable()
      .comment('when the check of that night began');
    table
      .string('outcome', 16)
      .notNullable()
      .comment('started, covered, excluded or refused');
    table
      .string('reason', 32)
      .nullable()
      .comment('why it was refused (NightlyCheckRefusal)');
    table
      .string('run_id', 255)
      .nullable()
      .comment(
        'the run it names: of the entity itself, the covering one, the failover kept on the host, or the run holding it',
      );
    table.string('run_entity_ref', 255).nullable().comment('whose run that is');
    table.text('message').notNullable();
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_nightly_checks');
};
