import type { FastifyInstance, RouteHandlerMethod } from 'fastify';
import { parseItflowReadReplies, parseReadReplies, type ReplyQuery } from '../../commands/readReplies.js';
import { NotFound } from '../../errors.js';
import { READ, requireLevel } from '../../itflow/apiKeys.js';
import type { ListShape } from '../../read/listReplies.js';
import { readListing } from '../../read/projection/serve.js';
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
    const { rows, source, lagSeconds } = await readListing(deps.read, principal.scope, parse(request.query), shape);
    // Which of the two answered, and how far behind ticket_replies the projection is (also on a 404).
    reply.header('X-Read-Source', source);
    reply.header('X-Projection-Lag', lagSeconds === null ? 'building' : lagSeconds.toFixed(3));
    if (rows.length === 0) throw new NotFound(NO_RESOURCE);
    return ok(rows.map(v1Row));
  };
}

/** GET read.php: replies newest first (this service), or as ITFlow's own read.php lists them. */
export function registerReadReplies(app: FastifyInstance, deps: RouteDeps): void {
  app.get(READ_PATH, readHandler(deps, parseReadReplies, 'replies'));
  app.get(ITFLOW_READ_PATH, readHandler(deps, parseItflowReadReplies, 'itflow'));
}
