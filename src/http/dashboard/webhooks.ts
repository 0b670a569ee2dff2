// The dashboard's webhooks panel (src/webhooks/): each subscription with its deliveries by state,
// the deliveries that failed for good or are being retried, and a replay — the same functions as
// `npm run cli -- webhooks list|deliveries|replay`.
import type { FastifyInstance } from 'fastify';
import type { Pool } from 'mysql2/promise';
import type { ServiceTables } from '../../db/tables.js';
import { NotFound } from '../../errors.js';
import { listDeliveries, replayEvent } from '../../webhooks/deliveries.js';
import { listWebhooks } from '../../webhooks/overview.js';

const LISTED = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function registerWebhooksApi(api: FastifyInstance, pool: Pool, tables: ServiceTables): void {
  api.get('/webhooks', async () => {
    const [webhooks, failed, pending] = await Promise.all([
      listWebhooks(pool, tables),
      listDeliveries(pool, tables, { state: 'failed', limit: LISTED }),
      listDeliveries(pool, tables, { state: 'pending', limit: LISTED }),
    ]);
    // Pending deliveries with no attempt yet are on their way; those tried are being retried.
    return { webhooks, failed, retrying: pending.filter((d) => d.attempts > 0), listed: LISTED };
  });

  api.post<{ Params: { eventId: string } }>('/webhooks/events/:eventId/replay', async (request) => {
    const { eventId } = request.params;
    const deliveries = UUID.test(eventId) ? await replayEvent(pool, tables, eventId) : 0;
    if (deliveries === 0) throw new NotFound(`No delivery of event ${eventId}.`);
    request.log.info({ eventId, deliveries, by: request.principal?.keyName }, 'webhook event replayed from the dashboard');
    return { eventId, deliveries };
  });
}
