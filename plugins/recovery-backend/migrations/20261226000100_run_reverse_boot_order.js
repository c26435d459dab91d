// @ts-check

/**
 * Whether a run booted its waves in reverse (the `reverseBootOrder` test hook, which proves that
 * verification is real by failing), in a column of its own: readiness leaves such runs out at every
 * read, and found them by a LIKE on the options' JSON text. Runs stored before are filled in from
 * that JSON, read as JSON. The options keep it too, so going down drops the column alone.
 *
 * Not indexed: every query that reads it finds its runs by another index (an entity's, the status,
 * the newest first) and only filters them by it; nearly every run has it false.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await knex.schema.alterTable('recovery_runs', table => {
    table
      .boolean('reverse_boot_order')
      .notNullable()
      .defaultTo(false)
      .comment(
        'the reverseBootOrder test hook: its waves booted in reverse, so readiness leaves it out',
      );
  });
  const rows = await knex('recovery_runs')
    // Only a first sieve: the options are read below, as JSON.
    .where('options', 'like', '%reverseBootOrder%')
    .select('id', 'options');
  const reversed = rows
    .filter(r => parse(r.options)?.reverseBootOrder === true)
    .map(r => r.id);
  for (const ids of chunks(reversed)) {
    await knex('recovery_runs')
      .whereIn('id', ids)
      .update({ reverse_boot_order: true });
  }
};

/**
 * Dropped in place, on SQLite too (3.35 and later): knex would rebuild the table there, and dropping
 * the old recovery_runs deletes every run's machines and steps by their ON DELETE CASCADE.
 *
 * @param {import('knex').Knex} knex
 */
exports.down = async function down(knex) {
  await knex.raw('alter table ?? drop column ??', [
    'recovery_runs',
    'reverse_boot_order',
  ]);
};

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
