import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyRequest, RouteHandlerMethod } from 'fastify';
import type { Command } from '../../commands/command.js';
import { parseCreateReply } from '../../commands/createReply.js';
import { parseItflowCreateReply } from '../../commands/itflowCreateReply.js';
import { parseItflowResolve } from '../../commands/itflowResolve.js';
import { Invalid } from '../../errors.js';
import { requireLevel, WRITE } from '../../itflow/apiKeys.js';
import type { Endpoint } from '../../metrics/registry.js';
import { accept, type HttpAnswer, newJob, preferredWait } from '../accept.js';
import { principalOf } from '../auth.js';
import type { RouteDeps } from '../server.js';

export const CREATE_PATH = '/api/v1/tickets/replies/create.php';
/** ITFlow ≥ 2.4.7 ships its own synchronous create on this path; clients of it work unchanged. */
export const ITFLOW_CREATE_PATH = '/api/v1/ticket_replies/create.php';
/** ITFlow's own synchronous resolve (both generations). */
export const ITFLOW_RESOLVE_PATH = '/api/v1/tickets/resolve.php';

/**
 * The Idempotency-Key header, which wins over the body's idempotency_key. Node hands header
 * bytes over as latin1 characters; clients write non-ASCII keys in UTF-8 (as in the body), so
 * the bytes are read again as UTF-8 and `clé` names the same command either way.
 */
export function idempotencyKeyHeader(request: FastifyRequest): string | undefined {
  const value = request.headers['idempotency-key'];
  if (typeof value !== 'string' || value === '') return undefined;
  const bytes = Buffer.from(value, 'latin1');
  if (!isUtf8(bytes)) throw new Invalid('The Idempotency-Key header must be UTF-8 text.');
  const key = bytes.toString('utf8');
  if (key.length > 255) throw new Invalid('Idempotency-Key must be at most 255 characters.');
  return key;
}

export function originOf(request: FastifyRequest) {
  return { ip: request.ip, userAgent: String(request.headers['user-agent'] ?? '') };
}

type Parser = (body: unknown) => { command: Command; idempotencyKey: string | undefined };

/**
 * ITFlow's resolve endpoint answers an update as its update_output.php does: success and the
 * number of tickets changed (here with the command id beside it). Anything but "applied" is the
 * usual answer: 202 while queued, or the failure with its status.
 */
function asItflowUpdate(answer: HttpAnswer): HttpAnswer {
  if (answer.status !== 201) return answer;
  const [applied] = (answer.body as { data: Array<{ command_id: string }> }).data;
  return { ...answer, status: 200, body: { success: 'True', count: 1, data: [{ command_id: applied?.command_id }] } };
}

/**
 * One reply and/or status change and/or time worked, in either field dialect. `waitByDefault`
 * is how long to wait for the worker when the client states no preference.
 */
function createHandler(
  deps: RouteDeps,
  endpoint: Endpoint,
  parse: Parser,
  waitByDefault: number,
  answerAs: (answer: HttpAnswer) => HttpAnswer = (answer) => answer,
): RouteHandlerMethod {
  const acceptDeps = { ...deps.accept, accepted: deps.metrics.acceptedVia(endpoint) };
  return async (request, reply) => {
    const body = request.body ?? {};
    const principal = await principalOf(deps.auth, request, body);
    requireLevel(principal, WRITE);
    const { command, idempotencyKey } = parse(body);
    const key = idempotencyKeyHeader(request) ?? idempotencyKey;
    const wait = preferredWait(request.headers.prefer, deps.preferWaitMaxSeconds, waitByDefault);
    const job = newJob(principal, command, key, originOf(request), wait > 0);
    const answer = answerAs(await accept(acceptDeps, principal, job, wait, request.log));
    return reply.code(answer.status).headers(answer.headers).send(answer.body);
  };
}

/** Both create paths also take the key as the body's api_key, as ITFlow's v1 clients send it. */
export function registerCreateReply(app: FastifyInstance, deps: RouteDeps): void {
  // The proposal's path: asynchronous (202) unless the client asks to wait.
  app.post(CREATE_PATH, { config: { keyInBody: true } }, createHandler(deps, 'create', parseCreateReply, 0));
  // ITFlow's own path answers synchronously, so it waits as long as allowed unless the client
  // says `Prefer: respond-async` or `wait=0`.
  app.post(
    ITFLOW_CREATE_PATH,
    { config: { keyInBody: true } },
    createHandler(deps, 'itflow_create', parseItflowCreateReply, deps.preferWaitMaxSeconds),
  );
  app.post(
    ITFLOW_RESOLVE_PATH,
    { config: { keyInBody: true } },
    createHandler(deps, 'itflow_resolve', parseItflowResolve, deps.preferWaitMaxSeconds, asItflowUpdate),
  );
}
