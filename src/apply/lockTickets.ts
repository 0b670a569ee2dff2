// The first round trip of an apply transaction: lock the batch's tickets, and read — under those
// locks, in the same transaction — everything the batch's decisions rest on: the ledger, the
// API keys with their users and scope, the idempotency keys' holders.
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';
import { type KeyStatement, keyStatement, type Resolution, resolveKeys } from '../itflow/apiKeys.js';
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
  /** Tickets that exist but whose row another session holds locked: this batch leaves their commands alone. */
  lockedElsewhere: Set<number>;
  /** Outcomes already in the ledger: commands finished by an earlier delivery. */
  finished: Map<string, Outcome>;
  /** Per ticket, the latest acceptance time of its finished commands (ms). */
  latestAccepted: Map<number, number>;
  /** Finished commands holding the batch's idempotency keys, by idempotencyKeyOf(). */
  keyed: Map<string, { commandId: string; fingerprint: string; outcome: Outcome }>;
  /** The batch's API keys as MySQL has them now (absent: unknown or expired). */
  keys: Map<number, NonNullable<Resolution>>;
}

export interface LockRequest {
  ticketIds: number[];
  commandIds: string[];
  idempotencyKeys: Array<[number, string]>;
  keyIds: number[];
  /** ITFlow's wall clock now, for key expiry. */
  now: string;
}

/** How a (key, idempotency key) pair is looked up in LockedState.keyed. */
export function idempotencyKeyOf(apiKeyId: number, idempotencyKey: string): string {
  return `${apiKeyId}\u0000${idempotencyKey}`;
}

const TICKET_COLUMNS = `ticket_id, ticket_prefix, ticket_number, ticket_subject, ticket_status, ticket_client_id,
  ticket_created_by, ticket_assigned_to, ticket_resolved_at, ticket_closed_at, ticket_first_response_at`;
const SLA_COLUMNS = ', ticket_response_due_at, ticket_resolution_due_at, ticket_resolution_sla_met';

/**
 * Opens the transaction and, in one round trip, locks the batch's tickets and reads the rest
 * under those locks (READ COMMITTED: a racing worker's commit for the same command is visible
 * by then, and so is a key revoked a moment ago).
 *
 * Where the server has SKIP LOCKED (MariaDB ≥ 10.6, MySQL ≥ 8.0), a ticket row another session
 * holds (an agent's long transaction, a report) is passed over instead of waited for: those that
 * exist but were not locked are reported in `lockedElsewhere`, so only their commands wait and
 * the rest of the batch goes ahead.
 * Without it, locks are taken in ascending id order (two batches never deadlock on each other)
 * and waited for up to innodb_lock_wait_timeout.
 */
export async function lockTickets(
  conn: PoolConnection,
  schema: ItflowSchema,
  tables: ServiceTables,
  request: LockRequest,
): Promise<LockedState> {
  const { ticketIds, commandIds, idempotencyKeys, keyIds, now } = request;
  const statements: Array<KeyStatement & { name: string }> = [];
  const add = (name: string, statement: KeyStatement | null) => {
    if (statement) statements.push({ name, ...statement });
  };
  add('begin', { sql: 'START TRANSACTION', params: [] });
  add('tickets', {
    sql: `SELECT ${TICKET_COLUMNS}${schema.hasSla ? SLA_COLUMNS : ''} FROM tickets WHERE ticket_id IN (?)
          ORDER BY ticket_id FOR UPDATE${schema.skipLocked ? ' SKIP LOCKED' : ''}`,
    params: [ticketIds],
  });
  add('ledger', {
    sql: `SELECT command_id, status, insert_id, http_status, error FROM ${tables.commands} WHERE command_id IN (?)`,
    params: [commandIds.map(idBytes)],
  });
  add('latest', {
    sql: `SELECT ticket_id, MAX(accepted_at_utc) AS latest FROM ${tables.commands} WHERE ticket_id IN (?) GROUP BY ticket_id`,
    params: [ticketIds],
  });
  add('keys', keyStatement(schema, { ids: keyIds }, now));
  // The ledger's unique (api_key_id, idempotency_key) is the last word on a reused key.
  if (idempotencyKeys.length > 0) {
    add('keyed', {
      sql: `SELECT command_id, api_key_id, idempotency_key, fingerprint, status, insert_id, http_status, error
            FROM ${tables.commands} WHERE (api_key_id, idempotency_key) IN (?)`,
      params: [idempotencyKeys],
    });
  }
  const [results] = await conn.query<RowDataPacket[][]>(
    statements.map((s) => s.sql).join(';\n'),
    statements.flatMap((s) => s.params),
  );
  const rows = (name: string): RowDataPacket[] => {
    const index = statements.findIndex((s) => s.name === name);
    return index < 0 ? [] : (results[index] ?? []);
  };

  const tickets = new Map(rows('tickets').map((row) => [Number(row.ticket_id), toTicket(row)]));
  return {
    tickets,
    lockedElsewhere: schema.skipLocked ? await lockedElsewhere(conn, ticketIds, tickets) : new Set(),
    finished: new Map(rows('ledger').map((row) => [idText(row.command_id), toOutcome(row)])),
    latestAccepted: new Map(rows('latest').map((row) => [Number(row.ticket_id), utcToMs(String(row.latest))])),
    keyed: new Map(
      rows('keyed').map((row) => [
        idempotencyKeyOf(Number(row.api_key_id), String(row.idempotency_key)),
        { commandId: idText(row.command_id), fingerprint: (row.fingerprint as Buffer).toString('hex'), outcome: toOutcome(row) },
      ]),
    ),
    keys: resolveKeys(schema, rows('keys')),
  };
}

/**
 * The tickets SKIP LOCKED passed over that exist: another session holds their rows. Asked (in
 * the same transaction, a plain read) only when some tickets were not locked, so a batch whose
 * tickets are all there pays nothing for it.
 */
async function lockedElsewhere(
  conn: PoolConnection,
  ticketIds: number[],
  locked: Map<number, LockedTicket>,
): Promise<Set<number>> {
  const missing = ticketIds.filter((id) => !locked.has(id));
  if (missing.length === 0) return new Set();
  const [rows] = await conn.query<RowDataPacket[]>('SELECT ticket_id FROM tickets WHERE ticket_id IN (?)', [missing]);
  return new Set(rows.map((row) => Number(row.ticket_id)));
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
