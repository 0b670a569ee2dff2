import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import type { ReplyQuery } from '../commands/readReplies.js';
import { type ClientScope, scopeSql } from '../itflow/scope.js';
import type { ListPlanner } from './planner.js';

/**
 * The listing: ticket_replies joined to their ticket so the key's client scope applies to
 * every row — a restricted key never sees another client's reply, even by reply id. Replies
 * ITFlow wrote itself (web UI, email parser) are listed like any other: the database is the
 * truth, not the queue.
 *
 * Plans (EXPLAIN in docs/benchmarks.md): a reply id is a primary-key look-up; a ticket's replies use
 * ITFlow's (ticket_reply_ticket_id, ticket_reply_archived_at) index where it exists (≥ 2.4.7);
 * the unfiltered listing walks the primary key newest first and stops at the page size, and a
 * `before_id` cursor starts that walk at the cursor, so deep pages cost what the first does.
 * The join order is pinned (STRAIGHT_JOIN): left to itself, MariaDB prefers to start from
 * tickets and sort every reply. A key limited to a small share of the tickets starts from its
 * tickets instead (see ListPlanner).
 */
export type ListShape = 'replies' | 'itflow';

export async function listReplies(
  pool: Pool | PoolConnection,
  planner: ListPlanner,
  scope: ClientScope,
  query: ReplyQuery,
  shape: ListShape,
): Promise<RowDataPacket[]> {
  const { sql, params } = listQuery(scope, query, shape, await planner.startFromTickets(scope, query));
  const [rows] = await pool.query<RowDataPacket[]>(sql, params);
  return rows;
}

/**
 * The listing's SQL and parameters (exported so the benchmark can EXPLAIN exactly this).
 * `within` adds a condition on the reply id, and shape `ids` selects the ids alone: the read
 * projection's checks (src/read/projection/serve.ts).
 */
export function listQuery(
  scope: ClientScope,
  query: ReplyQuery,
  shape: ListShape | 'ids',
  fromTickets = false,
  within?: { sql: string; params: unknown[] },
): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const scoped = scopeSql(scope, 't.ticket_client_id');
  where.push(scoped.sql);
  params.push(...scoped.params);
  if (within) {
    where.push(within.sql);
    params.push(...within.params);
  }
  if (query.replyId !== undefined) {
    where.push('tr.ticket_reply_id = ?');
    params.push(query.replyId);
  }
  if (query.ticketId !== undefined) {
    where.push('tr.ticket_reply_ticket_id = ?');
    params.push(query.ticketId);
  }
  if (!query.includeArchived) where.push('tr.ticket_reply_archived_at IS NULL');
  if (query.type !== undefined) {
    where.push('tr.ticket_reply_type = ?');
    params.push(query.type);
  }
  if (query.beforeId !== undefined) {
    where.push('tr.ticket_reply_id < ?');
    params.push(query.beforeId);
  }
  const from = fromTickets
    ? 'tickets t INNER JOIN ticket_replies tr ON tr.ticket_reply_ticket_id = t.ticket_id'
    : 'ticket_replies tr INNER JOIN tickets t ON t.ticket_id = tr.ticket_reply_ticket_id';
  // ITFlow's own read.php adds the ticket's reference and the author's name to each row.
  const select =
    shape === 'itflow'
      ? `SELECT STRAIGHT_JOIN tr.*, t.ticket_prefix, t.ticket_number, t.ticket_subject, t.ticket_client_id,
                COALESCE(u.user_name, c.contact_name) AS ticket_reply_by_name
         FROM ${from}
         LEFT JOIN users u ON tr.ticket_reply_type != 'Client' AND u.user_id = tr.ticket_reply_by
         LEFT JOIN contacts c ON tr.ticket_reply_type = 'Client' AND c.contact_id = tr.ticket_reply_by`
      : `SELECT STRAIGHT_JOIN ${shape === 'ids' ? 'tr.ticket_reply_id' : 'tr.*'} FROM ${from}`;
  return {
    sql: `${select} WHERE ${where.join(' AND ')}
     ORDER BY tr.ticket_reply_id ${query.order === 'asc' ? 'ASC' : 'DESC'} LIMIT ? OFFSET ?`,
    params: [...params, query.limit, query.offset],
  };
}
