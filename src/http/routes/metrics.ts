import type { FastifyInstance } from 'fastify';
import type { ServiceMetrics } from '../../metrics/registry.js';

/** GET /metrics: this process's metrics in Prometheus text format. Scrapes are not request-logged. */
export function registerMetrics(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.get('/metrics', { logLevel: 'warn' }, async (_request, reply) => {
    const { contentType, text } = await metrics.exposition();
    return reply.type(contentType).send(text);
  });
}
