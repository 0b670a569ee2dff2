import type { FastifyInstance, RouteHandlerMethod } from 'fastify';
import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';
import { parseItflowReadReplies, parseReadReplies, type ReplyQuery } from '../../commands/readReplies.js';
import { NotFound } from '../../errors.js';
import { type Principal, READ, requireLevel } from '../../itflow/apiKeys.js';
import { externalIdsOf, replyOfExternalId } from '../../read/externalIds.js';
import { type ListShape, listReplies } from '../../read/listReplies.js';
import { inOneSnapshot, pendingReplies, scanPending } from '../../read/pendingReplies.js';
import { v1Row } from '../../read/serialize.js';
import { principalOf } from '../auth.js';
import { ok } from '../envelope.js';
import type { RouteDeps } from '../server.js';

export const READ_PATH = '/api/v1/tickets/replies/read.php';
export const ITFLOW_READ_PATH = '/api/v1/ticket_replies/read.php';

/** v1's answer when a read finds nothing. */
export const NO_RESOURCE = 'No resource (for this client and company) with the specified parameter(s).';

function readHandler(deps: RouteDeps, parse: (query: unknown) => ReplyQuery, shape: ListShape): RouteHandlerMethod {
  return async (request) => {
    const principal = await principalOf(deps.auth, request, null);
    requireLevel(principal, READ);
    const asked = parse(request.query);
    const list = async (db: Pool | PoolConnection) => {
      const query = await byExternalId(db, deps, principal, asked);
      return query ? listReplies(db, deps.read.planner, principal.scope, query, shape) : [];
    };
    // include_pending: Redis first, then the listing and the ledger in one snapshot (src/read/pendingReplies.ts).
    const ticketId = wantsPending(asked);
    const { rows, pending } =
      ticketId === null
        ? { rows: await list(deps.read.pool), pending: [] }
        : await pendingFirst(deps, principal, asked, ticketId, list);
    // This service's own listing adds the caller's external ids.
    const listed = shape === 'replies' ? await withExternalIds(deps, principal, rows.map(v1Row)) : rows.map(v1Row);
    if (pending.length + listed.length === 0) throw new NotFound(NO_RESOURCE);
    return ok([...pending, ...listed]);
  };
}

/** The ticket whose pending commands the query asks for: include_pending=1 on the first page only. */
function wantsPending(query: ReplyQuery): number | null {
  const first = query.offset === 0 && query.beforeId === undefined;
  return query.includePending && query.ticketId !== undefined && first ? query.ticketId : null;
}

async function pendingFirst(
  deps: RouteDeps,
  principal: Principal,
  query: ReplyQuery,
  ticketId: number,
  list: (db: PoolConnection) => Promise<RowDataPacket[]>,
) {
  const scan = await scanPending(deps.read.pending, principal, ticketId);
  const zone = await deps.auth.clock.zone();
  return inOneSnapshot(deps.read.pool, deps.read.timeoutMs, async (db) => ({
    rows: await list(db),
    pending: await pendingReplies(db, deps.read.tables, deps.read.pending, scan, principal, ticketId, {
      limit: query.limit,
      zone,
      externalId: query.externalId,
    }),
  }));
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
