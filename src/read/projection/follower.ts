// The projection's follower: keeps the service's index of ticket_replies in step with replies
// written elsewhere (ITFlow's web UI, its email parser, its own API). The service's own replies
// are projected in their apply transaction (applyHook.ts); this catches everything else.
//
// Each round, under a MySQL named lock so that one worker process at a time does it:
// 1. catch-up: ticket_replies past the watermark, by primary-key range, up to 5,000 ids a read
//    (and 20 reads a round while a backlog is built, e.g. the first build of a large ITFlow);
// 2. the newest 1,000 replies again: a reply whose transaction committed after a later id was
//    read (auto-increment ids are taken before commit), and the edits and archivings that mostly
//    touch recent replies;
// 3. a sweep over every older reply, PROJECTION_SWEEP_ROWS ids a round, starting again at the
//    first when it reaches the last: un-archived, re-typed, re-assigned or merged replies and
//    deleted ones, which no indexed column of ITFlow ≤ 2.6.2 tells (neither updated_at nor
//    archived_at is indexed there);
// 4. a sweep over tickets, PROJECTION_SWEEP_ROWS a round: a ticket whose client differs from the
//    one its rows were aligned to has moved, and its rows move with it.
// Each read is a primary-key range of at most a few thousand rows, so a round costs the same on a
// table of 1,000 replies or of 10,000,000. What the sweeps find late, read.php catches anyway
// for the rows it is about to answer (see serve.ts): only a reply that should newly appear in a
// listing waits for them.
import type { Pool, PoolConnection } from 'mysql2/promise';
import type { Logger } from 'pino';
import type { MysqlAvailability } from '../../db/availability.js';
import { withNamedLock } from '../../db/namedLock.js';
import type { ServiceTables } from '../../db/tables.js';
import { addChanges, type Changes, noChanges, verifyRange, verifyTickets } from './rows.js';
import { mysqlUtcNow, readFollowerState, resetFollowerState, type StateUpdate, saveFollowerState } from './state.js';

export const CATCH_UP_ROWS = 5000;
export const RECENT_REPLIES = 1000;
const CATCH_UP_READS_PER_ROUND = 20;

export function followerLockName(tables: ServiceTables): string {
  return `replyqueue.projection ${tables.schema}.${tables.names.projectionReplies}`;
}

export interface RoundReport {
  changes: Changes;
  /** Tickets whose rows moved to another client. */
  moved: number;
  /** The catch-up stopped before the end of ticket_replies: the next round starts at once. */
  backlog: boolean;
}

/** One round of the follower; null when another process holds the lock (it is following). */
export async function followOnce(
  conn: PoolConnection,
  tables: ServiceTables,
  sweepRows: number,
  stopping: () => boolean = () => false,
): Promise<RoundReport | null> {
  const outcome = await withNamedLock(conn, followerLockName(tables), 0, () => round(conn, tables, sweepRows, stopping));
  return outcome.locked ? outcome.value : null;
}

async function round(
  conn: PoolConnection,
  tables: ServiceTables,
  sweepRows: number,
  stopping: () => boolean,
): Promise<RoundReport> {
  const state: StateUpdate = await readFollowerState(conn, tables);
  const changes = noChanges();
  let backlog = false;
  for (let reads = 1; ; reads++) {
    // Taken before the read: every reply committed by then is at or below what the read finds.
    const startedAt = await mysqlUtcNow(conn);
    const caughtUp = await verifyRange(conn, tables, state.watermark, CATCH_UP_ROWS);
    addChanges(changes, caughtUp.changes);
    if (caughtUp.last !== null) state.watermark = Math.max(state.watermark, caughtUp.last);
    if (caughtUp.reachedEnd) {
      state.caughtUpAt = startedAt;
      break;
    }
    if (reads >= CATCH_UP_READS_PER_ROUND || stopping()) {
      backlog = true;
      await saveFollowerState(conn, tables, state);
      return { changes, moved: 0, backlog };
    }
    await saveFollowerState(conn, tables, state); // a long first build resumes where it stopped
  }

  addChanges(changes, (await verifyRange(conn, tables, Math.max(0, state.watermark - RECENT_REPLIES), RECENT_REPLIES)).changes);

  const sweptAt = await mysqlUtcNow(conn);
  const sweep = await verifyRange(conn, tables, state.replySweepAfter, sweepRows);
  addChanges(changes, sweep.changes);
  state.replySweepAfter = sweep.reachedEnd ? 0 : (sweep.last ?? 0);
  if (sweep.reachedEnd) state.repliesSweptAt = sweptAt;

  const tickets = await verifyTickets(conn, tables, state.ticketSweepAfter, sweepRows);
  state.ticketSweepAfter = tickets.reachedEnd ? 0 : (tickets.last ?? 0);
  if (tickets.reachedEnd) state.ticketsSweptAt = sweptAt;

  await saveFollowerState(conn, tables, state);
  return { changes, moved: tickets.moved, backlog };
}

