// @ts-check

/**
 * A capture's size counts all it stores: its image archive and its volumes' archives. Captures
 * stored before counted the image only (a machine with a 400 MB volume read as 3.4 MiB): their
 * volumes' sizes, kept in their runtime, are added. And the warning a capture carries where its
 * pause took more than half the pause limit; null where it did not, or for captures before.
 *
 * @param {import('knex').Knex} knex
 */
exports.up = async function up(knex) {
  await shiftVolumeBytes(knex, 1);
  await knex.schema.alterTable('recovery_captures', table => {
    table
      .text('pause_warning')
      .nullable()
      .comment('its pause took over half the limit, in words; null: not so');
  });
};

/** @param {import('knex').Knex} knex */
exports.down = async function down(knex) {
  await knex.schema.alterTable('recovery_captures', table => {
    table.dropColumn('pause_warning');
  });
  await shiftVolumeBytes(knex, -1);
};

/**
 * Adds (or takes back) each capture's volume bytes to its size.
 *
 * @param {import('knex').Knex} knex
 * @param {1 | -1} sign
 */
async function shiftVolumeBytes(knex, sign) {
  const rows = await knex('recovery_captures')
    .select('id', 'size_bytes', 'runtime')
    .where('runtime', 'like', '%"volumes"%');
  for (const row of rows) {
    const volumes = JSON.parse(row.runtime).volumes ?? [];
    const bytes = volumes.reduce(
      (/** @type {number} */ n, /** @type {{ sizeBytes: number }} */ v) =>
        n + v.sizeBytes,
      0,
    );
    if (bytes > 0)
      await knex('recovery_captures')
        .where({ id: row.id })
        .update({ size_bytes: Number(row.size_bytes) + sign * bytes });
  }
}
