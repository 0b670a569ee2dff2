import { createHash } from 'node:crypto';
import rateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { TooManyRequests } from '../errors.js';
import { redisKeys } from '../queue/keys.js';
import { isApi, keyBeforeBody, keyInBody } from './auth.js';

export interface RateLimitDeps {
  /** The intake's command connection (no offline queue: it fails fast while Redis is away). */
  redis: Redis;
  /** The service's QUEUE_PREFIX: counters live under it, like every other key the service writes. */
  prefix: string;
  /** Requests per presented API key per minute; 0: no limit. */
  perKeyPerMinute: number;
  /** Requests per client IP (an IPv6 /64) per minute; 0: no limit. */
  perIpPerMinute: number;
}

type Check = ReturnType<FastifyInstance['createRateLimit']>;

const WINDOW_MS = 60_000;

/**
 * Per-IP and per-API-key request limits, counted in Redis by @fastify/rate-limit (fixed
 * one-minute windows), so they hold across every intake process sharing the queue.
 *
 * Only the API is limited; health, readiness, metrics and the docs answer whatever the load.
 * The IP limit runs on onRequest, before a body is read, so a flood costs one Redis call per
 * request. The key limit counts the key as presented (valid or not, stored as a SHA-256 digest,
 * never the secret): on onRequest too when it is in the header or query string, before the key
 * is checked (src/http/auth.ts); on preHandler when it is the body's api_key.
 * Both fail open: while Redis is away requests go on to do what they would without limits
 * (create.php answers its own 503, read.php still reads), rather than a limiter's error.
 */
export function registerRateLimits(app: FastifyInstance, deps: RateLimitDeps): void {
  const namespace = redisKeys(deps.prefix).rateLimits;
  if (deps.perIpPerMinute > 0) {
    const perIp = counter(app, deps.redis, { nameSpace: `${namespace}ip:`, max: deps.perIpPerMinute });
    app.addHook('onRequest', async (request) => {
      if (!isApi(request)) return;
      await enforce(
        request,
        perIp,
        (seconds) =>
          `Too many requests from this IP address: at most ${deps.perIpPerMinute} a minute. Retry in ${seconds} seconds.`,
      );
    });
  }
  if (deps.perKeyPerMinute > 0) {
    const presented = (request: FastifyRequest) => keyBeforeBody(request) ?? keyInBody(request.body);
    const perKey = counter(app, deps.redis, {
      nameSpace: `${namespace}key:`,
      max: deps.perKeyPerMinute,
      keyGenerator: (request) => keyDigest(presented(request) ?? ''),
    });
    const limitKey = (request: FastifyRequest) =>
      enforce(
        request,
        perKey,
        (seconds) =>
          `Too many requests with this API key: at most ${deps.perKeyPerMinute} a minute. Retry in ${seconds} seconds.`,
      );
    app.addHook('onRequest', async (request) => {
      if (isApi(request) && keyBeforeBody(request) !== undefined) await limitKey(request);
    });
    app.addHook('preHandler', async (request) => {
      if (isApi(request) && keyBeforeBody(request) === undefined && keyInBody(request.body) !== undefined) {
        await limitKey(request);
      }
    });
  }
}

/** The digest a presented key is counted under: the secret itself never reaches Redis. */
function keyDigest(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/**
 * One counter, as its own registration of the plugin: the plugin counts one key per
 * registration (its keyGenerator), and a scope of its own keeps each counter's Redis namespace
 * plain. The check exists once the server has loaded its plugins, before it takes requests.
 */
function counter(
  app: FastifyInstance,
  redis: Redis,
  options: Pick<RateLimitPluginOptions, 'nameSpace' | 'max' | 'keyGenerator'>,
): (request: FastifyRequest) => ReturnType<Check> {
  let check: Check | undefined;
  void app.register(async (scope) => {
    await scope.register(rateLimit, { global: false, redis, timeWindow: WINDOW_MS, skipOnError: false, ...options });
    check = scope.createRateLimit();
  });
  return (request) => {
    if (!check) throw new Error('rate limits used before the server was ready');
    return check(request);
  };
}

async function enforce(
  request: FastifyRequest,
  check: (request: FastifyRequest) => ReturnType<Check>,
  message: (seconds: number) => string,
): Promise<void> {
  const result = await check(request).catch((error: Error) => {
    request.log.warn({ err: error.message }, 'rate limit not checked: Redis did not answer');
    return null;
  });
  if (result && !result.isAllowed && result.isExceeded) {
    const seconds = Math.max(1, result.ttlInSeconds);
    throw new TooManyRequests(message(seconds), seconds);
  }
}
