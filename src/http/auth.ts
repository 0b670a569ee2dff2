import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import { Unauthorized } from '../errors.js';
import type { KeyResolver, Principal } from '../itflow/apiKeys.js';
import type { ItflowClock } from '../itflow/clock.js';
import { keyLayoutOf } from '../queue/cluster.js';
import { redisKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';

export interface AuthDeps {
  keys: KeyResolver;
  pool: Pool;
  clock: ItflowClock;
  redis: RedisClient;
  prefix: string;
  failureLogsPerMinute: number;
  logger: Logger;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Whose key the request carries, once authenticated from a header or the query string. */
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    /** The route also takes the key as the JSON body's api_key (create.php, POST commands.php). */
    keyInBody?: boolean;
  }
}

/** Only the API takes keys; health, readiness, metrics and the docs answer anyone. */
export const isApi = (request: FastifyRequest) => request.routeOptions.url?.startsWith('/api/') === true;

/**
 * The key presented where it is known before the body. One key is used, the first found in
 * this order: the X-API-Key header, `Authorization: Bearer <key>`, the query's api_key (and
 * after them the body's api_key, see keyInBody); a key sent a second way is ignored, never
 * compared. X-API-Key comes first so that a client behind a proxy that uses
 * Authorization for itself keeps working; another Authorization scheme (Basic, …) is no key.
 */
export function keyBeforeBody(request: FastifyRequest): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const bearer = bearerToken(request.headers.authorization);
  if (bearer !== undefined) return bearer;
  const fromQuery = (request.query as { api_key?: unknown } | undefined)?.api_key;
  return typeof fromQuery === 'string' && fromQuery !== '' ? fromQuery : undefined;
}

/** The credentials of `Authorization: Bearer <token>` (scheme in any case, RFC 9110 §11.1). */
function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^bearer[ \t]+(\S+)[ \t]*$/i.exec(authorization ?? '');
  return match?.[1];
}

/** The JSON body's api_key, which create.php and POST commands.php also take. */
export function keyInBody(body: unknown): string | undefined {
  const fromBody = (body as { api_key?: unknown } | null)?.api_key;
  return typeof fromBody === 'string' && fromBody !== '' ? fromBody : undefined;
}

/**
 * Authentication before the body is read. A key in the X-API-Key or Authorization header or
 * the query string is checked as soon as the request's head is in: a wrong or expired one answers 401 without
 * a byte of the body being read (the connection is then closed, see server.ts), so nobody
 * without a key makes the intake hold or parse a body. Without such a key, only the routes
 * that take the key in the body (bounded by BODY_LIMIT_BYTES) read it; the others answer 401.
 */
export function registerAuthentication(app: FastifyInstance, deps: AuthDeps): void {
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (request) => {
    if (!isApi(request)) return;
    const secret = keyBeforeBody(request);
    if (secret === undefined && request.routeOptions.config.keyInBody === true) return;
    request.principal = await authenticate(deps, request, secret);
  });
}

/** The request's principal: the one its header or query key gave, else its body's api_key's. */
export async function principalOf(deps: AuthDeps, request: FastifyRequest, body: unknown): Promise<Principal> {
  return request.principal ?? authenticate(deps, request, keyInBody(body));
}

/**
 * Resolves a presented key to a principal, or answers 401 (missing, unknown or expired). A
 * wrong or expired key leaves a `logs` row as ITFlow does, at most failureLogsPerMinute per
 * client IP, so a flood cannot fill the table.
 */
async function authenticate(deps: AuthDeps, request: FastifyRequest, secret: string | undefined): Promise<Principal> {
  if (secret === undefined) throw new Unauthorized();
  const principal = await deps.keys.bySecret(secret);
  if (principal) return principal;
  await logFailedAttempt(deps, request).catch((error: Error) =>
    deps.logger.warn({ err: error.message }, 'could not record a failed API key attempt'),
  );
  throw new Unauthorized();
}

async function logFailedAttempt(deps: AuthDeps, request: FastifyRequest): Promise<void> {
  if (deps.failureLogsPerMinute === 0) return;
  const minute = Math.floor(Date.now() / 60_000);
  const counter = redisKeys(deps.prefix, keyLayoutOf(deps.redis)).authFailures(request.ip, minute);
  const [[, count]] = (await deps.redis.multi().incr(counter).expire(counter, 120).exec()) as [[unknown, number]];
  if (count > deps.failureLogsPerMinute) return;
  const path = request.url.split('?')[0] ?? '';
  await deps.pool.query(
    `INSERT INTO logs (log_type, log_action, log_description, log_ip, log_user_agent, log_created_at)
     VALUES ('API', 'Failed', ?, ?, ?, ?)`,
    [
      `Incorrect or expired key (endpoint: ${path.slice(0, 900)})`,
      request.ip.slice(0, 200),
      String(request.headers['user-agent'] ?? '').slice(0, 250),
      await deps.clock.at(),
    ],
  );
}
