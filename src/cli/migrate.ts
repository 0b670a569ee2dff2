import type { Config } from '../config.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { serviceTables } from '../db/tables.js';

/** `migrate`: creates or upgrades the service's own tables; never touches ITFlow's. */
export async function migrateCommand(config: Config): Promise<string> {
  const pool = createPool(config.DATABASE_URL, 1);
  try {
    const tables = serviceTables(config);
    const result = await migrate(pool, tables);
    return result.applied.length > 0
      ? `Applied migrations: ${result.applied.join(', ')} (schema ${tables.schema}).`
      : `Service tables are up to date (version ${result.version}, schema ${tables.schema}).`;
  } finally {
    await pool.end();
  }
}
