import type { FastifyInstance } from 'fastify';
import type { ServiceMetrics } from '../../metrics/registry.js';
import { routeOf } from '../requestLog.js';

/**
 * GET /metrics: this process's metrics in Prometheus text format. Every request this server
 * answers, scrapes included, is counted by route pattern and status with its response time.
 */
export function registerMetrics(app: FastifyInstance, metrics: ServiceMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpRequestFinished(request.method, routeOf(request), reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get('/metrics', async (_request, reply) => {
    const { contentType, text } = await metrics.exposition();
    return reply.type(contentType).send(text);
  });
}
