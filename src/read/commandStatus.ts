import type { Pool, RowDataPacket } from 'mysql2/promise';
import { idBytes, idText, type Outcome, readLedger, toOutcome } from '../apply/ledger.js';
import type { ServiceTables } from '../db/tables.js';
import { wallClock } from '../itflow/clock.js';
import type { CommandQueue } from '../queue/producer.js';

/**
 * Where a command is, for the key that sent it: still in Redis (queued, applying, retrying,
 * or given up on), or finished in the ledger (applied with its insert_id, or failed with the
 * status and message a synchronous call would have got). null when there is no such command
 * for this key (never sent, sent by another key, or past the retention).
 *
 * Times are UTC instants (RFC 3339, milliseconds, `Z`). A finished command's also come as
 * ITFlow shows them — wall clock in its config_timezone, 'YYYY-MM-DD HH:MM:SS', the format of
 * read.php's DATETIME columns — so a client can match a reply's ticket_reply_created_at (the
 * time its command was accepted) against accepted_at_itflow.
 */
export type CommandStatus =
  | { status: 'queued' | 'applying' }
  | { status: 'queued'; waiting_for: 'ticket_lock'; next_try_at: string }
  | { status: 'retrying'; attempts: number; next_try_at: string }
  | ({ status: 'applied'; insert_id: number } & LedgerTimes)
  | ({ status: 'failed'; http_status: number; message: string } & (LedgerTimes | { attempts: number }));

/** Every status names its command and ticket, and the command's external_id where it has one. */
interface StatusBase {
  command_id: string;
  ticket_id: number;
  external_id?: string;
}

interface LedgerTimes {
  accepted_at: string;
  finished_at: string;
  accepted_at_itflow?: string;
  finished_at_itflow?: string;
  itflow_timezone?: string;
  attempts: number;
}

/**
 * `itflowZone` (ITFlow's config_timezone, src/itflow/clock.ts) adds the ITFlow wall-clock
 * times; a caller that only wants the outcome leaves it out.
 */
export async function commandStatus(
  pool: Pool,
  tables: ServiceTables,
  queue: CommandQueue,
  commandId: string,
  apiKeyId: number,
  itflowZone?: () => Promise<string>,
): Promise<(CommandStatus & StatusBase) | null> {
  const finished = await readLedger(pool, tables, commandId);
  if (finished) return fromLedger(finished, commandId, apiKeyId, await itflowZone?.());
  const queued = await queue.find(commandId);
  if (!queued) {
    // Between the two look-ups a worker may have committed the command and dropped its job.
    const justFinished = await readLedger(pool, tables, commandId);
    return justFinished ? fromLedger(justFinished, commandId, apiKeyId, await itflowZone?.()) : null;
  }
  if (queued.job.apiKeyId !== apiKeyId) return null;
  const externalId = queued.job.command.externalId;
  const base = {
    command_id: commandId,
    ticket_id: queued.job.command.ticketId,
    ...(externalId !== undefined ? { external_id: externalId } : {}),
  };
  switch (queued.state) {
    case 'queued':
    case 'applying':
      return { ...base, status: queued.state };
    case 'parked':
      // Its ticket's row is held by another session (an agent, a report): it waits, in order.
      return { ...base, status: 'queued', waiting_for: 'ticket_lock', next_try_at: new Date(queued.nextTryAt).toISOString() };
    case 'retrying':
      return {
        ...base,
        status: 'retrying',
        attempts: queued.progress.attempts,
        next_try_at: new Date(queued.progress.nextTryAt).toISOString(),
      };
    case 'dead':
      // The database kept failing; the reason stays in the logs, and an operator can replay it.
      return {
        ...base,
        status: 'failed',
        http_status: 503,
        message: `The command could not be applied after ${queued.attempts} attempts because the database kept failing. It is kept for an operator to replay.`,
        attempts: queued.attempts,
      };
  }
}

function fromLedger(
  ledger: NonNullable<Awaited<ReturnType<typeof readLedger>>>,
  commandId: string,
  apiKeyId: number,
  itflowZone: string | undefined,
): (CommandStatus & StatusBase) | null {
  if (ledger.apiKeyId !== apiKeyId) return null;
  const accepted = isoUtc(ledger.acceptedAtUtc);
  const finished = isoUtc(ledger.finishedAtUtc);
  const times: LedgerTimes = {
    accepted_at: accepted,
    finished_at: finished,
    ...(itflowZone === undefined
      ? {}
      : {
          accepted_at_itflow: wallClock(Date.parse(accepted), itflowZone),
          finished_at_itflow: wallClock(Date.parse(finished), itflowZone),
          itflow_timezone: itflowZone,
        }),
    attempts: ledger.attempts,
  };
  const base = {
    command_id: commandId,
    ticket_id: ledger.ticketId,
    ...(ledger.externalId !== null ? { external_id: ledger.externalId } : {}),
  };
  return ledger.outcome.status === 'applied'
    ? { ...base, status: 'applied', insert_id: ledger.outcome.insertId, ...times }
    : {
        ...base,
        status: 'failed',
        http_status: ledger.outcome.failure.status,
        message: ledger.outcome.failure.message,
        ...times,
      };
}

function isoUtc(ledgerTime: string): string {
  return `${ledgerTime.replace(' ', 'T')}Z`;
}

export type FinishedStatus =
  | { command_id: string; status: 'applied'; insert_id: number }
  | { command_id: string; status: 'failed'; http_status: number; message: string };

/** How a finished command is reported, from its outcome. */
export function finishedStatus(commandId: string, outcome: Outcome): FinishedStatus {
  return outcome.status === 'applied'
    ? { command_id: commandId, status: 'applied', insert_id: outcome.insertId }
    : { command_id: commandId, status: 'failed', http_status: outcome.failure.status, message: outcome.failure.message };
}

/** The finished ones among many commands of one key, from the ledger in one query. */
export async function commandStatusMany(
  pool: Pool,
  tables: ServiceTables,
  commandIds: string[],
  apiKeyId: number,
): Promise<Map<string, FinishedStatus>> {
  if (commandIds.length === 0) return new Map();
  const [rows] = await pool.query<RowDataPacket[]>(
    `SELECT command_id, status, insert_id, http_status, error FROM ${tables.commands} WHERE command_id IN (?) AND api_key_id = ?`,
    [commandIds.map(idBytes), apiKeyId],
  );
  return new Map(
    rows.map((row): [string, FinishedStatus] => {
      const id = idText(row.command_id);
      return [id, finishedStatus(id, toOutcome(row))];
    }),
  );
}
