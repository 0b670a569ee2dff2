import type { FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import type { Pool } from 'mysql2/promise';
import type { Logger } from 'pino';
import { Unauthorized } from '../errors.js';
import type { KeyResolver, Principal } from '../itflow/apiKeys.js';
import type { ItflowClock } from '../itflow/clock.js';

export interface AuthDeps {
  keys: KeyResolver;
  pool: Pool;
  clock: ItflowClock;
  redis: Redis;
  prefix: string;
  failureLogsPerMinute: number;
  logger: Logger;
}

/** The API key from the X-API-Key header, the JSON body's api_key, or the query's api_key. */
export function presentedKey(request: FastifyRequest, body: unknown): string | undefined {
  const header = request.headers['x-api-key'];
  if (typeof header === 'string' && header !== '') return header;
  const fromBody = (body as { api_key?: unknown } | null)?.api_key;
  if (typeof fromBody === 'string' && fromBody !== '') return fromBody;
  const fromQuery = (request.query as { api_key?: unknown } | undefined)?.api_key;
  return typeof fromQuery === 'string' && fromQuery !== '' ? fromQuery : undefined;
}

/**
 * Resolves the request's key to a principal, or answers 401 (unknown/expired) or 403 (the
 * key's user may not act). A wrong or expired key leaves a `logs` row as ITFlow does, at
 * most failureLogsPerMinute per client IP, so a flood cannot fill the table.
 */
export async function authenticate(deps: AuthDeps, request: FastifyRequest, body: unknown): Promise<Principal> {
  const secret = presentedKey(request, body);
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
  const counter = `${deps.prefix}:replyqueue:authfail:${request.ip}:${minute}`;
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
