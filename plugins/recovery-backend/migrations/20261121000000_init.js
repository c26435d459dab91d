// @ts-check

/**
 * Captures and recovery runs.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.createTable('recovery_captures', table => {
    table.comment('Point-in-time copies of primary machines');
    table.string('id').primary();
    table.string('machine_ref').notNullable();
    table.string('engine').notNullable();
    table.string('container').notNullable();
    table.string('image_id').notNullable();
    table.bigInteger('size_bytes').notNullable();
    table
      .string('checksum')
      .notNullable()
      .comment('sha256 of the stored artifact');
    table
      .text('artifact')
      .notNullable()
      .comment('where the capture store keeps it');
    table
      .text('runtime')
      .notNullable()
      .comment('JSON: captured runtime and network identity');
    table
      .text('adaptations')
      .notNullable()
      .comment('JSON: host-specific parts rewritten');
    table.integer('duration_ms').notNullable();
    table.timestamp('created_at', { useTz: true }).notNullable();
    table.index(['machine_ref', 'created_at'], 'recovery_captures_machine_idx');
  });

  await knex.schema.createTable('recovery_runs', table => {
    table.comment('Executions of a boot plan on a hypervisor host');
    table.string('id').primary();
    table.string('entity_ref').notNullable();
    table.string('mode').notNullable();
    table.string('status').notNullable();
    table.string('trigger').notNullable();
    table.string('created_by');
    table.string('hypervisor_host').notNullable();
    table.text('plan').notNullable().comment('JSON: the boot plan executed');
    table.text('options').comment('JSON: run options');
    table.text('error').comment('JSON: why the run failed');
    table.float('rto_seconds');
    table.timestamp('created_at', { useTz: true }).notNullable();
    table.timestamp('started_at', { useTz: true });
    table.timestamp('finished_at', { useTz: true });
    table
      .timestamp('heartbeat_at', { useTz: true })
      .comment('refreshed while a backend instance drives the run');
    table.index(['entity_ref', 'created_at'], 'recovery_runs_entity_idx');
    table.index(['status'], 'recovery_runs_status_idx');
  });

  await knex.schema.createTable('recovery_run_machines', table => {
    table.comment('Per-machine progress and timings of a run');
    table
      .string('run_id')
      .notNullable()
      .references('id')
      .inTable('recovery_runs')
      .onDelete('CASCADE');
    table.string('machine_ref').notNullable();
    table.integer('wave').notNullable();
    table.string('phase').notNullable();
    table.string('capture_id');
    table.timestamp('restore_started_at', { useTz: true });
    table.timestamp('restored_at', { useTz: true });
    table.timestamp('started_at', { useTz: true });
    table.timestamp('ready_at', { useTz: true });
    table.timestamp('finished_at', { useTz: true });
    table.text('message');
    table.string('probe');
    table.text('log_tail');
    table.primary(['run_id', 'machine_ref']);
  });

  await knex.schema.createTable('recovery_run_steps', table => {
    table.comment('Timeline of a run');
    table.increments('id');
    table
      .string('run_id')
      .notNullable()
      .references('id')
      .inTable('recovery_runs')
      .onDelete('CASCADE');
    table.timestamp('at', { useTz: true }).notNullable();
    table.string('machine_ref');
    table.string('level').notNullable();
    table.text('message').notNullable();
    table.index(['run_id', 'id'], 'recovery_run_steps_run_idx');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.dropTable('recovery_run_steps');
  await knex.schema.dropTable('recovery_run_machines');
  await knex.schema.dropTable('recovery_runs');
  await knex.schema.dropTable('recovery_captures');
};
