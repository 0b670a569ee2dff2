// read.php's external ids: a reply found by the external_id its command carried, and the page's
// rows marked with theirs. Only the calling key's own external ids are looked at: they are that
// integration's names, unique for its key alone.
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';

/** The reply this key's command with `externalId` made; null when none did (0 for a status-only command). */
export async function replyOfExternalId(
  pool: Pool | PoolConnection,
  tables: ServiceTables,
  apiKeyId: number,
  externalId: string,
): Promise<number | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT insert_id FROM ${tables.externalIds} WHERE api_key_id = ? AND external_id = ?`,
    [apiKeyId, externalId],
  );
  return rows[0] ? Number(rows[0].insert_id) : null;
}

/** The external ids this key gave the replies among `replyIds`, by reply id. */
export async function externalIdsOf(
  pool: Pool,
  tables: ServiceTables,
  apiKeyId: number,
  replyIds: number[],
): Promise<Map<number, string>> {
  const ids = replyIds.filter((id) => id > 0);
  if (ids.length === 0) return new Map();
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT insert_id, external_id FROM ${tables.externalIds} WHERE insert_id IN (?) AND api_key_id = ?`,
    [ids, apiKeyId],
  );
  return new Map(rows.map((row) => [Number(row.insert_id), String(row.external_id)]));
}
