import mysql from 'mysql2/promise';
import { createItflowDatabase, withDatabase } from '../src/demo/itflowDatabase.js';
import { clearRedisPrefix } from './service.js';

export const BENCH_KEY = 'bench-admin-key';
export const BENCH_MYSQL = process.env.BENCH_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/';
export const BENCH_REDIS = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Service settings that, set when running the bench or the soak, reach the service (QUEUE_PARTITIONS=64 npm run bench). */
const TUNING = [
  'SERVICE_WORKERS',
  'QUEUE_PARTITIONS',
  'WORKER_CONCURRENCY',
  'BATCH_MAX_COMMANDS',
  'BATCH_LINGER_MS',
  'WORKER_LOCK_SECONDS',
  'SHUTDOWN_TIMEOUT_SECONDS',
  'LOG_LEVEL',
];

/** The tuning variables set in this environment. */
export function tuningFromEnvironment(): Record<string, string> {
  return Object.fromEntries(TUNING.flatMap((name) => (process.env[name] ? [[name, process.env[name] as string]] : [])));
}

/**
 * The environment of the service under test: its own database, queue prefix and port, warn
 * logs, the tuning set for the run, and rate limits that run (their Redis calls are part of a
 * request's cost) but never bite — one bench key sends far more than the default 1,000/s.
 */
export function benchServiceEnv(database: string, prefix: string, port: string): Record<string, string> {
  return {
    DATABASE_URL: withDatabase(BENCH_MYSQL, database),
    REDIS_URL: BENCH_REDIS,
    PORT: port,
    QUEUE_PREFIX: prefix,
    LOG_LEVEL: 'warn',
    RATE_LIMIT_PER_KEY_PER_MINUTE: '100000000',
    RATE_LIMIT_PER_IP_PER_MINUTE: '100000000',
    ...tuningFromEnvironment(),
  };
}

/** Empties the bench database (see resetBenchDatabase) and the queue under `prefix`. */
export async function freshBench(url: string, prefix: string): Promise<void> {
  await resetBenchDatabase(url);
  await clearRedisPrefix(BENCH_REDIS, prefix);
}

/**
 * A fresh ITFlow database (newest schema) with one admin key and `tickets` open tickets, each
 * unassigned and opened by the key's own user (so no notifications: the same rows every run).
 */
export async function createBenchDatabase(serverUrl: string, database: string, tickets: number): Promise<string> {
  await createItflowDatabase(serverUrl, database, '2.6.7');
  const url = withDatabase(serverUrl, database);
  const conn = await mysql.createConnection({ uri: url });
  try {
    await conn.query("INSERT INTO clients (client_id, client_name) VALUES (1, 'Bench client')");
    await conn.query("INSERT INTO user_roles (role_id, role_name, role_is_admin) VALUES (1, 'Admin', 1)");
    await conn.query(
      "INSERT INTO users (user_id, user_name, user_email, user_password, user_role_id) VALUES (1, 'Bench', 'b@x', '!', 1)",
    );
    await conn.query(
      "INSERT INTO api_keys (api_key_name, api_key_secret, api_key_decrypt_hash, api_key_expire, api_key_user_id) VALUES ('Bench', ?, '', '2099-12-31', 1)",
      [BENCH_KEY],
    );
    const rows = Array.from({ length: tickets }, (_, i) => ['TCK-', i + 1, `Bench ticket ${i + 1}`, '', 2, 1, 1]);
    for (let i = 0; i < rows.length; i += 1000) {
      await conn.query(
        `INSERT INTO tickets (ticket_prefix, ticket_number, ticket_subject, ticket_details, ticket_status, ticket_client_id, ticket_created_by) VALUES ?`,
        [rows.slice(i, i + 1000)],
      );
    }
  } finally {
    await conn.end();
  }
  return url;
}

/** Empties what a run wrote, keeping the tickets, so scenarios start alike. */
export async function resetBenchDatabase(url: string): Promise<void> {
  const conn = await mysql.createConnection({ uri: url });
  try {
    for (const table of ['ticket_replies', 'logs', 'ticket_history', 'notifications']) await conn.query(`TRUNCATE ${table}`);
    await conn.query('DELETE FROM rq_commands').catch(() => {});
    // The service's own rows about replies go with them: a read projection still holding the
    // last scenario's reply ids (TRUNCATE starts the ids again from 1) makes every insert an
    // update and its follower repair row after row — a cost no real install has. (Each table is
    // there once the service has migrated; before, there is nothing to empty.)
    for (const table of ['rq_read_replies', 'rq_read_tickets', 'rq_read_state', 'rq_external_ids', 'rq_hook_outbox']) {
      await conn.query(`TRUNCATE ${table}`).catch(() => {});
    }
    await conn.query('UPDATE tickets SET ticket_updated_at = NULL, ticket_first_response_at = NULL');
  } finally {
    await conn.end();
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}
