// read.php from the read projection: the service's own index of ticket_replies finds the reply
// ids of a page, and the rows themselves are read from ticket_replies by primary key, with the
// listing's own conditions — so every row is ITFlow's row as it is at that moment, serialised as
// before, and the projection is only ever trusted to say which ids to read.
//
// How each kind of change elsewhere shows:
// - replies newer than the follower's watermark (written by anyone since its last round) are read
//   from ticket_replies itself: ids past the watermark are a primary-key range, at most
//   MAX_TAIL_IDS long (past that, the whole read goes to ITFlow's tables);
// - a reply archived, deleted, edited to another type, merged into another ticket or moved with
//   its ticket to another client since the projection last saw it fails the listing's conditions
//   when its row is read: the projection's rows for it are repaired there and then, and the page
//   is read again (then from ITFlow's tables if it still disagrees). The rows a page skips
//   (`offset`, up to CHECKED_SKIPPED of them) are checked the same way;
// - a ticket's page checks the ticket's client in `tickets` itself, so a ticket moved into or out
//   of a key's clients lists (or is refused) at once;
// - what only the follower's sweeps find is a reply that should newly enter a listing without
//   being new: un-archived, re-typed, merged in, or of a ticket moved into a client-limited key's
//   clients (that key's listing without a ticket). See follower.ts for how soon.
import type { Pool, RowDataPacket } from 'mysql2/promise';
import type { ReplyQuery } from '../../commands/readReplies.js';
import type { ServiceTables } from '../../db/tables.js';
import { type ClientScope, scopeAllows } from '../../itflow/scope.js';
import { type ListShape, listQuery, listReplies } from '../listReplies.js';
import type { ListPlanner } from '../planner.js';
import { type Changes, refreshReplies } from './rows.js';
import { readProjectionView } from './state.js';

/** Most ticket_replies ids past the watermark a read scans itself; more, and ITFlow's tables answer. */
export const MAX_TAIL_IDS = 10_000;
/** Most rows an `offset` skips that are checked against ticket_replies. */
export const CHECKED_SKIPPED = 1_000;
/** Up to this many clients, a client-limited listing reads each client's newest rows by index. */
const INDEXED_CLIENTS = 64;

/** The conditions of a ReplyQuery the projection can answer; a query with any other goes to ITFlow's tables. */
const ANSWERABLE = new Set(['replyId', 'ticketId', 'type', 'includeArchived', 'limit', 'offset', 'beforeId', 'order']);

export type ReadSource = 'projection' | 'itflow';
/** Why ITFlow's tables answered: a reply id (a primary-key read anyway), a condition the projection does not hold, the projection switched off, behind, or disagreeing twice. */
export type FallbackReason = 'reply_id' | 'condition' | 'off' | 'lag' | 'stale';

export interface Listing {
  rows: RowDataPacket[];
  source: ReadSource;
  reason?: FallbackReason;
  /** The projection's lag in seconds; null while it is being built. */
  lagSeconds: number | null;
}

export interface ProjectionReadDeps {
  pool: Pool;
  tables: ServiceTables;
  planner: ListPlanner;
  /** PROJECTION_MAX_LAG_SECONDS: past it read.php reads ITFlow's tables (0: always). */
  maxLagSeconds: number;
  /** Told of what answered each listing, and of rows repaired on the way. */
  onListing?: (source: ReadSource, reason: FallbackReason | undefined) => void;
  onRepair?: (changes: Changes) => void;
}

/** A listing, from the projection when it is caught up, else from ITFlow's tables as before. */
export async function readListing(
  deps: ProjectionReadDeps,
  scope: ClientScope,
  query: ReplyQuery,
  shape: ListShape,
): Promise<Listing> {
  const answer = (listing: Listing) => {
    deps.onListing?.(listing.source, listing.reason);
    return listing;
  };
  const direct = () => listReplies(deps.pool, deps.planner, scope, query, shape);
  // Reads the projection cannot help: ITFlow's tables, with the lag told beside them (one round trip for both).
  const other = Object.entries(query).some(
    ([key, value]) => !ANSWERABLE.has(key) && value !== undefined && value !== false && value !== null,
  );
  const upfront: FallbackReason | null =
    query.replyId !== undefined ? 'reply_id' : other ? 'condition' : deps.maxLagSeconds === 0 ? 'off' : null;
  if (upfront !== null) {
    const [view, rows] = await Promise.all([readProjectionView(deps.pool, deps.tables), direct()]);
    return answer({ rows, source: 'itflow', reason: upfront, lagSeconds: view.lagSeconds });
  }

  // A ticket's client is asked of `tickets` itself, beside the projection's state (one round trip for both).
  const [view, visible] = await Promise.all([
    readProjectionView(deps.pool, deps.tables),
    query.ticketId !== undefined ? ticketVisible(deps.pool, scope, query.ticketId) : true,
  ]);
  const fallback = async (reason: FallbackReason) =>
    answer({ rows: await direct(), source: 'itflow', reason, lagSeconds: view.lagSeconds });
  if (view.lagSeconds === null || view.lagSeconds > deps.maxLagSeconds || view.idsBehind > MAX_TAIL_IDS) return fallback('lag');
  if (!visible) return answer({ rows: [], source: 'projection', lagSeconds: view.lagSeconds });
  for (let attempt = 0; attempt < 2; attempt++) {
    const rows = await fromProjection(deps, scope, query, shape, view.watermark);
    if (rows) return answer({ rows, source: 'projection', lagSeconds: view.lagSeconds });
  }
  return fallback('stale');
}

