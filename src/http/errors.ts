import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { classify, isTransient } from '../apply/classify.js';
import { Invalid, NotFound, PayloadTooLarge, ServiceError, Unavailable, UnsupportedMediaType } from '../errors.js';
import { isRedisConnectionError } from '../queue/redis.js';
import { fail } from './envelope.js';
import { REQUEST_ID_HEADER } from './requestId.js';

/**
 * The one place errors become HTTP answers. A ServiceError carries its status and message;
 * Fastify's own body errors get v1-style messages; a dependency that is down is a 503 with
 * Retry-After; anything else is a 500 that says nothing about the inside.
 */
export function toServiceError(error: unknown, bodyLimitBytes?: number): ServiceError | null {
  if (error instanceof ServiceError) return error;
  const e = error as FastifyError;
  switch (e?.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PayloadTooLarge(
        bodyLimitBytes === undefined
          ? 'The request body is too large.'
          : `The request body is too large: this endpoint takes at most ${bodyLimitBytes} bytes (${humanBytes(bodyLimitBytes)}).`,
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new UnsupportedMediaType('Send the request body as JSON, with Content-Type: application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new Invalid('The request body is empty: send a JSON object.');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new Invalid('The Content-Length header does not match the body.');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new Invalid('The request body is not valid JSON.');
    case 'FST_ERR_BAD_URL':
      return new Invalid('The request URL is not valid.');
    // The docs' static files refuse a path that climbs out of their folder: there is nothing there.
    case 'FST_STATIC_FORBIDDEN_PATH':
      return new NotFound('Unknown endpoint.');
  }
  if (isDependencyDown(error)) return new Unavailable();
  return null;
}

/** 2048 → '2 KiB', 33554432 → '32 MiB', 5000 → '4.9 KiB': a size as an operator configures it. */
export function humanBytes(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = unit === 0 ? String(value) : String(Math.floor(value * 10) / 10);
  return `${shown} ${units[unit]}`;
}

function isDependencyDown(error: unknown): boolean {
  const message = (error as Error)?.message ?? '';
  // Redis away (a closed connection, a cluster shard without its primary…), a command refused
  // for want of ioredis's offline queue meanwhile, a refusal told only in the message, MySQL away.
  return /enableOfflineQueue|ECONNREFUSED/.test(message) || isRedisConnectionError(error) || isTransient(error);
}

/**
 * The error handler of a server. A 503 is said once per outage, not once per request: an error
 * that looks like MySQL going away goes to `onMysqlOutage` (which probes and logs when it goes
 * and when it is back), Redis's are told by its connection's own watcher; the request itself is
 * logged at debug, and its status is in the request's own log line.
 */
export function errorHandlerFor(onMysqlOutage: (error: Error) => void = () => {}) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): void => {
    // Errors met before routing (frameworkErrors) skip the onSend hook that echoes the id.
    reply.header(REQUEST_ID_HEADER, request.id);
    const known = toServiceError(error, request.routeOptions?.bodyLimit);
    if (known) {
      if (known.status === 503) {
        request.log.debug({ err: (error as Error).message }, 'dependency unavailable');
        const verdict = classify(error);
        if (verdict.kind === 'outage') onMysqlOutage(verdict.error);
      }
      void reply.code(known.status).headers(known.headers).send(fail(known.message));
      return;
    }
    request.log.error({ err: error }, 'unexpected error');
    void reply.code(500).send(fail('Internal error.'));
  };
}
