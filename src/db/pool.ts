import mysql, { type Pool, type PoolOptions } from 'mysql2/promise';

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
