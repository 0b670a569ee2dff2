// What happens on the connection around a request: how long a request may take to arrive,
// when the client is told to send its body (`Expect: 100-continue`), and closing the connection
// when an answer goes out before the body was read, so the rest of that body is never kept.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify';
import { fail } from './envelope.js';
import { REQUEST_ID_HEADER } from './requestId.js';

/** How often Node looks for requests past their deadline (its default, 30 s, would let one overstay that long). */
const DEADLINE_CHECK_MS = 1000;
/** Node's own deadline for a request's head. */
const HEADERS_TIMEOUT_MS = 60_000;

/**
 * Fastify options for the request deadline: a request's head and body must arrive within
 * `requestTimeoutMs` of its start, or it is answered 408 and its connection closed — a client
 * that stalls or dribbles cannot keep a connection and its buffered body for ever. Errors
 * Node's HTTP parser meets before a request reaches the routes get the v1 envelope too.
 */
export function connectionOptions(requestTimeoutMs: number) {
  return {
    requestTimeout: requestTimeoutMs,
    http: {
      requestTimeout: requestTimeoutMs,
      // Node swaps the two deadlines when the head's is the longer, which would give the body 60 s.
      headersTimeout: Math.min(HEADERS_TIMEOUT_MS, requestTimeoutMs),
      connectionsCheckingInterval: DEADLINE_CHECK_MS,
    },
    clientErrorHandler(this: FastifyInstance, error: Error & { code?: string }, socket: Socket) {
      answerClientError(this.log, error, socket, requestTimeoutMs);
    },
  };
}

function answerClientError(
  log: FastifyBaseLogger,
  error: Error & { code?: string },
  socket: Socket,
  requestTimeoutMs: number,
): void {
  // A connection reset leaves nobody to answer.
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  // No request reached Fastify, so none has an id yet: this answer gets its own.
  const reqId = randomUUID();
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    log.info(
      { reqId, remoteAddress: socket.remoteAddress, requestTimeoutMs },
      'request did not arrive in time; connection closed',
    );
  }
  const [status, message] =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, `The request did not arrive within ${Math.round(requestTimeoutMs / 1000)} seconds.`]
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'The request headers are too large.']
        : [400, 'The request is not valid HTTP.'];
  // As Node does: never write into an answer that has already begun.
  const answering = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (socket.writable && !answering?.headersSent) {
    const body = JSON.stringify(fail(message));
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\n${REQUEST_ID_HEADER}: ${reqId}\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/**
 * `Expect: 100-continue` is answered by the routes, not by Node: Node sends `100 Continue` to
 * anyone who asks as soon as the head is in, inviting a body before the key was checked. Here
 * it goes out only once the request has passed the onRequest hooks (key, limits) and is about to
 * have its body read, and only for a body within the route's limit.
 *
 * An answer sent while the body is still arriving (a wrong key, a limit, a refused encoding)
 * closes the connection: Node would otherwise read and discard the rest of the body for as
 * long as the client sends it.
 */
export function registerConnectionHandling(app: FastifyInstance): void {
  app.server.on('checkContinue', (req, res) => app.routing(req, res));
  app.addHook('preParsing', async (request, reply, payload) => {
    if (expectsContinue(request) && !request.raw.complete && withinBodyLimit(request)) reply.raw.writeContinue();
    return payload;
  });
  app.addHook('onSend', async (request, reply) => {
    if (request.raw.complete) return;
    reply.header('Connection', 'close');
    closeLingering(request.raw.socket);
  });
}

/** How long a closing connection still takes in (and drops) what its client sends. */
const LINGER_MS = 2000;

/**
 * Node ends a `Connection: close` answer with socket.destroySoon(): our FIN, then destroy as
 * soon as the answer is flushed. With the client still sending its body, that destroy finds
 * unread data and the kernel resets the connection, and the reset can reach the client before
 * it has read the answer: it sees "connection reset", not its 401 (the "TCP reset problem" of
 * RFC 9112 §9.6). So this socket closes in stages instead: FIN after the answer, then what the
 * client still sends is read and dropped (Node discards an unread body) until it closes its
 * side or LINGER_MS pass.
 */
function closeLingering(socket: Socket): void {
  socket.destroySoon = function lingeringClose(this: Socket) {
    this.end();
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
  };
}

function expectsContinue(request: FastifyRequest): boolean {
  return /^\s*100-continue\s*$/i.test(request.headers.expect ?? '');
}

function withinBodyLimit(request: FastifyRequest): boolean {
  const length = Number(request.headers['content-length'] ?? 0);
  return !(length > request.routeOptions.bodyLimit);
}
