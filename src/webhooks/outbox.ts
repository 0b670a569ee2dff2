// The transactional outbox: webhook events are rows of the deliveries table written by the
// transaction that finished their command, in the same round trip as its ledger row (one
// multi-row INSERT per batch), so an applied or failed command has its event exactly when its
// ledger row exists, and a rolled-back one never has one. Only commands whose API key has a
// subscription for the event's type get a row: an install without webhooks writes nothing.
// Delivering is the dispatcher's (src/webhooks/dispatcher.ts), never the apply path's.
import type { Pool, ResultSetHeader } from 'mysql2/promise';
import { idBytes, type Outcome } from '../apply/ledger.js';
import type { ServiceTables } from '../db/tables.js';
import type { CommandJob } from '../queue/jobs.js';
import { commandEvent, commandEventType, type EventBody } from './events.js';
import type { SubscriptionIndex } from './subscriptions.js';

export interface Statement {
  sql: string;
  params: unknown[];
}

/** The database's clock, for the times the dispatcher compares with it (one clock for every process). */
const NOW = { toSqlString: () => 'UTC_TIMESTAMP(3)' };

const COLUMNS = `(event_id, webhook_id, event_type, payload, state, attempts, created_at_utc, retry_from_utc, next_attempt_at_utc)`;

/** The outbox rows of events, one per subscription that hears it, due at once. */
function rowsOf(events: Array<{ body: EventBody; webhookIds: number[] }>): unknown[][] {
  return events.flatMap(({ body, webhookIds }) => {
    const payload = JSON.stringify(body);
    return webhookIds.map((webhookId) => [idBytes(body.id), webhookId, body.type, payload, 'pending', 0, NOW, NOW, NOW]);
  });
}

/**
 * The INSERT of a batch's command events, for the commands it finished now (applied or failed);
 * null when no subscription hears any of them. Runs in the batch's transaction.
 */
export function commandEventsStatement(
  tables: ServiceTables,
  subscriptions: SubscriptionIndex | undefined,
  finished: Array<{ job: CommandJob; outcome: Outcome }>,
): Statement | null {
  if (!subscriptions || subscriptions.empty) return null;
  const now = Date.now();
  const events = finished.flatMap(({ job, outcome }) => {
    const webhookIds = subscriptions.subscribers(job.apiKeyId, commandEventType(outcome)).map((s) => s.webhookId);
    return webhookIds.length > 0 ? [{ body: commandEvent(job, outcome, now) as EventBody, webhookIds }] : [];
  });
  if (events.length === 0) return null;
  return { sql: `INSERT INTO ${tables.webhookDeliveries} ${COLUMNS} VALUES ?`, params: [rowsOf(events)] };
}

/**
 * Writes a lone command's failed ledger row (recorded after its batch was rolled back) once,
 * and with it its events, in one transaction of their own: the events only when this call
 * wrote the ledger row, never for a command an earlier delivery recorded already.
 */
export async function recordOnceWithEvents(pool: Pool, ledger: Statement, events: Statement | null): Promise<void> {
  if (!events) {
    await pool.query(`${ledger.sql} ON DUPLICATE KEY UPDATE command_id = command_id`, ledger.params);
    return;
  }
  const conn = await pool.getConnection();
  let broken = false;
  try {
    await conn.query('START TRANSACTION');
    try {
      await conn.query(ledger.sql, ledger.params);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ER_DUP_ENTRY') throw error;
      await conn.query('ROLLBACK'); // recorded already, with its events then
      return;
    }
    await conn.query(events.sql, events.params);
    await conn.query('COMMIT');
  } catch (error) {
    await conn.query('ROLLBACK').catch(() => (broken = true));
    throw error;
  } finally {
    if (broken) conn.destroy();
    else conn.release();
  }
}

/**
 * An event that is not a command's (an import finished), for each of `webhookIds`; written once
 * however many processes try, by its id made from its name (src/webhooks/events.ts eventIdFor).
 */
export async function insertEventOnce(pool: Pool, tables: ServiceTables, body: EventBody, webhookIds: number[]): Promise<number> {
  if (webhookIds.length === 0) return 0;
  const [result] = await pool.query<ResultSetHeader>(`INSERT IGNORE INTO ${tables.webhookDeliveries} ${COLUMNS} VALUES ?`, [
    rowsOf([{ body, webhookIds }]),
  ]);
  return result.affectedRows;
}
