// The external-id table's side of an apply transaction: each command with an external_id that
// made its reply (or status change) now is recorded with that reply's id, in the same
// transaction. The table's primary key (api_key_id, external_id) is the last word on a race:
// of two transactions recording the same id, the second meets the key, rolls back and is
// retried, and then finds the first as the id's holder (src/apply/applyBatch.ts).
import type { ReplyId } from '../db/sqlExpression.js';
import type { ServiceTables } from '../db/tables.js';
import { fingerprintBytes, idBytes, type LedgerEntry, type Outcome, utcTimestamp } from './ledger.js';

export function externalIdStatement(
  tables: ServiceTables,
  finished: Array<{ entry: LedgerEntry; outcome: Outcome; replyId?: ReplyId }>,
): { sql: string; params: unknown[] } | null {
  const now = utcTimestamp(Date.now());
  const rows = finished.flatMap(({ entry, outcome, replyId }) =>
    entry.externalId === null || outcome.status !== 'applied' || outcome.repeat
      ? []
      : [
          [
            entry.apiKeyId,
            entry.externalId,
            idBytes(entry.commandId),
            fingerprintBytes(entry.fingerprint),
            entry.ticketId,
            replyId ?? outcome.insertId,
            now,
          ],
        ],
  );
  if (rows.length === 0) return null;
  return {
    sql: `INSERT INTO ${tables.externalIds}
            (api_key_id, external_id, command_id, fingerprint, ticket_id, insert_id, created_at_utc) VALUES ?`,
    params: [rows],
  };
}
