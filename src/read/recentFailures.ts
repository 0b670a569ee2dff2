// Commands that failed for good, from the ledger, for the operator dashboard: the reasons, counted,
// and the latest few with who sent them. The ledger has no index on its status (each one would
// cost every apply transaction), so the read is bounded by time instead: command ids are UUIDv7,
// so "accepted in the last N hours" is a range at the end of the primary key (as retention uses
// at its start). Measured on MariaDB 10.11: ~1 s per million commands in the window, ~40 ms for an
// hour at a million a day — hence a short default window and a cache in front (src/http/dashboard).
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { idText } from '../apply/ledger.js';
import type { ServiceTables } from '../db/tables.js';

export interface FailureReason {
  httpStatus: number;
  message: string;
  count: number;
}

export interface RecentFailure {
  commandId: string;
  ticketId: number;
  apiKeyId: number;
  /** The key's name in ITFlow's api_keys, or null when the key is gone. */
  keyName: string | null;
  idempotencyKey: string | null;
  /** The command's external_id, when it had one. */
  externalId: string | null;
  acceptedAt: string;
  finishedAt: string;
  attempts: number;
  httpStatus: number;
  message: string;
}

export interface RecentFailures {
  /** Commands accepted from this time on were read (ISO 8601). */
  since: string;
  /** Failed commands in the window. */
  total: number;
  /** Their reasons, most frequent first (at most `reasons`). */
  reasons: FailureReason[];
  /** The latest failures, newest accepted first (at most `limit`). */
  latest: RecentFailure[];
}

/** The smallest command id of the millisecond `ms`: every id made from then on sorts at or above it. */
function firstIdAt(ms: number): Buffer {
  const id = Buffer.alloc(16);
  id.writeUIntBE(ms, 0, 6);
  return id;
}

export async function recentFailures(
  pool: Pool,
  tables: ServiceTables,
  { hours, limit, reasons = 10, now = Date.now() }: { hours: number; limit: number; reasons?: number; now?: number },
): Promise<RecentFailures> {
  const sinceMs = now - hours * 3_600_000;
  const since = firstIdAt(sinceMs);
  const [[counted], [latest]] = await Promise.all([
    pool.query<RowDataPacket[]>(
      `SELECT http_status, error, COUNT(*) AS failures FROM ${tables.commands}
        WHERE command_id >= ? AND status = 'failed'
        GROUP BY http_status, error ORDER BY failures DESC, http_status`,
      [since],
    ),
    pool.query<RowDataPacket[]>(
      `SELECT command_id, ticket_id, c.api_key_id, api_key_name, idempotency_key, c.external_id, accepted_at_utc, finished_at_utc,
              attempts, http_status, error
         FROM ${tables.commands} AS c LEFT JOIN api_keys ON api_keys.api_key_id = c.api_key_id
        WHERE command_id >= ? AND status = 'failed'
        ORDER BY command_id DESC LIMIT ?`,
      [since, limit],
    ),
  ]);
  return {
    since: new Date(sinceMs).toISOString(),
    total: counted.reduce((sum, row) => sum + Number(row.failures), 0),
    reasons: counted
      .slice(0, reasons)
      .map((row) => ({ httpStatus: Number(row.http_status), message: String(row.error), count: Number(row.failures) })),
    latest: latest.map((row) => ({
      commandId: idText(row.command_id),
      ticketId: Number(row.ticket_id),
      apiKeyId: Number(row.api_key_id),
      keyName: row.api_key_name === null ? null : String(row.api_key_name),
      idempotencyKey: row.idempotency_key === null ? null : String(row.idempotency_key),
      externalId: row.external_id === null ? null : String(row.external_id),
      acceptedAt: isoUtc(row.accepted_at_utc),
      finishedAt: isoUtc(row.finished_at_utc),
      attempts: Number(row.attempts),
      httpStatus: Number(row.http_status),
      message: String(row.error),
    })),
  };
}

/** The ledger keeps UTC DATETIMEs, read as text (the pool's dateStrings). */
function isoUtc(value: unknown): string {
  return `${String(value).replace(' ', 'T')}Z`;
}
