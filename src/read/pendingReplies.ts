// read.php?include_pending=1: the caller's own commands for a ticket that were accepted but are
// not applied yet, as rows shaped like the replies they will become, marked `pending` with their
// command id. Redis says which it still holds (src/queue/pending.ts); the ledger, read after it,
// has the last word — a command applied in between is left out (its reply is in the listing).
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { idBytes, idText } from '../apply/ledger.js';
import type { ServiceTables } from '../db/tables.js';
import type { Principal } from '../itflow/apiKeys.js';
import { wallClock } from '../itflow/clock.js';
import type { CommandJob } from '../queue/jobs.js';
import type { PendingCommands } from '../queue/pending.js';

export interface PendingDeps {
  pool: Pool;
  tables: ServiceTables;
  pending: PendingCommands;
}

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

export async function pendingReplies(
  deps: PendingDeps,
  principal: Principal,
  ticketId: number,
  { limit, zone, externalId }: { limit: number; zone: string; externalId?: string },
): Promise<PendingRow[]> {
  const { unfinished, gone, unheld } = await deps.pending.scan(principal.keyId, ticketId, MOST);
  const finished = await finishedAmong(deps, [...unfinished.map((job) => job.commandId), ...unheld]);
  const stale = [...gone, ...finished];
  if (stale.length > 0) void deps.pending.forgetIds(principal.keyId, ticketId, stale).catch(() => {});
  return unfinished
    .filter((job) => !finished.includes(job.commandId))
    .filter((job) => externalId === undefined || job.command.externalId === externalId)
    .slice(0, limit)
    .map((job) => pendingRow(job, principal, zone));
}

async function finishedAmong(deps: PendingDeps, commandIds: string[]): Promise<string[]> {
  if (commandIds.length === 0) return [];
  const [rows] = await deps.pool.query<RowDataPacket[]>(
    `SELECT command_id FROM ${deps.tables.commands} WHERE command_id IN (?)`,
    [commandIds.map(idBytes)],
  );
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
