// @ts-check

/**
 * A run cut off before it reached a result (its backend stopped or shut down, a failover preempted
 * it) has a status of its own, `interrupted`, apart from `failed` (the recovery itself failed):
 * before, it was stored `failed` with an error message starting `Interrupted: `, and readiness
 * told the two apart by matching that text in the error's JSON. The status column is plain text,
 * so no schema changes: the runs stored before are rewritten, and so is the result kept ahead of
 * the teardown (`outcome`). Messages keep their words (`Interrupted: the backend is shutting
 * down`), so going down only gives them back the status `failed`.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  const runs = await knex('recovery_runs')
    .where({ status: 'failed' })
    // Only a first sieve: the message is read below, as JSON.
    .where('error', 'like', `%${PREFIX}%`)
    .select('id', 'error');
  const interrupted = runs
    .filter(r => messageOf(r.error)?.startsWith(PREFIX))
    .map(r => r.id);
  for (const ids of chunks(interrupted)) {
    await knex('recovery_runs')
      .whereIn('id', ids)
      .update({ status: 'interrupted' });
  }
  await rewriteOutcomes(knex, `%${PREFIX}%`, outcome =>
    outcome.status === 'failed' && outcome.error?.message?.startsWith(PREFIX)
      ? { ...outcome, status: 'interrupted' }
      : undefined,
  );
};

/**
 * Interrupted runs back to `failed`, their error message starting `Interrupted: ` as the earlier
 * backend tells them by (it is given back where one lacks it).
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  const runs = await knex('recovery_runs')
    .where({ status: 'interrupted' })
    .select('id', 'error');
  for (const ids of chunks(runs.map(r => r.id))) {
    await knex('recovery_runs').whereIn('id', ids).update({ status: 'failed' });
  }
  for (const run of runs) {
    const error = prefixed(parse(run.error));
    if (error) {
      await knex('recovery_runs')
        .where({ id: run.id })
        .update({ error: JSON.stringify(error) });
    }
  }
  await rewriteOutcomes(knex, '%"interrupted"%', outcome =>
    outcome.status === 'interrupted'
      ? {
          ...outcome,
          status: 'failed',
          error: prefixed(outcome.error) ?? outcome.error,
        }
      : undefined,
  );
};

/** Starts an interrupted run's error message (INTERRUPTED_PREFIX in recovery-common). */
const PREFIX = 'Interrupted: ';

/** The most bound values a statement takes here: SQLite allows 999. */
const CHUNK = 500;

/** @param {string[]} ids */
function chunks(ids) {
  const out = [];
  for (let i = 0; i < ids.length; i += CHUNK) out.push(ids.slice(i, i + CHUNK));
  return out;
}

/** @param {unknown} text */
function parse(text) {
  if (typeof text !== 'string') return undefined;
  try {
    return JSON.parse(text) ?? undefined;
  } catch {
    return undefined;
  }
}

/** @param {unknown} errorText */
function messageOf(errorText) {
  const message = parse(errorText)?.message;
  return typeof message === 'string' ? message : undefined;
}

/**
 * The error with its message starting with the prefix; undefined where it already does.
 *
 * @param {{ message?: unknown } | undefined} error
 */
function prefixed(error) {
  const message = typeof error?.message === 'string' ? error.message : '';
  if (message.startsWith(PREFIX)) return undefined;
  return {
    ...error,
    message: `${PREFIX}${message || 'the run was interrupted'}`,
  };
}

/**
 * Rewrites the result runs kept ahead of their teardown (read again only while a run is active),
 * where `change` gives a new one; `sieve`, a first one on its text.
 *
 * @param {import('knex').Knex} knex
 * @param {string} sieve
 * @param {(outcome: any) => object | undefined} change
 */
async function rewriteOutcomes(knex, sieve, change) {
  const rows = await knex('recovery_runs')
    .where('outcome', 'like', sieve)
    .select('id', 'outcome');
  for (const row of rows) {
    const outcome = parse(row.outcome);
    const changed = outcome && change(outcome);
    if (changed) {
      await knex('recovery_runs')
        .where({ id: row.id })
        .update({ outcome: JSON.stringify(changed) });
    }
  }
}
