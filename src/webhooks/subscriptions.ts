// Webhook subscriptions: which URLs hear which events of which ITFlow API key. Added, listed
// and removed by an admin (src/cli/webhooks.ts); read by every worker through a short cache
// (SubscriptionIndex), so an install without webhooks writes no event and a new or removed
// subscription takes effect within AUTH_CACHE_SECONDS.
import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { utcTimestamp } from '../apply/ledger.js';
import type { ServiceTables } from '../db/tables.js';
import { type EventType, isEventType } from './events.js';

export interface Subscription {
  webhookId: number;
  apiKeyId: number;
  url: string;
  events: EventType[];
  /** As stored: see src/webhooks/secrets.ts. */
  secret: string;
  createdAt: string;
}

function toSubscription(row: RowDataPacket): Subscription {
  return {
    webhookId: Number(row.webhook_id),
    apiKeyId: Number(row.api_key_id),
    url: String(row.url),
    events: String(row.events).split(',').filter(isEventType),
    secret: String(row.secret),
    createdAt: `${String(row.created_at_utc).replace(' ', 'T')}Z`,
  };
}

export async function addSubscription(
  pool: Pool,
  tables: ServiceTables,
  s: { apiKeyId: number; url: string; events: EventType[]; sealedSecret: string },
): Promise<number> {
  const [result] = await pool.query<ResultSetHeader>(
    `INSERT INTO ${tables.webhooks} (api_key_id, url, events, secret, created_at_utc) VALUES (?, ?, ?, ?, ?)`,
    [s.apiKeyId, s.url, s.events.join(','), s.sealedSecret, utcTimestamp(Date.now())],
  );
  return result.insertId;
}

export async function listSubscriptions(pool: Pool, tables: ServiceTables): Promise<Subscription[]> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT webhook_id, api_key_id, url, events, secret, created_at_utc FROM ${tables.webhooks} ORDER BY webhook_id`,
  );
  return rows.map(toSubscription);
}

export async function getSubscription(pool: Pool, tables: ServiceTables, webhookId: number): Promise<Subscription | null> {
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT webhook_id, api_key_id, url, events, secret, created_at_utc FROM ${tables.webhooks} WHERE webhook_id = ?`,
    [webhookId],
  );
  return rows[0] ? toSubscription(rows[0]) : null;
}

/** Removes a subscription and its deliveries, delivered or not; false when there was none. */
export async function removeSubscription(pool: Pool, tables: ServiceTables, webhookId: number): Promise<boolean> {
  const [result] = await pool.query<ResultSetHeader>(`DELETE FROM ${tables.webhooks} WHERE webhook_id = ?`, [webhookId]);
  await pool.query(`DELETE FROM ${tables.webhookDeliveries} WHERE webhook_id = ?`, [webhookId]);
  return result.affectedRows > 0;
}

/** The subscriptions in force, by key and event type, as the apply path and the dispatcher ask. */
export class SubscriptionIndex {
  private readonly byKey = new Map<number, Map<EventType, Subscription[]>>();

  constructor(readonly all: Subscription[]) {
    for (const s of all) {
      const events = this.byKey.get(s.apiKeyId) ?? new Map<EventType, Subscription[]>();
      for (const event of s.events) events.set(event, [...(events.get(event) ?? []), s]);
      this.byKey.set(s.apiKeyId, events);
    }
  }

  get empty(): boolean {
    return this.all.length === 0;
  }

  /** The subscriptions of `apiKeyId` that hear `event`. */
  subscribers(apiKeyId: number, event: EventType): Subscription[] {
    return this.byKey.get(apiKeyId)?.get(event) ?? [];
  }

  hears(event: EventType): boolean {
    return this.all.some((s) => s.events.includes(event));
  }
}

/**
 * The subscription index, read again once it is older than `ttlMs` (0: on every call). Shared by
 * the apply path and the dispatcher of one worker process; `onEventsWritten` lets the apply path
 * wake the dispatcher as soon as a transaction has written events.
 */
export class WebhookSubscriptions {
  private cached: { index: SubscriptionIndex; at: number } | null = null;
  private loading: Promise<SubscriptionIndex> | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly pool: Pool,
    private readonly tables: ServiceTables,
    private readonly ttlMs: number,
  ) {}

  async current(): Promise<SubscriptionIndex> {
    if (this.cached && Date.now() - this.cached.at < this.ttlMs) return this.cached.index;
    this.loading ??= listSubscriptions(this.pool, this.tables)
      .then((all) => {
        const index = new SubscriptionIndex(all);
        this.cached = { index, at: Date.now() };
        return index;
      })
      .finally(() => {
        this.loading = null;
      });
    return this.loading;
  }

  onEventsWritten(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  eventsWritten(): void {
    for (const listener of this.listeners) listener();
  }
}
