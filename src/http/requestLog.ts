// One log line per request, written when the answer has gone: method, route pattern (never the
// URL, whose query string may hold an api_key), status, response time, client IP and, for an
// error, the message the client got — under the request's reqId like every line of the request.
// Health checks, readiness probes, metrics scrapes and the docs' assets are asked for by
// machines every few seconds; they are logged at debug, so LOG_LEVEL=info shows client traffic.
import { type FastifyInstance, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import { REQUEST_COMPLETED } from '../logger.js';

/** The route of a request no route matched (404, 405): one label, whatever the client asked for. */
export const UNMATCHED_ROUTE = '(unmatched)';

const QUIET_ROUTES = new Set(['/healthz', '/readyz', '/metrics']);
const QUIET_PREFIX = '/docs';

/** The route pattern a request matched, or UNMATCHED_ROUTE. */
export function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? UNMATCHED_ROUTE;
}

function isQuiet(route: string): boolean {
  return QUIET_ROUTES.has(route) || route === QUIET_PREFIX || route.startsWith(`${QUIET_PREFIX}/`);
}

/** The message of each error answer, taken as it is serialized (see registerRequestLog). */
const answeredWith = new WeakMap<FastifyRequest, string>();

/**
 * Fastify's request logging replaced: a request's arrival is logged at debug only (its URL
 * redacted by the logger's serializer), its answer always, as above.
 */
export class RequestLog extends LogController {
  override incomingRequest(request: FastifyRequest): void {
    request.log.debug({ req: request }, 'incoming request');
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const route = routeOf(request);
    const message = answeredWith.get(request);
    const line = {
      method: request.method,
      route,
      // A path no route knows is worth seeing (a client's typo); its query string is not logged.
      ...(route === UNMATCHED_ROUTE ? { path: request.url.split('?')[0] } : {}),
      statusCode: reply.statusCode,
      responseTime: Math.round(reply.elapsedTime * 10) / 10,
      ip: request.ip,
      ...(reply.statusCode >= 400 && message !== undefined ? { error: message } : {}),
    };
    if (error) reply.log.error({ ...line, err: error }, 'request errored');
    else if (isQuiet(route)) reply.log.debug(line, REQUEST_COMPLETED);
    else reply.log.info(line, REQUEST_COMPLETED);
  }
}

/** Remembers the message of every error answer (the v1 envelope's `message`) for its request line. */
export function registerRequestLog(app: FastifyInstance): void {
  app.addHook('preSerialization', async (request, reply, payload) => {
    if (reply.statusCode >= 400) {
      const message = (payload as { message?: unknown } | null)?.message;
      if (typeof message === 'string') answeredWith.set(request, message);
    }
    return payload;
  });
}
