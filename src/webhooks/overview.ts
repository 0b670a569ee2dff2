// Webhooks as an admin looks at them (`cli webhooks list`, the dashboard): each subscription
// with its key's name and its deliveries: pending, delivered in the last 24 hours, failed.
// Secrets are never part of it.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';
import { type DeliveryState, deliveryCounts } from './deliveries.js';
import type { EventType } from './events.js';
import { listSubscriptions } from './subscriptions.js';

/** The name ITFlow gives an API key, or null when it has none by that id. */
export async function apiKeyName(pool: Pool, apiKeyId: number): Promise<string | null> {
  const [rows] = await pool.query<RowDataPacket[]>('SELECT api_key_name FROM api_keys WHERE api_key_id = ?', [apiKeyId]);
  return rows[0] ? String(rows[0].api_key_name) : null;
}

export interface ListedWebhook {
  webhook_id: number;
  api_key_id: number;
  api_key_name: string | null;
  url: string;
  events: EventType[];
  created_at: string;
  deliveries: Record<DeliveryState, number>;
}

export async function listWebhooks(pool: Pool, tables: ServiceTables): Promise<ListedWebhook[]> {
  const [subscriptions, counts] = await Promise.all([listSubscriptions(pool, tables), deliveryCounts(pool, tables)]);
  const names = new Map<number, string | null>();
  for (const { apiKeyId } of subscriptions) if (!names.has(apiKeyId)) names.set(apiKeyId, await apiKeyName(pool, apiKeyId));
  return subscriptions.map((s) => ({
    webhook_id: s.webhookId,
    api_key_id: s.apiKeyId,
    api_key_name: names.get(s.apiKeyId) ?? null,
    url: s.url,
    events: s.events,
    created_at: s.createdAt,
    deliveries: counts.get(s.webhookId) ?? { pending: 0, delivered: 0, failed: 0 },
  }));
}
