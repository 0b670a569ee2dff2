import mysql, { type Pool, type PoolConnection, type PoolOptions } from 'mysql2/promise';
import { beforeDeadline } from '../deadline.js';
import { TransientDbError } from '../errors.js';

/**
 * A mysql2 pool as every part of the service uses it: DATETIMEs come back as the
 * 'YYYY-MM-DD HH:MM:SS' strings ITFlow stored (never converted through a JS Date, which
 * would apply the server's zone a second time), and values are bound, never interpolated.
 */
export function createPool(
  databaseUrl: string,
  connectionLimit: number,
  { sessionSql = [], ...extra }: PoolOptions & { sessionSql?: string[] } = {},
): Pool {
  const pool = mysql.createPool({
    uri: databaseUrl,
    connectionLimit,
    maxIdle: connectionLimit,
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    enableKeepAlive: true,
    connectTimeout: 5_000,
    charset: 'utf8mb4_general_ci',
    ...extra,
  });
  // Session settings run once per new connection, queued ahead of its first real query.
  if (sessionSql.length > 0) {
    pool.pool.on('connection', (connection) => {
      for (const sql of sessionSql) connection.query(sql);
    });
  }
  return pool;
}

/**
 * Runs `use` on a pooled connection, giving up at `timeoutMs`. On a silent network (a
 * partition, a frozen server: nothing answers, nothing refuses) a query on a pooled connection
 * waits as long as the kernel keeps retransmitting — many minutes — and mysql2's own query
 * timeout leaves the connection busy with it. So at the deadline the connection in use is
 * destroyed rather than left checked out, and a connection that arrives only after the deadline
 * goes straight back to the pool. Rejects with `onTimeout()` at the deadline.
 */
export async function withinDeadline<T>(
  pool: Pool,
  timeoutMs: number,
  use: (connection: PoolConnection) => Promise<T>,
  onTimeout: () => Error,
): Promise<T> {
  let expired = false;
  let held: PoolConnection | undefined;
  const work = (async () => {
    const connection = await pool.getConnection();
    if (expired) {
      connection.release(); // came too late, but answered the pool: not a stalled one
      throw onTimeout();
    }
    held = connection;
    try {
      return await use(connection);
    } finally {
      held = undefined;
      connection.release();
    }
  })();
  try {
    return await beforeDeadline(work, timeoutMs, onTimeout);
  } finally {
    expired = true;
    held?.destroy();
    work.catch(() => {}); // its outcome, if it comes after the deadline, is nobody's
  }
}

/** Whether MySQL answers `SELECT 1` within timeoutMs (a readiness probe). */
export async function answersWithin(pool: Pool, timeoutMs: number): Promise<boolean> {
  return withinDeadline(
    pool,
    timeoutMs,
    async (connection) => {
      await connection.query('SELECT 1');
      return true;
    },
    () => new Error('no answer'),
  ).catch(() => false);
}

/**
 * The pool with a deadline on every `query` and `execute` (the look-ups requests wait on: keys,
 * tickets, statuses, idempotency, listings): past `timeoutMs` the call fails as a transient
 * MySQL error — a 503 with Retry-After for a client, a retry for a worker — instead of hanging
 * on a silent network. Everything else (getConnection, events, end) is the pool's own.
 */
export function withQueryDeadline(pool: Pool, timeoutMs: number): Pool {
  const timedOut = () => new TransientDbError(`MySQL did not answer within ${timeoutMs} ms`, 'QUERY_DEADLINE');
  const bounded =
    (method: 'query' | 'execute') =>
    (...args: unknown[]) =>
      withinDeadline(
        pool,
        timeoutMs,
        (connection) => (connection[method] as (...a: unknown[]) => Promise<unknown>)(...args),
        timedOut,
      );
  const query = bounded('query');
  const execute = bounded('execute');
  return new Proxy(pool, {
    get(target, property, receiver) {
      if (property === 'query') return query;
      if (property === 'execute') return execute;
      return Reflect.get(target, property, receiver);
    },
  });
}

/** The database named in a connection URL (the ITFlow database). */
export function databaseName(databaseUrl: string): string {
  const name = decodeURIComponent(new URL(databaseUrl).pathname.replace(/^\//, ''));
  if (!name) throw new Error('DATABASE_URL must name a database, e.g. mysql://user@host:3306/itflow');
  return name;
}

/** Backtick-quotes an identifier that config validation has already restricted to [A-Za-z0-9_]. */
export function quoteIdentifier(name: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(name)) throw new Error(`Unsafe SQL identifier: ${name}`);
  return `\`${name}\``;
}
