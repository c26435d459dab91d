// @ts-check

/**
 * A machine in progress when its run was interrupted has a phase of its own, `interrupted`, as its
 * run has a status of its own (20261224000000_run_interrupted): before, it was stored `failed` with
 * a message starting `Interrupted: `, and readers told it from a machine that failed by that text.
 * The phase column is plain text, so no schema changes: the machines of the interrupted runs stored
 * before are rewritten. Messages keep their words, as the runs' errors do, so going down only gives
 * them back the phase `failed` (and the words' start, where one lacks it).
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex('recovery_run_machines')
    .where({ phase: 'failed' })
    // Exact and case-sensitive on SQLite and PostgreSQL alike, as LIKE is not.
    .whereRaw('substr(message, 1, ?) = ?', [PREFIX.length, PREFIX])
    .whereIn(
      'run_id',
      knex('recovery_runs').select('id').where({ status: 'interrupted' }),
    )
    .update({ phase: 'interrupted' });
};

/**
 * Interrupted machines back to `failed`, their message starting `Interrupted: ` as the earlier
 * backend tells them by.
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  await knex('recovery_run_machines')
    .where({ phase: 'interrupted' })
    .where(q =>
      q
        .whereNull('message')
        .orWhereRaw('substr(message, 1, ?) <> ?', [PREFIX.length, PREFIX]),
    )
    .update({
      message: knex.raw(`? || coalesce(message, ?)`, [
        PREFIX,
        'the run was interrupted',
      ]),
    });
  await knex('recovery_run_machines')
    .where({ phase: 'interrupted' })
    .update({ phase: 'failed' });
};

/** Starts an interrupted run's error message and its machines' (INTERRUPTED_PREFIX in recovery-common). */
const PREFIX = 'Interrupted: ';
