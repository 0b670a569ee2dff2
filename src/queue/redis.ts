import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import { type Config, redactConnectionUrl } from '../config.js';
import { NETWORK_ERROR_CODES } from '../errors.js';

/**
 * Where the service's Redis is: one server (REDIS_URL), a primary found through sentinels, or a
 * Redis Cluster.
 */
export type RedisSettings = Pick<
  Config,
  'REDIS_URL' | 'REDIS_SENTINELS' | 'REDIS_SENTINEL_NAME' | 'REDIS_SENTINEL_PASSWORD' | 'REDIS_CLUSTER_NODES'
>;

/** A connection of the service: to one server (standalone or through sentinels), or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** The Redis a connection goes to, for log lines and error messages (no password). */
export function describeRedis(settings: RedisSettings): string {
  if (settings.REDIS_CLUSTER_NODES !== undefined) return describeCluster(settings.REDIS_CLUSTER_NODES);
  if (settings.REDIS_SENTINELS === undefined) return redactConnectionUrl(settings.REDIS_URL);
  const sentinels = settings.REDIS_SENTINELS.map(({ host, port }) => `${host}:${port}`).join(',');
  return `the primary '${settings.REDIS_SENTINEL_NAME}' of the sentinels ${sentinels}`;
}

/**
 * Redis connections by use:
 * - `command`: the intake's producer and look-ups. Fails fast while Redis is away (no
 *   offline queue) so a client gets 503 + Retry-After at once instead of a hung request.
 * - `blocking`: BullMQ workers and subscribers, which must wait out an outage and resume.
 *
 * `pipelineTurns`: the connection sends the commands made in one turn of the event loop together,
 * as one pipeline, while the previous one is answered (ioredis auto-pipelining) — for the
 * process's main connection, which every request and batch uses. Not for a connection that runs a
 * command that blocks (WAIT, a blocking pop): everything queued behind it would wait. On a
 * Redis Cluster it is off (pipelines are already split per node where they are many: cluster.ts).
 */
export function createRedis(
  settings: RedisSettings,
  use: 'command' | 'blocking',
  name: string,
  { pipelineTurns = false }: { pipelineTurns?: boolean } = {},
): RedisClient {
  if (settings.REDIS_CLUSTER_NODES !== undefined)
    return createCluster(settings.REDIS_URL, settings.REDIS_CLUSTER_NODES, use, name);
  const options: RedisOptions = {
    ...sentinelOptions(settings),
    connectionName: name,
    connectTimeout: 5_000,
    lazyConnect: false,
    retryStrategy: reconnectDelay,
    enableAutoPipelining: pipelineTurns,
    ...(use === 'command'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1 }
      : { enableOfflineQueue: true, maxRetriesPerRequest: null }),
  };
  const redis = new Redis(settings.REDIS_URL, options);
  // Errors surface on the calls that hit them; an unhandled 'error' event would crash the process.
  redis.on('error', () => {});
  return settings.REDIS_SENTINELS === undefined ? redis : reconnectWhenEndedUnasked(redis);
}

/** How long before the n-th try to reach Redis again (a server, the sentinels, a cluster): 200 ms more each time, 2 s at most. */
const reconnectDelay = (times: number) => Math.min(times * 200, 2_000);

/** How soon a connection that ended without being closed is connected again (ms). */
const REVIVE_AFTER_MS = 200;

/**
 * ioredis (6.0) can end a Sentinel-mode connection for good in a failover: when its failover
 * detector hears +switch-master while the connection is already reconnecting (the old primary
 * died) and asking the sentinels where the primary is, that attempt is abandoned with
 * "Connection is closed." and the connection goes to status 'end' — no more retries, every
 * command refused from then on (as in ioredis issue #1683). The fault test met it in three
 * failovers out of seven. So a connection that ends without its owner having closed it (quit, disconnect) is
 * connected again, and so is every duplicate of it (BullMQ duplicates a worker's connection).
 */
