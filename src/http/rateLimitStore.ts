import type { RedisClient } from '../queue/redis.js';
import { runScriptPipelined } from '../queue/scripts.js';
import { perTurn } from '../turnBatch.js';

/** What @fastify/rate-limit's store interface answers for one request. */
interface Counted {
  current: number;
  ttl: number;
}
type Callback = (error: Error | null, counted?: Counted) => void;

/**
 * A Redis store for @fastify/rate-limit that counts like the plugin's own (fixed windows: the
 * first request of a window starts it), but sends the counters of every request of one turn of
 * the event loop — both limits of each request, and all the requests in flight — to Redis as
 * one pipeline: one write and one read, where the plugin's store makes a round trip per limit
 * per request.
 */
export function coalescingStore(redis: RedisClient, nameSpace: string) {
  const count = perTurn<{ key: string; windowMs: number }, Counted | Error>(async (batch) => {
    const answers = await runScriptPipelined(
      redis,
      'countRequest',
      batch.map((p) => ({ keys: [p.key], args: [p.windowMs] })),
    );
    return batch.map((_, i) => {
      const [error, value] = answers[i] ?? [new Error('no answer from Redis'), null];
      if (error) return error;
      const [current, ttl] = value as [number, number];
      return { current: Number(current), ttl: Number(ttl) };
    });
  });
  const incr = (key: string, windowMs: number, done: Callback) =>
    count({ key, windowMs }).then(
      (counted) => (counted instanceof Error ? done(counted) : done(null, counted)),
      (error: Error) => done(error),
    );
  // The plugin constructs the store itself, with its own settings only.
  return class CoalescingStore {
    constructor(
      _settings?: unknown,
      private readonly prefix = nameSpace,
    ) {}
    incr(key: string, done: Callback, timeWindow: number): void {
      void incr(`${this.prefix}${key}`, timeWindow, done);
    }
    /** A route's own limit (route config): its counters under the route's method and path. */
    child(routeOptions: { method: string | string[]; url: string }): CoalescingStore {
      return new CoalescingStore(undefined, `${this.prefix}${String(routeOptions.method)}${routeOptions.url}-`);
    }
  };
}
