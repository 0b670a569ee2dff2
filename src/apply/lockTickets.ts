// The first round trip of an apply transaction: lock the batch's tickets, and read — under those
// locks, in the same transaction — everything the batch's decisions rest on: the ledger, the
// API keys with their users and scope, the idempotency keys' holders.
import type { PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ServiceTables } from '../db/tables.js';
import { type KeyStatement, keyStatement, type Resolution, resolveKeys } from '../itflow/apiKeys.js';
import type { ItflowSchema } from '../itflow/schema.js';
import { idBytes, idText, type Outcome, toOutcome, utcToMs } from './ledger.js';
import type { SlaInterval } from './ticketModel.js';

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
  closedBy: number;
  /** SLA columns; null where ITFlow has none or the ticket has no SLA. */
  responseDueAt: string | null;
  resolutionDueAt: string | null;
  responseSlaMet: number | null;
  resolutionSlaMet: number | null;
  /** ITFlow's SLA clock (null where it has none): the SLA, its resolution budget, the alert stage. */
  createdAt: string | null;
  archivedAt: string | null;
  slaId: number | null;
  slaResolutionMinutes: number | null;
  resolutionAlertStage: number | null;
  /** For client mail: the ticket's contact and the key to its guest page. */
  contactId: number;
  urlKey: string;
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
  /** Each ticket's SLA clock intervals, oldest first (ITFlow ≥ 2.6). */
  intervals: Map<number, SlaInterval[]>;
  /** Who a ticket's client mail goes to, read only for a batch that may email. */
  mailboxes: Map<number, Mailbox>;
  /** Mail signatures of the keys' users (by api_key_id), for replies that email the client. */
  signatures: Map<number, string>;
  /** Commands holding the batch's external ids (their replies made), by idempotencyKeyOf(key, external id). */
  externalIds: Map<string, ExternalIdHolder>;
  /** Among the keys asked about, those an admin made quiet by default. */
  quietKeys: Set<number>;
}

/** The command an external id belongs to, and what it made. */
export interface ExternalIdHolder {
  commandId: string;
  fingerprint: string;
  insertId: number;
}

/** A ticket's contact (when it has one) and watchers, as its client mail is addressed. */
export interface Mailbox {
  contact: { name: string; email: string } | null;
  watchers: Array<{ name: string | null; email: string }>;
}

export interface LockRequest {
  ticketIds: number[];
  commandIds: string[];
  idempotencyKeys: Array<[number, string]>;
  keyIds: number[];
  /** ITFlow's wall clock now, for key expiry. */
  now: string;
  /** Read the tickets' contacts and watchers (some command of the batch may email the client). */
  mail: boolean;
  /** Keys whose user's mail signature a reply of the batch carries. */
  signatureKeyIds: number[];
  /** The batch's (api key, external id) pairs. */
  externalIds?: Array<[number, string]>;
  /** Keys whose quiet default some command of the batch follows (it says nothing of notify). */
  quietKeyIds?: number[];
}

/** How a (key, idempotency key) pair is looked up in LockedState.keyed. */
export function idempotencyKeyOf(apiKeyId: number, idempotencyKey: string): string {
  return `${apiKeyId}\u0000${idempotencyKey}`;
}

const TICKET_COLUMNS = `ticket_id, ticket_prefix, ticket_number, ticket_subject, ticket_status, ticket_client_id,
  ticket_created_by, ticket_assigned_to, ticket_resolved_at, ticket_closed_at, ticket_closed_by, ticket_first_response_at`;