function reconnectWhenEndedUnasked(redis: Redis): Redis {
  let closedByOwner = false;
  const { quit, disconnect, connect, duplicate } = redis;
  Object.assign(redis, {
    quit: (...args: unknown[]) => {
      closedByOwner = true;
      return (quit as (...a: unknown[]) => unknown).apply(redis, args);
    },
    disconnect: (reconnect = false) => {
      if (!reconnect) closedByOwner = true;
      disconnect.call(redis, reconnect);
    },
    // Connecting again (BullMQ does, after disconnecting a blocked connection) undoes a close.
    connect: (...args: Parameters<Redis['connect']>) => {
      closedByOwner = false;
      return connect.apply(redis, args);
    },
    duplicate: (...args: Parameters<Redis['duplicate']>) => reconnectWhenEndedUnasked(duplicate.apply(redis, args)),
  });
  redis.on('end', () => {
    if (closedByOwner) return;
    setTimeout(() => {
      if (!closedByOwner && redis.status === 'end') connect.call(redis).catch(() => {});
    }, REVIVE_AFTER_MS).unref();
  });
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
    sentinelRetryStrategy: reconnectDelay,
    // A write that reaches a primary just demoted to a replica: reconnect (to the new primary)
    // and send it again there.
    reconnectOnError: (error) => (/^READONLY\b/.test(error.message) ? 2 : false),
  };
}

/**
 * Whether an error only says that Redis is away or still starting (refused, reset or closed
 * connection, nothing sent while it is down, loading its data; on a cluster also a shard without
 * its primary until a replica takes over). watchRedis tells that once per outage, so the many
 * places that meet it — every lane's worker, every poll — log it at debug.
 */
export function isRedisConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (e?.code !== undefined && NETWORK_ERROR_CODES.has(e.code)) return true;
  return (
    /Connection is closed|Stream isn't writeable|Reached the max retries per request|^LOADING\b/.test(e?.message ?? '') ||
    CLUSTER_UNAVAILABLE.test(e?.message ?? '')
  );
}

/**
 * Says once when the connection to Redis is lost and once when it is back (the process's
 * other connections follow the same server, so one connection speaks for them all).
 */
export function watchRedis(redis: RedisClient, logger: Logger): void {
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
export async function redisReady(redis: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (redis.status !== 'ready') await connected(redis, timeoutMs);
  // A cluster has database 0 only (the configuration refuses another).
  if (redis instanceof Redis) await onNamedDatabase(redis);
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

async function connected(redis: RedisClient, timeoutMs: number): Promise<void> {
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

/**
 * Deletes every key under `prefix:` (a test's queue, or the demo's on --reset); in a cluster, on
 * every primary, one key per DEL (a DEL of several keys must keep to one slot).
 */
export async function deleteKeysUnder(redis: RedisClient, prefix: string): Promise<number> {
  let deleted = 0;
  for (const server of primaries(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length === 0) continue;
      if (redis instanceof Cluster)
        deleted += (await Promise.all(keys.map((key) => server.del(key)))).reduce((sum, n) => sum + n, 0);
      else deleted += await server.del(...keys);
    } while (cursor !== '0');
  }
  return deleted;
}

// --- Redis Cluster (REDIS_CLUSTER_NODES) ---

/**
 * A cluster's ways of saying a slot has no primary right now (a shard's primary died and no
 * replica has taken over yet) or that ioredis cannot reach the cluster: outages, like a refused
 * connection to one server.
 */
const CLUSTER_UNAVAILABLE =
  /CLUSTERDOWN|^TRYAGAIN\b|^MASTERDOWN\b|Too many Cluster redirections|Failed to refresh slots cache|Cluster isn't ready|None of startup nodes is available/;

function describeCluster(nodes: Array<{ host: string; port: number }>): string {
  return `the Redis Cluster of ${nodes.map(({ host, port }) => `${host}:${port}`).join(',')}`;
}

/**
 * A Redis Cluster connection: ioredis finds every node from the ones listed, follows MOVED/ASK
 * redirections and failovers, and sends each command to the primary of its key's slot. REDIS_URL's
 * user, password and rediss: apply to every node; its host and port are unused.
 */
function createCluster(
  url: string,
  nodes: Array<{ host: string; port: number }>,
  use: 'command' | 'blocking',
  name: string,
): Cluster {
  const parsed = new URL(url);
  const cluster = new Cluster(nodes, {
    lazyConnect: false,
    clusterRetryStrategy: reconnectDelay,
    enableOfflineQueue: use !== 'command',
    redisOptions: {
      connectionName: name,
      connectTimeout: 5_000,
      ...(parsed.username === '' ? {} : { username: decodeURIComponent(parsed.username) }),
      ...(parsed.password === '' ? {} : { password: decodeURIComponent(parsed.password) }),
      ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
      maxRetriesPerRequest: use === 'command' ? 1 : null,
    },
  });
  cluster.on('error', () => {});
  return cluster;
}

/** The servers that hold keys: every primary of a cluster, or the one server. */
export function primaries(redis: RedisClient): Redis[] {
  return redis instanceof Cluster ? redis.nodes('master') : [redis];
}
