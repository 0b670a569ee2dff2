import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Pool } from 'mysql2/promise';
import type { ItflowSchema } from '../../itflow/schema.js';

export interface HealthDeps {
  pool: Pool;
  redis: Redis;
  schema: ItflowSchema;
}

/** /healthz: the process answers. /readyz: MySQL and Redis answer and the schema is known. */
export function registerHealth(app: FastifyInstance, deps: HealthDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [mysql, redis] = await Promise.all([
      deps.pool.query('SELECT 1').then(
        () => 'ok',
        () => 'unreachable',
      ),
      deps.redis.ping().then(
        () => 'ok',
        () => 'unreachable',
      ),
    ]);
    const ready = mysql === 'ok' && redis === 'ok';
    if (!ready) reply.code(503).header('Retry-After', '5');
    return {
      status: ready ? 'ready' : 'not ready',
      mysql,
      redis,
      itflow: { keyModel: deps.schema.keyModel, databaseVersion: deps.schema.databaseVersion, sla: deps.schema.hasSla },
    };
  });
}
