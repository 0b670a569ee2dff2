import type { Config } from '../config.js';
import { migrate } from '../db/migrate.js';
import { createPool } from '../db/pool.js';
import { serviceTables } from '../db/tables.js';
import { detect } from '../service.js';

/**
 * `migrate`: creates or upgrades the service's own tables; never touches ITFlow's. It first
 * checks DATABASE_URL as `npm start` does (reachable, ITFlow's tables, the grants on them), so
 * it refuses what the service would refuse, in the same words (StartupError, MissingGrants).
 */
export async function migrateCommand(config: Config): Promise<string> {
  const pool = createPool(config.DATABASE_URL, 1);
  try {
    await detect(config, pool);
    const tables = serviceTables(config);
    const result = await migrate(pool, tables);
    return result.applied.length > 0
      ? `Applied migrations: ${result.applied.join(', ')} (schema ${tables.schema}).`
      : `Service tables are up to date (version ${result.version}, schema ${tables.schema}).`;
  } finally {
    await pool.end();
  }
}
