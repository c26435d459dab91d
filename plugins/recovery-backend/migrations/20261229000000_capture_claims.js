// @ts-check

/**
 * Which capture of a machine is under way, across backend replicas: one row per machine (its
 * engine and container: two machine entities naming one container are one machine) while a
 * capture of it runs, renewed as it goes by the database's clock and deleted at its end. A second
 * replica asked to capture it waits for that capture (a capture request) or refuses (409) instead
 * of reaching the capture source; a claim not renewed past its lease is taken over (its replica
 * died mid-capture).
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_capture_claims', table => {
    table
      .string('engine')
      .notNullable()
      .comment('the primary engine of the machine being captured');
    table
      .string('container')
      .notNullable()
      .comment('its container on that engine');
    table
      .string('machine_ref')
      .notNullable()
      .comment('the machine entity the capture is of');
    table
      .string('capture_id')
      .notNullable()
      .comment(
        'the capture under way: the id it is recorded under, and the token of its claim',
      );
    table
      .string('request_id')
      .nullable()
      .comment(
        'the capture request it is of; null: none (the scheduled capture)',
      );
    table
      .timestamp('since', { useTz: true })
      .notNullable()
      .comment('when the capture began (its createdAt)');
    table
      .timestamp('heard_at', { useTz: true })
      .notNullable()
      .comment(
        "when its backend claimed or last renewed it, by the database's clock",
      );
    table.primary(['engine', 'container']);
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_capture_claims');
};