export interface FollowerOptions {
  pollMs: number;
  sweepRows: number;
  logger: Logger;
  availability?: Pick<MysqlAvailability, 'afterError'>;
  /** Told of each round this process ran (metrics). */
  onRound?: (report: RoundReport) => void;
}

/**
 * Runs the follower every `pollMs` (at once again while a backlog is being built) until the
 * returned stop is called; the stop waits for the round in flight. Every worker process runs
 * one; the named lock lets one of them work at a time, the others skip their round.
 */
export function followProjection(pool: Pool, tables: ServiceTables, options: FollowerOptions): () => Promise<void> {
  const { logger } = options;
  let stopped = false;
  const stopping = new AbortController();
  let wake: (() => void) | null = null;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });

  // A failure that repeats every round (a privilege taken away) is told once a minute, not twice a second.
  let toldAt = 0;
  let untold = 0;
  const failed = async (error: Error) => {
    const state = options.availability ? await options.availability.afterError(error, stopping.signal) : 'answering';
    if (state !== 'answering') {
      logger.debug({ err: error.message }, 'read projection round missed while MySQL was away');
    } else if (Date.now() - toldAt >= 60_000) {
      logger.error(
        { err: error.message, failedRoundsSinceLastTold: untold },
        'the read projection’s follower failed a round; read.php reads ITFlow’s tables once it lags PROJECTION_MAX_LAG_SECONDS',
      );
      toldAt = Date.now();
      untold = 0;
    } else untold++;
  };

  const loop = (async () => {
    while (!stopped) {
      let backlog = false;
      try {
        const conn = await pool.getConnection();
        try {
          const report = await followOnce(conn, tables, options.sweepRows, () => stopped);
          if (report) {
            backlog = report.backlog;
            options.onRound?.(report);
            const { added, changed, removed } = report.changes;
            if (added + changed + removed + report.moved > 0) {
              logger.debug({ added, changed, removed, ticketsMoved: report.moved, backlog }, 'read projection followed ITFlow');
            }
          }
        } finally {
          conn.release();
        }
      } catch (error) {
        if (!stopped) await failed(error as Error);
      }
      if (!stopped && !backlog) await sleep(options.pollMs);
    }
  })();

  return async () => {
    stopped = true;
    stopping.abort();
    (wake as (() => void) | null)?.();
    await loop;
  };
}

/**
 * `projection rebuild`: everything the projection holds is derived again from ITFlow's tables —
 * tickets' clients first (so an alignment is never newer than the rows it covers), then every
 * reply, by primary-key range: rows that differ are rewritten, rows ITFlow no longer has are
 * deleted, missing ones added. read.php reads ITFlow's tables until it is done. The one column
 * ITFlow cannot give back, a reply's external_id, is kept for the replies that still exist.
 * Waits up to `waitSeconds` for a follower's round to end.
 */
export async function rebuildProjection(
  pool: Pool,
  tables: ServiceTables,
  {
    waitSeconds = 60,
    batch = 10_000,
    progress,
  }: { waitSeconds?: number; batch?: number; progress?: (replies: number) => void } = {},
): Promise<{ replies: number; changes: Changes; ticketsMoved: number } | null> {
  const conn = await pool.getConnection();
  try {
    const outcome = await withNamedLock(conn, followerLockName(tables), waitSeconds, async () => {
      await resetFollowerState(conn, tables);
      let ticketsMoved = 0;
      const clients = new Map<number, number>();
      for (let after = 0; ; ) {
        const tickets = await verifyTickets(conn, tables, after, batch);
        ticketsMoved += tickets.moved;
        for (const [ticket, client] of tickets.clients) clients.set(ticket, client);
        if (tickets.reachedEnd || tickets.last === null) break;
        after = tickets.last;
      }
      const changes = noChanges();
      const state: StateUpdate = { watermark: 0, replySweepAfter: 0, ticketSweepAfter: 0 };
      let replies = 0;
      for (;;) {
        const startedAt = await mysqlUtcNow(conn);
        const range = await verifyRange(conn, tables, state.watermark, batch, clients);
        addChanges(changes, range.changes);
        replies += range.read;
        if (range.last !== null) state.watermark = range.last;
        progress?.(state.watermark);
        if (range.reachedEnd) {
          await saveFollowerState(conn, tables, {
            ...state,
            caughtUpAt: startedAt,
            repliesSweptAt: startedAt,
            ticketsSweptAt: startedAt,
          });
          return { replies, changes, ticketsMoved };
        }
        await saveFollowerState(conn, tables, state);
      }
    });
    return outcome.locked ? outcome.value : null;
  } finally {
    conn.release();
  }
}
