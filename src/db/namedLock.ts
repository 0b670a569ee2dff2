// MySQL named locks (GET_LOCK): held by one session and released when that session ends, so a
// process that dies mid-work frees its lock with its connection. Used so that one process at a
// time migrates the service's tables, and one at a time purges the ledger.
import { createHash } from 'node:crypto';
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';

/** MySQL 8 refuses lock names over 64 characters; longer ones are replaced by a digest. */
export function lockName(name: string): string {
  return name.length <= 64 ? name : `replyqueue ${createHash('sha256').update(name).digest('hex').slice(0, 40)}`;
}

/**
 * Runs `work` while `conn`'s session holds the lock `name`, waiting up to `waitSeconds` for it
 * (0: only if free now). Resolves `{ locked: false }` without running `work` when it is not had.
 */
export async function withNamedLock<T>(
  conn: PoolConnection,
  name: string,
  waitSeconds: number,
  work: () => Promise<T>,
): Promise<{ locked: true; value: T } | { locked: false }> {
  const [rows] = await conn.query<RowDataPacket[]>('SELECT GET_LOCK(?, ?) AS got', [lockName(name), waitSeconds]);
  if (rows[0]?.got !== 1) return { locked: false };
  try {
    return { locked: true, value: await work() };
  } finally {
    await conn.query('SELECT RELEASE_LOCK(?)', [lockName(name)]);
  }
}
