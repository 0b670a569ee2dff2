// The request id: the client's X-Request-Id when it is a sane one, else a fresh UUID. Fastify
// puts it on every log line of the request (`reqId`); every answer carries it back in
// X-Request-Id, so a client can quote it and an operator grep for it.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

export const REQUEST_ID_HEADER = 'X-Request-Id';

/** Longest client request id taken as it is. */
export const MAX_REQUEST_ID_LENGTH = 128;

/**
 * Printable ASCII, no longer than MAX_REQUEST_ID_LENGTH: it goes into a response header and
 * into log lines unchanged, so it may not carry control characters, bytes outside ASCII, or
 * enough text to bloat every line.
 */
const SANE = new RegExp(`^[\\x21-\\x7e](?:[\\x20-\\x7e]{0,${MAX_REQUEST_ID_LENGTH - 2}}[\\x21-\\x7e])?$`);

/** Fastify's genReqId: the client's id if sane, otherwise a new UUID (unique across processes). */
export function requestIdOf(raw: IncomingMessage): string {
  const sent = raw.headers['x-request-id'];
  return typeof sent === 'string' && SANE.test(sent) ? sent : randomUUID();
}

/** Every answer of the server, errors included, carries its request's id. */
export function registerRequestIdEcho(app: FastifyInstance): void {
  app.addHook('onSend', async (request, reply) => {
    reply.header(REQUEST_ID_HEADER, request.id);
  });
}
