import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ReplyId } from '../db/sqlExpression.js';
import type { ServiceTables } from '../db/tables.js';
import type { FailureRecord } from '../errors.js';

/**
 * The command ledger: one row per finished command, written in the same transaction as the
 * command's effects. Its primary key is what makes a re-delivered or raced command a no-op.
 */
export type Outcome = ({ status: 'applied'; insertId: number } | { status: 'failed'; failure: FailureRecord }) & {
  /** Recorded by an earlier delivery of the command (or the holder of its idempotency key): nothing was written now. */
  repeat?: true;
};

export interface LedgerEntry {
  commandId: string;
  apiKeyId: number;
  idempotencyKey: string | null;
  fingerprint: string;
  ticketId: number;
  acceptedAt: number;
  attempts: number;
  /** The command's external_id (kept for commands.php; src/apply/externalIds.ts keeps it unique). */
  externalId: string | null;
}

export interface LedgerRow {
  outcome: Outcome;
  apiKeyId: number;
  ticketId: number;
  acceptedAtUtc: string;
  finishedAtUtc: string;
  attempts: number;
  externalId: string | null;
}

/** Command ids are stored in 16 bytes, request fingerprints in 32 (see migration 2). */
export function idBytes(commandId: string): Buffer {
  return Buffer.from(commandId.replace(/-/g, ''), 'hex');
}

export function idText(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function fingerprintBytes(fingerprint: string): Buffer {
  return Buffer.from(fingerprint, 'hex');
}

/** UTC 'YYYY-MM-DD HH:MM:SS.mmm' — the ledger is the service's own table and keeps UTC. */
export function utcTimestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

export function utcToMs(timestamp: string): number {
  return Date.parse(`${timestamp.replace(' ', 'T')}Z`);
}

export function toOutcome(row: RowDataPacket): Outcome {
  return row.status === 'applied'
    ? { status: 'applied', insertId: Number(row.insert_id) }
    : { status: 'failed', failure: { status: Number(row.http_status), message: String(row.error) } };
}

export async function readLedger(db: Pool | PoolConnection, tables: ServiceTables, commandId: string): Promise<LedgerRow | null> {
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT status, insert_id, http_status, error, api_key_id, ticket_id, accepted_at_utc, finished_at_utc, attempts, external_id
     FROM ${tables.commands} WHERE command_id = ?`,
    [idBytes(commandId)],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    outcome: toOutcome(row),
    apiKeyId: Number(row.api_key_id),
    ticketId: Number(row.ticket_id),
    acceptedAtUtc: String(row.accepted_at_utc),
    finishedAtUtc: String(row.finished_at_utc),
    attempts: Number(row.attempts),
    externalId: row.external_id == null ? null : String(row.external_id),
  };
}

/** The INSERT of a batch's ledger rows, to run in the same transaction as their effects. */
export function ledgerStatement(
  tables: ServiceTables,
  finished: Array<{ entry: LedgerEntry; outcome: Outcome; replyId?: ReplyId }>,
): { sql: string; params: unknown[] } {
  const now = utcTimestamp(Date.now());
  const rows = finished.map(({ entry, outcome, replyId }) => {
    const failure = outcome.status === 'failed' ? outcome.failure : null;
    return [
      idBytes(entry.commandId),
      entry.apiKeyId,
      entry.idempotencyKey,
      fingerprintBytes(entry.fingerprint),
      entry.ticketId,
      utcTimestamp(entry.acceptedAt),
      now,
      outcome.status,
      outcome.status === 'applied' ? (replyId ?? outcome.insertId) : 0,
      failure?.status ?? null,
      failure ? failure.message.slice(0, 1000) : null,
      entry.attempts,
      entry.externalId,
    ];
  });
  return {
    sql: `INSERT INTO ${tables.commands}
            (command_id, api_key_id, idempotency_key, fingerprint, ticket_id, accepted_at_utc, finished_at_utc,
             status, insert_id, http_status, error, attempts, external_id) VALUES ?`,
    params: [rows],
  };
}
