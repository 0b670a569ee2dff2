import type { FastifyInstance } from 'fastify';
import type { Pool } from 'mysql2/promise';
import { answersWithin } from '../../db/pool.js';
import { beforeDeadline } from '../../deadline.js';
import type { ItflowSchema } from '../../itflow/schema.js';
import type { RedisClient } from '../../queue/redis.js';
import { onlineReplicas } from '../../queue/replication.js';

export interface HealthDeps {
  pool: Pool;
  redis: RedisClient;
  schema: ItflowSchema;
  /** REDIS_MIN_REPLICAS_ACK, on an intake: /readyz then says how many replicas are online. */
  replicasRequired?: number;
}

/**
 * How long /readyz waits for each dependency. A probe must answer even when a dependency
 * neither answers nor refuses (a network partition); one that does not answer in time is
 * unreachable as far as serving requests goes.
 */
const READY_TIMEOUT_MS = 2_000;

/** /healthz: the process answers. /readyz: MySQL and Redis answer and the schema is known. */
export function registerHealth(app: FastifyInstance, deps: HealthDeps): void {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [mysql, redis] = await Promise.all([
      answersWithin(deps.pool, READY_TIMEOUT_MS).then((ok) => (ok ? 'ok' : 'unreachable')),
      beforeDeadline(deps.redis.ping(), READY_TIMEOUT_MS, () => new Error('no answer')).then(
        () => 'ok',
        () => 'unreachable',
      ),
    ]);
    const ready = mysql === 'ok' && redis === 'ok';
    if (!ready) reply.code(503).header('Retry-After', '5');
    // Too few replicas do not make the intake unready: reads still work, and every intake shares
    // the same Redis, so taking them out of the load balancer would only turn 503s into refusals.
    const required = deps.replicasRequired ?? 0;
    const replicas =
      required > 0 && redis === 'ok'
        ? {
            redisReplicas: {
              online: await beforeDeadline(onlineReplicas(deps.redis), READY_TIMEOUT_MS, () => new Error('no answer')).catch(
                () => null,
              ),
              required,
            },
          }
        : {};
    return {
      status: ready ? 'ready' : 'not ready',
      mysql,
      redis,
      ...replicas,
      itflow: { keyModel: deps.schema.keyModel, databaseVersion: deps.schema.databaseVersion, sla: deps.schema.hasSla },
    };
  });
}