/** Whether the ticket exists in a client the key sees, as `tickets` has it now (a ticket just moved answers at once). */
async function ticketVisible(pool: Pool, scope: ClientScope, ticketId: number): Promise<boolean> {
  const [tickets] = await pool.query<RowDataPacket[]>('SELECT ticket_client_id FROM tickets WHERE ticket_id = ?', [ticketId]);
  const ticket = tickets[0];
  return ticket !== undefined && scopeAllows(scope, Number(ticket.ticket_client_id));
}

/** The page through the projection, or null when a row it named no longer fits (repaired meanwhile). */
async function fromProjection(
  deps: ProjectionReadDeps,
  scope: ClientScope,
  query: ReplyQuery,
  shape: ListShape,
  watermark: number,
): Promise<RowDataPacket[] | null> {
  const { pool } = deps;
  // Replies past the watermark, as the listing would take them, in its order; beside them the
  // projection's window as if there were none past it (right for oldest first, and most often).
  const [tail, first] = await Promise.all([
    ids(pool, listQuery(scope, { ...query, limit: MAX_TAIL_IDS, offset: 0 }, 'ids', false, after(watermark))),
    projectedWindow(deps, scope, query, watermark, query.offset, query.limit),
  ]);

  let page: number[];
  let skipped: number[];
  if (query.order === 'asc') {
    // Oldest first: the projection's rows, then the newest.
    page = first.page;
    skipped = first.skipped;
    if (page.length < query.limit) {
      const total = first.total ?? (await projectedCount(deps, scope, query, watermark));
      const start = Math.max(0, query.offset - total);
      page = [...page, ...tail.slice(start, start + query.limit - page.length)];
    }
  } else {
    // Newest first: the newest, then the projection's rows.
    const fromTail = tail.slice(query.offset, query.offset + query.limit);
    const take = query.limit - fromTail.length;
    const part =
      tail.length === 0
        ? first
        : take > 0
          ? await projectedWindow(deps, scope, query, watermark, Math.max(0, query.offset - tail.length), take)
          : { page: [], skipped: [] };
    page = [...fromTail, ...part.page];
    skipped = part.skipped;
  }
  if (page.length === 0) return [];

  const content = listQuery(scope, { ...query, limit: page.length, offset: 0 }, shape, false, among(page));
  const check = listQuery(scope, { ...query, limit: skipped.length, offset: 0 }, 'ids', false, among(skipped));
  const [[rows], [found]] = await Promise.all([
    pool.query<RowDataPacket[]>(content.sql, content.params),
    skipped.length > 0 ? pool.query<RowDataPacket[]>(check.sql, check.params) : Promise.resolve([[] as RowDataPacket[]] as const),
  ]);
  const stale = [...missing(page, rows), ...missing(skipped, found)];
  if (stale.length === 0) return rows;
  deps.onRepair?.(await refreshReplies(pool, deps.tables, stale));
  return null;
}

const after = (watermark: number) => ({ sql: 'tr.ticket_reply_id > ?', params: [watermark] });
const among = (replyIds: number[]) => ({ sql: 'tr.ticket_reply_id IN (?)', params: [replyIds] });

async function ids(pool: Pool, { sql, params }: { sql: string; params: unknown[] }): Promise<number[]> {
  const [rows] = await pool.query<RowDataPacket[]>(sql, params);
  return rows.map((row) => Number(row.ticket_reply_id ?? row.reply_id));
}

function missing(wanted: number[], rows: RowDataPacket[]): number[] {
  const found = new Set(rows.map((row) => Number(row.ticket_reply_id)));
  return wanted.filter((id) => !found.has(id));
}

