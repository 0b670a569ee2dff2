import type { Redis, RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { type Config, redactConnectionUrl } from '../config.js';
import { NETWORK_ERROR_CODES } from '../errors.js';
import { TurnWriteRedis } from './turnWrites.js';

/** Where the service's Redis is: one server (REDIS_URL), or a primary found through sentinels. */
export type RedisSettings = Pick<Config, 'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD'>;

/** The Redis a connection goes to, for log lines and error messages (no password). */
export function describeRedis(settings: RedisSettings): string {
  if (settings.REDIS_SENTINELS === undefined) return redactConnectionUrl(settings.REDIS_URL);
  const sentinels = settings.REDIS_SENTINELS.map(({ host, port }) => `${host}:${port}`).join(',');
  return `the primary '${settings.REDIS_SENTINEL_NAME}' of the sentinels ${sentinels}`;
}

/**
 * Redis connections by use:
 * - `command`: the intake's producer and look-ups. Fails fast while Redis is away (no
 *   offline queue) so a client gets 503 + Retry-After at once instead of a hung request.
 * - `blocking`: BullMQ workers and subscribers, which must wait out an outage and resume.
 */
export function createRedis(settings: RedisSettings, use: 'command' | 'blocking', name: string): Redis {
  const options: RedisOptions = {
    ...sentinelOptions(settings),
    connectionName: name,
    connectTimeout: 5_000,
    lazyConnect: false,
    retryStrategy: (times) => Math.min(times * 200, 2_000),
    ...(use === 'command'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1 }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
  const redis = new TurnWriteRedis(settings.REDIS_URL, options);
  // Errors surface on the calls that hit them; an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return redis;
}

/**
 * In Sentinel mode ioredis asks the sentinels for the primary on every (re)connection, checks the
 * server it reaches says it is a primary, and with failoverDetector also listens for the
 * sentinels' +switch-master to move at once rather than when the old primary's socket fails.
 * REDIS_URL's host and port are then unused; its user, password, db and rediss: still apply.
 */
function sentinelOptions(settings: RedisSettings): Partial<RedisOptions> {
  if (settings.REDIS_SENTINELS === undefined) return {};
  return {
    sentinels: settings.REDIS_SENTINELS,
    name: settings.REDIS_SENTINEL_NAME as string,
    ...(settings.REDIS_SENTINEL_PASSWORD === undefined ? {} : { sentinelPassword: settings.REDIS_SENTINEL_PASSWORD }),
    role: 'master',
    failoverDetector: true,
    sentinelRetryStrategy: (times) => Math.min(times * 200, 2_000),
    // A write that reaches a primary just demoted to a replica: reconnect (to the new primary)
    // and send it again there.
    reconnectOnError: (error) => (/^READONLY\b/.test(error.message) ? 2 : false),
  };
}

/**
 * Whether an error only says that Redis is away or still starting (refused, reset or closed
 * connection, nothing sent while it is down, loading its data). watchRedis tells that once per
 * outage, so the many places that meet it — every lane's worker, every poll — log it at debug.
 */
export function isRedisConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (e?.code !== undefined && NETWORK_ERROR_CODES.has(e.code)) return true;
  return /Connection is closed|Stream isn't writeable|Reached the max retries per request|^LOADING\b/.test(e?.message ?? '');
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

/** REDIS_URL names a database index the server does not have. */
export class RedisDatabaseRefused extends Error {}

/**
 * Resolves once the connection is ready and on the database REDIS_URL names (or rejects after
 * timeoutMs, or with RedisDatabaseRefused).
 */
export async function redisReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status !== 'ready') await connected(redis, timeoutMs);
  await onNamedDatabase(redis);
}

/**
 * ioredis answers a refused SELECT (redis://…/99 on a server with 16 databases) with an 'error'
 * event and goes on, ready, on database 0 — another install's queue, maybe. So the database is
 * selected again here, where a refusal can stop the process.
 */
async function onNamedDatabase(redis: Redis): Promise<void> {
  const db = Number(redis.options.db ?? 0);
  if (db === 0) return;
  try {
    await redis.select(db);
  } catch (error) {
    const where = `${redis.options.host}:${redis.options.port}`;
    const databases = await redis.config('GET', 'databases').then(
      (answer) => Number((answer as string[])[1]),
      () => Number.NaN,
    );
    throw new RedisDatabaseRefused(
      databases > 0
        ? `REDIS_URL selects Redis database ${db}, but the server at ${where} has databases 0 to ${databases - 1} only: use one of those (or raise \`databases\` in redis.conf).`
        : `REDIS_URL selects Redis database ${db}, which the server at ${where} refuses (${(error as Error).message}): use a database it has (see \`databases\` in redis.conf).`,
    );
  }
}

async function connected(redis: Redis, timeoutMs: number): Promise<void> {
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
