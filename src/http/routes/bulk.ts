import { setImmediate } from 'node:timers/promises';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { Invalid, PayloadTooLarge } from '../../errors.js';
import { requireLevel, WRITE } from '../../itflow/apiKeys.js';
import { chunkIdOf } from '../../queue/chunks.js';
import { preferredWait } from '../accept.js';
import { principalOf } from '../auth.js';
import { checkUtf8 } from '../body.js';
import { acceptBulk, type ItemResult, UnreadableLine } from '../bulkAccept.js';
import type { RouteDeps } from '../server.js';
import { originOf } from './createReply.js';

export const BULK_PATH = '/api/v1/tickets/replies/bulk.php';

/** How long NDJSON parsing may hold the event loop before it lets other requests run. */
const SLICE_MS = 5;

function tooManyCommands(max: number, count?: number): PayloadTooLarge {
  return new PayloadTooLarge(`A bulk request may carry at most ${max} commands; this one has ${count ?? 'more'}.`);
}

/**
 * NDJSON: one command per line. A line that is not JSON stays in its place as an
 * UnreadableLine, so it is refused alone and the other lines' results keep their positions.
 * Parsing stops at the first line past `maxItems` (413: the rest is never parsed) and yields to
 * the event loop every few milliseconds, so a large body never holds up other requests.
 */
export async function parseNdjson(body: Buffer, maxItems: number): Promise<unknown[]> {
  const items: unknown[] = [];
  let sliceStarted = performance.now();
  for (let start = 0, line = 1; start < body.length; line++) {
    const newline = body.indexOf(0x0a, start);
    const end = newline === -1 ? body.length : newline;
    const text = body.toString('utf8', start, end);
    start = end + 1;
    if (text.trim() === '') continue;
    if (items.length === maxItems) throw tooManyCommands(maxItems);
    try {
      items.push(JSON.parse(text));
    } catch {
      items.push(new UnreadableLine(line));
    }
    if (performance.now() - sliceStarted > SLICE_MS) {
      await setImmediate();
      sliceStarted = performance.now();
    }
  }
  return items;
}

/**
 * POST bulk.php: a JSON array, or NDJSON (Content-Type: application/x-ndjson), of up to
 * BULK_MAX_ITEMS commands. The key comes in the X-API-Key header or the api_key query parameter,
 * and is checked before the body is read (src/http/auth.ts). `?dry_run=1` validates everything
 * and queues nothing.
 */
export function registerBulk(app: FastifyInstance, deps: RouteDeps): void {
  app.addContentTypeParser(
    ['application/x-ndjson', 'application/jsonl'],
    { parseAs: 'buffer' },
    async (request: FastifyRequest, body: Buffer) => {
      checkUtf8(request, body);
      return parseNdjson(body, deps.bulkMaxItems);
    },
  );
  app.post(BULK_PATH, { bodyLimit: deps.bulkBodyLimitBytes }, async (request, reply) => {
    const principal = await principalOf(deps.auth, request, null);
    requireLevel(principal, WRITE);
    const items = request.body;
    if (!Array.isArray(items)) {
      throw new Invalid('The request body must be a JSON array of commands, or NDJSON (Content-Type: application/x-ndjson).');
    }
    if (items.length === 0) throw new Invalid('The request carries no commands.');
    if (items.length > deps.bulkMaxItems) throw tooManyCommands(deps.bulkMaxItems, items.length);
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