/** The projection's conditions for a query (its ticket's scope was checked in `tickets`), the client aside. */
function conditions(query: ReplyQuery, watermark: number): { where: string[]; params: unknown[] } {
  const where = ['reply_id <= ?'];
  const params: unknown[] = [watermark];
  if (query.ticketId !== undefined) {
    where.push('ticket_id = ?');
    params.push(query.ticketId);
  }
  if (!query.includeArchived) where.push('archived_at IS NULL');
  if (query.type !== undefined) {
    where.push('reply_type = ?');
    params.push(query.type);
  }
  if (query.beforeId !== undefined) {
    where.push('reply_id < ?');
    params.push(query.beforeId);
  }
  return { where, params };
}

/** The clients a listing without a ticket reads: all but `deny` (null), or these (maybe none). */
function clientsOf(scope: ClientScope): number[] | null {
  return scope.allow === null ? null : scope.allow.filter((client) => !scope.deny.includes(client));
}

/**
 * Ids of the projection's rows for a page: `take` after `skip`, in the listing's order. Rows
 * skipped are returned too (to be checked) when there are at most CHECKED_SKIPPED of them.
 * `total` is how many rows match in all, when the page shows it (the window was not filled).
 */
async function projectedWindow(
  deps: ProjectionReadDeps,
  scope: ClientScope,
  query: ReplyQuery,
  watermark: number,
  skip: number,
  take: number,
): Promise<{ page: number[]; skipped: number[]; total: number | null }> {
  const checked = skip <= CHECKED_SKIPPED;
  const limit = checked ? skip + take : take;
  const offset = checked ? 0 : skip;
  const found = await projectedIds(deps, scope, query, watermark, limit, offset);
  if (found === null) return { page: [], skipped: [], total: 0 };
  if (checked) {
    return { page: found.slice(skip), skipped: found.slice(0, skip), total: found.length < limit ? found.length : null };
  }
  return { page: found, skipped: [], total: found.length > 0 && found.length < take ? skip + found.length : null };
}

/** Ids from the projection's indexes; null when the key sees no client at all. */
async function projectedIds(
  deps: ProjectionReadDeps,
  scope: ClientScope,
  query: ReplyQuery,
  watermark: number,
  limit: number,
  offset: number,
): Promise<number[] | null> {
  const statement = projectedIdsQuery(deps.tables, scope, query, watermark, limit, offset);
  return statement === null ? null : ids(deps.pool, statement);
}

/**
 * The projection's query for a page's reply ids (exported so the benchmark can ANALYZE exactly
 * this); null when the key sees no client at all.
 */
export function projectedIdsQuery(
  tables: ServiceTables,
  scope: ClientScope,
  query: ReplyQuery,
  watermark: number,
  limit: number,
  offset: number,
): { sql: string; params: unknown[] } | null {
  const table = tables.projectionReplies;
  const order = `ORDER BY reply_id ${query.order === 'asc' ? 'ASC' : 'DESC'}`;
  const { where, params } = conditions(query, watermark);
  const clients = query.ticketId !== undefined ? null : clientsOf(scope);
  if (clients !== null && clients.length === 0) return null;
  if (clients === null || clients.length > INDEXED_CLIENTS) {
    // A ticket (one index range), every client but a few (the primary key, newest first), or many clients.
    if (clients !== null) {
      where.push('client_id IN (?)');
      params.push(clients);
    } else if (query.ticketId === undefined && scope.deny.length > 0) {
      where.push('client_id NOT IN (?)');
      params.push(scope.deny);
    }
    return {
      sql: `SELECT reply_id FROM ${table} WHERE ${where.join(' AND ')} ${order} LIMIT ? OFFSET ?`,
      params: [...params, limit, offset],
    };
  }
  // A few clients: each one's newest rows through its own index range, merged.
  const each = `(SELECT reply_id FROM ${table} WHERE client_id = ? AND ${where.join(' AND ')} ${order} LIMIT ?)`;
  return {
    sql: `${clients.map(() => each).join(' UNION ALL ')} ${order} LIMIT ? OFFSET ?`,
    params: [...clients.flatMap((client) => [client, ...params, limit + offset]), limit, offset],
  };
}

async function projectedCount(
  deps: ProjectionReadDeps,
  scope: ClientScope,
  query: ReplyQuery,
  watermark: number,
): Promise<number> {
  const { where, params } = conditions(query, watermark);
  const clients = query.ticketId !== undefined ? null : clientsOf(scope);
  if (clients !== null) {
    if (clients.length === 0) return 0;
    where.push('client_id IN (?)');
    params.push(clients);
  } else if (query.ticketId === undefined && scope.deny.length > 0) {
    where.push('client_id NOT IN (?)');
    params.push(scope.deny);
  }
  const [rows] = await deps.pool.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n FROM ${deps.tables.projectionReplies} WHERE ${where.join(' AND ')}`,
    params,
  );
  return Number(rows[0]?.n ?? 0);
}
