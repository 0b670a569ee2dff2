// The outbox's deliveries as the dispatcher, the CLI and the dashboard use them. Times are the
// database's clock (UTC_TIMESTAMP), so several worker processes on several hosts agree on
// what is due. A claim pushes a row's next attempt past the time one delivery can take (the
// lease), so a dispatcher that dies mid-delivery leaves it to be claimed again once the lease
// ends: at least once, never lost.
import type { Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { idBytes, idText } from '../apply/ledger.js';
import type { ServiceTables } from '../db/tables.js';

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface ClaimedDelivery {
  deliveryId: number;
  eventId: string;
  eventType: string;
  payload: string;
  webhookId: number;
  url: string;
  secret: string;
  /** This attempt's number (1 for the first). */
  attempt: number;
  /** How long ago the retry window began (the event's creation, or its latest replay), in ms. */
  windowAgeMs: number;
}

export interface DeliveryRow {
  eventId: string;
  eventType: string;
  webhookId: number;
  url: string | null;
  apiKeyId: number | null;
  state: DeliveryState;
  attempts: number;
  createdAt: string;
  nextAttemptAt: string | null;
  lastAttemptAt: string | null;
  finishedAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
}

const iso = (value: unknown) => (value === null || value === undefined ? null : `${String(value).replace(' ', 'T')}Z`);

/** Whether some delivery is due now (one index probe: the claim's transaction is skipped when none is). */
export async function anyDue(pool: Pool, tables: ServiceTables): Promise<boolean> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT 1 FROM ${tables.webhookDeliveries} WHERE state = 'pending' AND next_attempt_at_utc <= UTC_TIMESTAMP(3) LIMIT 1`,
  );
  return rows.length > 0;
}

/**
 * Claims up to `limit` due deliveries for this process: locks them (SKIP LOCKED where the server
 * has it, so dispatchers of several processes never wait for each other nor take the same row),
 * counts the attempt and moves the next one `leaseMs` ahead, in one short transaction.
 */
export async function claimDue(
  conn: PoolConnection,
  tables: ServiceTables,
  { limit, leaseMs, skipLocked }: { limit: number; leaseMs: number; skipLocked: boolean },
): Promise<ClaimedDelivery[]> {
  const d = tables.webhookDeliveries;
  await conn.query('SET TRANSACTION ISOLATION LEVEL READ COMMITTED');
  await conn.query('START TRANSACTION');
  try {
    const [due] = await conn.query<RowDataPacket[]>(
      `SELECT delivery_id FROM ${d} WHERE state = 'pending' AND next_attempt_at_utc <= UTC_TIMESTAMP(3)
        ORDER BY next_attempt_at_utc LIMIT ? FOR UPDATE${skipLocked ? ' SKIP LOCKED' : ''}`,
      [limit],
    );
    const ids = due.map((row) => Number(row.delivery_id));
    if (ids.length === 0) {
      await conn.query('COMMIT');
      return [];
    }
    await conn.query(
      `UPDATE ${d} SET attempts = attempts + 1, last_attempt_at_utc = UTC_TIMESTAMP(3),
         next_attempt_at_utc = UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND WHERE delivery_id IN (?)`,
      [leaseMs * 1000, ids],
    );
    const [rows] = await conn.query<RowDataPacket[]>(
      `SELECT d.delivery_id, d.event_id, d.event_type, d.payload, d.webhook_id, d.attempts, w.url, w.secret,
              TIMESTAMPDIFF(MICROSECOND, d.retry_from_utc, UTC_TIMESTAMP(3)) DIV 1000 AS window_age_ms
         FROM ${d} d JOIN ${tables.webhooks} w ON w.webhook_id = d.webhook_id
        WHERE d.delivery_id IN (?) ORDER BY d.delivery_id`,
      [ids],
    );
    await conn.query('COMMIT');
    return rows.map((row) => ({
      deliveryId: Number(row.delivery_id),
      eventId: idText(row.event_id as Buffer),
      eventType: String(row.event_type),
      payload: String(row.payload),
      webhookId: Number(row.webhook_id),
      url: String(row.url),
      secret: String(row.secret),
      attempt: Number(row.attempts),
      windowAgeMs: Number(row.window_age_ms),
    }));
  } catch (error) {
    await conn.query('ROLLBACK').catch(() => {});
    throw error;
  }
}

/** A 2xx answer: delivered (also when a later attempt raced this one). */
export async function markDelivered(pool: Pool, tables: ServiceTables, deliveryId: number, status: number): Promise<void> {
  await pool.query(
    `UPDATE ${tables.webhookDeliveries}
        SET state = 'delivered', finished_at_utc = UTC_TIMESTAMP(3), last_status = ?, last_error = NULL
      WHERE delivery_id = ? AND state = 'pending'`,
    [status, deliveryId],
  );
}

/**
 * A failed attempt: tried again in `retryInMs`, or — `giveUp` — marked failed for good (until
 * replayed). Only the attempt that holds the row's latest claim writes it.
 */
export async function markAttemptFailed(
  pool: Pool,
  tables: ServiceTables,
  delivery: { deliveryId: number; attempt: number },
  result: { status: number | null; error: string; retryInMs: number; giveUp: boolean },
): Promise<void> {
  await pool.query(
    `UPDATE ${tables.webhookDeliveries}
        SET state = ?, last_status = ?, last_error = ?,
            next_attempt_at_utc = IF(? , next_attempt_at_utc, UTC_TIMESTAMP(3) + INTERVAL ? MICROSECOND),
            finished_at_utc = IF(?, UTC_TIMESTAMP(3), NULL)
      WHERE delivery_id = ? AND state = 'pending' AND attempts = ?`,
    [
      result.giveUp ? 'failed' : 'pending',
      result.status,
      result.error.slice(0, 500),
      result.giveUp,
      result.retryInMs * 1000,
      result.giveUp,
      delivery.deliveryId,
      delivery.attempt,
    ],
  );
}

/**
 * Puts an event's deliveries back to be sent now, with a new retry window, whatever state they
 * are in (a delivered one is sent again: the receiver sees the same event id). Returns how many.
 */
export async function replayEvent(pool: Pool, tables: ServiceTables, eventId: string): Promise<number> {
  const [result] = await pool.query<ResultSetHeader>(
    `UPDATE ${tables.webhookDeliveries}
        SET state = 'pending', attempts = 0, retry_from_utc = UTC_TIMESTAMP(3), next_attempt_at_utc = UTC_TIMESTAMP(3),
            finished_at_utc = NULL
      WHERE event_id = ?`,
    [idBytes(eventId)],
  );
  return result.affectedRows;
}

/** Every failed delivery back to be sent now; returns how many. */
export async function replayFailed(pool: Pool, tables: ServiceTables): Promise<number> {
  const [result] = await pool.query<ResultSetHeader>(
    `UPDATE ${tables.webhookDeliveries}
        SET state = 'pending', attempts = 0, retry_from_utc = UTC_TIMESTAMP(3), next_attempt_at_utc = UTC_TIMESTAMP(3),
            finished_at_utc = NULL
      WHERE state = 'failed'`,
  );
  return result.affectedRows;
}

/** Deliveries newest first, of one state or all, of one webhook or all. */
export async function listDeliveries(
  pool: Pool,
  tables: ServiceTables,
  { state, webhookId, limit }: { state?: DeliveryState; webhookId?: number; limit: number },
): Promise<DeliveryRow[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (state) {
    where.push('d.state = ?');
    params.push(state);
  }
  if (webhookId !== undefined) {
    where.push('d.webhook_id = ?');
    params.push(webhookId);
  }
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT d.event_id, d.event_type, d.webhook_id, w.url, w.api_key_id, d.state, d.attempts, d.created_at_utc,
            d.next_attempt_at_utc, d.last_attempt_at_utc, d.finished_at_utc, d.last_status, d.last_error
       FROM ${tables.webhookDeliveries} d LEFT JOIN ${tables.webhooks} w ON w.webhook_id = d.webhook_id
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY d.delivery_id DESC LIMIT ?`,
    [...params, limit],
  );
  return rows.map((row) => ({
    eventId: idText(row.event_id as Buffer),
    eventType: String(row.event_type),
    webhookId: Number(row.webhook_id),
    url: row.url === null ? null : String(row.url),
    apiKeyId: row.api_key_id === null ? null : Number(row.api_key_id),
    state: row.state as DeliveryState,
    attempts: Number(row.attempts),
    createdAt: iso(row.created_at_utc) as string,
    nextAttemptAt: row.state === 'pending' ? iso(row.next_attempt_at_utc) : null,
    lastAttemptAt: iso(row.last_attempt_at_utc),
    finishedAt: iso(row.finished_at_utc),
    lastStatus: row.last_status === null ? null : Number(row.last_status),
    lastError: row.last_error === null ? null : String(row.last_error),
  }));
}

