import type { RowDataPacket } from 'mysql2/promise';

/**
 * A row as ITFlow's v1 read endpoints send it (mysqli's fetch_assoc through json_encode):
 * every value a string, NULL as null, DATETIME as 'YYYY-MM-DD HH:MM:SS' — so a client of the
 * other v1 read endpoints parses these unchanged.
 */
export function v1Row(row: RowDataPacket): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const [column, value] of Object.entries(row)) {
    out[column] = value === null || value === undefined ? null : Buffer.isBuffer(value) ? value.toString('utf8') : String(value);
  }
  return out;
}
