import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';
import type { ItflowSchema } from '../itflow/schema.js';
import { idBytes, idText, type Outcome, toOutcome, utcToMs } from './ledger.js';

/** A ticket as the apply transaction sees it, locked until commit. */
export interface LockedTicket {
  id: number;
  prefix: string;
  number: number;
  subject: string;
  status: number;
  clientId: number;
  createdBy: number;
  assignedTo: number;
  resolvedAt: string | null;
  closedAt: string | null;
  firstResponseAt: string | null;
  /** SLA columns; null where ITFlow has none or the ticket has no SLA. */
  responseDueAt: string | null;
  resolutionDueAt: string | null;
  resolutionSlaMet: number | null;
}

/** What the first round trip of a batch learns, under the tickets' locks. */
export interface LockedState {
  tickets: Map<number, LockedTicket>;
  /** Outcomes already in the ledger: commands finished by an earlier delivery. */
  finished: Map<string, Outcome>;
  /** Per ticket, the latest acceptance time of its finished commands (ms). */
  latestAccepted: Map<number, number>;
  /** Finished commands holding the batch's idempotency keys, by idempotencyKeyOf(). */
  keyed: Map<string, { commandId: string; fingerprint: string; outcome: Outcome }>;
}

/** How a (key, idempotency key) pair is looked up in LockedState.keyed. */
export function idempotencyKeyOf(apiKeyId: number, idempotencyKey: string): string {
  return `${apiKeyId}\u0000${idempotencyKey}`;
}

const SLA_COLUMNS = ', ticket_response_due_at, ticket_resolution_due_at, ticket_resolution_sla_met';

/**
 * Opens the transaction and, in one round trip, locks the batch's tickets (ascending id, so
 * two batches never deadlock on each other) and reads the ledger under those locks: a racing
 * worker's commit for the same command is visible by then (READ COMMITTED).
 */
export async function lockTickets(
  conn: PoolConnection,
  schema: ItflowSchema,
  tables: ServiceTables,
  ticketIds: number[],
  commandIds: string[],
  idempotencyKeys: Array<[number, string]>,
): Promise<LockedState> {
  // The ledger's unique (api_key_id, idempotency_key) is the last word on a reused key.
  const keyedSql =
    idempotencyKeys.length > 0
      ? `SELECT command_id, api_key_id, idempotency_key, fingerprint, status, insert_id, http_status, error
         FROM ${tables.commands} WHERE (api_key_id, idempotency_key) IN (?);`
      : '';
  const [results] = await conn.query<RowDataPacket[][]>(
    `START TRANSACTION;
     SELECT ticket_id, ticket_prefix, ticket_number, ticket_subject, ticket_status, ticket_client_id,
            ticket_created_by, ticket_assigned_to, ticket_resolved_at, ticket_closed_at,
            ticket_first_response_at${schema.hasSla ? SLA_COLUMNS : ''}
       FROM tickets WHERE ticket_id IN (?) ORDER BY ticket_id FOR UPDATE;
     SELECT command_id, status, insert_id, http_status, error FROM ${tables.commands} WHERE command_id IN (?);
     SELECT ticket_id, MAX(accepted_at_utc) AS latest FROM ${tables.commands} WHERE ticket_id IN (?) GROUP BY ticket_id;
     ${keyedSql}`,
    [ticketIds, commandIds.map(idBytes), ticketIds, ...(idempotencyKeys.length > 0 ? [idempotencyKeys] : [])],
  );
  const [, ticketRows = [], ledgerRows = [], latestRows = [], keyedRows = []] = results;
  return {
    tickets: new Map(ticketRows.map((row) => [Number(row.ticket_id), toTicket(row)])),
    finished: new Map(ledgerRows.map((row) => [idText(row.command_id), toOutcome(row)])),
    latestAccepted: new Map(latestRows.map((row) => [Number(row.ticket_id), utcToMs(String(row.latest))])),
    keyed: new Map(
      keyedRows.map((row) => [
        idempotencyKeyOf(Number(row.api_key_id), String(row.idempotency_key)),
        { commandId: idText(row.command_id), fingerprint: (row.fingerprint as Buffer).toString('hex'), outcome: toOutcome(row) },
      ]),
    ),
  };
}

function toTicket(row: RowDataPacket): LockedTicket {
  return {
    id: Number(row.ticket_id),
    prefix: String(row.ticket_prefix ?? ''),
    number: Number(row.ticket_number),
    subject: String(row.ticket_subject),
    status: Number(row.ticket_status),
    clientId: Number(row.ticket_client_id),
    createdBy: Number(row.ticket_created_by),
    assignedTo: Number(row.ticket_assigned_to),
    resolvedAt: row.ticket_resolved_at ?? null,
    closedAt: row.ticket_closed_at ?? null,
    firstResponseAt: row.ticket_first_response_at ?? null,
    responseDueAt: row.ticket_response_due_at ?? null,
    resolutionDueAt: row.ticket_resolution_due_at ?? null,
    resolutionSlaMet: row.ticket_resolution_sla_met == null ? null : Number(row.ticket_resolution_sla_met),
  };
}

/** 'TCK-12', as ITFlow writes a ticket's reference in its audit text. */
export function ticketRef(ticket: LockedTicket): string {
  return `${ticket.prefix}${ticket.number}`;
}
