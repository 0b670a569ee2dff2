// Retention of the command ledger: outcomes (and the idempotency keys they hold) are answerable at
// commands.php for COMMAND_RETENTION_DAYS, then their rows are deleted.
//
// Command ids are UUIDv7 (src/commands/commandId.ts; bulk items' ids keep their chunk's first 33
// hex digits): the first 48 bits are the acceptance time in ms, and the ledger's primary key is
// the id in 16 bytes. So the rows past the retention are the ids below the one made of the cutoff
// time and zeros — a range at the start of the primary key, read from there however large the
// ledger is. It goes a slice at a time, each its own short transaction, so no long lock is held.
//
// Every worker process schedules the purge; a MySQL named lock lets one of them do it at a time,
// and the others skip that round instead of deleting the same rows concurrently.
import type { Pool, ResultSetHeader } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { MysqlAvailability } from './availability.js';
import { withNamedLock } from './namedLock.js';
import type { ServiceTables } from './tables.js';

const DAY_MS = 86_400_000;
const SLICE_ROWS = 5000;
const HOUR_MS = 3_600_000;

export function purgeLockName(tables: ServiceTables): string {
  return `replyqueue.purge ${tables.schema}.${tables.names.commands}`;
}

/** The smallest command id of the millisecond `ms`: every id made earlier sorts below it. */
function firstIdAt(ms: number): Buffer {
  const id = Buffer.alloc(16);
  id.writeUIntBE(ms, 0, 6);
  return id;
}

/** One slice of the purge: the oldest rows accepted before `cutoffMs`, in primary-key order. */
export function purgeStatement(tables: ServiceTables, cutoffMs: number, limit: number): { sql: string; params: unknown[] } {
  // accepted_at_utc too, so an id that did not carry its acceptance time (none the service makes)
  // could never go early; the key range already bounds the rows read, so it costs nothing.
  return {
    sql: `DELETE FROM ${tables.commands} WHERE command_id < ? AND accepted_at_utc < ? ORDER BY command_id LIMIT ?`,
    params: [firstIdAt(cutoffMs), new Date(cutoffMs).toISOString().slice(0, 23).replace('T', ' '), limit],
  };
}

/**
 * Deletes the ledger rows accepted more than `retentionDays` ago; resolves with how many went,
 * or null when another process holds the purge lock (it is purging: nothing to do here).
 * `stopping` is asked between slices, so a shutting-down process stops after the current one.
 */
export async function purgeLedger(
  pool: Pool,
  tables: ServiceTables,
  retentionDays: number,
  { now = Date.now(), stopping = () => false }: { now?: number; stopping?: () => boolean } = {},
): Promise<number | null> {
  const { sql, params } = purgeStatement(tables, now - retentionDays * DAY_MS, SLICE_ROWS);
  const conn = await pool.getConnection();
  try {
    const outcome = await withNamedLock(conn, purgeLockName(tables), 0, async () => {
      let deleted = 0;
      for (;;) {
        const [result] = await conn.query<ResultSetHeader>(sql, params);
        deleted += result.affectedRows;
        if (result.affectedRows < SLICE_ROWS || stopping()) return deleted;
      }
    });
    return outcome.locked ? outcome.value : null;
  } finally {
    conn.release();
  }
}

/**
 * Purges now and every hour until the returned stop is called. A purge still running when the
 * next is due (a slow MySQL) is not joined by another. A failure is logged as an error naming
 * the privilege MySQL refused, if that was the cause: a ledger that silently grows is a defect.
 * A failure because MySQL is away is not: `availability` says so once for the whole process, and
 * the next hour's purge catches up.
 */
export function purgeLedgerHourly(
  pool: Pool,
  tables: ServiceTables,
  retentionDays: number,
  logger: Logger,
  availability?: Pick<MysqlAvailability, 'afterError'>,
): () => Promise<void> {
  let running = false;
  let stopped = false;
  const stopping = new AbortController();
  const failed = async (error: Error) => {
    const state = availability ? await availability.afterError(error, stopping.signal) : 'answering';
    if (state === 'answering') logPurgeFailure(logger, tables, error);
    else logger.debug({ err: error.message }, 'ledger purge missed while MySQL was away; the next one catches up');
  };
  const purge = () => {
    if (running || stopped) return;
    running = true;
    purgeLedger(pool, tables, retentionDays, { stopping: () => stopped })
      .then(
        (deleted) => {
          if (deleted === null) logger.debug('another process is purging the ledger; skipped');
          else if (deleted > 0) logger.info({ deleted, retentionDays }, 'ledger rows past the retention deleted');
        },
        (error: Error) => {
          if (stopped) logger.debug({ err: error.message }, 'ledger purge interrupted by shutdown');
          else void failed(error);
        },
      )
      .finally(() => {
        running = false;
      });
  };
  purge();
  const timer = setInterval(purge, HOUR_MS);
  timer.unref();
  return async () => {
    stopped = true;
    stopping.abort();
    clearInterval(timer);
  };
}

function logPurgeFailure(logger: Logger, tables: ServiceTables, error: Error & { code?: string }): void {
  const table = `${tables.schema}.${tables.names.commands}`;
  // MySQL names the refused statement: "DELETE command denied to user … for table …".
  const refused = error.code === 'ER_TABLEACCESS_DENIED_ERROR' ? /^(\w+) command denied/.exec(error.message)?.[1] : undefined;
  if (refused) {
    logger.error(
      { err: error.message, table, privilege: refused },
      `could not purge the ledger: the database user lacks ${refused} on ${table} (GRANT ${refused} ON ${table} TO …); ` +
        'ledger rows past the retention are kept until it has it',
    );
  } else {
    logger.error({ err: error.message, table }, 'could not purge the ledger');
  }
}