/**
 * Deliveries by webhook: pending and failed (all of them), and delivered in the last 24 hours,
 * each a range of the `due` index, so the count never reads the whole outbox.
 */
export async function deliveryCounts(pool: Pool, tables: ServiceTables): Promise<Map<number, Record<DeliveryState, number>>> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT webhook_id, state, COUNT(*) AS n FROM ${tables.webhookDeliveries}
      WHERE state IN ('pending', 'failed') OR (state = 'delivered' AND next_attempt_at_utc > UTC_TIMESTAMP(3) - INTERVAL 1 DAY)
      GROUP BY webhook_id, state`,
  );
  const counts = new Map<number, Record<DeliveryState, number>>();
  for (const row of rows) {
    const id = Number(row.webhook_id);
    const entry = counts.get(id) ?? { pending: 0, delivered: 0, failed: 0 };
    entry[row.state as DeliveryState] = Number(row.n);
    counts.set(id, entry);
  }
  return counts;
}

/**
 * Deletes delivered and failed deliveries whose last attempt was before `cutoffMs`, a slice at a
 * time, each slice a range of the `due` index; returns how many.
 */
export async function purgeDeliveries(pool: Pool, tables: ServiceTables, cutoffMs: number): Promise<number> {
  const cutoff = new Date(cutoffMs).toISOString().slice(0, 23).replace('T', ' ');
  let deleted = 0;
  for (const state of ['delivered', 'failed']) {
    for (;;) {
      const [result] = await pool.query<ResultSetHeader>(
        `DELETE FROM ${tables.webhookDeliveries} WHERE state = ? AND next_attempt_at_utc < ? ORDER BY next_attempt_at_utc LIMIT 5000`,
        [state, cutoff],
      );
      deleted += result.affectedRows;
      if (result.affectedRows < 5000) break;
    }
  }
  return deleted;
}
