import { createHash } from 'node:crypto';
import rateLimit, { type RateLimitPluginOptions } from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TooManyRequests } from '../errors.js';
import { keyLayoutOf } from '../queue/cluster.js';
import { redisKeys } from '../queue/keys.js';
import type { RedisClient } from '../queue/redis.js';
import { isApi, keyBeforeBody, keyInBody } from './auth.js';
import { coalescingStore } from './rateLimitStore.js';

export interface RateLimitDeps {
  /** The intake's command connection (no offline queue: it fails fast while Redis is away). */
  redis: RedisClient;
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
 * request (and the counters of all requests in one turn of the event loop share one pipeline). The key limit counts the key as presented (valid or not, stored as a SHA-256 digest,
 * never the secret): on onRequest too when it is in the header or query string, before the key
 * is checked (src/http/auth.ts); on preHandler when it is the body's api_key.
 * Both fail open: while Redis is away requests go on to do what they would without limits
 * (create.php answers its own 503, read.php still reads), rather than a limiter's error.
 *
 * Every answer of a limited request says where it stands (IETF draft RateLimit header fields):
 * RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset (seconds until the window resets)
 * of the limit with the least remaining, or of the one that refused it; a 429 adds Retry-After.
 */
export function registerRateLimits(app: FastifyInstance, deps: RateLimitDeps): void {
  const namespace = redisKeys(deps.prefix, keyLayoutOf(deps.redis)).rateLimits;
  const quotas = new WeakMap<FastifyRequest, Quota>();
  const enforce = enforcer(quotas);
  if (deps.perIpPerMinute > 0 || deps.perKeyPerMinute > 0) {
    app.addHook('onSend', async (request, reply) => {
      const quota = quotas.get(request);
      if (!quota) return;
      reply.header('RateLimit-Limit', String(quota.limit));
      reply.header('RateLimit-Remaining', String(quota.remaining));
      reply.header('RateLimit-Reset', String(quota.resetSeconds));
    });
  }
  const ipMessage = (seconds: number) =>
    `Too many requests from this IP address: at most ${deps.perIpPerMinute} a minute. Retry in ${seconds} seconds.`;
  const keyMessage = (seconds: number) =>
    `Too many requests with this API key: at most ${deps.perKeyPerMinute} a minute. Retry in ${seconds} seconds.`;
  const perIp =
    deps.perIpPerMinute > 0 ? counter(app, deps.redis, { nameSpace: `${namespace}ip:`, max: deps.perIpPerMinute }) : null;
  const presented = (request: FastifyRequest) => keyBeforeBody(request) ?? keyInBody(request.body);
  const perKey =
    deps.perKeyPerMinute > 0
      ? counter(app, deps.redis, {
          nameSpace: `${namespace}key:`,
          max: deps.perKeyPerMinute,
          keyGenerator: (request) => keyDigest(presented(request) ?? ''),
        })
      : null;
  if (perIp || perKey) {
    // Both limits at once (one pipeline to Redis, see rateLimitStore.ts), before the body is read
    // when the key is in a header or the query string.
    app.addHook('onRequest', async (request) => {
      if (!isApi(request)) return;
      const checks: Array<Promise<void>> = [];
      if (perIp) checks.push(enforce(request, perIp, ipMessage));
      if (perKey && keyBeforeBody(request) !== undefined) checks.push(enforce(request, perKey, keyMessage));
      await settleAll(checks);
    });
  }
  if (perKey) {
    app.addHook('preHandler', async (request) => {
      if (isApi(request) && keyBeforeBody(request) === undefined && keyInBody(request.body) !== undefined) {
        await enforce(request, perKey, keyMessage);
      }
    });
  }
}

/** Waits for every check, then throws the first refusal (so each limit has counted the request). */
async function settleAll(checks: Array<Promise<void>>): Promise<void> {
  const settled = await Promise.allSettled(checks);
  const refused = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (refused) throw refused.reason;
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
  redis: RedisClient,
  options: Pick<RateLimitPluginOptions, 'nameSpace' | 'max' | 'keyGenerator'>,
): (request: FastifyRequest) => ReturnType<Check> {
  let check: Check | undefined;
  void app.register(async (scope) => {
    await scope.register(rateLimit, {
      global: false,
      store: coalescingStore(redis, options.nameSpace ?? ''),
      timeWindow: WINDOW_MS,
      skipOnError: false,
      ...options,
    });
    check = scope.createRateLimit();
  });
  return (request) => {
    if (!check) throw new Error('rate limits used before the server was ready');
    return check(request);
  };
}

/** Where a request stands against one limit: what its RateLimit-* headers say. */
interface Quota {
  limit: number;
  remaining: number;
  resetSeconds: number;
  exceeded: boolean;
}

/** Of two limits, the one a client should heed: one that refused the request, else the nearer to running out. */
function tighter(a: Quota, b: Quota): Quota {
  if (a.exceeded !== b.exceeded) return a.exceeded ? a : b;
  if (a.remaining !== b.remaining) return a.remaining < b.remaining ? a : b;
  return a.resetSeconds >= b.resetSeconds ? a : b;
}

/** Counts the request against one limit, keeps the tighter quota for its headers, and refuses it past the limit. */
function enforcer(quotas: WeakMap<FastifyRequest, Quota>) {
  return async (
    request: FastifyRequest,
    check: (request: FastifyRequest) => ReturnType<Check>,
    message: (seconds: number) => string,
  ): Promise<void> => {
    const result = await check(request).catch((error: Error) => {
      request.log.warn({ err: error.message }, 'rate limit not checked: Redis did not answer');
      return null;
    });
    if (!result || result.isAllowed) return;
    const quota: Quota = {
      limit: result.max,
      remaining: result.remaining,
      resetSeconds: Math.max(0, result.ttlInSeconds),
      exceeded: result.isExceeded,
    };
    const known = quotas.get(request);
    quotas.set(request, known ? tighter(known, quota) : quota);
    if (quota.exceeded) {
      const seconds = Math.max(1, quota.resetSeconds);
      throw new TooManyRequests(message(seconds), seconds);
    }
  };
}
