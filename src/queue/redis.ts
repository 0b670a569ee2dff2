import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

/**
 * Redis connections by use:
 * - `command`: the intake's producer and look-ups. Fails fast while Redis is away (no
 *   offline queue) so a client gets 503 + Retry-After at once instead of a hung request.
 * - `blocking`: BullMQ workers and subscribers, which must wait out an outage and resume.
 */
export function createRedis(url: string, use: 'command' | 'blocking', name: string): Redis {
  const options: RedisOptions = {
    connectionName: name,
    connectTimeout: 5_000,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...(use === 'command'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1 }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
  const redis = new Redis(url, options);
  // Errors surface on the calls that hit them; an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return redis;
}

/**
 * Says once when the connection to Redis is lost and once when it is back (the process's
 * other connections follow the same server, so one connection speaks for them all).
 */
export function watchRedis(redis: Redis, logger: Logger): void {
  let lostAt: number | null = null;
  redis.on('close', () => {
    if (lostAt !== null) return;
    lostAt = Date.now();
    logger.warn('Redis connection lost; the intake answers 503 and workers wait until it is back');
  });
  redis.on('ready', () => {
    if (lostAt === null) return;
    logger.info({ outageMs: Date.now() - lostAt }, 'Redis is reachable again');
    lostAt = null;
  });
}

/** Resolves once the connection is ready (or rejects after timeoutMs). */
export async function redisReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`Redis did not answer within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      clearTimeout(timer);
      redis.off('ready', onReady);
    };
    redis.on('ready', onReady);
  });
}

/** Deletes every key under `prefix:` (a test's queue, or the demo's on --reset). */
export async function deleteKeysUnder(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}
