// read.php?include_pending=1: the caller's own commands for a ticket that were accepted but are
// not applied yet, as rows shaped like the replies they will become, marked `pending` with their
// command id. Redis says which it still holds (src/queue/pending.ts); the ledger, read after it,
// has the last word. The ledger is read in the same consistent snapshot as the listing
// (inOneSnapshot), so a command that commits meanwhile is listed exactly once: pending if its
// commit is after the snapshot, else as its reply — never twice, never missing.
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { idBytes, idText } from '../apply/ledger.js';
import { withinDeadline } from '../db/pool.js';
import type { ServiceTables } from '../db/tables.js';
import { TransientDbError } from '../errors.js';
import type { Principal } from '../itflow/apiKeys.js';
import { wallClock } from '../itflow/clock.js';
import type { CommandJob } from '../queue/jobs.js';
import type { PendingCommands, PendingScan } from '../queue/pending.js';

/** A pending command as read.php lists it (ITFlow's v1 serialisation: strings and null). */
export interface PendingRow {
  ticket_reply_id: null;
  ticket_reply: string | null;
  ticket_reply_type: string | null;
  ticket_reply_time_worked: string | null;
  ticket_reply_created_at: string;
  ticket_reply_updated_at: null;
  ticket_reply_archived_at: null;
  ticket_reply_by: string;
  ticket_reply_ticket_id: string;
  /** Only where the command carries one. */
  external_id?: string;
  pending: true;
  command_id: string;
  /** The ticket_status_id the command moves the ticket to; null when it leaves the status alone. */
  ticket_status: string | null;
}

/** Most pending commands a read looks at. */
const MOST = 500;

/** What Redis holds of the key's commands for the ticket: read before the snapshot. */
export function scanPending(pending: PendingCommands, principal: Principal, ticketId: number): Promise<PendingScan> {
  return pending.scan(principal.keyId, ticketId, MOST);
}

/**
 * Runs `use` on one connection inside a read-only, consistent-snapshot transaction (REPEATABLE
 * READ), within `timeoutMs` as every look-up is: what it reads is one moment of the database.
 */
export function inOneSnapshot<T>(pool: Pool, timeoutMs: number, use: (db: PoolConnection) => Promise<T>): Promise<T> {
  return withinDeadline(
    pool,
    timeoutMs,
    async (conn) => {
      await conn.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      try {
        return await use(conn);
      } finally {
        await conn.query('COMMIT');
      }
    },
    () => new TransientDbError(`MySQL did not answer within ${timeoutMs} ms`, 'QUERY_DEADLINE'),
  );
}

/**
 * The scanned commands the ledger does not know yet, newest first, as rows (at most `limit`;
 * with `externalId`, only the one carrying it). Forgets the notes of commands finished or lost.
 */
export async function pendingReplies(
  db: Pool | PoolConnection,
  tables: ServiceTables,
  pending: PendingCommands,
  scan: PendingScan,
  principal: Principal,
  ticketId: number,
  { limit, zone, externalId }: { limit: number; zone: string; externalId?: string },
): Promise<PendingRow[]> {
  const { unfinished, gone, unheld } = scan;
  const finished = await finishedAmong(db, tables, [...unfinished.map((job) => job.commandId), ...unheld]);
  const stale = [...gone, ...finished];
  if (stale.length > 0) void pending.forgetIds(principal.keyId, ticketId, stale).catch(() => {});
  return unfinished
    .filter((job) => !finished.includes(job.commandId))
    .filter((job) => externalId === undefined || job.command.externalId === externalId)
    .slice(0, limit)
    .map((job) => pendingRow(job, principal, zone));
}

async function finishedAmong(db: Pool | PoolConnection, tables: ServiceTables, commandIds: string[]): Promise<string[]> {
  if (commandIds.length === 0) return [];
  const [rows] = await db.query<RowDataPacket[]>(`SELECT command_id FROM ${tables.commands} WHERE command_id IN (?)`, [
    commandIds.map(idBytes),
  ]);
  return rows.map((row) => idText(row.command_id));
}

/** The row the command's reply will be, as far as it is known before it is written. */
function pendingRow(job: CommandJob, principal: Principal, zone: string): PendingRow {
  const { command } = job;
  const author = command.author;
  const by = author === undefined ? principal.userId : 'userId' in author ? author.userId : author.contactId;
  const type = author !== undefined && 'contactId' in author ? 'Client' : (command.reply?.type ?? null);
  return {
    ticket_reply_id: null,
    ticket_reply: command.reply?.body ?? null,
    ticket_reply_type: command.reply ? type : null,
    ticket_reply_time_worked: command.reply?.timeWorked ?? null,
    ticket_reply_created_at: command.createdAt ?? wallClock(job.acceptedAt, zone),
    ticket_reply_updated_at: null,
    ticket_reply_archived_at: null,
    ticket_reply_by: String(by),
    ticket_reply_ticket_id: String(command.ticketId),
    ...(command.externalId !== undefined ? { external_id: command.externalId } : {}),
    pending: true,
    command_id: job.commandId,
    ticket_status: command.status > 0 ? String(command.status) : null,
  };
}
