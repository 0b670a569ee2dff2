import type { FastifyInstance, RouteHandlerMethod } from 'fastify';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { parseItflowReadReplies, parseReadReplies, type ReplyQuery } from '../../commands/readReplies.js';
import { NotFound } from '../../errors.js';
import { type Principal, READ, requireLevel } from '../../itflow/apiKeys.js';
import { externalIdsOf, replyOfExternalId } from '../../read/externalIds.js';
import { type ListShape, listReplies } from '../../read/listReplies.js';
import { inOneSnapshot, pendingReplies, scanPending } from '../../read/pendingReplies.js';
import { type Listing, readListing } from '../../read/projection/serve.js';
import { readProjectionView } from '../../read/projection/state.js';
import { v1Row } from '../../read/serialize.js';
import { principalOf } from '../auth.js';
import { ok } from '../envelope.js';
import type { RouteDeps } from '../server.js';

export const READ_PATH = '/api/v1/tickets/replies/read.php';
export const ITFLOW_READ_PATH = '/api/v1/ticket_replies/read.php';

/** v1's answer when a read finds nothing. */
export const NO_RESOURCE = 'No resource (for this client and company) with the specified parameter(s).';

function readHandler(deps: RouteDeps, parse: (query: unknown) => ReplyQuery, shape: ListShape): RouteHandlerMethod {
  return async (request, reply) => {
    const principal = await principalOf(deps.auth, request, null);
    requireLevel(principal, READ);
    const asked = parse(request.query);
    // include_pending: Redis first, then the listing (from ITFlow's tables) and the ledger in one
    // snapshot (src/read/pendingReplies.ts); otherwise the listing, from the read projection when
    // it is caught up (src/read/projection/serve.ts).
    const ticketId = wantsPending(asked);
    const { listing, pending } =
      ticketId === null
        ? { listing: await projected(deps, principal, asked, shape), pending: [] }
        : await pendingFirst(deps, principal, asked, ticketId, shape);
    // Which of the two answered, and how far behind ticket_replies the projection is (also on a 404).
    reply.header('X-Read-Source', listing.source);
    reply.header('X-Projection-Lag', listing.lagSeconds === null ? 'building' : listing.lagSeconds.toFixed(3));
    // This service's own listing adds the caller's external ids.
    const rows = listing.rows.map(v1Row);
    const listed = shape === 'replies' ? await withExternalIds(deps, principal, rows) : rows;
    if (pending.length + listed.length === 0) throw new NotFound(NO_RESOURCE);
    return ok([...pending, ...listed]);
  };
}

/** The ticket whose pending commands the query asks for: include_pending=1 on the first page only. */
function wantsPending(query: ReplyQuery): number | null {
  const first = query.offset === 0 && query.beforeId === undefined;
  return query.includePending && query.ticketId !== undefined && first ? query.ticketId : null;
}

/** The listing without pending commands: through the projection, narrowed first to an external id's reply. */
async function projected(deps: RouteDeps, principal: Principal, query: ReplyQuery, shape: ListShape): Promise<Listing> {
  const narrowed = await byExternalId(deps.read.pool, deps, principal, query);
  if (narrowed) return readListing(deps.read, principal.scope, { ...narrowed, includePending: false }, shape);
  const view = await readProjectionView(deps.read.pool, deps.read.tables);
  return { rows: [], source: 'itflow', lagSeconds: view.lagSeconds };
}

/** The ticket's pending commands and its listing, read from ITFlow's tables in the ledger's snapshot. */
async function pendingFirst(deps: RouteDeps, principal: Principal, query: ReplyQuery, ticketId: number, shape: ListShape) {
  const scan = await scanPending(deps.read.pending, principal, ticketId);
  const zone = await deps.auth.clock.zone();
  const list = async (db: PoolConnection): Promise<RowDataPacket[]> => {
    const narrowed = await byExternalId(db, deps, principal, query);
    return narrowed ? listReplies(db, deps.read.planner, principal.scope, narrowed, shape) : [];
  };
  const view = await readProjectionView(deps.read.pool, deps.read.tables);
  const { rows, pending } = await inOneSnapshot(deps.read.pool, deps.read.timeoutMs, async (db) => ({
    rows: await list(db),
    pending: await pendingReplies(db, deps.read.tables, deps.read.pending, scan, principal, ticketId, {
      limit: query.limit,
      zone,
      externalId: query.externalId,
    }),
  }));
  const listing: Listing = { rows, source: 'itflow', reason: 'condition', lagSeconds: view.lagSeconds };
  deps.read.onListing?.(listing.source, listing.reason);
  return { listing, pending };
}

/** The query narrowed to the caller's reply with the external_id asked for; null when it has none. */
async function byExternalId(
  db: Pool | PoolConnection,
  deps: RouteDeps,
  principal: Principal,
  query: ReplyQuery,
): Promise<ReplyQuery | null> {
  if (query.externalId === undefined) return query;
  const replyId = await replyOfExternalId(db, deps.read.tables, principal.keyId, query.externalId);
  if (!replyId || (query.replyId !== undefined && query.replyId !== replyId)) return null;
  return { ...query, replyId };
}

async function withExternalIds(deps: RouteDeps, principal: Principal, rows: Array<Record<string, string | null>>) {
  const ids = await externalIdsOf(
    deps.read.pool,
    deps.read.tables,
    principal.keyId,
    rows.map((row) => Number(row.ticket_reply_id)),
  );
  return rows.map((row) => {
    const externalId = ids.get(Number(row.ticket_reply_id));
    return externalId === undefined ? row : { ...row, external_id: externalId };
  });
}

/** GET read.php: replies newest first (this service), or as ITFlow's own read.php lists them. */
export function registerReadReplies(app: FastifyInstance, deps: RouteDeps): void {
  app.get(READ_PATH, readHandler(deps, parseReadReplies, 'replies'));
  app.get(ITFLOW_READ_PATH, readHandler(deps, parseItflowReadReplies, 'itflow'));
}
