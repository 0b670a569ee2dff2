import type { Redis } from 'ioredis';
import { runScriptPipelined } from '../queue/scripts.js';

/** What @fastify/rate-limit's store interface answers for one request. */
interface Counted {
  current: number;
  ttl: number;
}
type Callback = (error: Error | null, counted?: Counted) => void;

interface Pending {
  key: string;
  windowMs: number;
  done: Callback;
}

/**
 * A Redis store for @fastify/rate-limit that counts like the plugin's own (fixed windows: the
 * first request of a window starts it), but sends the counters of every request of one turn of
 * the event loop — both limits of each request, and all the requests in flight — to Redis as
 * one pipeline: one write and one read, where the plugin's store makes a round trip per limit
 * per request.
 */
export function coalescingStore(redis: Redis, nameSpace: string) {
  let pending: Pending[] | null = null;
  const flush = (batch: Pending[]) => {
    pending = null;
    runScriptPipelined(
      redis,
      'countRequest',
      batch.map((p) => ({ keys: [p.key], args: [p.windowMs] })),
    ).then(
      (answers) =>
        batch.forEach((p, i) => {
          const [error, value] = answers[i] ?? [new Error('no answer from Redis'), null];
          if (error) p.done(error);
          else {
            const [current, ttl] = value as [number, number];
            p.done(null, { current: Number(current), ttl: Number(ttl) });
          }
        }),
      (error: Error) => {
        for (const p of batch) p.done(error);
      },
    );
  };
  const count = (key: string, windowMs: number, done: Callback) => {
    let batch = pending;
    if (batch === null) {
      const fresh: Pending[] = [];
      batch = pending = fresh;
      setImmediate(() => flush(fresh));
    }
    batch.push({ key, windowMs, done });
  };
  // The plugin constructs the store itself, with its own settings only.
  return class CoalescingStore {
    constructor(
      _settings?: unknown,
      private readonly prefix = nameSpace,
    ) {}
    incr(key: string, done: Callback, timeWindow: number): void {
      count(`${this.prefix}${key}`, timeWindow, done);
    }
    /** A route's own limit (route config): its counters under the route's method and path. */
    child(routeOptions: { method: string | string[]; url: string }): CoalescingStore {
      return new CoalescingStore(undefined, `${this.prefix}${String(routeOptions.method)}${routeOptions.url}-`);
    }
  };
}
