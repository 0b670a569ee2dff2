import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { Pool } from 'mysql2/promise';
import { answersWithin } from '../../db/pool.js';
import type { ItflowSchema } from '../../itflow/schema.js';

export interface HealthDeps {
  pool: Pool;
  redis: Redis;
  schema: ItflowSchema;
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
      within(deps.redis.ping(), READY_TIMEOUT_MS).then(
        (ok) => (ok ? 'ok' : 'unreachable'),
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

/** true when `promise` settles successfully within timeoutMs, false when the time runs out first. */
async function within(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([promise.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
