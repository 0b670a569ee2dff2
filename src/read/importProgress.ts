// How many lines of an import have finished (applied, or failed for good), from the ledger. The
// import CLI keys each line `import:<file id>:<line>` (src/import/run.ts), and the ledger's unique
// index (api_key_id, idempotency_key) holds those keys in order, so one import's rows are one
// index range, counted without reading the rows themselves. Measured on MariaDB 10.11: ~1 s for
// 600,000 lines, so the dashboard caches the answer (src/http/dashboard).
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';

export async function finishedImportLines(
  pool: Pool,
  tables: ServiceTables,
  apiKeyId: number,
  importId: string,
): Promise<number> {
  // ';' is the character after ':', so the range is exactly the keys that begin `import:<id>:`
  // (the ledger compares keys byte by byte: utf8mb4_bin).
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS finished FROM ${tables.commands}
      WHERE api_key_id = ? AND idempotency_key >= ? AND idempotency_key < ?`,
    [apiKeyId, `import:${importId}:`, `import:${importId};`],
  );
  return Number(rows[0]?.finished ?? 0);
}
