// The read projection's rows (one per reply: its ticket, the ticket's client, type, author and
// times), and how they are brought in line with ITFlow's own: read a stretch of ticket_replies
// beside the projection's rows for it, and write only what differs. What ITFlow no longer has is deleted only after ticket_replies is asked again
// for exactly those ids, so a reply that committed between two reads is never taken for deleted.
import type { Connection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { ReplyId } from '../../db/sqlExpression.js';
import type { ServiceTables } from '../../db/tables.js';

export type Sql = Pick<Connection, 'query'>;

/** One reply as the projection holds it (DATETIMEs as ITFlow's wall-clock text). */
export interface ProjectedReply {
  replyId: number;
  ticketId: number;
  clientId: number;
  type: string;
  by: number;
  createdAt: string | null;
  updatedAt: string | null;
  archivedAt: string | null;
}

/** What one reconciliation changed, for the follower's log and the repairs counter. */
export interface Changes {
  added: number;
  changed: number;
  removed: number;
}

export const noChanges = (): Changes => ({ added: 0, changed: 0, removed: 0 });

export function addChanges(into: Changes, more: Changes): Changes {
  into.added += more.added;
  into.changed += more.changed;
  into.removed += more.removed;
  return into;
}

const COLUMNS = 'reply_id, ticket_id, client_id, reply_type, reply_by, created_at, updated_at, archived_at';

/** ITFlow's reply, without its ticket: a join per row would cost several times the read itself. */
const ITFLOW_SELECT = `SELECT ticket_reply_id AS reply_id, ticket_reply_ticket_id AS ticket_id, ticket_reply_type AS reply_type,
    ticket_reply_by AS reply_by, ticket_reply_created_at AS created_at, ticket_reply_updated_at AS updated_at,
    ticket_reply_archived_at AS archived_at
  FROM ticket_replies`;

/**
 * MySQL 8 in strict mode refuses a zero date, which ITFlow's older rows may hold: it is kept as no
 * time at all — except as an archiving time, where it still means archived (it is not NULL).
 */
const ZERO_DATE = '0000-00-00';
const ARCHIVED_AT_ZERO = '1000-01-01 00:00:00';
const time = (value: unknown, zero: string | null = null): string | null =>
  value === null || value === undefined ? null : String(value).startsWith(ZERO_DATE) ? zero : String(value);

function toReply(row: RowDataPacket, clientId: number): ProjectedReply {
  return {
    replyId: Number(row.reply_id),
    ticketId: Number(row.ticket_id),
    clientId,
    type: String(row.reply_type),
    by: Number(row.reply_by),
    createdAt: time(row.created_at),
    updatedAt: time(row.updated_at),
    archivedAt: time(row.archived_at, ARCHIVED_AT_ZERO),
  };
}

/** The same reply, its client aside. */
const alike = (a: ProjectedReply, b: ProjectedReply) =>
  a.ticketId === b.ticketId &&
  a.type === b.type &&
  a.by === b.by &&
  a.createdAt === b.createdAt &&
  a.updatedAt === b.updatedAt &&
  a.archivedAt === b.archivedAt;

/** ticket_replies past `afterId`, `limit` of them in id order: a primary-key range, whatever the table's size. */
async function itflowAfter(db: Sql, afterId: number, limit: number) {
  const [rows] = await db.query<RowDataPacket[]>(`${ITFLOW_SELECT} WHERE ticket_reply_id > ? ORDER BY ticket_reply_id LIMIT ?`, [
    afterId,
    limit,
  ]);
  return rows;
}

async function itflowByIds(db: Sql, ids: number[]) {
  if (ids.length === 0) return [];
  const [rows] = await db.query<RowDataPacket[]>(`${ITFLOW_SELECT} WHERE ticket_reply_id IN (?)`, [ids]);
  return rows;
}

/** The client of each of these tickets that exists, from `known` where it has them, else from `tickets`. */
async function clientsOf(db: Sql, ticketIds: number[], known?: Map<number, number>): Promise<Map<number, number>> {
  const clients = new Map<number, number>();
  const asked: number[] = [];
  for (const id of new Set(ticketIds)) {
    const client = known?.get(id);
    if (client === undefined) asked.push(id);
    else clients.set(id, client);
  }
  if (asked.length > 0) {
    const [rows] = await db.query<RowDataPacket[]>('SELECT ticket_id, ticket_client_id FROM tickets WHERE ticket_id IN (?)', [
      asked,
    ]);
    for (const row of rows) clients.set(Number(row.ticket_id), Number(row.ticket_client_id));
  }
  return clients;
}

async function projected(db: Sql, tables: ServiceTables, where: string, params: unknown[]): Promise<Map<number, ProjectedReply>> {
  const [rows] = await db.query<RowDataPacket[]>(`SELECT ${COLUMNS} FROM ${tables.projectionReplies} WHERE ${where}`, params);
  return new Map(rows.map((row) => [Number(row.reply_id), toReply(row, Number(row.client_id))]));
}

/** Writes these rows over whatever the projection holds for their ids (its external_id kept). */
export async function upsertReplies(db: Sql, tables: ServiceTables, replies: ProjectedReply[]): Promise<void> {
  if (replies.length === 0) return;
  await db.query(
    `INSERT INTO ${tables.projectionReplies} (${COLUMNS}) VALUES ?
     ON DUPLICATE KEY UPDATE ticket_id = VALUES(ticket_id), client_id = VALUES(client_id), reply_type = VALUES(reply_type),
       reply_by = VALUES(reply_by), created_at = VALUES(created_at), updated_at = VALUES(updated_at),
       archived_at = VALUES(archived_at)`,
    [replies.map((r) => [r.replyId, r.ticketId, r.clientId, r.type, r.by, r.createdAt, r.updatedAt, r.archivedAt])],
  );
}

/**
 * The statement that projects replies the service itself inserted, for its apply transaction
 * (src/apply/projection.ts): one multi-row INSERT, over any row left under the same id.
 */
export function insertStatement(
  tables: ServiceTables,
  replies: Array<Omit<ProjectedReply, 'replyId'> & { replyId: ReplyId; externalId: string | null }>,
): { sql: string; params: unknown[] } {
  return {
    sql: `INSERT INTO ${tables.projectionReplies} (${COLUMNS}, external_id) VALUES ?
     ON DUPLICATE KEY UPDATE ticket_id = VALUES(ticket_id), client_id = VALUES(client_id), reply_type = VALUES(reply_type),
       reply_by = VALUES(reply_by), created_at = VALUES(created_at), updated_at = VALUES(updated_at),
       archived_at = VALUES(archived_at), external_id = VALUES(external_id)`,
    params: [
      replies.map((r) => [r.replyId, r.ticketId, r.clientId, r.type, r.by, r.createdAt, r.updatedAt, r.archivedAt, r.externalId]),
    ],
  };
}

/**
 * Every projected row of these tickets takes the client given (ITFlow's, read just before).
 * The rows are found first and then updated by primary key, so only they are locked, never a
 * range another transaction (an apply inserting a new reply of the ticket) would wait for.
 */
export async function alignTicketClients(db: Sql, tables: ServiceTables, clients: Map<number, number>): Promise<number> {
  if (clients.size === 0) return 0;
  const pairs = [...clients].flat();
  const cases = [...clients].map(() => 'WHEN ? THEN ?').join(' ');
  const [rows] = await db.query<RowDataPacket[]>(
    `SELECT reply_id FROM ${tables.projectionReplies} WHERE ticket_id IN (?) AND client_id <> CASE ticket_id ${cases} END`,
    [[...clients.keys()], ...pairs],
  );
  if (rows.length === 0) return 0;
  const [result] = await db.query<ResultSetHeader>(
    `UPDATE ${tables.projectionReplies} SET client_id = CASE ticket_id ${cases} END WHERE reply_id IN (?)`,
    [...pairs, rows.map((row) => Number(row.reply_id))],
  );
  return result.affectedRows;
}

/**
 * Brings the projection's rows for these reply ids in line with ticket_replies as it is now:
 * rows ITFlow has are written where they differ (their ticket's client compared too), rows it
 * has not (or whose ticket is gone) are deleted, and a reply found under another client moves
 * its ticket's other rows too.
 */
export async function refreshReplies(db: Sql, tables: ServiceTables, ids: number[]): Promise<Changes> {
  if (ids.length === 0) return noChanges();
  // The projection first: a row it shows and ITFlow then lacks was deleted, not yet to commit.
  const mine = await projected(db, tables, 'reply_id IN (?)', [ids]);
  const rows = await itflowByIds(db, ids);
  const clients = await clientsOf(
    db,
    rows.map((row) => Number(row.ticket_id)),
  );
  const theirs = withClients(rows, clients);
  const changes = await write(db, tables, mine, theirs, true);
  const found = new Set(theirs.map((r) => r.replyId));
  const gone = ids.filter((id) => mine.has(id) && !found.has(id));
  if (gone.length > 0) {
    const [result] = await db.query<ResultSetHeader>(`DELETE FROM ${tables.projectionReplies} WHERE reply_id IN (?)`, [gone]);
    changes.removed += result.affectedRows;
  }
  return changes;
}

/** ITFlow's rows whose ticket exists, with its client. */
function withClients(rows: RowDataPacket[], clients: Map<number, number>): ProjectedReply[] {
  return rows.flatMap((row) => {
    const client = clients.get(Number(row.ticket_id));
    return client === undefined ? [] : [toReply(row, client)];
  });
}

/**
 * Writes ITFlow's rows where the projection's differ (the client too when `clients` says so),
 * and moves the other rows of tickets found under another client.
 */
async function write(
  db: Sql,
  tables: ServiceTables,
  mine: Map<number, ProjectedReply>,
  theirs: ProjectedReply[],
  clients: boolean,
): Promise<Changes> {
  const changes = noChanges();
  const writes: ProjectedReply[] = [];
  const moved = new Map<number, number>();
  for (const reply of theirs) {
    const held = mine.get(reply.replyId);
    if (held && alike(held, reply) && (!clients || held.clientId === reply.clientId)) continue;
    writes.push(reply);
    if (held) changes.changed++;
    else changes.added++;
    if (held && held.clientId !== reply.clientId) moved.set(reply.ticketId, reply.clientId);
  }
  await upsertReplies(db, tables, writes);
  await alignTicketClients(db, tables, moved);
  return changes;
}

/**
 * Compares the next `limit` replies after `afterId` with the projection and repairs what
 * differs. `read` replies were read, `last` is the highest id (null: none); `reachedEnd` when
 * fewer than `limit` were left, and then the projection's rows past the last one were checked too.
 *
 * A reply's client is its ticket's, which the tickets sweep (verifyTickets) keeps in step: here it
 * is looked up only for a reply being written that was not held under the same ticket — unless
 * `clients` (every ticket's client, as a rebuild reads them first) is given: then every row's
 * client is compared too.
 */
export async function verifyRange(
  db: Sql,
  tables: ServiceTables,
  afterId: number,
  limit: number,
  clients?: Map<number, number>,
): Promise<{ read: number; last: number | null; reachedEnd: boolean; changes: Changes }> {
  const rows = await itflowAfter(db, afterId, limit);
  const last = rows.length > 0 ? Number(rows[rows.length - 1]?.reply_id) : null;
  const reachedEnd = rows.length < limit;
  const mine = reachedEnd
    ? await projected(db, tables, 'reply_id > ?', [afterId])
    : await projected(db, tables, 'reply_id > ? AND reply_id <= ?', [afterId, last]);
  // The client each row gets: the one held for its ticket, else its ticket's (rows without one left out).
  const held = new Map<number, number>();
  const unknown: number[] = [];
  for (const row of rows) {
    const mineNow = mine.get(Number(row.reply_id));
    const ticket = Number(row.ticket_id);
    if (!clients && mineNow && mineNow.ticketId === ticket) held.set(ticket, mineNow.clientId);
    else unknown.push(ticket);
  }
  const looked = await clientsOf(
    db,
    unknown.filter((ticket) => !held.has(ticket)),
    clients,
  );
  const theirs = withClients(rows, new Map([...looked, ...held]));
  const changes = await write(db, tables, mine, theirs, clients !== undefined);
  // Held here but not among ITFlow's rows read (deleted, orphaned, or committed since): asked again.
  const listed = new Set(theirs.map((r) => r.replyId));
  const unlisted = [...mine.keys()].filter((id) => !listed.has(id));
  addChanges(changes, await refreshReplies(db, tables, unlisted));
  return { read: rows.length, last, reachedEnd, changes };
}

/**
 * The next `limit` tickets after `afterId`: those whose client differs from the one their
 * projected rows were aligned to (or that were never aligned) have their rows moved to
 * ITFlow's client, and the alignment is recorded. `clients` has every ticket read, with its client.
 */
export async function verifyTickets(
  db: Sql,
  tables: ServiceTables,
  afterId: number,
  limit: number,
): Promise<{ last: number | null; reachedEnd: boolean; moved: number; clients: Map<number, number> }> {
  const [rows] = await db.query<RowDataPacket[]>(
    'SELECT ticket_id, ticket_client_id FROM tickets WHERE ticket_id > ? ORDER BY ticket_id LIMIT ?',
    [afterId, limit],
  );
  const clients = new Map(rows.map((row) => [Number(row.ticket_id), Number(row.ticket_client_id)]));
  const last = rows.length > 0 ? Number(rows[rows.length - 1]?.ticket_id) : null;
  const reachedEnd = rows.length < limit;
  const [aligned] = await db.query<RowDataPacket[]>(
    `SELECT ticket_id, client_id FROM ${tables.projectionTickets} WHERE ticket_id > ?${reachedEnd ? '' : ' AND ticket_id <= ?'}`,
    reachedEnd ? [afterId] : [afterId, last],
  );
  const alignedTo = new Map(aligned.map((row) => [Number(row.ticket_id), Number(row.client_id)]));
  const changed = new Map([...clients].filter(([ticket, client]) => alignedTo.get(ticket) !== client));
  let moved = 0;
  if (changed.size > 0) {
    moved = await alignTicketClients(db, tables, changed);
    await db.query(
      `INSERT INTO ${tables.projectionTickets} (ticket_id, client_id) VALUES ? ON DUPLICATE KEY UPDATE client_id = VALUES(client_id)`,
      [[...changed]],
    );
  }
  return { last, reachedEnd, moved, clients };
}
