// import.finished: an import (`npm run cli -- import FILE`) is a run of bulk.php requests the
// intake counts per file in Redis (src/queue/imports.ts), each line keyed `import:<id>:<line>`
// in the ledger. It has finished when every line of the file has been received (the highest line
// sent is the file's last), no request has come for a few seconds, and the ledger holds an
// outcome for every command the intake queued for it. The dispatcher looks every few seconds,
// only while some subscription hears import.finished; the event's id is made from the key and
// the import's id, so however many worker processes notice it, it is written once.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';
import type { ImportRecord, ImportTraffic } from '../queue/imports.js';
import { eventIdFor, importEvent } from './events.js';
import { insertEventOnce } from './outbox.js';
import type { SubscriptionIndex } from './subscriptions.js';

/** No request for this long after the last line arrived: the client has stopped sending. */
const QUIET_MS = 2_000;
/** The latest imports looked at (the dashboard's record keeps them 7 days). */
const RECENT_IMPORTS = 100;

/** How the ledger says an import's commands ended. */
export async function importOutcomes(
  pool: Pool,
  tables: ServiceTables,
  apiKeyId: number,
  importId: string,
): Promise<{ applied: number; failed: number }> {
  // The keys `import:<id>:…` are one range of the ledger's (api_key_id, idempotency_key) index;
  // ';' is the character after ':' (see src/read/importProgress.ts).
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT status, COUNT(*) AS n FROM ${tables.commands}
      WHERE api_key_id = ? AND idempotency_key >= ? AND idempotency_key < ? GROUP BY status`,
    [apiKeyId, `import:${importId}:`, `import:${importId};`],
  );
  const count = (status: string) => Number(rows.find((row) => row.status === status)?.n ?? 0);
  return { applied: count('applied'), failed: count('failed') };
}

function allLinesReceived(record: ImportRecord, now: number): boolean {
  return record.lines !== null && record.highestLine >= record.lines && now - Date.parse(record.lastAt) >= QUIET_MS;
}

export async function announceFinishedImports({
  pool,
  tables,
  traffic,
  index,
  announced,
  now = Date.now(),
}: {
  pool: Pool;
  tables: ServiceTables;
  traffic: ImportTraffic;
  index: SubscriptionIndex;
  /** Imports this process has announced already (`<key id>:<import id>`). */
  announced: Set<string>;
  now?: number;
}): Promise<void> {
  for (const record of await traffic.recent(RECENT_IMPORTS)) {
    const name = `${record.apiKeyId}:${record.importId}`;
    if (announced.has(name) || !allLinesReceived(record, now)) continue;
    // Subscriptions added after the import's last request do not hear of it.
    const webhooks = index
      .subscribers(record.apiKeyId, 'import.finished')
      .filter((s) => Date.parse(s.createdAt) <= Date.parse(record.lastAt));
    if (webhooks.length === 0) continue;
    const { applied, failed } = await importOutcomes(pool, tables, record.apiKeyId, record.importId);
    if (applied + failed < record.queued) continue;
    const body = importEvent(
      eventIdFor(`import.finished:${name}`),
      {
        import_id: record.importId,
        api_key_id: record.apiKeyId,
        file: record.file,
        lines: record.lines,
        queued: record.queued,
        applied,
        failed,
        refused: record.refused,
        duplicates: record.duplicates,
        first_request_at: record.firstAt,
        last_request_at: record.lastAt,
      },
      now,
    );
    await insertEventOnce(
      pool,
      tables,
      body,
      webhooks.map((s) => s.webhookId),
    );
    announced.add(name);
  }
}
