// `npm run cli -- keys list|quiet|notify`: which ITFlow API keys are quiet by default. A quiet
// key's commands write no `notifications` rows and queue no client email unless a command says
// `notify: true` (or asks for email with public_reply_type 2); the setting lives in the
// service's own table (src/db/migrate.ts, migration 3), keyed by ITFlow's api_key_id, and the
// worker reads it in each apply transaction, so a change holds from the next command applied.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { Config } from '../config.js';
import { createPool } from '../db/pool.js';
import { type ServiceTables, serviceTables } from '../db/tables.js';

export interface KeyLine {
  api_key_id: number;
  name: string;
  expires: string;
  quiet: boolean;
}

/** Runs `use` with a pool on DATABASE_URL and the service's tables, telling a missing migration plainly. */
export async function withKeySettings<T>(config: Config, use: (pool: Pool, tables: ServiceTables) => Promise<T>): Promise<T> {
  const pool = createPool(config.DATABASE_URL, 1);
  try {
    return await use(pool, serviceTables(config));
  } catch (error) {
    if ((error as { code?: string }).code === 'ER_NO_SUCH_TABLE') {
      throw new Error(`${(error as Error).message}: run \`npm run migrate\` first (the service's tables are not up to date).`);
    }
    throw error;
  } finally {
    await pool.end();
  }
}

/** ITFlow's API keys with their quiet setting, by id. */
export async function listKeys(pool: Pool, tables: ServiceTables): Promise<KeyLine[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT k.api_key_id, k.api_key_name, CAST(k.api_key_expire AS CHAR) AS expires, COALESCE(s.quiet, 0) AS quiet
     FROM api_keys k LEFT JOIN ${tables.keySettings} s ON s.api_key_id = k.api_key_id ORDER BY k.api_key_id`,
  );
  return rows.map((row) => ({
    api_key_id: Number(row.api_key_id),
    name: String(row.api_key_name),
    expires: String(row.expires),
    quiet: Number(row.quiet) === 1,
  }));
}

/**
 * Makes keys quiet by default (or, with quiet false, notifying again). Answers the ids that are
 * no ITFlow API key; nothing is set for those.
 */
export async function setQuiet(pool: Pool, tables: ServiceTables, ids: number[], quiet: boolean): Promise<number[]> {
  if (ids.length === 0) return [];
  const [found] = await pool.query<RowDataPacket[]>('SELECT api_key_id FROM api_keys WHERE api_key_id IN (?)', [ids]);
  const known = new Set(found.map((row) => Number(row.api_key_id)));
  const now = new Date().toISOString().slice(0, 19).replace('T', ' ');
  const rows = ids.filter((id) => known.has(id)).map((id) => [id, quiet ? 1 : 0, now]);
  if (rows.length > 0) {
    await pool.query(
      `INSERT INTO ${tables.keySettings} (api_key_id, quiet, updated_at_utc) VALUES ?
       ON DUPLICATE KEY UPDATE quiet = VALUES(quiet), updated_at_utc = VALUES(updated_at_utc)`,
      [rows],
    );
  }
  return ids.filter((id) => !known.has(id));
}

/** The list as a terminal shows it. */
export function keysText(keys: KeyLine[]): string {
  if (keys.length === 0) return 'No API keys in ITFlow.\n';
  const head = ['api_key_id', 'name', 'expires', 'notifications'];
  const lines = keys.map((k) => [String(k.api_key_id), k.name, k.expires, k.quiet ? 'quiet (notify: false by default)' : 'on']);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const row = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] as number))
      .join('  ')
      .trimEnd();
  return `${[row(head), ...lines.map(row)].join('\n')}\n`;
}
