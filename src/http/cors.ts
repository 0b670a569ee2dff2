// Cross-origin requests from browsers, when CORS_ORIGINS names the web apps that may make them
// (off by default: without it no answer carries Access-Control-* headers and a preflight is a
// 405 like any other OPTIONS).
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import type { CorsOrigins } from '../config.js';
import { REQUEST_ID_HEADER } from './requestId.js';

/** What a browser client sends beyond the CORS-safelisted headers. */
const ALLOWED_HEADERS = ['X-API-Key', 'Authorization', 'Idempotency-Key', 'Prefer', 'Content-Type', REQUEST_ID_HEADER];

/** What it may read of an answer beyond the safelisted headers. */
const EXPOSED_HEADERS = [
  'Idempotent-Replayed',
  'Retry-After',
  REQUEST_ID_HEADER,
  'RateLimit-Limit',
  'RateLimit-Remaining',
  'RateLimit-Reset',
  'Location',
  'Preference-Applied',
];

/** How long a browser may reuse a preflight's answer, in seconds. */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

/**
 * @fastify/cors with the listed origins (or every origin, `*`). A preflight is answered 204
 * before the key check and the rate limits — a browser sends neither key nor body with it — and
 * the actual request's answer, a 401 or 429 included, carries Access-Control-Allow-Origin, so
 * the page can read why it was refused. Register it before the limits and the authentication:
 * hooks run in the order they were added. Keys travel in headers, never cookies, so no
 * credentials mode is offered.
 */
export function registerCors(app: FastifyInstance, origins: CorsOrigins): void {
  if (origins === false) return;
  const allowed = origins === '*' ? null : new Set(origins);
  void app.register(cors, {
    // A listed origin is echoed back; any other gets no CORS headers (and its preflight a 405).
    origin: allowed === null ? '*' : (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    methods: ['GET', 'HEAD', 'POST'],
    allowedHeaders: ALLOWED_HEADERS,
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
    // An OPTIONS without Access-Control-Request-Method is answered like a preflight rather
    // than with the plugin's plain-text 400.
    strictPreflight: false,
  });
}
