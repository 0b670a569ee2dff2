import { isUtf8 } from 'node:buffer';
import type { FastifyRequest } from 'fastify';
import { Invalid, UnsupportedMediaType } from '../errors.js';

/**
 * A request body as text. JSON travels in UTF-8 (RFC 8259): another declared charset is refused
 * with 415, and bytes that are not UTF-8 with 400 — never decoded into U+FFFD and stored.
 */
export function utf8Body(request: FastifyRequest, body: Buffer): string {
  checkUtf8(request, body);
  return body.toString('utf8');
}

/** utf8Body's checks alone, for a parser that decodes the body piece by piece. */
export function checkUtf8(request: FastifyRequest, body: Buffer): void {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(String(request.headers['content-type'] ?? ''))?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    throw new UnsupportedMediaType(`Send the request body in UTF-8 (charset=${charset.slice(0, 40)} is not accepted).`);
  }
  if (!isUtf8(body)) throw new Invalid('The request body is not valid UTF-8.');
}

/** Whether the request carries a body (declared by Content-Length or Transfer-Encoding). */
export function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * A body in a content coding (gzip, br, …) is refused before it is read, with 415 naming the
 * coding: the intake does not decompress, and compressed bytes read as JSON would only fail
 * later as "not valid UTF-8".
 */
export function refuseContentEncoding(request: FastifyRequest): void {
  const encoding = request.headers['content-encoding']?.trim() ?? '';
  if (encoding === '' || /^identity$/i.test(encoding) || !hasBody(request)) return;
  const error = new UnsupportedMediaType(
    `Send the request body uncompressed (Content-Encoding: ${encoding.slice(0, 40)} is not accepted).`,
  );
  error.headers['Accept-Encoding'] = 'identity';
  throw error;
}