const SLA_COLUMNS = ', ticket_response_due_at, ticket_resolution_due_at, ticket_response_sla_met, ticket_resolution_sla_met';
const CLOCK_COLUMNS = ', ticket_created_at, ticket_archived_at, ticket_sla_id, ticket_resolution_sla_alert_stage';
const MAIL_COLUMNS = ', ticket_contact_id, ticket_url_key';

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
  const {
    ticketIds,
    commandIds,
    idempotencyKeys,
    keyIds,
    now,
    mail,
    signatureKeyIds,
    externalIds = [],
    quietKeyIds = [],
  } = request;
  const statements: Array<KeyStatement & { name: string }> = [];
  const add = (name: string, statement: KeyStatement | null) => {
    if (statement) statements.push({ name, ...statement });
  };
  add('begin', { sql: 'START TRANSACTION', params: [] });
  add('tickets', {
    sql: `SELECT ${TICKET_COLUMNS}${schema.hasSla ? SLA_COLUMNS : ''}${schema.slaClock ? CLOCK_COLUMNS : ''}${
      schema.mail.queue ? MAIL_COLUMNS : ''
    } FROM tickets WHERE ticket_id IN (?) ORDER BY ticket_id FOR UPDATE${schema.skipLocked ? ' SKIP LOCKED' : ''}`,
    params: [ticketIds],
  });
  if (schema.slaClock) {
    // Plain reads (not locking): the ticket rows above are what the batch holds.
    add('budgets', {
      sql: `SELECT ticket_id, sla_resolution_minutes FROM tickets JOIN slas ON sla_id = ticket_sla_id WHERE ticket_id IN (?)`,
      params: [ticketIds],
    });
    add('intervals', {
      sql: `SELECT sla_history_id, sla_history_started_at, sla_history_ended_at, sla_history_minutes, sla_history_ticket_id
            FROM sla_history WHERE sla_history_ticket_id IN (?) ORDER BY sla_history_id`,
      params: [ticketIds],
    });
  }
  if (mail && schema.mail.queue) {
    add('contacts', {
      sql: `SELECT ticket_id, contact_name, contact_email FROM tickets JOIN contacts ON contact_id = ticket_contact_id
            WHERE ticket_id IN (?)`,
      params: [ticketIds],
    });
    if (schema.mail.watchers) {
      add('watchers', {
        sql: `SELECT watcher_ticket_id, watcher_name, watcher_email FROM ticket_watchers WHERE watcher_ticket_id IN (?)
              ORDER BY watcher_id`,
        params: [ticketIds],
      });
    }
  }
  if (signatureKeyIds.length > 0 && schema.mail.signatures && schema.keyModel === 'key-runs-as-user') {
    add('signatures', {
      sql: `SELECT api_key_id, user_config_signature FROM api_keys JOIN user_settings ON user_id = api_key_user_id
            WHERE api_key_id IN (?)`,
      params: [signatureKeyIds],
    });
  }
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
  // The external ids' holders, read again in this transaction: its insert into the external-id
  // table is what settles a race (the second to commit meets the primary key and retries).
  if (externalIds.length > 0) {
    add('external', {
      sql: `SELECT api_key_id, external_id, command_id, fingerprint, insert_id FROM ${tables.externalIds}
            WHERE (api_key_id, external_id) IN (?)`,
      params: [externalIds],
    });
  }
  if (quietKeyIds.length > 0) {
    add('quiet', {
      sql: `SELECT api_key_id FROM ${tables.keySettings} WHERE api_key_id IN (?) AND quiet = 1`,
      params: [quietKeyIds],
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

  const budgets = new Map(rows('budgets').map((row) => [Number(row.ticket_id), row.sla_resolution_minutes]));
  const tickets = new Map(
    rows('tickets').map((row) => [
      Number(row.ticket_id),
      toTicket({ ...row, sla_resolution_minutes: budgets.get(Number(row.ticket_id)) }),
    ]),
  );
  const intervals = new Map<number, SlaInterval[]>();
  for (const row of rows('intervals')) {
    const ticketId = Number(row.sla_history_ticket_id);
    intervals.set(ticketId, [
      ...(intervals.get(ticketId) ?? []),
      {
        id: Number(row.sla_history_id),
        startedAt: String(row.sla_history_started_at),
        endedAt: row.sla_history_ended_at ?? null,
        minutes: row.sla_history_minutes == null ? null : Number(row.sla_history_minutes),
        changed: false,
      },
    ]);
  }
  const mailboxes = new Map<number, Mailbox>();
  if (mail) for (const id of ticketIds) mailboxes.set(id, { contact: null, watchers: [] });
  for (const row of rows('contacts')) {
    const box = mailboxes.get(Number(row.ticket_id));
    if (box) box.contact = { name: String(row.contact_name ?? ''), email: String(row.contact_email ?? '') };
  }
  for (const row of rows('watchers')) {
    mailboxes.get(Number(row.watcher_ticket_id))?.watchers.push({
      name: row.watcher_name == null ? null : String(row.watcher_name),
      email: String(row.watcher_email),
    });
  }
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
    intervals,
    mailboxes,
    signatures: new Map(rows('signatures').map((row) => [Number(row.api_key_id), String(row.user_config_signature ?? '')])),
    externalIds: new Map(
      rows('external').map((row) => [
        idempotencyKeyOf(Number(row.api_key_id), String(row.external_id)),
        {
          commandId: idText(row.command_id),
          fingerprint: (row.fingerprint as Buffer).toString('hex'),
          insertId: Number(row.insert_id),
        },
      ]),
    ),
    quietKeys: new Set(rows('quiet').map((row) => Number(row.api_key_id))),
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
    closedBy: Number(row.ticket_closed_by ?? 0),
    firstResponseAt: row.ticket_first_response_at ?? null,
    responseDueAt: row.ticket_response_due_at ?? null,
    resolutionDueAt: row.ticket_resolution_due_at ?? null,
    responseSlaMet: nullableNumber(row.ticket_response_sla_met),
    resolutionSlaMet: nullableNumber(row.ticket_resolution_sla_met),
    createdAt: row.ticket_created_at ?? null,
    archivedAt: row.ticket_archived_at ?? null,
    slaId: nullableNumber(row.ticket_sla_id),
    slaResolutionMinutes: nullableNumber(row.sla_resolution_minutes),
    resolutionAlertStage: nullableNumber(row.ticket_resolution_sla_alert_stage),
    contactId: Number(row.ticket_contact_id ?? 0),
    urlKey: String(row.ticket_url_key ?? ''),
  };
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : Number(value);
}

/** 'TCK-12', as ITFlow writes a ticket's reference in its audit text. */
export function ticketRef(ticket: LockedTicket): string {
  return `${ticket.prefix}${ticket.number}`;
}
