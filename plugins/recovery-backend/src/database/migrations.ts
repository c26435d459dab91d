import { resolvePackagePath } from '@backstage/backend-plugin-api';
import { Knex } from 'knex';

/** Where the knex migrations of every recovery table ship, in this package. */
export const migrationsDirectory = resolvePackagePath(
  '@backstage-recovery/plugin-recovery-backend',
  'migrations',
);

/** The knex drivers of the databases the stores are written for: PostgreSQL and SQLite. */
const SUPPORTED_DRIVERS = ['pg', 'better-sqlite3', 'sqlite3'];

/**
 * Refuses a database other than PostgreSQL and SQLite: the stores' SQL (the database's clock,
 * a migration's concatenation) has a PostgreSQL form and a SQLite one, and any other database
 * would be sent SQLite's.
 */
export function assertSupportedDatabase(client: Knex): void {
  if (SUPPORTED_DRIVERS.includes(client.client.driverName)) return;
  const configured = client.client.config?.client;
  const name =
    typeof configured === 'string' ? configured : client.client.driverName;
  throw new Error(
    `Backstage Recovery supports PostgreSQL and SQLite (database clients ${SUPPORTED_DRIVERS.join(', ')}); the database client here is ${name}`,
  );
}

/** Brings the schema of every recovery table up to date (captures, runs, events, analyses). */
export async function migrate(client: Knex): Promise<void> {
  await client.migrate.latest({ directory: migrationsDirectory });
}
