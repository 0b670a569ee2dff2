// External ids at the intake: claimed in Redis like idempotency keys (src/queue/idempotency.ts),
// so a second command with an id that a queued command already carries is answered as that one,
// not queued again. What differs: the durable record is the external-id table (only commands that
// made their reply hold an id there, for good), and a holder's fingerprint is not compared here —
// a holder that failed gives its id up whatever it asked, so the caller compares once it knows.
// The last word is the apply transaction's (src/apply/applyBatch.ts), which also settles what
// Redis cannot see (a claim lost with a Redis restart).
import type { RowDataPacket } from 'mysql2/promise';
import { idText } from '../apply/ledger.js';
import { keyLayoutOf } from './cluster.js';
import { type Claim, IdempotencyClaims } from './idempotency.js';
import { redisKeys } from './keys.js';

/** The command an external id names in the external-id table, and the reply it made. */
export interface BoundExternalId {
  commandId: string;
  fingerprint: string;
  insertId: number;
}

export class ExternalIdClaims extends IdempotencyClaims {
  protected override readonly keyName = 'external_id';

  protected override redisKey(apiKeyId: number, externalId: string): string {
    return redisKeys(this.prefix, keyLayoutOf(this.redis)).externalId(apiKeyId, externalId);
  }

  protected override compare(
    _externalId: string,
    holder: { commandId: string; fingerprint: string; ageMs: number },
    _fingerprint: string,
  ): Claim {
    return { kind: 'existing', ...holder };
  }

  protected override inLedgerMany(apiKeyId: number, externalIds: string[]): Promise<Map<string, BoundExternalId>> {
    return this.bound(apiKeyId, externalIds);
  }

  /** The external ids among these that name a reply already (for good). */
  async bound(apiKeyId: number, externalIds: string[]): Promise<Map<string, BoundExternalId>> {
    if (externalIds.length === 0) return new Map();
    const [rows] = await this.pool.query<RowDataPacket[]>(
      `SELECT external_id, command_id, fingerprint, insert_id FROM ${this.tables.externalIds}
       WHERE api_key_id = ? AND external_id IN (?)`,
      [apiKeyId, externalIds],
    );
    return new Map(
      rows.map((row) => [
        String(row.external_id),
        {
          commandId: idText(row.command_id),
          fingerprint: (row.fingerprint as Buffer).toString('hex'),
          insertId: Number(row.insert_id),
        },
      ]),
    );
  }
}
