// @ts-check

/**
 * The capture requests: `POST /captures` answers at once (202) and its caller polls the request
 * (`GET /captures/requests/:id`) while its machines are captured, one after another. Kept here, not
 * in the backend that captures, so every replica answers the poll alike; `heard_at` is the capturing
 * backend's heartbeat, by which one that died mid-capture is told from one still at work.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_capture_requests', table => {
    table.string('id').primary().comment('the capture request id');
    table
      .string('entity_ref')
      .notNullable()
      .comment('the entity whose machines are captured');
    table
      .string('machine_ref')
      .nullable()
      .comment('the one machine asked for; null: every machine of the plan');
    table
      .text('machine_refs')
      .notNullable()
      .comment('JSON: the machines it captures, in turn');
    table
      .string('status')
      .notNullable()
      .comment('capturing, succeeded or failed');
    table
      .text('captures')
      .notNullable()
      .comment('JSON: the captures taken so far, as the API gives them');
    table
      .text('error')
      .nullable()
      .comment(
        'JSON: why it failed, as the API answers an error; null: not failed',
      );
    table
      .integer('status_code')
      .nullable()
      .comment('the HTTP status of its failure');
    table
      .timestamp('created_at', { useTz: true })
      .notNullable()
      .comment('when it was accepted');
    table
      .timestamp('heard_at', { useTz: true })
      .notNullable()
      .comment(
        "the capturing backend's last heartbeat, by the database's clock",
      );
    table
      .timestamp('finished_at', { useTz: true })
      .nullable()
      .comment('when it succeeded or failed');
    table.index(['heard_at'], 'recovery_capture_requests_heard_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_capture_requests');
};
