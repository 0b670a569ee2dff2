import { randomBytes } from 'node:crypto';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { inject } from 'vitest';
import { idBytes } from '../../src/apply/ledger.js';
import { type Config, loadConfig } from '../../src/config.js';
import { createPool } from '../../src/db/pool.js';
import { createItflowDatabase, dropDatabase, type Generation, withDatabase } from '../../src/demo/itflowDatabase.js';
import { createLogger } from '../../src/logger.js';
import { createRedis, deleteKeysUnder, type RedisSettings, redisReady } from '../../src/queue/redis.js';
import { type Roles, type RunningService, startService } from '../../src/service.js';

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export interface Harness {
  url: string;
  db: Pool;
  config: Config;
  generation: Generation;
  service: RunningService;
  post(path: string, body: unknown, options?: { key?: string; headers?: Record<string, string> }): Promise<Answer>;
  get(path: string, options?: { key?: string; headers?: Record<string, string> }): Promise<Answer>;
  /** Polls the ledger until the command has finished; returns its row. */
  finished(commandId: string, timeoutMs?: number): Promise<RowDataPacket>;
  query<T = RowDataPacket>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Environment for a service process (workers/*.ts) on this harness's database and queue. */
  processEnv(extra?: Record<string, string>): Record<string, string>;
  /** Starts another in-process service (e.g. a worker) on the same database and queue. */
  startPeer(roles: Roles, env?: Record<string, string>): Promise<RunningService>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  generation: Generation;
  timeZone?: string;
  roles?: Roles;
  env?: Record<string, string>;
}

/**
 * One HTTP request to a service at `url`: a body that is not a string is sent as JSON (with
 * Content-Type: application/json unless the headers say otherwise); the answer's body is parsed
 * as JSON when it is JSON.
 */
export async function httpRequest(
  url: string,
  method: string,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const sent = { ...headers };
  if (body !== undefined && !('Content-Type' in sent)) sent['Content-Type'] = 'application/json';
  const response = await fetch(`${url}${path}`, {
    method,
    headers: sent,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, body: parsed };
}

/** A unique name for this file's database and queue prefix. */
export function uniqueName(label: string): string {
  return `rqt_${label}_${randomBytes(4).toString('hex')}`;
}

/**
 * TEST_REDIS_CLUSTER_NODES (host:port,…) runs the harness's services on that Redis Cluster instead
 * of the local Redis (docs/development.md); tests that open Redis connections of their own still
 * use TEST_REDIS_URL's.
 */
const CLUSTER_NODES = process.env.TEST_REDIS_CLUSTER_NODES;

/** Test configuration: this file's database and queue prefix, an ephemeral port, quiet logs. */
export function testConfig(database: string, prefix: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    DATABASE_URL: withDatabase(inject('mysqlUrl'), database),
    REDIS_URL: inject('redisUrl'),
    ...(CLUSTER_NODES ? { REDIS_CLUSTER_NODES: CLUSTER_NODES } : {}),
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'silent',
    QUEUE_PREFIX: prefix,
    QUEUE_PARTITIONS: '8',
    AUTH_CACHE_SECONDS: '0',
    WORKER_LOCK_SECONDS: '5',
    SHUTDOWN_TIMEOUT_SECONDS: '5',
    ...env,
  });
}

/** Builds this file's ITFlow database from the fixture of `generation` and starts the service on it. */
export async function startHarness(options: HarnessOptions): Promise<Harness> {
  const name = uniqueName(options.generation.replace(/\./g, ''));
  await createItflowDatabase(inject('mysqlUrl'), name, options.generation, { timeZone: options.timeZone });
  const config = testConfig(name, name, options.env);
  const service = await startService(config, options.roles ?? { intake: true, worker: true }, createLogger('silent'));
  const peers: RunningService[] = [];
  const db = createPool(config.DATABASE_URL, 4);
  const url = service.url ?? '';

  const call = (method: string, path: string, body: unknown, opts: { key?: string; headers?: Record<string, string> } = {}) =>
    httpRequest(url, method, path, body, {
      ...(opts.headers ?? {}),
      ...(opts.key !== undefined ? { 'X-API-Key': opts.key } : {}),
    });

  const query = async <T>(sql: string, params: unknown[] = []) => {
    const [rows] = await db.query(sql, params);
    return rows as T[];
  };

  return {
    url,
    db,
    config,
    generation: options.generation,
    service,
    post: (path, body, opts) => call('POST', path, body, opts),
    get: (path, opts) => call('GET', path, undefined, opts),
    query,
    async finished(commandId, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const rows = await query<RowDataPacket>('SELECT * FROM rq_commands WHERE command_id = ?', [idBytes(commandId)]);
        if (rows[0]) return rows[0];
        if (Date.now() > deadline) throw new Error(`command ${commandId} did not finish within ${timeoutMs} ms`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    },
    processEnv(extra = {}) {
      return {
        DATABASE_URL: config.DATABASE_URL,
        REDIS_URL: config.REDIS_URL,
        QUEUE_PREFIX: config.QUEUE_PREFIX,
        QUEUE_PARTITIONS: String(config.QUEUE_PARTITIONS),
        ...(CLUSTER_NODES ? { REDIS_CLUSTER_NODES: CLUSTER_NODES } : {}),
        AUTH_CACHE_SECONDS: '0',
        WORKER_LOCK_SECONDS: String(config.WORKER_LOCK_SECONDS),
        PORT: '0',
        LOG_LEVEL: 'info',
        ...options.env,
        ...extra,
      };
    },
    async startPeer(roles, env = {}) {
      const peer = await startService(testConfig(name, name, { ...options.env, ...env }), roles, createLogger('silent'));
      peers.push(peer);
      return peer;
    },
    async close() {
      for (const peer of peers) await peer.close();
      await service.close();
      await db.end();
      await dropDatabase(inject('mysqlUrl'), name);
      await deleteQueueKeys(config, config.QUEUE_PREFIX);
    },
  };
}

/** Removes every Redis key under a test's queue prefix (on a cluster, from every primary). */
export async function deleteQueueKeys(redis: string | RedisSettings, prefix: string): Promise<void> {
  const connection = createRedis(typeof redis === 'string' ? { REDIS_URL: redis } : redis, 'blocking', 'test-cleanup');
  try {
    await redisReady(connection);
    await deleteKeysUnder(connection, prefix);
  } finally {
    connection.disconnect();
  }
}
