import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { Invalid, PayloadTooLarge } from '../../errors.js';
import { requireLevel, WRITE } from '../../itflow/apiKeys.js';
import { chunkIdOf } from '../../queue/chunks.js';
import { preferredWait } from '../accept.js';
import { authenticate } from '../auth.js';
import { utf8Body } from '../body.js';
import { acceptBulk, type ItemResult, UnreadableLine } from '../bulkAccept.js';
import type { RouteDeps } from '../server.js';
import { originOf } from './createReply.js';

export const BULK_PATH = '/api/v1/tickets/replies/bulk.php';

/**
 * NDJSON: one command per line. A line that is not JSON stays in its place as an
 * UnreadableLine, so it is refused alone and the other lines' results keep their positions.
 */
export function parseNdjson(body: string): unknown[] {
  const items: unknown[] = [];
  for (const [i, line] of body.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      items.push(JSON.parse(line));
    } catch {
      items.push(new UnreadableLine(i + 1));
    }
  }
  return items;
}

/**
 * POST bulk.php: a JSON array, or NDJSON (Content-Type: application/x-ndjson), of up to
 * BULK_MAX_ITEMS commands. The key comes in the X-API-Key header or the api_key query parameter.
 * `?dry_run=1` validates everything and queues nothing.
 */
export function registerBulk(app: FastifyInstance, deps: RouteDeps): void {
  app.addContentTypeParser(['application/x-ndjson', 'application/jsonl'], { parseAs: 'buffer' }, (request, body, done) => {
    try {
      done(null, parseNdjson(utf8Body(request, body as Buffer)));
    } catch (error) {
      done(error as Error);
    }
  });
  app.post(BULK_PATH, { bodyLimit: deps.bulkBodyLimitBytes }, async (request, reply) => {
    const principal = await authenticate(deps.auth, request, null);
    requireLevel(principal, WRITE);
    const items = request.body;
    if (!Array.isArray(items)) {
      throw new Invalid('The request body must be a JSON array of commands, or NDJSON (Content-Type: application/x-ndjson).');
    }
    if (items.length === 0) throw new Invalid('The request carries no commands.');
    if (items.length > deps.bulkMaxItems) {
      throw new PayloadTooLarge(`A bulk request may carry at most ${deps.bulkMaxItems} commands; this one has ${items.length}.`);
    }
    const dryRun = ['1', 'true'].includes(String((request.query as { dry_run?: unknown }).dry_run ?? ''));
    const wait = dryRun ? 0 : preferredWait(request.headers.prefer, deps.preferWaitMaxSeconds);
    const { httpStatus, results } = await acceptBulk(deps.bulk, principal, items, originOf(request), {
      dryRun,
      waitSeconds: wait,
    });
    logAccepted(request.log, results);
    if (wait > 0) reply.header('Preference-Applied', `wait=${wait}`);
    if (httpStatus >= 400) {
      const message =
        httpStatus === 503
          ? 'The service is temporarily unavailable; no command was queued. Please retry shortly.'
          : 'No command in the request was accepted; each item says why.';
      if (httpStatus === 503) reply.header('Retry-After', '5');
      return reply.code(httpStatus).send({ success: 'False', message, count: results.length, data: results });
    }
    return reply.code(httpStatus).send({ success: 'True', count: results.length, data: results });
  });
}

/** Most command ids a bulk request's "commands accepted" line lists one by one. */
const LOGGED_IDS = 100;

/**
 * One log line for the commands a bulk request queued, in the request's log (with its reqId):
 * their ids, or for a large request its chunk ids (a command's id is its chunk's id with the
 * last three hex digits replaced by its position in the chunk), so the line stays small.
 */
function logAccepted(log: FastifyBaseLogger, results: ItemResult[]): void {
  const commandIds = results.flatMap((r) => ('command_id' in r && !r.replayed ? [r.command_id] : []));
  if (commandIds.length === 0) return;
  const ids =
    commandIds.length <= LOGGED_IDS ? { commandIds } : { chunkIds: [...new Set(commandIds.map((id) => chunkIdOf(id)))] };
  log.info({ accepted: commandIds.length, ...ids }, 'commands accepted');
}
