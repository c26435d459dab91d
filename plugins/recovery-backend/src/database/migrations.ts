import { resolvePackagePath } from '@backstage/backend-plugin-api';
import { Knex } from 'knex';

/** Where the knex migrations of every recovery table ship, in this package. */
export const migrationsDirectory = resolvePackagePath(
  '@backstage-recovery/plugin-recovery-backend',
  'migrations',
);

/** Brings the schema of every recovery table up to date (captures, runs, events, analyses). */
export async function migrate(client: Knex): Promise<void> {
  await client.migrate.latest({ directory: migrationsDirectory });
}
