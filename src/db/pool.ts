import mysql, { type Pool, type PoolConnection, type PoolOptions } from 'mysql2/promise';

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
 * Whether MySQL answers `SELECT 1` within timeoutMs (a readiness probe). On a silent network
 * (a partition, a frozen server: nothing answers, nothing refuses) a query on a pooled
 * connection waits as long as the kernel keeps retransmitting — many minutes — and mysql2's
 * query timeout leaves the connection busy with it. So the probe gives up at its deadline and
 * destroys the connection it holds rather than leave it checked out behind it, one more with
 * each probe.
 */
export async function answersWithin(pool: Pool, timeoutMs: number): Promise<boolean> {
  let expired = false;
  let held: PoolConnection | undefined;
  let timer: NodeJS.Timeout | undefined;
  const check = (async () => {
    const connection = await pool.getConnection();
    if (expired) {
      connection.release(); // came too late, but answered the pool: not a stalled one
      return false;
    }
    held = connection;
    await connection.query('SELECT 1');
    held = undefined;
    connection.release();
    return true;
  })().catch(() => false);
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([check, deadline]);
  } finally {
    clearTimeout(timer);
    expired = true;
    held?.destroy();
  }
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
